"""Stage `preprocess`: keep the chosen features and split train/test.

params.yaml's `features` names the numeric and categorical columns to keep and
the target; `split` sets the test fraction and the seed. The split is
stratified on the target so both parts keep its class balance.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ..core import files, paths
from ..core.canvas import load_canvas
from ..core.commands import Command
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


def split(frame: pd.DataFrame, target: str, settings: Split) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Stratified train/test split."""
    from sklearn.model_selection import train_test_split

    labels = frame[target]
    if labels.isna().any():
        raise PipelineError(f"the target column '{target}' has missing values: fix the data.")
    counts = labels.value_counts()
    if len(counts) < 2:
        raise PipelineError(f"the target column '{target}' has a single class: nothing to learn.")
    try:
        train, test = train_test_split(
            frame, test_size=settings.test_size, random_state=settings.seed, stratify=labels
        )
    except ValueError as error:
        raise PipelineError(
            f"cannot split {len(frame)} rows with test_size={settings.test_size} "
            f"(class counts {counts.to_dict()}): {error}"
        ) from None
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
    selected = select_columns(frame, params.features, params_path)
    train, test = split(selected, params.features.target, params.split)
    files.write_csv(train_path, train)
    files.write_csv(test_path, test)
    print(
        f"preprocess: {len(params.features.columns)} features, {len(train)} train rows -> "
        f"{train_path}, {len(test)} test rows -> {test_path}"
    )
    return train, test


COMMAND = Command("preprocess", "select features and split train/test", run)
