"""The pipeline's steps on artifact paths: the stages' own code, a gate refusal as a
verdict (not a failure), and errors as one line with exit code 1."""

import json
from pathlib import Path

import pandas as pd
import pytest

from ..package import NAME, SRC, load

files = load("core.files")
steps = load("orchestration.steps")
CONTEXT = steps.context("feedbeef", "", [])


def run_to_model(tmp_path):
    """read -> validate -> preprocess -> train on artifact paths, as the pipeline does."""
    out = tmp_path / "artifacts"
    paths = {name: str(out / name) for name in ("interim", "validation", "train", "test", "model")}
    steps.read(CONTEXT, "data/raw/dataset.csv", paths["interim"])
    steps.validate(CONTEXT, paths["interim"], paths["validation"])
    steps.preprocess(CONTEXT, paths["interim"], paths["train"], paths["test"])
    steps.train(CONTEXT, paths["train"], paths["model"])
    return paths


def test_steps_write_their_outputs_where_kfp_says(project, tmp_path):
    paths = run_to_model(tmp_path)
    logged = {}

    report = steps.evaluate(
        CONTEXT, "job-1", paths["model"], paths["test"], "data/raw/dataset.csv",
        str(tmp_path / "metrics"), str(tmp_path / "roc"), str(tmp_path / "confusion"),
        logged.__setitem__,
    )  # fmt: skip

    assert json.loads((tmp_path / "metrics").read_text()) == report
    assert logged["roc_auc"] == report["roc_auc"]
    assert "canvas_goal" not in logged  # only numbers go to kfp's metrics
    assert not (project.root / "reports" / "metrics.json").exists()  # the project is untouched


@pytest.mark.filterwarnings("ignore:The ``noload`` loader strategy:DeprecationWarning")
def test_the_profile_step_logs_the_training_splits_profile_with_the_models_run(project, tmp_path):
    if not (SRC / NAME / "monitoring").is_dir():
        pytest.skip("level 3: no monitoring sub-package, no profile stage")
    project.set("params", "tracking.enabled", True)
    paths = run_to_model(tmp_path)
    steps.evaluate(
        CONTEXT, "job-1", paths["model"], paths["test"], "data/raw/dataset.csv",
        str(tmp_path / "metrics"), str(tmp_path / "roc"), str(tmp_path / "confusion"),
    )  # fmt: skip
    reference = tmp_path / "artifacts" / "reference"

    steps.profile(CONTEXT, paths["train"], "data/raw/dataset.csv", paths["model"], str(reference))

    written = json.loads(reference.read_text())
    assert written["rows"] == len(pd.read_csv(paths["train"]))
    assert written["data_version"] == files.md5_of(Path("data/raw/dataset.csv"))
    client, run_id = steps.model_run(paths["model"])
    artifact = "profile/reference-profile.json"  # where export looks for it
    logged = Path(client.download_artifacts(run_id, artifact, str(tmp_path)))
    assert json.loads(logged.read_text()) == written
    assert not Path("models/reference-profile.json").exists()  # the project's is untouched


# The gate opens MLflow even with tracking off; MLflow 3 on SQLAlchemy 2.1 warns then.
@pytest.mark.filterwarnings("ignore:The ``noload`` loader strategy:DeprecationWarning")
def test_a_gate_refusal_is_a_verdict(project, tmp_path):
    project.set("canvas", "success_metric.threshold", 1.5)
    paths = run_to_model(tmp_path)
    report = tmp_path / "gate.json"

    passed = steps.gate(
        CONTEXT, "job-1", paths["model"], paths["interim"], str(report), str(tmp_path / "gate.md")
    )

    assert passed is False
    assert json.loads(report.read_text())["passed"] is False


def test_a_step_error_is_one_line_and_exit_code_1(project, tmp_path, capsys):
    with pytest.raises(SystemExit) as stopped:
        steps.gate(
            CONTEXT, "job-1", str(tmp_path / "no-model"), "data/raw/dataset.csv",
            str(tmp_path / "gate.json"), str(tmp_path / "gate.md"),
        )  # fmt: skip

    assert stopped.value.code == 1
    error = capsys.readouterr().err
    assert error.startswith("error: ") and "no-model is missing" in error
    assert error.count("\n") == 1
