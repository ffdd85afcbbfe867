"""Command `register`: the model the gate just passed (same md5) becomes a registry
version with the alias `challenger`, logged in skops format (no pickle) into its run.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..core import files, paths
from ..core.errors import PipelineError
from . import registry
from .settings import GATE_REPORT, load_registry_settings

# Libraries the model needs to be loaded again; pinned to the versions in use.
MODEL_REQUIREMENTS = ("scikit-learn", "numpy", "scipy", "joblib", "skops")


def passed_verdict(report_path: Path, model_path: Path) -> dict[str, Any]:
    files.require_file(report_path, "run the gate first (`uv run poe gate`)")
    verdict = json.loads(report_path.read_text(encoding="utf-8"))
    if verdict.get("model_md5") != files.md5_of(model_path):
        raise PipelineError(
            f"{report_path} judged another model than {model_path}: run the gate again"
        )
    if not verdict.get("passed"):
        raise PipelineError(f"the gate refused this model ({report_path}): nothing registered")
    return verdict


def requirements() -> list[str]:
    """Explicit requirements: MLflow then skips its slow inference subprocess."""
    from contextlib import suppress
    from importlib.metadata import PackageNotFoundError, version

    pinned = []
    for name in MODEL_REQUIREMENTS:
        with suppress(PackageNotFoundError):
            pinned.append(f"{name}=={version(name)}")
    return pinned


def run_of_model(client: Any, experiment: str, model_md5: str) -> str:
    found = client.search_runs(
        [e.experiment_id for e in client.search_experiments() if e.name == experiment],
        filter_string=f"tags.model_md5 = '{model_md5}' and attributes.status = 'FINISHED'",
        max_results=1,
    )
    if not found:
        raise PipelineError(
            "no tracked run holds this model: enable tracking (params.yaml) and rerun the "
            "pipeline (`uv run poe pipeline`)"
        )
    return found[0].info.run_id


def log_and_register(run_id: str, model: Any, name: str) -> str:
    import warnings

    import mlflow
    import mlflow.sklearn
    import skops.io

    # The model was built by this project's code: its own types are trusted.
    trusted = list(skops.io.get_untrusted_types(data=skops.io.dumps(model)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with mlflow.start_run(run_id=run_id):
            info = mlflow.sklearn.log_model(
                model, name="model", pip_requirements=requirements(), skops_trusted_types=trusted
            )
        version = mlflow.register_model(info.model_uri, name)
    return str(version.version)


def run(
    model_path: Path = paths.MODEL,
    report_path: Path = GATE_REPORT,
    params_path: Path = paths.PARAMS,
) -> str:
    import joblib

    files.require_file(model_path, "run the pipeline first (`uv run poe pipeline`)")
    verdict = passed_verdict(report_path, model_path)
    client, params = registry.open_registry(params_path)
    name = load_registry_settings().model_name
    run_id = run_of_model(client, params.tracking.experiment, verdict["model_md5"])
    version = log_and_register(run_id, joblib.load(model_path), name)
    for key, value in {"gate": verdict["reason"], "model_md5": verdict["model_md5"]}.items():
        client.set_model_version_tag(name, version, key, value)
    registry.move_alias(
        client, name, registry.CHALLENGER, "register", version, "passed the gate", verdict["reason"]
    )
    print(f"register: {name} version {version} (run {run_id}) is the challenger")
    return version
