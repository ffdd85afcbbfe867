"""Every reader of the prediction log takes any row the log can hold.

A refused row is logged as the caller sent it: any JSON (numbers past the
float range, NaN and infinities, lone surrogates, deep nesting), or no input.
With such rows beside ordinary traffic, `monitoring-report`, `drift`,
`performance` and `feedback-to-data` must each do their job: a report, a
verdict, new data; never a traceback. The log is written from the schema
(log_files.py), as the API's SQLite sink writes it.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import example, given, settings
from hypothesis import strategies as st

from ..conftest import make_frame
from ..package import load
from ..serving.bodies import JSON_VALUES, PROPERTY, ROWS
from .log_files import Row, moment, write_log

canvas_file = load("core.canvas")
params_file = load("core.params")
drift = load("monitoring.drift")
feedback_data = load("monitoring.feedback_data")
performance = load("monitoring.performance")
profile = load("monitoring.profile")
report = load("monitoring.report")
sinks = load("monitoring.sinks")

LOG = Path("logs/predictions.db")
DATA = Path("data/raw/dataset.csv")
ANSWERED_ROWS = 40
# What a refused row may hold as input: any JSON text (as the sink writes it,
# or as a client sent it), no input, text that is not JSON.
DEEP = "[" * 5000 + "]" * 5000
INPUTS = st.one_of(
    st.none(),
    ROWS.map(json.dumps),
    JSON_VALUES.map(json.dumps),
    st.sampled_from([DEEP, "{not json", '{"radius": 1' + "0" * 400 + "}"]),
)
REFUSED_ROWS = st.lists(
    # A rule is the API's text: SQLite holds no lone surrogate, the API writes none.
    st.tuples(st.sampled_from([400, 413, 415, 422]), INPUTS, st.none() | st.text(max_size=30)),
    min_size=1,
    max_size=8,
)


@pytest.fixture
def readers_project(project: Any) -> Any:
    """The tests' project with the training split, its reference profile, and settings that
    let drift and performance judge a window of ANSWERED_ROWS rows."""
    frame = make_frame(200, seed=3)
    Path("data/processed").mkdir(parents=True)
    frame.to_csv("data/processed/train.csv", index=False)
    reference = profile.build_profile(frame, *settings_of(project), "data-v1")
    Path("models").mkdir()
    Path("models/reference-profile.json").write_text(json.dumps(reference))
    windows = {"min_rows": 10, "window_rows": 1000}
    monitoring = {"drift": windows, "performance": {"min_rows": 10, "window": 1000}}
    (project.root / "monitoring.yaml").write_text(yaml.safe_dump(monitoring))
    shutil.copy(DATA, "original.csv")
    return project


def settings_of(project: Any) -> tuple[Any, Any]:
    return params_file.load_params(project.root / "params.yaml"), canvas_file.load_canvas(
        project.root / "canvas.yaml"
    )


def answered_traffic() -> list[Row]:
    """Rows of the training distribution, answered right, each with its true outcome."""
    rows = []
    for record in make_frame(ANSWERED_ROWS, seed=4).to_dict(orient="records"):
        outcome = int(record.pop("malignant"))
        sent = {str(name): value for name, value in record.items() if value == value}  # no NaN
        rows.append(Row(sent, prediction=outcome, probability=0.2 + 0.6 * outcome, outcome=outcome))
    return rows


def add_refused(path: Path, refused: list[tuple[int, str | None, str | None]]) -> None:
    """Refused rows after the answered ones, as the sink writes them (input: JSON text)."""
    connection = sqlite3.connect(path)
    try:
        for number, (status, sent, rule) in enumerate(refused, start=ANSWERED_ROWS):
            values = (
                f"{number:032x}",
                0,
                moment(number),
                None,
                status,
                3.0,
                sent,
                None,
                None,
                rule,
            )
            connection.execute(sinks.INSERT_PREDICTION, values)
        connection.commit()
    finally:
        connection.close()


# Each example runs the four commands (plots included: seconds): few examples, each with
# several rows; the one below holds every case the issue tracker has seen.
@settings(PROPERTY, max_examples=4)
@given(refused=REFUSED_ROWS)
@example(
    refused=[
        (422, json.dumps({"radius": 1.7e308, "area": -1.7e308}), "radius: too large"),
        (422, '{"radius": 1' + "0" * 400 + "}", None),
        (422, '{"texture": Infinity, "smoothness": NaN, "clinic": "\\ud800"}', "x"),
        (400, DEEP, "body: JSON decode error"),
        (415, None, "body: send the rows as JSON"),
    ]
)
def test_each_reader_takes_any_refused_row(readers_project, refused):
    shutil.copy("original.csv", DATA)
    Path("data/raw/feedback-ids.txt").unlink(missing_ok=True)
    add_refused(write_log(LOG, answered_traffic()), refused)

    assert report.run(log=LOG).is_file()
    try:
        verdict = drift.run()
    except drift.DriftFound:  # a verdict too
        verdict = json.loads(Path("reports/drift.json").read_text())
    assert verdict["window"]["rows"] == ANSWERED_ROWS + len(refused)
    with contextlib.suppress(performance.PerformanceDropped):  # a verdict too
        performance.run()
    assert json.loads(Path("reports/performance.json").read_text())["rows"] == ANSWERED_ROWS
    assert feedback_data.run(track=False)["added"] == ANSWERED_ROWS
