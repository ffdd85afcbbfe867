"""Feedback becomes training data: the rows with a true outcome, appended as a new DVC version.

The project's data is the tests' frame (80 rows: radius, texture, area,
smoothness, clinic, malignant); the logs are written from the schema.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from ..package import PipelineError, load
from .log_files import Row, write_log

feedback_data = load("monitoring.feedback_data")
files = load("core.files")

LOG = Path("logs/predictions.db")
DATA = Path("data/raw/dataset.csv")
KEYS = Path("data/raw/feedback-ids.txt")


def sent(radius: float, **changes: Any) -> dict[str, Any]:
    row = {"radius": radius, "texture": 20.5, "area": 610.0, "smoothness": 0.1, "clinic": "south"}
    return {name: value for name, value in {**row, **changes}.items() if value is not None}


def answered_with(outcomes: list[int]) -> list[Row]:
    return [Row(sent(20.0 + number), outcome=o) for number, o in enumerate(outcomes)]


def test_rows_with_feedback_are_appended_with_the_outcome_as_the_target(project, capsys):
    before = DATA.read_bytes()
    write_log(LOG, answered_with([1, 0, 1]))

    result = feedback_data.run(track=False)

    after = DATA.read_bytes()
    assert after.startswith(before)  # the rows already there are kept byte for byte
    data = pd.read_csv(DATA)
    assert len(data) == 80 + 3 and list(data.columns) == list(pd.read_csv(DATA, nrows=0))
    added = data.tail(3)
    assert added["radius"].tolist() == [20.0, 21.0, 22.0]
    assert added["malignant"].tolist() == [1, 0, 1]
    assert added["clinic"].tolist() == ["south"] * 3
    assert result == {
        "added": 3, "copies": 0, "md5": files.md5_of(DATA),
        "previous_md5": result["previous_md5"], "changed": True,
    }  # fmt: skip
    assert result["previous_md5"] != result["md5"]
    assert KEYS.read_text().splitlines() == [f"{n:032x}:0" for n in range(3)]
    out = capsys.readouterr().out
    assert "3 feedback rows added to data/raw/dataset.csv" in out and result["md5"] in out


def test_rows_already_added_are_skipped(project, capsys):
    write_log(LOG, answered_with([1, 0]))
    feedback_data.run(track=False)
    md5 = files.md5_of(DATA)

    assert feedback_data.run(track=False) == {
        "added": 0, "copies": 0, "md5": md5, "changed": False,
    }  # fmt: skip
    assert "no new feedback row" in capsys.readouterr().out

    write_log(LOG, answered_with([1, 0, 0]))  # one more feedback since
    assert feedback_data.run(track=False)["added"] == 1
    assert len(pd.read_csv(DATA)) == 80 + 3
    assert len(KEYS.read_text().splitlines()) == 3


def test_a_row_equal_to_one_of_the_data_or_an_earlier_one_is_not_added_again(project, capsys):
    """Replayed traffic (the test split sent again) must not pile up copies of its rows."""
    first = pd.read_csv(DATA).iloc[0].to_dict()
    outcome = int(first.pop("malignant"))
    known = {name: value for name, value in first.items() if value == value}  # NaN: left out
    write_log(
        LOG,
        [
            Row(known, outcome=outcome),  # a row of the data, its outcome the same
            Row(known, outcome=1 - outcome),  # the same inputs, another outcome: a new row
            Row(sent(20.0), outcome=1),
            Row(sent(20.0), outcome=1),  # the same feedback, another request
        ],
    )

    result = feedback_data.run(track=False)

    assert (result["added"], result["copies"]) == (2, 2)
    data = pd.read_csv(DATA)
    assert len(data) == 80 + 2
    assert data.duplicated().sum() == 0
    assert len(KEYS.read_text().splitlines()) == 4  # all four taken: none is read again
    assert "(2 equal to rows already in the data, skipped)" in capsys.readouterr().out


def test_only_copies_leave_the_data_unchanged(project):
    write_log(LOG, [Row(sent(20.0), outcome=1)])
    feedback_data.run(track=False)
    md5 = files.md5_of(DATA)
    write_log(LOG, [Row(sent(20.0), outcome=1), Row(sent(20.0), outcome=1)])  # other requests

    result = feedback_data.run(track=False)

    assert (result["added"], result["copies"], result["changed"]) == (0, 1, False)
    assert files.md5_of(DATA) == md5


def test_only_answered_rows_with_feedback_become_data(project):
    write_log(
        LOG,
        [
            Row(sent(20.0), outcome=None),  # answered, no outcome (yet)
            Row(sent(45.0), status=422),  # refused by the contract: no prediction
            Row(sent(21.0), outcome=0),
        ],
    )

    assert feedback_data.run(track=False)["added"] == 1
    assert pd.read_csv(DATA).tail(1)["radius"].tolist() == [21.0]


def test_a_value_left_out_of_one_input_is_a_missing_value(project):
    write_log(LOG, [Row(sent(20.0, texture=None), outcome=1), Row(sent(21.0), outcome=0)])

    feedback_data.run(track=False)

    added = pd.read_csv(DATA).tail(2)
    assert added["texture"].isna().tolist() == [True, False]


def test_a_never_logged_column_is_refused_and_the_data_kept(project):
    Path("monitoring.yaml").write_text(
        yaml.safe_dump({"prediction_log": {"never_log": ["texture"]}})
    )
    write_log(LOG, [Row(sent(20.0, texture=None), outcome=1)])
    before = DATA.read_bytes()

    with pytest.raises(PipelineError, match=r"never holds texture \(monitoring.yaml"):
        feedback_data.run(track=False)

    assert DATA.read_bytes() == before and not KEYS.exists()


def test_a_column_no_logged_input_holds_is_refused(project):
    frame = pd.read_csv(DATA)
    frame.insert(0, "patient_id", range(len(frame)))
    project.write_data(frame)
    write_log(LOG, answered_with([1]))

    with pytest.raises(PipelineError, match=r"no logged input of .* holds patient_id"):
        feedback_data.run(track=False)


def test_the_data_must_hold_the_target(project):
    project.write_data(pd.read_csv(DATA).drop(columns="malignant"))
    write_log(LOG, answered_with([1]))

    with pytest.raises(PipelineError, match="has no column 'malignant'"):
        feedback_data.run(track=False)


def test_a_file_without_a_final_newline_gets_one_before_the_rows(project):
    DATA.write_bytes(DATA.read_bytes().rstrip(b"\n"))
    write_log(LOG, answered_with([1]))

    feedback_data.run(track=False)

    assert len(pd.read_csv(DATA)) == 81


def test_dvc_add_records_the_new_data_version(project):
    """Runs DVC (`dvc init --no-scm`, `dvc add`: a few seconds)."""
    dvc = [sys.executable, "-m", "dvc"]
    subprocess.run([*dvc, "init", "--no-scm", "--quiet"], check=True)
    subprocess.run([*dvc, "add", "--quiet", str(DATA)], check=True)
    first = yaml.safe_load(Path("data/raw/dataset.csv.dvc").read_text())["outs"][0]["md5"]
    write_log(LOG, answered_with([1, 0]))

    result = feedback_data.run()

    recorded = yaml.safe_load(Path("data/raw/dataset.csv.dvc").read_text())["outs"][0]["md5"]
    assert recorded == result["md5"] == files.md5_of(DATA) != first
    assert Path("data/raw/feedback-ids.txt.dvc").is_file()  # the keys travel with the data
