"""Smoke test: every stage through the command line, tracking into a tmp SQLite store.

These tests import MLflow (a few seconds each), and read the store through its
public API (`runs.rank_runs`).
"""

import hashlib
import sys
from pathlib import Path

from ..package import load

cli = load("cli")
runs = load("tracking.runs")


def test_all_stages_then_runs_lists_the_tracked_run(project, capsys):
    db = project.root / "mlflow.db"
    project.set(
        "params", "tracking", {"enabled": True, "uri": f"sqlite:///{db}", "experiment": "smoke"}
    )

    for stage in ("read", "metadata", "validate", "preprocess", "train", "evaluate"):
        assert cli.main([stage]) == 0, capsys.readouterr().err

    for output in (
        "data/interim/dataset.csv",
        "reports/metadata.json",
        "reports/validation.json",
        "data/processed/train.csv",
        "data/processed/test.csv",
        "models/model.joblib",
        "reports/metrics.json",
        "reports/plots/roc.csv",
        "reports/plots/confusion.csv",
    ):
        assert Path(output).is_file(), output
    assert "tracked in sqlite:///" in capsys.readouterr().out

    assert cli.main(["runs"]) == 0
    listing = capsys.readouterr().out
    assert "logistic_regression v1" in listing
    assert "C=1.0" in listing

    (ranked,) = runs.rank_runs(f"sqlite:///{db}", "smoke", "roc_auc")
    data_md5 = hashlib.md5(Path("data/raw/dataset.csv").read_bytes()).hexdigest()
    assert ranked["data_md5"] == data_md5
    assert ranked["git_commit"]  # a commit hash, or "unknown" outside git
    assert ranked["architecture"] == "logistic_regression"


def _tracked(project, tmp_path, experiment="tracked"):
    db = tmp_path / "mlflow.db"
    project.set(
        "params", "tracking", {"enabled": True, "uri": f"sqlite:///{db}", "experiment": experiment}
    )
    for stage in ("read", "preprocess", "train"):
        assert cli.main([stage]) == 0
    return db


def _runs(db: Path) -> list[dict]:
    return runs.rank_runs(f"sqlite:///{db}", "tracked", "roc_auc")


def test_a_run_records_what_makes_it_reproducible(project, tmp_path):
    db = _tracked(project, tmp_path)

    assert cli.main(["evaluate"]) == 0

    (run,) = _runs(db)
    tags = run["tags"]
    assert tags["model_md5"] == hashlib.md5(Path("models/model.joblib").read_bytes()).hexdigest()
    assert tags["git_commit"] == "uncommitted"  # no git repository here
    assert tags["git_dirty"] == "true"
    assert len(tags["code_digest"]) == len(tags["run_digest"]) == 64


def test_an_identical_run_is_not_recorded_twice(project, tmp_path, capsys):
    db = _tracked(project, tmp_path)
    assert cli.main(["evaluate"]) == 0
    # A hyperparameter of another architecture changes nothing the run used.
    project.set("params", "model.hyperparameters.random_forest.n_estimators", 500)

    assert cli.main(["evaluate"]) == 0

    assert "identical to run" in capsys.readouterr().out
    assert len(_runs(db)) == 1


def test_a_tracking_failure_writes_no_metrics(project, tmp_path, capsys):
    _tracked(project, tmp_path)
    (tmp_path / "a-file").write_text("not a folder\n")
    project.set("params", "tracking.uri", f"sqlite:///{tmp_path}/a-file/mlflow.db")

    assert cli.main(["evaluate"]) == 1

    assert "could not record the run" in capsys.readouterr().err
    assert not Path("reports/metrics.json").exists()


def test_without_the_tracking_group_the_error_names_it(project, tmp_path, capsys, monkeypatch):
    _tracked(project, tmp_path)
    for name in ("mlflow", "mlflow.tracking"):
        monkeypatch.setitem(sys.modules, name, None)  # what a missing package looks like

    assert cli.main(["evaluate"]) == 1

    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "the `tracking` dependency group" in error
    assert not Path("reports/metrics.json").exists()


def test_runs_show_the_features_and_local_changes(project, tmp_path, capsys):
    _tracked(project, tmp_path)
    assert cli.main(["evaluate"]) == 0
    capsys.readouterr()

    assert cli.main(["runs"]) == 0

    listing = capsys.readouterr().out
    assert "5: radius,texture,area,smoothness,clinic" in listing
    assert "uncommit*" in listing
