"""Stage `preprocess`: keep the features params.yaml names and split train/test.

The split is by row identity (docs/experiments.md): a row's side depends on its values and the
seed alone, so rows added later move none and a model's test rows never train a later one. A
test pins the split: a change here would move the test rows of every project that updates.
"""

from __future__ import annotations

import hashlib
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


def _text(value: Any) -> str:
    """A value as a row's identity names it: missing as "", any number as a float (1 and
    1.0 alike: a column of whole numbers reads as floats once it has a missing value)."""
    if value is None or (isinstance(value, float) and value != value):  # None or NaN
        return ""
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        try:
            return repr(float(value))
        except OverflowError:  # an integer past the float range
            return str(value)
    return str(value)


def row_identities(frame: pd.DataFrame) -> list[str]:
    """One text per row: its values' texts, column by column."""
    import numpy as np
    from pandas.api.types import is_bool_dtype, is_numeric_dtype

    if frame.columns.empty:
        return [""] * len(frame)
    columns = []
    for _, values in frame.items():
        if is_numeric_dtype(values) and not is_bool_dtype(values):  # as floats, at once
            floats = values.to_numpy(dtype="float64", na_value=np.nan).tolist()
            columns.append(["" if number != number else repr(number) for number in floats])
        else:
            columns.append([_text(value) for value in values.tolist()])
    return ["\x1f".join(values) for values in zip(*columns, strict=True)]


def split(frame: pd.DataFrame, target: str, settings: Split) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Train and test rows, each row's side decided by its identity (see the module's text)."""
    import numpy as np

    labels = frame[target]
    if labels.isna().any():
        raise PipelineError(f"the target column '{target}' has missing values: fix the data.")
    counts = labels.value_counts()
    if len(counts) < 2:
        raise PipelineError(f"the target column '{target}' has a single class: nothing to learn.")
    salt = f"{settings.seed}\x1e".encode()
    hashes = [
        hashlib.blake2b(salt + text.encode(), digest_size=8).digest()
        for text in row_identities(frame.drop(columns=[target]))
    ]
    in_test = np.array([int.from_bytes(h) / 2**64 < settings.test_size for h in hashes], bool)
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
    check_target(params, load_canvas(canvas_path), params_path, canvas_path)
    frame = files.read_csv(data_path, paths.READ_STAGE_HINT)
    select_columns(frame, params.features, params_path)  # names checked before the split
    # Split the rows as read: the gate (release/gate.py) splits the same frame.
    parts = split(frame, params.features.target, params.split)
    train, test = (select_columns(rows, params.features, params_path) for rows in parts)
    files.write_csv(train_path, train)
    files.write_csv(test_path, test)
    print(
        f"preprocess: {len(params.features.columns)} features, {len(train)} train rows -> "
        f"{train_path}, {len(test)} test rows -> {test_path}"
    )
    return train, test
