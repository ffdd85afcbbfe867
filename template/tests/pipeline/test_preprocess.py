"""The split by row identity: a row's side depends on its values and the seed alone, so no
evaluation row ever reaches a training set, however the data grows."""

from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ..conftest import make_frame
from ..package import PipelineError, load

params_file = load("core.params")
preprocess = load("pipeline.preprocess")
read = load("pipeline.read")

TARGET = "malignant"
SPLIT = params_file.Split(test_size=0.25, seed=0)


def inputs(frame: pd.DataFrame) -> set[tuple[str, ...]]:
    """The rows' values but the target."""
    return {tuple(row) for row in frame.drop(columns=[TARGET]).astype(str).to_numpy().tolist()}


def test_the_split_keeps_the_chosen_columns_and_about_the_test_share(project):
    project.set("params", "features.numeric", ["radius", "area"])
    read.run()

    train, test = preprocess.run()

    assert len(train) + len(test) == 80
    assert 0.15 <= len(test) / 80 <= 0.35  # test_size 0.25, row by row
    assert set(train[TARGET]) == set(test[TARGET]) == {0, 1}
    expected = ["radius", "area", "clinic", TARGET]
    assert list(pd.read_csv(Path("data/processed/train.csv")).columns) == expected
    assert list(pd.read_csv(Path("data/processed/test.csv")).columns) == expected


def test_the_split_is_reproducible(project):
    read.run()
    first, _ = preprocess.run()
    second, _ = preprocess.run()

    assert first.index.tolist() == second.index.tolist()


def test_the_seed_chooses_the_split():
    frame = make_frame(200)

    _, first = preprocess.split(frame, TARGET, SPLIT)
    _, other = preprocess.split(frame, TARGET, params_file.Split(test_size=0.25, seed=1))

    assert first.index.tolist() != other.index.tolist()


def test_rows_with_the_same_inputs_are_on_the_same_side():
    frame = make_frame(80)
    copies = frame.copy()
    copies[TARGET] = 1 - copies[TARGET]  # the same inputs, told another outcome
    grown = pd.concat([frame, frame, copies], ignore_index=True)

    train, test = preprocess.split(grown, TARGET, SPLIT)

    assert not inputs(train) & inputs(test)


def test_a_number_is_the_same_row_whether_read_as_an_integer_or_a_float():
    frame = make_frame(40)
    frame["visits"] = [n % 3 for n in range(40)]  # integers
    as_floats = frame.assign(visits=frame["visits"].astype(float))

    assert preprocess.row_identities(frame) == preprocess.row_identities(as_floats)


def test_a_class_missing_from_one_side_is_a_clear_error():
    frame = make_frame(80)
    frame.loc[0, TARGET] = 2  # one row of a third class: it cannot be on both sides

    with pytest.raises(PipelineError, match=r"split holds no row of class 2.*split.seed"):
        preprocess.split(frame, TARGET, SPLIT)


def test_the_gate_judges_on_the_rows_of_the_test_split(project):
    gate = pytest.importorskip(f"{preprocess.__name__.split('.')[0]}.release.gate")
    frame = make_frame(80)
    frame.insert(0, "batch", [n % 5 for n in range(80)])  # a column the model does not use
    project.write_data(frame)
    read.run()
    _, test = preprocess.run()
    params = params_file.load_params(Path("params.yaml"))

    judged = gate.test_rows(Path("data/interim/dataset.csv"), params)

    assert judged.index.tolist() == test.index.tolist()


# New rows: new inputs, copies of rows already there, and rows with the inputs of
# one already there but another outcome (feedback that disagrees).
NEW_ROWS = st.lists(
    st.tuples(
        st.sampled_from(["new", "copy", "other outcome"]),
        st.integers(min_value=0, max_value=79),
        st.floats(min_value=5.0, max_value=40.0, allow_nan=False),
    ),
    max_size=60,
)


@settings(max_examples=50, deadline=None, derandomize=True)
@given(new_rows=NEW_ROWS)
def test_no_row_of_a_test_split_ever_reaches_a_training_set(new_rows):
    """However feedback grows the data, the test rows of each version stay test rows (the
    champion was judged on them), and no test row's inputs are among the training rows."""
    frame = make_frame(80)
    before_train, before_test = preprocess.split(frame, TARGET, SPLIT)
    added = []
    for kind, position, radius in new_rows:
        row = frame.iloc[position].to_dict()
        if kind == "new":
            row["radius"] = radius
        elif kind == "other outcome":
            row[TARGET] = 1 - row[TARGET]
        added.append(row)
    grown = pd.concat([frame, pd.DataFrame(added, columns=frame.columns)], ignore_index=True)

    try:
        train, test = preprocess.split(grown, TARGET, SPLIT)
    except PipelineError:  # not both classes on each side: nothing is trained
        return

    assert not inputs(train) & inputs(test)
    assert set(before_test.index) <= set(test.index)
    assert set(before_train.index) <= set(train.index)
