"""Live performance: the canvas metric on the latest feedback, against its goal and test score.

The logs are written from the schema (log_files.py). The tests' canvas asks
for roc_auc >= 0.5; tracking is off, so there is no test score to compare
with, except in the one test that trains and promotes a champion.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from ..package import PipelineError, load
from .log_files import Row, scored, write_log

cli = load("cli")
performance = load("monitoring.performance")

LOG = Path("logs/predictions.db")
OUTCOMES = [0, 1] * 50


def report() -> dict:
    return json.loads(Path("reports/performance.json").read_text())


def test_a_metric_that_meets_the_goal_passes_and_is_reported(project, capsys):
    write_log(LOG, scored(OUTCOMES, right=True))

    performance.run()

    verdict = report()
    assert verdict["tripped"] is False
    assert (verdict["metric"], verdict["value"], verdict["rows"]) == ("roc_auc", 1.0, 100)
    assert verdict["goal"] == {"threshold": 0.5, "higher_is_better": True, "met": True}
    assert "tracking is disabled" in verdict["test_score"]["note"]
    line = capsys.readouterr().out.strip()
    assert line.startswith("performance: roc_auc 1.0000 on the last 100 feedback rows")
    assert line.count("\n") == 0 and "-> ok" in line


def test_a_metric_below_the_canvas_threshold_trips_with_exit_code_3(project, capsys):
    write_log(LOG, scored(OUTCOMES, right=False))

    with pytest.raises(SystemExit) as exit_info:
        cli.main(["performance"])

    assert exit_info.value.code == 3
    assert report()["tripped"] is True
    assert report()["reasons"] == ["roc_auc 0.0000 misses the canvas goal (at least 0.5)"]
    assert "TRIPPED" in capsys.readouterr().out


def test_a_fall_from_the_test_score_trips_even_above_the_threshold(project, monkeypatch):
    # Half the rows ranked wrong: roc_auc 0.525, above the goal (0.5), far below 0.99.
    rows = scored(OUTCOMES[:50], right=True) + scored(OUTCOMES[:50], right=False)
    write_log(LOG, rows)
    reference = {"version": "1", "test_score": 0.99, "source": "the version that answered"}
    monkeypatch.setattr(performance, "registry_test_score", lambda *_: (reference, ""))

    with pytest.raises(SystemExit):
        performance.run()

    verdict = report()
    assert verdict["goal"]["met"] is True
    assert verdict["test_score"]["exceeded"] is True
    assert verdict["test_score"]["drop"] == pytest.approx(0.99 - verdict["value"], abs=1e-6)
    assert "worse than version 1's test score 0.9900 (at most 0.05)" in verdict["reasons"][0]


def test_a_small_fall_within_max_drop_passes(project, monkeypatch):
    write_log(LOG, scored(OUTCOMES, right=True))
    reference = {"version": "1", "test_score": 1.03, "source": "the version that answered"}
    monkeypatch.setattr(performance, "registry_test_score", lambda *_: (reference, ""))

    performance.run()

    assert report()["test_score"]["drop"] == pytest.approx(0.03)
    assert report()["tripped"] is False


def test_the_window_is_the_latest_feedback(project):
    # 200 old rows ranked wrong, the latest 100 right: the default window (500) sees
    # them all, --last 100 only the latest.
    write_log(LOG, scored(OUTCOMES * 2, right=False) + scored(OUTCOMES, right=True))

    assert performance.run(last=100)["value"] == 1.0
    with pytest.raises(SystemExit):
        performance.run()
    assert report()["rows"] == 300


def test_rows_without_feedback_and_refused_rows_are_not_judged(project):
    noise = [Row({"radius": 50.0}, status=422), Row({"radius": 12.0}, outcome=None)] * 40
    write_log(LOG, noise + scored(OUTCOMES, right=True))

    assert performance.run()["rows"] == 100


def test_too_few_feedback_rows_cannot_be_judged(project, capsys):
    write_log(LOG, scored([0, 1] * 10, right=True))

    assert cli.main(["performance"]) == 1

    error = capsys.readouterr().err
    assert "holds 20 answered rows with feedback, fewer than the 30" in error
    assert error.count("\n") == 1
    assert not Path("reports/performance.json").exists()


def test_the_minimum_comes_from_monitoring_yaml(project):
    Path("monitoring.yaml").write_text(yaml.safe_dump({"performance": {"min_rows": 10}}))
    write_log(LOG, scored([0, 1] * 10, right=True))

    assert performance.run()["rows"] == 20


def test_without_a_log_it_cannot_judge(project):
    with pytest.raises(PipelineError, match=r"predictions\.db is missing"):
        performance.run()


def test_a_metric_undefined_on_the_window_cannot_be_judged(project):
    write_log(LOG, scored([1] * 40, right=True))  # one class: roc_auc is undefined

    with pytest.raises(PipelineError, match="roc_auc is undefined on these 40 feedback rows"):
        performance.run()


def test_the_test_score_is_the_registry_run_of_the_version_that_answered(project, tmp_path):
    """Registry test: trains and promotes a champion (MLflow: a few seconds)."""
    project.set(
        "params",
        "tracking",
        {"enabled": True, "uri": f"sqlite:///{tmp_path}/mlflow.db", "experiment": "live"},
    )
    for command in ("read", "preprocess", "train", "evaluate", "gate", "register", "promote"):
        assert cli.main([command]) == 0
    test_score = json.loads(Path("reports/metrics.json").read_text())["roc_auc"]
    write_log(LOG, scored(OUTCOMES, right=True, version="1"))

    verdict = performance.run()

    compared = verdict["test_score"]
    assert (compared["version"], compared["source"]) == ("1", "the version that answered")
    assert compared["test_score"] == pytest.approx(test_score)
    assert compared["drop"] == pytest.approx(test_score - 1.0)

    write_log(Path("logs/candidate.db"), scored(OUTCOMES, right=True, version="candidate-1a2b"))
    compared = performance.run(log=Path("logs/candidate.db"))["test_score"]
    assert compared["version"] == "1"
    assert compared["source"].startswith("the champion (version candidate-1a2b that answered")


@pytest.mark.parametrize(("drop", "said"), [(0.02, "0.0200 worse"), (-0.01, "0.0100 better")])
def test_the_verdict_says_which_side_of_the_test_score_the_live_metric_is(drop, said):
    test_score = {"drop": drop, "version": "1", "test_score": 0.98, "exceeded": False}
    report = {
        "goal": {"higher_is_better": True, "threshold": 0.95, "met": True},
        "metric": "roc_auc",
        "value": 0.98 - drop,
        "rows": 500,
        "tripped": False,
        "outputs": {"json": "reports/performance.json"},
        "test_score": {**test_score, "max_drop": 0.05},
    }

    line = performance.verdict_line(report)

    assert f"{said} than version 1's test score 0.9800 (within 0.05)" in line
