"""What each step of the kfp pipeline does: call the stage's own `run(...)`, with the
paths kfp gives instead of the project's. Settings files come from the working
directory (the image's, built from the compiled commit). Every step first loads its
secrets (`enter`); a PipelineError ends it in one line with exit code 1.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..core import files, git
from ..core.errors import PipelineError
from ..tracking.record import WITH_MODEL
from . import secrets

REASON_LIMIT = 4000  # MLflow keeps tag values up to 8000 characters
PACKAGE = __name__.split(".")[0]
# Level 4's stages live in its own sub-package: found at run time.
MONITORING = f"{PACKAGE}.monitoring"


def context(commit: str, secret_source: str, secret_names: list[str]) -> str:
    """The run's context, one JSON text passed to every step."""
    return json.dumps({"commit": commit, "secrets": secret_source, "names": secret_names})


def enter(run_context: str) -> dict[str, Any]:
    """Load the step's secrets into its environment; return the context."""
    values = json.loads(run_context) if run_context else {}
    found = secrets.load(list(values.get("names", [])), str(values.get("secrets", "")))
    if found:
        print(f"secrets: {', '.join(found)} read from {values['secrets']}")
    return values


@contextmanager
def one_line_errors() -> Iterator[None]:
    """A PipelineError ends the step like the command line does: one line, exit 1."""
    try:
        yield
    except PipelineError as error:
        print(f"error: {' '.join(str(error).split())}", file=sys.stderr)
        raise SystemExit(1) from None


def step(run_context: str, work: Callable[[dict[str, Any]], Any]) -> Any:
    with one_line_errors():
        return work(enter(run_context))


def run_stage(run_context: str, module: str, **paths: str) -> Any:
    """A stage's `run(**paths)`; `module` is relative to the package: "pipeline.read"."""
    command: Any = importlib.import_module(f"{PACKAGE}.{module}")
    return step(run_context, lambda _: command.run(**{k: Path(v) for k, v in paths.items()}))


def model_run(model: str) -> tuple[Any, str] | None:
    """The registry's client and the tracked run of a model file; None when tracking is off."""
    from ..core import paths
    from ..core.params import load_params
    from ..release import registry
    from ..release.register import run_of_model

    if not load_params(paths.PARAMS).tracking.enabled:
        return None
    client, params = registry.open_registry(paths.PARAMS)
    return client, run_of_model(client, params.tracking.experiment, files.md5_of(Path(model)))


def tag_model_run(model: str, tags: dict[str, str]) -> str | None:
    """Set tags on the tracked run of a model file; None when tracking is off."""
    found = model_run(model)
    if found is None:
        return None
    client, run_id = found
    for key, value in tags.items():
        client.set_tag(run_id, key, value)
    return run_id


def log_with_model_run(model: str, source: Path, folder: str, name: str) -> str | None:
    """Log a file as `<folder>/<name>` with the tracked run of a model file; None when
    tracking is off."""
    found = model_run(model)
    if found is None:
        return None
    client, run_id = found
    with tempfile.TemporaryDirectory() as staging:
        named = Path(staging) / name  # kfp names an artifact's file after its output
        shutil.copyfile(source, named)
        client.log_artifact(run_id, str(named), artifact_path=folder)
    return run_id


def commit_tags(values: dict[str, Any]) -> dict[str, str]:
    """An image has no .git: record the commit it was built from instead of 'uncommitted'."""
    commit = str(values.get("commit", ""))
    if git.commit() != git.NO_COMMIT or not commit or commit == git.NO_COMMIT:
        return {}
    return {"git_commit": commit, "mlflow.source.git.commit": commit, "git_dirty": "false"}


def evaluate(
    run_context: str,
    job: str,
    model: str,
    test: str,
    raw: str,
    metrics: str,
    roc: str,
    confusion: str,
    log_metric: Callable[[str, float], object] | None = None,
) -> dict[str, Any]:
    """Evaluate, tag the tracked run with this pipeline run, and log the numbers to kfp."""
    from ..pipeline import evaluate as stage

    def work(values: dict[str, Any]) -> dict[str, Any]:
        report = stage.run(
            model_path=Path(model),
            test_path=Path(test),
            raw_path=Path(raw),
            metrics_path=Path(metrics),
            roc_path=Path(roc),
            confusion_path=Path(confusion),
        )
        tag_model_run(model, {"pipeline_job": job, **commit_tags(values)})
        for name, value in report.items():
            if log_metric and isinstance(value, int | float) and not isinstance(value, bool):
                log_metric(name, value)
        return report

    return step(run_context, work)


def profiles_training_data() -> bool:
    """Whether the project has level 4's `profile` stage (its monitoring sub-package)."""
    return importlib.util.find_spec(MONITORING) is not None


def profile(run_context: str, train_data: str, raw: str, model: str, reference: str) -> None:
    """Level 4's `profile` stage on the training split, logged with the model's run (as
    `evaluate --with-model` does; replacing any such file): `export` copies it for drift."""
    stage: Any = importlib.import_module(f"{MONITORING}.profile")

    def work(_: dict[str, Any]) -> None:
        out = Path(reference)
        stage.run(train_path=Path(train_data), raw_path=Path(raw), out=out)
        name = stage.REFERENCE_PROFILE.name
        if log_with_model_run(model, out, folder=WITH_MODEL, name=name):
            print(f"profile: logged with the run of {model} as {WITH_MODEL}/{name}")

    step(run_context, work)


def gate(run_context: str, job: str, model: str, interim: str, report: str, summary: str) -> bool:
    """The gate's verdict; a refusal is a verdict (False), not a failed step."""
    from ..release import gate as stage

    def work(_: dict[str, Any]) -> bool:
        report_path = Path(report)
        try:
            stage.run(
                model_path=Path(model),
                interim_path=Path(interim),
                report_path=report_path,
                summary_path=Path(summary),
            )
        except PipelineError:
            if not report_path.is_file():
                raise  # refused before judging: settings or data are wrong
            print("gate: refused, nothing will be registered")
        verdict = json.loads(report_path.read_text(encoding="utf-8"))
        tags = {"pipeline_job": job, "gate_passed": str(bool(verdict["passed"])).lower()}
        tags["gate_reason"] = str(verdict["reason"])[:REASON_LIMIT]
        tag_model_run(model, tags)
        return bool(verdict["passed"])

    return step(run_context, work)


def promotion_reason(job: str) -> str:
    """How the registry history names a promotion by this pipeline run (report.py finds it)."""
    return f"pipeline run {job}"


def promote(run_context: str, job: str, version: str) -> str:
    from ..release import promote

    return step(run_context, lambda _: promote.run(version=version, reason=promotion_reason(job)))


def commit_from_environment() -> str:
    """The commit a compiled pipeline records: git's, else the CI's variable."""
    commit = git.commit()
    if commit != git.NO_COMMIT:
        return commit
    return os.environ.get("GITHUB_SHA") or os.environ.get("CI_COMMIT_SHA") or commit
