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
is not recorded twice. Importing MLflow and opening its store take longer
than scoring the model, so `Recorder` does both in a process of its own
(recorder.py), started when `evaluate` starts: the stage waits only for what
is left of them once it has scored (docs/benchmarks.md).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import subprocess
import sys
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
RECORD_TIMEOUT = 600  # seconds: a remote store may be slow, never silent forever


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


def client(uri: str) -> Any:
    """An MlflowClient on a store, for reading it (MLflow imported only then)."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    try:
        from mlflow import MlflowClient
    except ImportError:
        raise PipelineError(MISSING_GROUP) from None
    for name in ("mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)
    with warnings.catch_warnings():
        # Opening a store warns about MLflow's own use of its libraries (SQLAlchemy 2.1
        # deprecates a loader it uses): MLflow's to fix, nothing the project can act on.
        warnings.simplefilter("ignore")
        return MlflowClient(tracking_uri=uri)


class Recorder:
    """The recording process (recorder.py), started at once, then sent one run."""

    def __init__(self, uri: str, experiment: str) -> None:
        if importlib.util.find_spec("mlflow") is None:
            raise PipelineError(MISSING_GROUP)
        self.uri = uri
        # No usage telemetry from pipeline runs unless the user asked for it.
        environment = {"MLFLOW_DISABLE_TELEMETRY": "true", **os.environ}
        self.process = subprocess.Popen(
            [sys.executable, "-m", f"{__package__}.recorder", uri, experiment],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            env=environment,
        )

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, *_: object) -> None:
        # Sent nothing (the stage failed first): it records nothing, and ends once MLflow
        # has opened the store (never stopped half-way through making a new one).
        if self.process.returncode is None:
            self.process.communicate()

    def send(self, run: dict[str, Any]) -> tuple[str, bool]:
        """Record a run; return (run id, whether it is a new run)."""
        try:
            out, err = self.process.communicate(json.dumps(run), timeout=RECORD_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            out, err = "", f"no answer in {RECORD_TIMEOUT} s"
        lines = out.strip().splitlines()
        answer = json.loads(lines[-1]) if lines else {}
        if "run_id" not in answer:
            said = [line for line in err.splitlines() if line.strip()]
            message = answer.get("error") or (said[-1] if said else "the recorder stopped")
            raise PipelineError(
                f"could not record the run in {self.uri}: {message} "
                "(set `tracking.enabled: false` in params.yaml to skip tracking)"
            )
        return answer["run_id"], answer["new"]


def log_run(
    recorder: Recorder,
    params: Params,
    canvas: Canvas,
    report: dict[str, Any],
    model_path: Path,
    data_md5: str,
) -> tuple[str, bool]:
    """Record one run and its files; return (run id, whether it is a new run)."""
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
        "artifacts": [
            [str(path.resolve()), folder] for path, folder in files_of_run if path.is_file()
        ],
    }
    return recorder.send(run)
