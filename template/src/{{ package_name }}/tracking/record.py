"""Record each evaluated model as an MLflow run, through MLflow's public API.

A run holds what it takes to trust and reproduce a result: the git commit and
dirty flag, digests of the package code and of all the run used (code, params,
data md5), the model's md5 (how level 3 finds a model's run), the params and
metrics, and as artifacts the model, the params.yaml and canvas.yaml it was
trained under (`settings/`) and the files given to `evaluate --with-model`
(`with-model/`, which `export` copies into the model folder). A run identical
to a finished one (same run digest) is not recorded twice. Importing MLflow
and opening its store are most of the cost (docs/decisions/0011).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..core import files, git, paths
from ..core.canvas import METRIC_NAMES, Canvas
from ..core.errors import PipelineError
from ..core.params import Params

PACKAGE_ROOT = Path(__file__).resolve().parents[1]
WITH_MODEL = "with-model"  # the artifact folder of the files that travel with the model


def run_params(params: Params, data_md5: str) -> dict[str, Any]:
    """The run's parameters, flat; `hp.` prefixes the selected architecture's hyperparameters."""
    return {
        "architecture": params.model.architecture,
        "architecture_version": params.model.architecture_version,
        "features.numeric": ",".join(params.features.numeric),
        "features.categorical": ",".join(params.features.categorical),
        "features.target": params.features.target,
        "split.test_size": params.split.test_size,
        "split.seed": params.split.seed,
        "data_md5": data_md5,
        **{f"hp.{name}": value for name, value in params.model.selected_hyperparameters.items()},
    }


def code_digest(root: Path = PACKAGE_ROOT) -> str:
    """sha256 of the package's Python files, by path and content (line endings as stored)."""
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(path.relative_to(root).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def missing_store(uri: str) -> Path | None:
    """The file of a local SQLite store not made yet (opening it would make it), else None."""
    path = Path(uri.removeprefix("sqlite:///")) if uri.startswith("sqlite:///") else None
    return path if path is not None and not path.is_file() else None


def import_mlflow() -> Any:
    """MLflow, imported and quiet, or the one-line error naming the `tracking` group."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")  # unless the user asked for it
    try:
        import mlflow
    except ImportError:
        raise PipelineError(
            "MLflow is not installed: tracking needs the `tracking` dependency group "
            "(`uv sync --group tracking`), or set `tracking.enabled: false` in params.yaml"
        ) from None
    for name in ("mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)
    return mlflow


def client(uri: str) -> Any:
    """An MlflowClient on a store, for reading it (MLflow imported only then)."""
    mlflow = import_mlflow()
    with warnings.catch_warnings():
        # Opening a store warns about MLflow's own use of its libraries: nothing to act on.
        warnings.simplefilter("ignore")
        return mlflow.MlflowClient(tracking_uri=uri)


def log_run(
    params: Params,
    canvas: Canvas,
    report: dict[str, Any],
    model_path: Path,
    data_md5: str,
    with_model: Sequence[Path] = (),
) -> tuple[str, bool]:
    """Record one run and its files; return (run id, whether it is a new run)."""
    uri = params.tracking.effective_uri
    mlflow = import_mlflow()
    used = run_params(params, data_md5)
    code = code_digest()
    payload = json.dumps({"code": code, "params": used}, sort_keys=True, default=str)
    commit = git.commit()
    tags = {
        "model_md5": files.md5_of(model_path),
        "git_commit": commit,
        "mlflow.source.git.commit": commit,
        "git_dirty": str(git.has_local_changes()).lower(),
        "code_digest": code,
        "run_digest": hashlib.sha256(payload.encode()).hexdigest(),
        "canvas_metric": canvas.success_metric.name,
        "canvas_goal_met": str(report.get("canvas_goal", {}).get("met", "unknown")).lower(),
    }
    name = os.environ.get("DVC_EXP_NAME")
    if name:
        tags["dvc_experiment"] = name
    artifacts = [(model_path, "model"), (paths.PARAMS, "settings"), (paths.CANVAS, "settings")]
    artifacts += [(path, WITH_MODEL) for path in with_model]
    os.environ.pop("MLFLOW_RUN_ID", None)  # a new run, never one the environment names
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            mlflow.set_tracking_uri(uri)
            ids = [mlflow.set_experiment(params.tracking.experiment).experiment_id]
            same = f"tags.run_digest = '{tags['run_digest']}' and attributes.status = 'FINISHED'"
            identical = mlflow.search_runs(ids, same, max_results=1, output_format="list")
            if identical:
                return identical[0].info.run_id, False
            # A failure inside ends the run as FAILED: never taken for an identical finished run.
            with mlflow.start_run(experiment_id=ids[0], run_name=name, tags=tags) as run:
                mlflow.log_params({key: str(value) for key, value in used.items()})
                mlflow.log_metrics({m: float(report[m]) for m in METRIC_NAMES if m in report})
                for path, folder in artifacts:
                    if path.is_file():
                        mlflow.log_artifact(str(path), artifact_path=folder)
                return run.info.run_id, True
    except Exception as error:
        message = (str(error).strip() or repr(error)).splitlines()[0]
        raise PipelineError(
            f"could not record the run in {uri}: {message} "
            "(set `tracking.enabled: false` in params.yaml to skip tracking)"
        ) from None
