"""Command `score`: predict every row of a CSV or Parquet file with the model folder.

    uv run <package> score data/new.csv [--output predictions.csv] [--model-dir DIR]

Each row goes through the API's own checks (schema.py); columns that are not
features (an id, the target) are kept unchecked. A file with bad rows is
refused whole, naming the first ones: nothing partial is written. The output
is the input plus `prediction`, `probability` and `model_version`.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from ..core import files
from ..core.errors import PipelineError
from .model_folder import open_model_folder
from .schema import contract_problems, feature_rows
from .settings import load_serving_settings

if TYPE_CHECKING:
    import pandas as pd

ANSWER_COLUMNS = ("prediction", "probability", "model_version")
FORMATS = (".csv", ".parquet")
NEEDS_ENGINE = "needs fastparquet or pyarrow: `uv add fastparquet`."
PROBLEMS_SHOWN = 3


def _format(path: Path, role: str) -> str:
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise PipelineError(f"{role} {path} must end in .csv or .parquet (got {suffix!r}).")
    return suffix


def read_table(path: Path) -> pd.DataFrame:
    """A CSV or Parquet file as a DataFrame, with one-line errors."""
    import pandas as pd

    if _format(path, "the input") == ".csv":
        return files.read_csv(path, "pass the file to score")
    files.require_file(path, "pass the file to score")
    try:
        return pd.read_parquet(path)
    except ImportError:
        raise PipelineError(f"reading Parquet {NEEDS_ENGINE}") from None
    except (OSError, ValueError) as error:
        raise PipelineError(f"{path} is not a readable Parquet file: {error}") from None


def write_table(path: Path, frame: pd.DataFrame) -> None:
    if _format(path, "the output") == ".csv":
        files.write_csv(path, frame)
        return
    try:
        files.write_atomically(path, lambda target: frame.to_parquet(target, index=False))
    except ImportError:
        raise PipelineError(f"writing Parquet {NEEDS_ENGINE}") from None


def position_label(path: Path) -> Callable[[int], str]:
    """How a message points at a row: its line in a CSV file (header = line 1), else its rank."""
    if path.suffix.lower() == ".csv":
        return lambda position: f"line {position + 2}"
    return lambda position: f"row {position + 1}"


def describe_problems(
    problems: list[tuple[int, str, str]], label: Callable[[int], str], limit: int = PROBLEMS_SHOWN
) -> tuple[int, str]:
    """How many rows are bad, and the first problems in file order."""
    seen: set[tuple[int, str]] = set()
    unique = []
    for position, column, message in sorted(problems, key=lambda p: p[0]):
        if (position, column) not in seen:  # a text cell is reported once, as not a number
            seen.add((position, column))
            unique.append(f"{label(position)}: {column}: {message}")
    return len({position for position, _, _ in problems}), "; ".join(unique[:limit])


def default_output(input_path: Path) -> Path:
    return input_path.with_name(f"{input_path.stem}.predictions{input_path.suffix}")


def run(
    input_path: Path, output: Path | None = None, model_dir: Path | None = None
) -> pd.DataFrame:
    settings = load_serving_settings()
    folder = open_model_folder(model_dir or settings.model_dir)
    output = output or default_output(input_path)
    _format(output, "the output")
    frame = read_table(input_path)
    if frame.empty:
        raise PipelineError(f"{input_path} has no rows to score.")
    taken = [name for name in ANSWER_COLUMNS if name in frame.columns]
    if taken:
        raise PipelineError(
            f"{input_path} already has the column(s) {', '.join(taken)} that score writes: "
            "rename or drop them."
        )
    absent = [f.name for f in folder.features if f.name not in frame.columns]
    if absent:
        raise PipelineError(
            f"{input_path} lacks the model's features {', '.join(absent)}; "
            f"found: {', '.join(map(str, frame.columns))}."
        )
    rows, problems = feature_rows(frame, folder.features)
    problems += contract_problems(rows, folder.features, settings.number_limit)
    if problems:
        count, shown = describe_problems(problems, position_label(input_path))
        raise PipelineError(
            f"{input_path} breaks the model's data contract in {count} row(s), e.g. {shown}. "
            "Nothing was written: fix or remove those rows."
        )
    model = folder.load()
    answers = model.answers(rows)
    scored = frame.copy()
    for name in ANSWER_COLUMNS:
        scored[name] = [answer[name] for answer in answers]
    write_table(output, scored)
    print(
        f"score: {len(scored)} rows scored by {folder.metadata['name']} model version "
        f"{model.version} ({model.path_name}) -> {output}"
    )
    return scored


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input_path", type=Path, metavar="INPUT", help="a .csv or .parquet file")
    parser.add_argument(
        "--output", type=Path, help="where to write (default: INPUT.predictions.<suffix>)"
    )
    parser.add_argument(
        "--model-dir", type=Path, help="model folder (default: MODEL_DIR or serving.model_dir)"
    )
