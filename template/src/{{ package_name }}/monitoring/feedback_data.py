"""Command `feedback-to-data`: the rows whose true outcome came back become training data.

    uv run <package> feedback-to-data              # then `uv run poe pipeline` retrains on it
    uv run <package> feedback-to-data --log copy-of-production.db --no-track

Each answered row with feedback gives one row of data/raw/dataset.csv (its
logged input, the outcome as the target), appended once: the keys of the rows
taken are kept in data/raw/feedback-ids.txt, and a row equal to one already
in the data is skipped (docs/retraining.md). Then `dvc add`, unless --no-track.
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core import files, paths
from ..core.canvas import load_canvas
from ..core.errors import PipelineError
from .joined import FEEDBACK_HINT, FeedbackRow, read_feedback
from .settings import MONITORING_SETTINGS, load_monitoring_settings

if TYPE_CHECKING:
    import pandas as pd

FEEDBACK_IDS = paths.RAW_DATA.parent / "feedback-ids.txt"
DVC_TIMEOUT_SECONDS = 600


def data_columns(data: Path, target: str) -> list[str]:
    """The columns of the data file, which must hold the target."""
    import pandas as pd

    files.require_file(data, paths.SAMPLE_DATA_HINT)
    try:
        columns = [str(name) for name in pd.read_csv(data, nrows=0).columns]
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as error:
        raise PipelineError(f"{data} is not a readable CSV file ({error}).") from None
    if target not in columns:
        raise PipelineError(
            f"{data} has no column {target!r} (canvas.yaml's prediction_target): the outcomes "
            "have nowhere to go."
        )
    return columns


def check_columns(
    rows: list[FeedbackRow], columns: list[str], target: str, never_log: tuple[str, ...], log: Path
) -> None:
    """Refuse when a column of the data is in no logged input: the new rows would lack it."""
    features = [name for name in columns if name != target]
    hidden = [name for name in features if name in never_log]
    if hidden:
        raise PipelineError(
            f"the prediction log never holds {', '.join(hidden)} (monitoring.yaml "
            f"prediction_log.never_log), a column of the data: feedback rows would lack it; "
            "drop the column from the data and params.yaml, or keep training on your own data."
        )
    absent = [name for name in features if not any(name in (row.input or {}) for row in rows)]
    if absent:
        raise PipelineError(
            f"no logged input of {log} holds {', '.join(absent)}, a column of the data: the API "
            "logs what callers send (the model's features); drop the column from the data, or "
            "add the rows yourself."
        )


def feedback_frame(rows: list[FeedbackRow], columns: list[str], target: str) -> pd.DataFrame:
    """One data row per feedback row: the logged input, the outcome as the target."""
    import pandas as pd

    records = [{**(row.input or {}), target: row.outcome} for row in rows]
    return pd.DataFrame.from_records(records, columns=columns)


def csv_text(frame: pd.DataFrame) -> bytes:
    """The rows as CSV lines, without a header, as pandas writes the data files."""
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False, header=False, lineterminator="\n")
    return buffer.getvalue().encode("utf-8")


def append_rows(data: Path, lines: bytes) -> None:
    """Append CSV lines to the file in one step: the earlier rows stay byte for byte."""
    text = data.read_bytes()
    separator = b"\n" if text and not text.endswith(b"\n") else b""
    files.write_atomically(data, lambda target: target.write_bytes(text + separator + lines))


def append_keys(path: Path, rows: list[FeedbackRow]) -> None:
    known = path.read_text(encoding="utf-8") if path.is_file() else ""
    if known and not known.endswith("\n"):
        known += "\n"
    files.write_text(path, known + "".join(f"{row.key}\n" for row in rows))


def dvc_add(targets: list[Path]) -> None:
    """`dvc add` through this interpreter's DVC: the data gets its new version."""
    from ..release import external

    command = [sys.executable, "-m", "dvc", "add", "--quiet", *map(str, targets)]
    try:
        external.run(command, "dvc add", timeout=DVC_TIMEOUT_SECONDS)
    except PipelineError as error:
        raise PipelineError(
            f"{error} (the rows were added; run `uv run poe track-data` once DVC works, or pass "
            "--no-track)"
        ) from None


def without_copies(frame: pd.DataFrame, data: Path) -> Any:
    """True for the rows of `frame` equal to no row of the data file and to no earlier row
    of `frame` (values compared as the split's row identity: 1 and 1.0 alike)."""
    import pandas as pd

    from ..pipeline.preprocess import row_identities

    existing = pd.read_csv(data)[list(frame.columns)]
    seen = set(row_identities(existing))
    kept = []
    for identity in row_identities(frame):
        kept.append(identity not in seen)
        seen.add(identity)
    return pd.Series(kept, index=frame.index, dtype=bool)


def new_rows(log: Path, keys_path: Path) -> tuple[list[FeedbackRow], int]:
    """The feedback rows not yet added, and how many logged no input to use."""
    known = set(keys_path.read_text(encoding="utf-8").split()) if keys_path.is_file() else set()
    rows = [row for row in read_feedback(log, inputs=True) if row.key not in known]
    usable = [row for row in rows if row.input is not None]
    return usable, len(rows) - len(usable)


def run(
    log: Path | None = None,
    data: Path = paths.RAW_DATA,
    keys_path: Path = FEEDBACK_IDS,
    track: bool = True,
    settings_path: Path = MONITORING_SETTINGS,
    canvas_path: Path = paths.CANVAS,
) -> dict[str, Any]:
    monitoring = load_monitoring_settings(settings_path)
    log_path = log or monitoring.prediction_log.path
    target = load_canvas(canvas_path).prediction_target
    columns = data_columns(data, target)
    rows, without_input = new_rows(log_path, keys_path)
    skipped = f" ({without_input} without a logged input, skipped)" if without_input else ""
    if not rows:
        md5 = files.md5_of(data)
        print(
            f"feedback-to-data: no new feedback row in {log_path}{skipped}: {data} unchanged "
            f"(md5 {md5}); {FEEDBACK_HINT}"
        )
        return {"added": 0, "copies": 0, "md5": md5, "changed": False}
    check_columns(rows, columns, target, monitoring.prediction_log.never_log, log_path)
    before = files.md5_of(data)
    frame = feedback_frame(rows, columns, target)
    new = without_copies(frame, data)
    copies = int((~new).sum())
    if copies:
        skipped += f" ({copies} equal to rows already in the data, skipped)"
    if new.any():
        append_rows(data, csv_text(frame[new]))
    append_keys(keys_path, rows)
    if track:
        dvc_add([data, keys_path])
    md5 = files.md5_of(data)
    added = len(rows) - copies
    tracked = "new DVC version" if track else "not tracked (--no-track)"
    if added:
        print(
            f"feedback-to-data: {added} feedback rows added to {data}{skipped}: md5 {before} -> "
            f"{md5} ({tracked}); their ids in {keys_path}"
        )
    else:
        print(
            f"feedback-to-data: no new row for {data}{skipped}: unchanged (md5 {md5}); their ids "
            f"in {keys_path}"
        )
    return {
        "added": added, "copies": copies, "md5": md5, "previous_md5": before,
        "changed": md5 != before,
    }  # fmt: skip


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--log", type=Path, help="the SQLite prediction log (default: monitoring.yaml's)"
    )
    parser.add_argument(
        "--no-track", dest="track", action="store_false", help="do not run `dvc add` afterwards"
    )
