"""Record each evaluated model as an MLflow run, in a local SQLite file.

A run holds what is needed to trust and reproduce a result: the git commit,
the data version (md5 of the raw file, the hash DVC records), the features,
the architecture and its version, the hyperparameters, the metrics, and the
model itself. The store is `tracking.uri` in params.yaml (default
sqlite:///mlflow.db); the MLFLOW_TRACKING_URI environment variable overrides it.

MLflow is imported here only, when a run is recorded: importing it takes
seconds, and the other stages do not need it.
"""

from __future__ import annotations

import os
import subprocess
from typing import Any

from ..core.canvas import METRIC_NAMES, Canvas
from ..core.errors import PipelineError
from ..core.params import Params

# Libraries the model needs to be loaded again; pinned to the versions in use.
MODEL_REQUIREMENTS = ("scikit-learn", "pandas", "numpy", "scipy", "joblib", "skops")


def git_commit() -> str:
    """The current git commit, or "unknown" outside a git repository."""
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return result.stdout.strip() if result.returncode == 0 else "unknown"


def pip_requirements() -> list[str]:
    """Explicit requirements: MLflow then skips its slow inference subprocess."""
    from importlib.metadata import PackageNotFoundError, version

    pinned = []
    for name in MODEL_REQUIREMENTS:
        try:
            pinned.append(f"{name}=={version(name)}")
        except PackageNotFoundError:
            continue
    return pinned


def trusted_types(model: Any) -> list[str]:
    """Types skops must be told to trust to load this model again (MLflow saves with skops).

    The model was built by this project's code, so its own types are trusted.
    """
    import skops.io

    return list(skops.io.get_untrusted_types(data=skops.io.dumps(model)))


def run_params(params: Params, data_md5: str) -> dict[str, Any]:
    """The run's parameters, flat; `hp.` prefixes the hyperparameters."""
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


def _quiet_mlflow() -> None:
    """Keep MLflow's start-up chatter (table creation, pip probing) out of the output."""
    import logging

    for name in ("mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)
    logging.getLogger("mlflow.utils.environment").setLevel(logging.ERROR)


def log_run(
    params: Params,
    canvas: Canvas,
    report: dict[str, Any],
    model: Any,
    data_md5: str,
    input_sample: Any = None,
) -> str:
    """Record one run and its model; return the MLflow run id."""
    import warnings

    # No usage telemetry from pipeline runs unless the user asked for it.
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import mlflow
        import mlflow.sklearn
        from mlflow.models import infer_signature

        _quiet_mlflow()
        uri = params.tracking.effective_uri
        commit = git_commit()
        metrics = {name: float(report[name]) for name in METRIC_NAMES if name in report}
        goal = report.get("canvas_goal", {})
        tags = {
            "git_commit": commit,
            "mlflow.source.git.commit": commit,
            "canvas_metric": canvas.success_metric.name,
            "canvas_goal_met": str(goal.get("met", "unknown")).lower(),
        }
        if os.environ.get("DVC_EXP_NAME"):
            tags["dvc_experiment"] = os.environ["DVC_EXP_NAME"]
        try:
            mlflow.set_tracking_uri(uri)
            mlflow.set_experiment(params.tracking.experiment)
            with mlflow.start_run(run_name=os.environ.get("DVC_EXP_NAME")) as run:
                mlflow.log_params(run_params(params, data_md5))
                mlflow.log_metrics(metrics)
                mlflow.set_tags(tags)
                signature = None
                if input_sample is not None:
                    signature = infer_signature(input_sample, model.predict(input_sample))
                mlflow.sklearn.log_model(
                    model,
                    name="model",
                    pip_requirements=pip_requirements(),
                    signature=signature,
                    skops_trusted_types=trusted_types(model),
                )
        except PipelineError:
            raise
        except Exception as error:
            message = str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
            raise PipelineError(
                f"could not record the run in {uri}: {message} "
                "(set `tracking.enabled: false` in params.yaml to skip tracking)"
            ) from None
    return run.info.run_id
