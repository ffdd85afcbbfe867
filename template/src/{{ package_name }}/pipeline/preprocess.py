"""Stage `preprocess`: keep the chosen features and split train/test.

params.yaml's `features` names the numeric and categorical columns to keep and
the target; `split` sets the test fraction and the seed.

The split is by row identity: a row is a test row when the hash of its
values (every column of the data but the target) salted with `split.seed`
falls in the first `test_size` of the hash range. So a row's side depends on
the row alone: rows with the same values are always on the same side (a
duplicate never puts a test row into training), and adding rows (feedback,
a new data version) moves none, so the rows a model was evaluated on never
become training rows of the next one, and the gate compares a new model with
the champion on rows neither learnt from. Each class keeps about its share
on both sides (as in a random split, not exactly); every class must appear
on both.
"""

from __future__ import annotations

import hashlib
import math
import numbers
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core import files, paths
from ..core.canvas import load_canvas
from ..core.errors import PipelineError
from ..core.params import Features, Split, check_target, load_params

if TYPE_CHECKING:
    import pandas as pd


def select_columns(frame: pd.DataFrame, features: Features, params_path: Path) -> pd.DataFrame:
    """Keep the features and the target, in params order; unknown names are an error."""
    available = [str(column) for column in frame.columns]
    for key, names in (
        ("features.numeric", features.numeric),
        ("features.categorical", features.categorical),
        ("features.target", [features.target]),
    ):
        unknown = [name for name in names if name not in available]
        if unknown:
            listed = ", ".join(f"'{name}'" for name in unknown)
            raise PipelineError(
                f"{params_path}: `{key}` names {listed}, not a column of the data; "
                f"valid columns: {', '.join(available)}."
            )
    return frame[[*features.columns, features.target]]


def value_text(value: Any) -> str:
    """A value as a row's identity names it: missing as "", any number as a float (1 and
    1.0 alike: a column of whole numbers reads as floats once it has a missing value)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        try:
            return repr(float(value))
        except OverflowError:  # an integer past the float range
            return str(value)
    return str(value)


def column_texts(values: pd.Series) -> list[str]:
    """value_text of each value of a column; a column of numbers as floats at once."""
    import numpy as np
    from pandas.api.types import is_bool_dtype, is_numeric_dtype

    if is_numeric_dtype(values) and not is_bool_dtype(values):
        floats = values.to_numpy(dtype="float64", na_value=np.nan).tolist()
        return ["" if number != number else repr(number) for number in floats]  # NaN: missing
    return [value_text(value) for value in values.tolist()]


def row_identities(frame: pd.DataFrame) -> list[str]:
    """One text per row: its values, column by column."""
    if frame.columns.empty:
        return [""] * len(frame)
    columns = [column_texts(frame[column]) for column in frame.columns]
    return ["\x1f".join(values) for values in zip(*columns, strict=True)]


def in_test_split(frame: pd.DataFrame, target: str, settings: Split) -> Any:
    """True for the test rows: the seeded hash of the row's identity, as a fraction of its
    range, is below test_size."""
    import numpy as np

    salt = f"{settings.seed}\x1e".encode()
    fractions = [
        int.from_bytes(hashlib.blake2b(salt + text.encode(), digest_size=8).digest()) / 2**64
        for text in row_identities(frame.drop(columns=[target]))
    ]
    return np.asarray(fractions, dtype=float) < settings.test_size


def split(frame: pd.DataFrame, target: str, settings: Split) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Train and test rows, each row's side decided by its identity (see the module's text)."""
    labels = frame[target]
    if labels.isna().any():
        raise PipelineError(f"the target column '{target}' has missing values: fix the data.")
    counts = labels.value_counts()
    if len(counts) < 2:
        raise PipelineError(f"the target column '{target}' has a single class: nothing to learn.")
    in_test = in_test_split(frame, target, settings)
    train, test = frame[~in_test], frame[in_test]
    for name, part in (("train", train), ("test", test)):
        missing = [value for value in counts.index if value not in set(part[target])]
        if missing:
            raise PipelineError(
                f"cannot split {len(frame)} rows with test_size={settings.test_size} and "
                f"seed={settings.seed}: the {name} split holds no row of class "
                f"{', '.join(map(str, missing))} (class counts {counts.to_dict()}); add rows, "
                "or change split.test_size or split.seed in params.yaml."
            )
    return train, test


def run(
    data_path: Path = paths.INTERIM_DATA,
    params_path: Path = paths.PARAMS,
    canvas_path: Path = paths.CANVAS,
    train_path: Path = paths.TRAIN_DATA,
    test_path: Path = paths.TEST_DATA,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    params = load_params(params_path)
    canvas = load_canvas(canvas_path)
    check_target(params, canvas, params_path, canvas_path)
    frame = files.read_csv(data_path, paths.READ_STAGE_HINT)
    select_columns(frame, params.features, params_path)  # names checked before the split
    # Split the rows as read: the gate (release/gate.py) splits the same frame.
    train_rows, test_rows = split(frame, params.features.target, params.split)
    train = select_columns(train_rows, params.features, params_path)
    test = select_columns(test_rows, params.features, params_path)
    files.write_csv(train_path, train)
    files.write_csv(test_path, test)
    print(
        f"preprocess: {len(params.features.columns)} features, {len(train)} train rows -> "
        f"{train_path}, {len(test)} test rows -> {test_path}"
    )
    return train, test
