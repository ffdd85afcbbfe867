import json
from pathlib import Path

import numpy as np
import pytest

from ..package import PipelineError, load

read = load("pipeline.read")
validate = load("pipeline.validate")
canvas_file = load("core.canvas")


def test_valid_data_passes_and_writes_the_report(project):
    read.run()

    report = validate.run()

    assert report["passed"] is True
    assert json.loads(Path("reports/validation.json").read_text())["rows"] == 80


def test_check_frame_finds_nothing_in_valid_data(tiny_frame, project):
    contract = canvas_file.load_canvas(Path("canvas.yaml")).data_contract

    assert validate.check_frame(tiny_frame, contract) == []


def _out_of_range(frame):
    frame.loc[3, "radius"] = 99.5
    frame.loc[7, "radius"] = 1.25


def _unknown_category(frame):
    frame.loc[0, "clinic"] = "mars"


def _too_many_missing(frame):
    frame.loc[10:20, "smoothness"] = np.nan


def _text_in_numbers(frame):
    frame["area"] = frame["area"].astype(object)
    frame.loc[8, "area"] = "unknown"


def _missing_column(frame):
    del frame["texture"]


def _fractional_target(frame):
    frame["malignant"] = frame["malignant"].astype(float)
    frame.loc[2, "malignant"] = 0.5


@pytest.mark.parametrize(
    ("break_data", "expected"),
    [
        (_out_of_range, ["column 'radius'", "`max: 40`", "line 5 = 99.5", "`min: 5`", "line 9"]),
        (_unknown_category, ["column 'clinic'", "allowed", "line 2 = 'mars'"]),
        (_too_many_missing, ["column 'smoothness'", "max_missing: 0.05", "line 12 = missing"]),
        (_text_in_numbers, ["column 'area'", "type: float", "line 10 = 'unknown'"]),
        (_missing_column, ["column 'texture'", "`present`", "found: radius"]),
        (_fractional_target, ["column 'malignant'", "type: int", "line 4 = 0.5"]),
    ],
)
def test_violation_names_column_rule_and_rows(project, tiny_frame, break_data, expected):
    break_data(tiny_frame)
    project.write_data(tiny_frame, "data/interim/dataset.csv")

    with pytest.raises(PipelineError) as caught:
        validate.run()

    message = str(caught.value)
    for fragment in expected:
        assert fragment in message
    assert not Path("reports/validation.json").exists()


def test_too_few_rows(project, tiny_frame):
    project.write_data(tiny_frame.head(5), "data/interim/dataset.csv")

    with pytest.raises(PipelineError, match="min_rows: 20"):
        validate.run()


def test_failure_removes_a_stale_report(project, tiny_frame):
    read.run()
    validate.run()
    _unknown_category(tiny_frame)
    project.write_data(tiny_frame, "data/interim/dataset.csv")

    with pytest.raises(PipelineError):
        validate.run()
    assert not Path("reports/validation.json").exists()
