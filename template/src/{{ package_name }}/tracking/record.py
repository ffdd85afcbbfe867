"""Record each evaluated model as an MLflow run, in a local SQLite file.

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
is not recorded twice. MLflow is imported here only, when a run is recorded:
importing it takes seconds, and the other stages do not need it.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
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


def _quiet_mlflow() -> None:
    """Keep MLflow's start-up chatter (table creation) out of the output."""
    import logging

    for name in ("mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)


def _client(uri: str) -> Any:
    # No usage telemetry from pipeline runs unless the user asked for it.
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    try:
        from mlflow.tracking import MlflowClient
    except ImportError:
        raise PipelineError(MISSING_GROUP) from None
    _quiet_mlflow()
    return MlflowClient(tracking_uri=uri)


def _experiment_id(client: Any, name: str) -> str:
    experiment = client.get_experiment_by_name(name)
    return experiment.experiment_id if experiment else client.create_experiment(name)


def _identical_run(client: Any, experiment_id: str, digest: str) -> str | None:
    found = client.search_runs(
        [experiment_id],
        filter_string=f"tags.run_digest = '{digest}' and attributes.status = 'FINISHED'",
        max_results=1,
    )
    return found[0].info.run_id if found else None


def log_run(
    params: Params, canvas: Canvas, report: dict[str, Any], model_path: Path, data_md5: str
) -> tuple[str, bool]:
    """Record one run and its model file; return (run id, whether it is a new run)."""
    import warnings

    uri = params.tracking.effective_uri
    used = run_params(params, data_md5)
    code = code_digest()
    digest = run_digest(code, used)
    now = int(time.time() * 1000)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            client = _client(uri)
            from mlflow.entities import Metric, Param, RunTag

            experiment_id = _experiment_id(client, params.tracking.experiment)
            identical = _identical_run(client, experiment_id, digest)
            if identical:
                return identical, False
            tags = run_tags(canvas, report, code, digest, files.md5_of(model_path))
            run = client.create_run(experiment_id, run_name=os.environ.get("DVC_EXP_NAME"))
            run_id = run.info.run_id
            client.log_batch(
                run_id,
                metrics=[
                    Metric(name, float(report[name]), now, 0)
                    for name in METRIC_NAMES
                    if name in report
                ],
                params=[Param(key, str(value)) for key, value in used.items()],
                tags=[RunTag(key, value) for key, value in tags.items()],
            )
            client.log_artifact(run_id, str(model_path), artifact_path="model")
            # The rules the model was trained under, for whoever exports it later.
            for settings_file in (paths.PARAMS, paths.CANVAS):
                if settings_file.is_file():
                    client.log_artifact(run_id, str(settings_file), artifact_path="settings")
            # Level 4: the training data's reference profile travels with the model,
            # so that a runner without the data exports it (drift's reference).
            if paths.REFERENCE_PROFILE.is_file():
                client.log_artifact(run_id, str(paths.REFERENCE_PROFILE), artifact_path="profile")
            client.set_terminated(run_id)
    except PipelineError:
        raise
    except Exception as error:
        message = str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
        raise PipelineError(
            f"could not record the run in {uri}: {message} "
            "(set `tracking.enabled: false` in params.yaml to skip tracking)"
        ) from None
    return run_id, True
