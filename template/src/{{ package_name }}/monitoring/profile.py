"""Stage `profile`: what the training data looked like, for the drift check to compare with.

Writes models/reference-profile.json from data/processed/train.csv: per feature of
params.yaml, for numbers the inner edges of 10 quantile bins (the outer bins are open, so any
served value falls in one) with their counts and shares, the mean and standard deviation and
a seeded sample of up to 5,000 values for the two-sample test; for categories their counts
and shares; for both the missing rate. DVC versions it with the model, `evaluate
--with-model` logs it with the run and `export` copies it into the model folder.
"""

from __future__ import annotations

import math
import numbers
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core import files, paths
from ..core.canvas import Canvas, load_canvas
from ..core.errors import PipelineError
from ..core.params import Params, load_params
from .drift_stats import bin_counts, quantile_edges, shares_of

if TYPE_CHECKING:
    import pandas as pd

REFERENCE_PROFILE = Path("models/reference-profile.json")
FORMAT = 1
BINS = 10
SAMPLE_ROWS = 5_000
SEED = 0
PIPELINE_HINT = "run the earlier stages first (`uv run poe pipeline`)"


def category_key(value: Any) -> str | None:
    """A category as the profile and the drift check name it; None when missing.

    Categories coded as numbers read as floats from a CSV file with missing
    values (1.0) and as integers from JSON (1): both are "1".
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if hasattr(value, "item"):  # a numpy scalar
        return category_key(value.item())
    return str(value)


def number_of(value: Any) -> float:
    """One value as a float: NaN when it is not a number; an integer past the float range
    (JSON has no limit: 1 followed by 400 zeros) as an infinity of its sign."""
    if isinstance(value, bool):
        return math.nan
    if isinstance(value, int):
        try:
            return float(value)
        except OverflowError:
            return math.inf if value > 0 else -math.inf
    if isinstance(value, numbers.Real | str):
        try:
            return float(value)
        except ValueError:  # a text that is not a number
            return math.nan
    return math.nan


def numbers_of(values: pd.Series) -> pd.Series:
    """A column as floats; what is not a number counts as missing.

    Logged inputs hold what callers sent, refused rows included: any JSON
    value, such as an integer no float can hold, which pandas cannot convert.
    """
    import pandas as pd

    try:
        return pd.to_numeric(values, errors="coerce").astype("float64")
    except (OverflowError, TypeError, ValueError):
        return pd.Series([number_of(value) for value in values], index=values.index, dtype=float)


def _missing(rows: int, missing: int) -> dict[str, Any]:
    return {"rows": rows, "missing": missing, "missing_rate": missing / rows if rows else 0.0}


def profile_numeric(name: str, column_type: str, values: pd.Series) -> dict[str, Any]:
    """Quantile bins with their counts and shares, mean, std and a seeded sample of values."""
    import numpy as np

    numbers = numbers_of(values).to_numpy()
    present = numbers[~np.isnan(numbers)]
    if present.size == 0:
        raise PipelineError(f"the training data has no value of '{name}': nothing to profile.")
    edges = quantile_edges(present, BINS)
    counts = bin_counts(present, edges)
    sample = present
    if present.size > SAMPLE_ROWS:
        sample = np.random.default_rng(SEED).choice(present, SAMPLE_ROWS, replace=False)
    return {
        "kind": "numeric",
        "type": column_type,
        **_missing(len(numbers), len(numbers) - present.size),
        "mean": float(present.mean()),
        "std": float(present.std()),
        "edges": edges.tolist(),
        "counts": counts.tolist(),
        "shares": shares_of(counts).tolist(),
        "sample": sample.tolist(),
    }


def profile_categorical(column_type: str, values: pd.Series) -> dict[str, Any]:
    """The count and share of each category, most frequent first."""
    keys = values.map(category_key, na_action="ignore")
    counts = {str(k): int(v) for k, v in keys.value_counts(dropna=True).items()}
    present = sum(counts.values())
    return {
        "kind": "categorical",
        "type": column_type,
        **_missing(len(values), len(values) - present),
        "counts": counts,
        "shares": {name: count / present for name, count in counts.items()},
    }


def build_profile(
    frame: pd.DataFrame, params: Params, canvas: Canvas, data_version: str
) -> dict[str, Any]:
    """The reference profile of a training frame (every feature of params.yaml)."""
    features = params.features
    absent = [name for name in features.columns if name not in frame.columns]
    if absent:
        raise PipelineError(f"the training data lacks {', '.join(absent)}: rerun `dvc repro`.")
    rules = canvas.data_contract.columns
    profiled: dict[str, Any] = {}
    for name in features.numeric:
        column_type = rules[name].type if name in rules else "float"
        profiled[name] = profile_numeric(name, column_type, frame[name])
    for name in features.categorical:
        column_type = rules[name].type if name in rules else "category"
        profiled[name] = profile_categorical(column_type, frame[name])
    return {
        "format": FORMAT,
        "data_version": data_version,
        "rows": len(frame),
        "bins": BINS,
        "sample_rows": SAMPLE_ROWS,
        "seed": SEED,
        "features": profiled,
    }


def run(
    params_path: Path = paths.PARAMS,
    canvas_path: Path = paths.CANVAS,
    train_path: Path = paths.TRAIN_DATA,
    raw_path: Path = paths.RAW_DATA,
    out: Path = REFERENCE_PROFILE,
) -> Path:
    params = load_params(params_path)
    canvas = load_canvas(canvas_path)
    frame = files.read_csv(train_path, PIPELINE_HINT)
    data_version = files.md5_of(raw_path) if raw_path.is_file() else "missing"
    profile = build_profile(frame, params, canvas, data_version)
    files.write_json(out, profile)
    print(f"profile: {len(profile['features'])} features of {len(frame)} training rows -> {out}")
    return out
