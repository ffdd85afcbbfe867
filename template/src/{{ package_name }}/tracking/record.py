"""Record each evaluated model as an MLflow run, through MLflow's public API.

A run holds what is needed to trust and reproduce a result: the git commit and
whether the working tree had local changes, a digest of the package code and
one of everything the run used (code, params, data), the md5 of the model
file (how level 3 finds the run of a model), the data version (md5 of
the raw file, the hash DVC records), the features, the architecture and its
version, the hyperparameters, the metrics, the model file, and the params.yaml
and canvas.yaml it was trained under (artifacts `settings/`). The store is
`tracking.uri` in params.yaml (default sqlite:///mlflow.db); the
MLFLOW_TRACKING_URI environment variable overrides it.

A run identical to one already recorded (same run digest: same code, params
and data, e.g. `dvc exp run -S` on a hyperparameter of another architecture)
is not recorded twice. Recording goes through MLflow's public fluent API, in
the stage's process; importing MLflow and opening its store are most of its
cost (docs/benchmarks.md, docs/decisions/0011).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import warnings
from pathlib import Path
from typing import Any

from ..core import files, git, paths
from ..core.canvas import METRIC_NAMES, Canvas
from ..core.errors import PipelineError
from ..core.params import Params

PACKAGE_ROOT = Path(__file__).resolve().parents[1]
MISSING_GROUP = (
    "MLflow is not installed: tracking needs the `tracking` dependency group "
    "(`uv sync --group tracking`), or set `tracking.enabled: false` in params.yaml"
)


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


def run_digest(code: str, used_params: dict[str, Any]) -> str:
    """sha256 of the code digest and the params used (the data md5 is one of them)."""
    payload = json.dumps({"code": code, "params": used_params}, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()


def run_tags(
    canvas: Canvas, report: dict[str, Any], code: str, digest: str, model_md5: str
) -> dict[str, str]:
    commit = git.commit()
    goal = report.get("canvas_goal", {})
    tags = {
        "model_md5": model_md5,
        "git_commit": commit,
        "mlflow.source.git.commit": commit,
        "git_dirty": str(git.has_local_changes()).lower(),
        "code_digest": code,
        "run_digest": digest,
        "canvas_metric": canvas.success_metric.name,
        "canvas_goal_met": str(goal.get("met", "unknown")).lower(),
    }
    if os.environ.get("DVC_EXP_NAME"):
        tags["dvc_experiment"] = os.environ["DVC_EXP_NAME"]
    return tags


def missing_store(uri: str) -> Path | None:
    """The file of a local SQLite store not made yet (opening it would make it), else None."""
    prefix = "sqlite:///"
    path = Path(uri[len(prefix) :]) if uri.startswith(prefix) else None
    return path if path is not None and not path.is_file() else None


def import_mlflow() -> Any:
    """MLflow, imported and quiet, or the one-line error naming the `tracking` group."""
    # No usage telemetry from pipeline runs unless the user asked for it.
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    try:
        import mlflow
    except ImportError:
        raise PipelineError(MISSING_GROUP) from None
    for name in ("mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)
    return mlflow


def client(uri: str) -> Any:
    """An MlflowClient on a store, for reading it (MLflow imported only then)."""
    mlflow = import_mlflow()
    with warnings.catch_warnings():
        # Opening a store warns about MLflow's own use of its libraries (SQLAlchemy 2.1
        # deprecates a loader it uses): MLflow's to fix, nothing the project can act on.
        warnings.simplefilter("ignore")
        return mlflow.MlflowClient(tracking_uri=uri)


def record(mlflow: Any, uri: str, experiment: str, run: dict[str, Any]) -> tuple[str, bool]:
    """Record a run unless a finished run has its digest; return (run id, whether it is new)."""
    mlflow.set_tracking_uri(uri)
    found = mlflow.get_experiment_by_name(experiment)
    experiment_id = found.experiment_id if found else mlflow.create_experiment(experiment)
    same = f"tags.run_digest = '{run['tags']['run_digest']}' and attributes.status = 'FINISHED'"
    identical = mlflow.search_runs([experiment_id], same, max_results=1, output_format="list")
    if identical:
        return identical[0].info.run_id, False
    # A failure inside ends the run as FAILED: never taken for an identical finished run.
    with mlflow.start_run(
        experiment_id=experiment_id, run_name=run["name"], tags=run["tags"]
    ) as active:
        mlflow.log_params(run["params"])
        mlflow.log_metrics(run["metrics"])
        for path, folder in run["artifacts"]:
            mlflow.log_artifact(path, artifact_path=folder)
        return active.info.run_id, True


def log_run(
    params: Params, canvas: Canvas, report: dict[str, Any], model_path: Path, data_md5: str
) -> tuple[str, bool]:
    """Record one run and its files; return (run id, whether it is a new run)."""
    uri = params.tracking.effective_uri
    mlflow = import_mlflow()
    used = run_params(params, data_md5)
    code = code_digest()
    digest = run_digest(code, used)
    files_of_run = [(model_path, "model")]
    # The rules the model was trained under, for whoever exports it later.
    files_of_run += [(path, "settings") for path in (paths.PARAMS, paths.CANVAS)]
    # Level 4: the training data's reference profile travels with the model,
    # so that a runner without the data exports it (drift's reference).
    files_of_run.append((paths.REFERENCE_PROFILE, "profile"))
    run = {
        "name": os.environ.get("DVC_EXP_NAME"),
        "params": {key: str(value) for key, value in used.items()},
        "metrics": {name: float(report[name]) for name in METRIC_NAMES if name in report},
        "tags": run_tags(canvas, report, code, digest, files.md5_of(model_path)),
        "artifacts": [(str(path), folder) for path, folder in files_of_run if path.is_file()],
    }
    # A new run, never one an MLFLOW_RUN_ID in the environment names.
    os.environ.pop("MLFLOW_RUN_ID", None)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return record(mlflow, uri, params.tracking.experiment, run)
    except Exception as error:
        text = str(error).strip()
        message = text.splitlines()[0] if text else repr(error)
        raise PipelineError(
            f"could not record the run in {uri}: {message} "
            "(set `tracking.enabled: false` in params.yaml to skip tracking)"
        ) from None
