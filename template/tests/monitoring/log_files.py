"""Prediction logs written directly, for the tests that need no server.

The tables are those of docs/monitoring.md, as the
SQLite sink creates them; a test says which rows were answered, refused or
given feedback, and what the model said.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ..package import load

sinks = load("monitoring.sinks")

START = datetime(2025, 6, 1, tzinfo=UTC)


@dataclass
class Row:
    """One logged row; `outcome` set: feedback came for it."""

    input: dict[str, Any] | None
    prediction: Any = 1
    probability: float | None = 0.9
    status: int = 200
    outcome: Any = None
    version: str = "1"
    refused_rule: str | None = None


def moment(seconds: float) -> str:
    return (START + timedelta(seconds=seconds)).isoformat(timespec="milliseconds")


def write_log(path: Path, rows: list[Row]) -> Path:
    """The log holding these rows (and only them): one request per row, a second apart;
    feedback a tenth of a second after its answer."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    connection = sqlite3.connect(path)
    try:
        for statement in sinks.SCHEMA:
            connection.execute(statement)
        for number, row in enumerate(rows):
            request_id = f"{number:032x}"
            answered = row.status == 200
            connection.execute(
                sinks.INSERT_PREDICTION,
                (
                    request_id, 0, moment(number), row.version if answered else None,
                    row.status, 5.0, None if row.input is None else json.dumps(row.input),
                    json.dumps(row.prediction) if answered else None,
                    row.probability if answered else None,
                    None if answered else (row.refused_rule or "radius: too large"),
                ),
            )  # fmt: skip
            if row.outcome is not None:
                connection.execute(
                    "INSERT INTO feedback (request_id, row, outcome, time) VALUES (?, 0, ?, ?)",
                    (request_id, json.dumps(row.outcome), moment(number + 0.1)),
                )
        connection.commit()
    finally:
        connection.close()
    return path


def scored(outcomes: list[int], right: bool, version: str = "1") -> list[Row]:
    """Answered rows with feedback whose probabilities rank the outcomes right (AUC 1) or wrong."""
    rows = []
    for number, outcome in enumerate(outcomes):
        probability = 0.6 + 0.3 * (number % 10) / 10 if outcome == int(right) else 0.1
        rows.append(
            Row(
                input={"radius": 12.0 + number % 7, "clinic": "north"},
                prediction=int(probability >= 0.5),
                probability=probability,
                outcome=outcome,
                version=version,
            )
        )
    return rows
