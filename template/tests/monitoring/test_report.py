"""monitoring-report: one self-contained HTML page from the SQLite prediction log.

The logs here are built from the schema of docs/monitoring.md directly, so
the report is tested against the contract, not against the log's writer.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import re
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics

from ..conftest import TEST_CANVAS, TEST_PARAMS, TmpProject, make_frame
from ..package import PipelineError, load

cli = load("cli")
report = load("monitoring.report")
canvas_file = load("core.canvas")
settings_module = load("monitoring.settings")

START = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
SCHEMA = """
CREATE TABLE predictions (
    request_id TEXT NOT NULL, "row" INTEGER NOT NULL, time TEXT NOT NULL,
    model_version TEXT, status INTEGER NOT NULL, latency_ms REAL NOT NULL,
    input TEXT NOT NULL, prediction TEXT, probability REAL, refused_rule TEXT,
    PRIMARY KEY (request_id, "row")
);
CREATE TABLE feedback (
    request_id TEXT NOT NULL, "row" INTEGER NOT NULL DEFAULT 0,
    outcome TEXT NOT NULL, time TEXT NOT NULL,
    PRIMARY KEY (request_id, "row")
);
"""
RULE = "radius: <must be at least 5> & more"


def write_log(
    path: Path, predictions: list[dict[str, Any]], feedback: list[dict[str, Any]]
) -> Path:
    """A prediction log as the contract describes it (tables `predictions`, `feedback`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(path) as connection:
        connection.executescript(SCHEMA)
        connection.executemany(
            "INSERT INTO predictions VALUES (:request_id, :row, :time, :model_version, :status, "
            ":latency_ms, :input, :prediction, :probability, :refused_rule)",
            predictions,
        )
        connection.executemany(
            "INSERT INTO feedback VALUES (:request_id, :row, :outcome, :time)", feedback
        )
    connection.close()
    return path


def answered(request: int, row: int, at: datetime, features: dict[str, Any], target: int):
    probability = 0.8 if target else 0.2
    return {
        "request_id": f"{request:032x}",
        "row": row,
        "time": at.isoformat(),
        "model_version": "3",
        "status": 200,
        "latency_ms": 5.0 + request % 7,
        "input": json.dumps(features),
        "prediction": json.dumps(int(probability > 0.5)),
        "probability": probability,
        "refused_rule": None,
    }


def refused(request: int, at: datetime, features: dict[str, Any], rule: str = RULE):
    return {
        "request_id": f"{request:032x}",
        "row": 0,
        "time": at.isoformat(),
        "model_version": None,
        "status": 422,
        "latency_ms": 2.0,
        "input": json.dumps(features),
        "prediction": None,
        "probability": None,
        "refused_rule": rule,
    }


def input_rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """The frame's feature rows as a caller sends them: no target, no nulls."""
    features = frame.drop(columns="malignant")
    return [
        {str(name): value for name, value in row.items() if pd.notna(value)}
        for row in features.to_dict("records")
    ]


def traffic(rows: int = 80, feedback_every: int = 1, start: datetime = START, first: int = 0):
    """`rows` single-row requests a minute apart (every 10th refused), one 3-row batch,
    and feedback on every `feedback_every`-th answered row; request ids from `first` on."""
    frame = make_frame(rows)
    inputs = input_rows(frame)
    predictions, feedback = [], []
    for index in range(rows):
        at = start + timedelta(minutes=index)
        if index % 10 == 9:
            predictions.append(refused(first + index, at, inputs[index]))
            continue
        target = int(frame["malignant"].iloc[index])
        predictions.append(answered(first + index, 0, at, inputs[index], target))
        if index % feedback_every == 0:
            request_id = f"{first + index:032x}"
            record = {"request_id": request_id, "row": 0, "outcome": json.dumps(target)}
            feedback.append({**record, "time": (at + timedelta(seconds=30)).isoformat()})
    batch_time = start + timedelta(minutes=rows)
    for position in range(3):
        predictions.append(answered(first + rows, position, batch_time, inputs[position], 1))
    return predictions, feedback


@pytest.fixture(autouse=True)
def default_log_path(monkeypatch):
    """monitoring.yaml's path, not one set in the environment running the tests."""
    monkeypatch.delenv(settings_module.LOG_PATH_VARIABLE, raising=False)


@dataclass(frozen=True)
class WrittenPage:
    page: str
    printed: str


@pytest.fixture(scope="module")
def report_page(tmp_path_factory) -> WrittenPage:
    """`monitoring-report` run once on logs/predictions.db (80 + 3 rows) and the training split.

    Drawing a page takes about a second: the tests that read it share it.
    """
    root = tmp_path_factory.mktemp("report")
    project = TmpProject(root, copy.deepcopy(TEST_PARAMS), copy.deepcopy(TEST_CANVAS))
    project.write_config()
    project.write_data(make_frame(), "data/processed/train.csv")
    write_log(root / "logs" / "predictions.db", *traffic())
    printed = io.StringIO()
    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stdout(printed):
        patch.delenv(settings_module.LOG_PATH_VARIABLE, raising=False)
        patch.chdir(root)
        assert cli.main(["monitoring-report"]) == 0
    return WrittenPage(
        (root / "reports" / "monitoring.html").read_text("utf-8"), printed.getvalue()
    )


def images_and_links(page: str) -> tuple[list[str], list[str]]:
    return re.findall(r'src="([^"]*)"', page), re.findall(r'href="([^"]*)"', page)


def test_the_report_is_one_self_contained_page_with_every_section(report_page):
    sources, links = images_and_links(report_page.page)

    assert len(sources) == 4 + 5  # volume, latency, predictions, live metric, 5 features
    assert all(source.startswith("data:image/png;base64,") for source in sources)
    assert links == []
    assert "<script" not in report_page.page and "<link" not in report_page.page
    for heading in (
        "Summary",
        "Volume",
        "Latency",
        "Predictions",
        "Live success metric",
        "Input features",
    ):
        assert f"<h2>{heading}</h2>" in report_page.page
    for feature in ("radius", "texture", "area", "smoothness", "clinic"):
        assert f"<h3>{feature}</h3>" in report_page.page
    assert "budget (10000 ms)" in report_page.page
    assert "against data/processed/train.csv" in report_page.page


def test_the_command_prints_the_page_and_the_time_taken(report_page):
    assert re.search(
        r"wrote reports/monitoring\.html \(83 rows, \d+\.\d\d s\)", report_page.printed
    )


def test_the_summary_counts_rows_requests_outcomes_feedback_and_versions(report_page):
    cells = dict(re.findall(r"<tr><td>([^<]+)</td><td[^>]*>([^<]+)</td></tr>", report_page.page))

    assert cells["rows"] == "83"
    assert cells["requests"] == "81"  # the batch's 3 rows are one request
    assert cells["answered"] == "75"
    assert cells["refused"] == "8"
    assert cells["feedback rows"] == "72"
    assert cells["model versions seen"] == "3"
    assert cells["time span"].startswith("2024-05-01 12:00:00 to 2024-05-01 13:20:00 UTC")


def test_text_from_callers_is_escaped(report_page):
    assert "radius: &lt;must be at least 5&gt; &amp; more" in report_page.page
    assert "<must be" not in report_page.page


def test_the_live_metric_reports_the_last_window_against_the_canvas_goal(report_page):
    assert '<p class="goal-met">Last: roc_auc = 1.0000 (at least 0.5 wanted)' in report_page.page
    assert 'alt="live roc_auc"' in report_page.page


def two_features(project) -> None:
    """params.yaml with one numeric and one categorical feature: fewer plots to draw."""
    project.set("params", "features", {**project.params["features"], "numeric": ["radius"]})


def test_without_the_training_split_the_page_says_so_and_shows_the_live_rows(project):
    two_features(project)
    write_log(Path("logs/predictions.db"), *traffic())

    report.run()

    page = Path("reports/monitoring.html").read_text(encoding="utf-8")
    assert "data/processed/train.csv is absent" in page
    assert "uv run poe pipeline" in page
    assert "<h3>radius</h3>" in page and "<h3>clinic</h3>" in page
    assert len(images_and_links(page)[0]) == 4 + 2


def test_options_choose_the_log_the_output_and_the_window(project, capsys):
    two_features(project)
    old = traffic(rows=20, start=START - timedelta(days=10), first=1000)[0]
    write_log(Path("elsewhere.db"), old + traffic(rows=40)[0], [])

    code = cli.main(
        ["monitoring-report", "--log", "elsewhere.db", "--output", "out/r.html", "--days", "30"]
    )

    assert code == 0
    assert "wrote out/r.html (66 rows" in capsys.readouterr().out
    assert Path("out/r.html").is_file()


def test_the_window_counts_days_back_from_the_newest_record(project):
    old = traffic(rows=20, start=START - timedelta(days=10), first=1000)
    recent = traffic(rows=40)
    log = write_log(Path("logs/predictions.db"), old[0] + recent[0], old[1] + recent[1])

    connection = report.open_log(log)
    try:
        window = report.read_window(connection, log, days=7)
    finally:
        connection.close()

    assert len(window.predictions) == 43  # the 23 rows of 10 days before are left out
    assert len(window.feedback) == len(recent[1])
    assert window.end == pd.Timestamp(START + timedelta(minutes=40))


def test_past_input_sample_rows_the_features_are_read_from_one_row_in_k(project, monkeypatch):
    monkeypatch.setattr(report, "INPUT_SAMPLE_ROWS", 20)
    log = write_log(Path("logs/predictions.db"), *traffic())

    connection = report.open_log(log)
    try:
        window = report.read_window(connection, log, days=7)
    finally:
        connection.close()

    assert len(window.predictions) == 83  # every row still counts
    assert window.input_stride == 5  # 83 rows / 20, rounded up
    assert len(window.inputs) == 16  # the rows of rowid 5, 10, ... 80
    assert list(window.inputs.columns) == ["radius", "texture", "area", "smoothness", "clinic"]


def test_below_min_feedback_rows_the_live_metric_is_explained_not_drawn(project):
    log = write_log(Path("logs/predictions.db"), *traffic(rows=40, feedback_every=4))
    connection = report.open_log(log)
    try:
        window = report.read_window(connection, log, days=7)
    finally:
        connection.close()
    page = report.Page("test")
    canvas = canvas_file.load_canvas(Path("canvas.yaml"))

    report.metric_section(page, window, canvas, settings_module.MetricsSettings())

    text = page.render()
    assert "10 feedback row(s) in the window: the live roc_auc needs at least 30" in text
    assert "<img" not in text


def _one_line_error(capsys, argv: list[str]) -> str:
    code = cli.main(argv)
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 1
    assert len(lines) == 1 and lines[0].startswith("error: ")
    return lines[0]


def test_a_missing_log_says_which_command_writes_it(project, capsys):
    line = _one_line_error(capsys, ["monitoring-report"])

    assert "logs/predictions.db is missing" in line
    assert "uv run poe serve" in line


def test_an_empty_log_says_to_send_traffic(project, capsys):
    write_log(Path("logs/predictions.db"), [], [])

    line = _one_line_error(capsys, ["monitoring-report"])

    assert "holds no prediction yet" in line
    assert "simulate" in line


@pytest.mark.parametrize("kind", ["text file", "other database", "old schema"])
def test_a_file_that_is_not_a_prediction_log_is_refused(project, capsys, kind):
    path = Path("logs/other.db")
    path.parent.mkdir()
    if kind == "text file":
        path.write_text("not a database at all, " * 100)
    else:
        with sqlite3.connect(path) as connection:
            columns = "(request_id TEXT, time TEXT)" if kind == "old schema" else "(x INTEGER)"
            table = "predictions" if kind == "old schema" else "runs"
            connection.execute(f"CREATE TABLE {table} {columns}")
        connection.close()

    line = _one_line_error(capsys, ["monitoring-report", "--log", str(path)])

    assert f"{path} is not a prediction log" in line
    assert not Path("reports/monitoring.html").exists()


def test_the_log_is_opened_read_only(project):
    log = write_log(Path("logs/predictions.db"), *traffic(rows=20))
    before = sorted(p.name for p in log.parent.iterdir())
    connection = report.open_log(log)
    try:
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            connection.execute("DELETE FROM predictions")
    finally:
        connection.close()

    assert sorted(p.name for p in log.parent.iterdir()) == before


def test_a_bad_time_names_the_file(project):
    predictions, feedback = traffic(rows=20)
    predictions[3]["time"] = "yesterday"
    write_log(Path("logs/predictions.db"), predictions, feedback)

    with pytest.raises(PipelineError, match=r"logs/predictions.db: a `time` is not an ISO 8601"):
        report.run()


@pytest.mark.parametrize("name", ["roc_auc", "accuracy", "f1", "precision", "recall"])
def test_the_live_metric_follows_scikit_learns_definitions(name):
    rng = np.random.default_rng(0)
    outcome = rng.random(200) < 0.4
    probability = np.round(np.clip(outcome * 0.3 + rng.random(200) * 0.7, 0, 1), 1)  # ties
    predicted = probability > 0.5
    expected = {
        "roc_auc": lambda: metrics.roc_auc_score(outcome, probability),
        "accuracy": lambda: metrics.accuracy_score(outcome, predicted),
        "f1": lambda: metrics.f1_score(outcome, predicted),
        "precision": lambda: metrics.precision_score(outcome, predicted),
        "recall": lambda: metrics.recall_score(outcome, predicted),
    }[name]()

    assert report.metric_value(name, outcome, predicted, probability) == pytest.approx(expected)


def test_undefined_metrics_are_none_or_zero_as_in_scikit_learn():
    one_class = np.array([True, True, True])
    never_predicted = np.array([False, False, False])

    assert report.metric_value("roc_auc", one_class, one_class, [0.2, 0.5, 0.9]) is None
    assert report.metric_value("precision", one_class, never_predicted, [0.1] * 3) == 0.0
    assert report.metric_value("f1", one_class, never_predicted, [0.1] * 3) == 0.0


def test_the_positive_class_comes_from_the_canvas_when_one_class_was_seen(project):
    canvas = canvas_file.load_canvas(Path("canvas.yaml"))

    assert report.positive_class(canvas, [0, 0, 0]) == 1
    assert report.positive_class(None, ["benign", "malignant"]) == "malignant"


def test_time_bins_keep_the_plots_under_sixty_bars():
    assert report.bin_size(pd.Timedelta(seconds=20)) == "1s"
    assert report.bin_size(pd.Timedelta(hours=1)) == "1min"
    assert report.bin_size(pd.Timedelta(days=7)) == "3h"
    assert report.bin_size(pd.Timedelta(days=365)) == "1D"


@pytest.mark.parametrize(
    "values",
    [[1e15, 1e15 + 0.125], [-1.7e308, 1.7e308, 1.0], [3.0, 3.0]],
    ids=["too-narrow-for-floats", "too-wide-for-floats", "one-value"],
)
def test_histogram_bins_exist_for_any_span_a_refused_row_may_carry(values):
    edges = report.bin_edges(np.array(values))

    assert len(edges) == report.HISTOGRAM_BINS + 1
    assert all(np.isfinite(edges)) and edges == sorted(edges)
