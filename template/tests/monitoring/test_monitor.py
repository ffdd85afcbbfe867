"""monitor: drift, performance and cadence on the latest window; retrain or not, always exit 0.

The reference profile is built from the tests' frame (2,000 rows), and the
logs are written from the schema: a shifted window drifts, a sample of the
training rows does not. monitoring.yaml lowers drift.min_rows to 300, the
size of these windows.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from ..conftest import make_frame
from ..package import load
from .log_files import Row, scored, write_log

cli = load("cli")
canvas_file = load("core.canvas")
params_file = load("core.params")
profile = load("monitoring.profile")
monitor = load("monitoring.monitor")

LOG = Path("logs/predictions.db")
NOW = datetime(2025, 7, 1, tzinfo=UTC)


def settings(**sections: Any) -> None:
    data = {"drift": {"min_rows": 300}, **sections}
    Path("monitoring.yaml").write_text(yaml.safe_dump(data))


def inputs(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """The rows as the API logs them: the features, a missing value left out."""
    rows = frame.drop(columns="malignant").to_dict(orient="records")
    return [
        {str(k): v for k, v in row.items() if not (isinstance(v, float) and math.isnan(v))}
        for row in rows
    ]


@pytest.fixture
def training(project: Any) -> pd.DataFrame:
    """2,000 training rows profiled into models/reference-profile.json."""
    frame = make_frame(2000, seed=3)
    params = params_file.load_params(Path("params.yaml"))
    canvas = canvas_file.load_canvas(Path("canvas.yaml"))
    built = profile.build_profile(frame, params, canvas, "data-v1")
    Path("models").mkdir()
    Path("models/reference-profile.json").write_text(json.dumps(built))
    settings()
    return frame


def window(frame: pd.DataFrame, radius_shift: float = 0.0) -> list[Row]:
    moved = frame.head(600).copy()
    moved["radius"] = moved["radius"] + radius_shift
    return [Row(row) for row in inputs(moved)]


def run_monitor(**options: Any) -> dict[str, Any]:
    return dict(monitor.run(now=NOW, **options))


def states(report: dict[str, Any]) -> dict[str, str]:
    return {check["name"]: check["state"] for check in report["checks"]}


@pytest.fixture
def outputs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """$GITHUB_OUTPUT and $GITHUB_STEP_SUMMARY, as a GitHub job has them."""
    files = {"output": tmp_path / "github-output", "summary": tmp_path / "step-summary"}
    monkeypatch.setenv("GITHUB_OUTPUT", str(files["output"]))
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(files["summary"]))
    return files


def test_drift_in_the_window_asks_for_retraining_and_says_why(training, outputs, capsys):
    write_log(LOG, window(training, radius_shift=3.0))

    report = run_monitor()

    assert report["retrain"] is True
    assert states(report) == {"drift": "tripped", "performance": "cannot judge", "cadence": "off"}
    assert report["reason"] == "drift: drift in radius"
    assert outputs["output"].read_text().splitlines() == [
        "retrain=true",
        f"reason={report['reason']}",
    ]
    summary = outputs["summary"].read_text()
    assert summary.startswith("## Monitor: RETRAIN") and "| drift | tripped |" in summary
    assert json.loads(Path("reports/monitor.json").read_text())["retrain"] is True
    assert Path("reports/monitor.md").read_text() + "\n" == summary
    assert Path("reports/drift.json").is_file()
    assert "monitor: retrain=true" in capsys.readouterr().out


def test_a_window_like_the_training_data_keeps_the_model(training, outputs):
    write_log(LOG, window(training))

    report = run_monitor()

    assert report["retrain"] is False
    assert states(report)["drift"] == "ok"
    assert report["reason"] == "nothing tripped (performance could not judge)"
    assert outputs["output"].read_text().startswith("retrain=false\n")


def test_a_live_metric_below_the_goal_asks_for_retraining(project):
    write_log(LOG, scored([0, 1] * 50, right=False))  # no reference profile: drift cannot judge

    report = run_monitor()

    assert states(report) == {"drift": "cannot judge", "performance": "tripped", "cadence": "off"}
    assert report["retrain"] is True
    assert report["reason"].startswith("performance: roc_auc 0.0000 misses the canvas goal")


def test_nothing_to_judge_is_reported_and_exits_0(project, capsys):
    assert cli.main(["monitor"]) == 0

    report = json.loads(Path("reports/monitor.json").read_text())
    assert report["retrain"] is False
    assert states(report) == {
        "drift": "cannot judge",
        "performance": "cannot judge",
        "cadence": "off",
    }
    details = {check["name"]: check["summary"] for check in report["checks"]}
    assert "no reference profile" in details["drift"]
    assert "predictions.db is missing" in details["performance"]
    assert "could not judge" in capsys.readouterr().out


def test_force_retrains_whatever_the_checks_say(project, outputs):
    report = run_monitor(force=True)

    assert report["retrain"] is True and report["forced"] is True
    assert report["reason"] == "forced (--force)"
    assert "retrain=true" in outputs["output"].read_text()


def trained_days_ago(days: float) -> None:
    folder = Path("models/serving")
    folder.mkdir(parents=True, exist_ok=True)
    trained = (NOW - timedelta(days=days)).isoformat(timespec="seconds")
    (folder / "metadata.json").write_text(json.dumps({"trained_at": trained}))


@pytest.mark.parametrize(("days", "state"), [(45, "tripped"), (10, "ok")])
def test_the_cadence_retrains_a_champion_older_than_it(project, days, state):
    settings(monitor={"retrain_every_days": 30})
    trained_days_ago(days)

    report = run_monitor()

    cadence = next(check for check in report["checks"] if check["name"] == "cadence")
    assert cadence["state"] == state
    assert f"champion trained {days:.1f} days ago (every 30 days" in cadence["summary"]
    assert report["retrain"] is (state == "tripped")


def test_a_cadence_without_a_known_champion_cannot_judge(project):
    settings(monitor={"retrain_every_days": 30})

    report = run_monitor()

    assert states(report)["cadence"] == "cannot judge"
    assert report["retrain"] is False


def test_gitlab_gets_a_dotenv_report(project, monkeypatch):
    monkeypatch.delenv("GITHUB_OUTPUT", raising=False)
    monkeypatch.setenv("GITLAB_CI", "true")

    run_monitor(force=True)

    assert Path("monitor.env").read_text().splitlines() == [
        "RETRAIN=true",
        "REASON=forced (--force)",
    ]
