"""The feedback of the prediction log joined to the answered rows it is about.

Read by `performance` (the latest rows) and `feedback-to-data` (all of them),
from the SQLite log opened read-only: both run while the API writes it.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core.errors import PipelineError
from .records import ANSWERED, loads
from .report import open_log

FEEDBACK_HINT = (
    "callers send the true outcomes with POST /feedback (`uv run poe simulate` sends some)"
)
JOINED = """
    SELECT f.request_id, f.row, f.time, p.time, p.model_version, p.prediction, p.probability,
           f.outcome, {input}
    FROM feedback AS f JOIN predictions AS p USING (request_id, row)
    WHERE p.status = ?
    ORDER BY f.time DESC, f.rowid DESC
"""


@dataclass(frozen=True)
class FeedbackRow:
    """One answered row with its true outcome."""

    request_id: str
    row: int
    feedback_time: str
    predicted_at: str
    model_version: str | None
    prediction: Any
    probability: float | None
    outcome: Any
    input: dict[str, Any] | None  # None when not read (performance needs no input)

    @property
    def key(self) -> str:
        """`<request id>:<row>`: names the row in data/raw/feedback-ids.txt."""
        return f"{self.request_id}:{self.row}"


def _decoded(text: Any, path: Path, column: str) -> Any:
    if text is None:
        return None
    try:
        return loads(text)
    except (TypeError, ValueError):
        shown = text[:80] + "..." if isinstance(text, str) and len(text) > 80 else text
        raise PipelineError(f"{path}: a `{column}` of the log is not JSON ({shown!r}).") from None


def read_feedback(path: Path, last: int | None = None, inputs: bool = False) -> list[FeedbackRow]:
    """The answered rows with feedback, oldest feedback first: the last `last` (all when None)."""
    connection = open_log(path)
    try:
        if not connection.execute("SELECT 1 FROM sqlite_master WHERE name = 'feedback'").fetchone():
            return []
        sql = JOINED.format(input="p.input" if inputs else "NULL")
        arguments: list[Any] = [ANSWERED]
        if last is not None:
            sql += " LIMIT ?"
            arguments.append(last)
        found = connection.execute(sql, arguments).fetchall()
    except sqlite3.DatabaseError as error:
        raise PipelineError(f"{path} cannot be read (SQLite says: {error}).") from None
    finally:
        connection.close()
    return [_row(values, path) for values in reversed(found)]


def _row(values: tuple[Any, ...], path: Path) -> FeedbackRow:
    request_id, row, feedback_time, predicted_at, version, prediction, probability = values[:7]
    sent = _decoded(values[8], path, "input")
    return FeedbackRow(
        str(request_id), int(row), str(feedback_time), str(predicted_at),
        None if version is None else str(version), _decoded(prediction, path, "prediction"),
        None if probability is None else float(probability), _decoded(values[7], path, "outcome"),
        sent if isinstance(sent, dict) else None,
    )  # fmt: skip
