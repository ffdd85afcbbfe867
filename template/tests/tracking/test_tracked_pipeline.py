"""Smoke test: every stage through the command line, tracking into a tmp SQLite store.

The only test that imports MLflow (a few seconds).
"""

import hashlib
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

    (ranked,) = runs.rank_runs(db, "smoke", "roc_auc")
    data_md5 = hashlib.md5(Path("data/raw/dataset.csv").read_bytes()).hexdigest()
    assert ranked["data_md5"] == data_md5
    assert ranked["git_commit"]  # a commit hash, or "unknown" outside git
    assert ranked["architecture"] == "logistic_regression"
