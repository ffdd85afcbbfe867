"""Where the prediction log goes: SQLite, JSON lines on stdout, or your own sink.

monitoring.yaml's `prediction_log.sink` chooses: `sqlite` (the default on a
machine or under compose), `stdout` (the default on Cloud Run and
Kubernetes) or `module:factory`, where `factory(settings)` gets the
`prediction_log` settings and returns an object with the methods of `Sink`
below. A factory must be cheap and must not connect: it runs in every server
process, and a sink that is down must not stop the API from starting (connect
in `write`, which the log retries).

Every sink answers the same questions: write a batch of rows, find a row,
record feedback on a row (UnknownPrediction or DuplicateFeedback when it
cannot), the latest rows with feedback (the live metric), delete a request's
rows (`forget-request`) and prune old ones (retention).
"""

from __future__ import annotations

import functools
import importlib
import json
import sqlite3
import sys
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TextIO

from ..core.errors import PipelineError
from .records import ANSWERED, FeedbackRecord, JsonText, PredictionRecord, format_time
from .settings import LogSettings

if TYPE_CHECKING:
    from .metrics import LiveRow

# How long a write waits for another process's lock before it fails (and is retried).
BUSY_TIMEOUT_SECONDS = 5.0
# Between two tries of switching a new file to WAL while another connection writes to it.
WAL_RETRY_SECONDS = 0.01
# Rows deleted a transaction when pruning: other processes write in between.
PRUNE_CHUNK_ROWS = 5000
# Predictions the stdout sink remembers (without their inputs) to check feedback.
RECENT_PREDICTIONS = 50_000
SINK_METHODS = ("write", "find", "add_feedback", "live_rows", "delete", "prune", "close")

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS predictions (
        request_id TEXT NOT NULL,
        row INTEGER NOT NULL,
        time TEXT NOT NULL,
        model_version TEXT,
        status INTEGER NOT NULL,
        latency_ms REAL NOT NULL,
        input TEXT,
        prediction TEXT,
        probability REAL,
        refused_rule TEXT,
        PRIMARY KEY (request_id, row)
    )""",
    "CREATE INDEX IF NOT EXISTS predictions_by_time ON predictions (time)",
    """CREATE TABLE IF NOT EXISTS feedback (
        request_id TEXT NOT NULL,
        row INTEGER NOT NULL DEFAULT 0,
        outcome TEXT NOT NULL,
        time TEXT NOT NULL,
        PRIMARY KEY (request_id, row)
    )""",
    "CREATE INDEX IF NOT EXISTS feedback_by_time ON feedback (time)",
)
COLUMNS = PredictionRecord._fields
# Rows a statement inserts: 99 x 10 values stay within any SQLite's limit of 999.
ROWS_PER_INSERT = 999 // len(COLUMNS)
LIVE_ROWS = """
    SELECT p.prediction, p.probability, f.outcome
    FROM feedback AS f JOIN predictions AS p USING (request_id, row)
    WHERE p.status = ? ORDER BY f.time DESC LIMIT ?
"""
# What to do about the SQLite errors a server meets, by their message.
HINTS = {
    "database is locked": "another connection holds a lock on it; the log retries",
    "file is not a database": "it is corrupt or not SQLite: move it away, the log starts anew",
    "disk is full": "free disk space; the log retries",
    "unable to open": "check that its folder exists and is writable",
    "readonly": "the file or its folder is read-only: set PREDICTION_LOG_PATH to a writable path",
    "disk i/o error": "the disk failed a read or write; the log retries",
}


class UnknownPrediction(LookupError):
    """No logged prediction to attach a feedback to (the API answers 404)."""


class DuplicateFeedback(Exception):
    """This row already has its feedback (the API answers 409)."""


class Sink(Protocol):
    """What the prediction log needs from where it writes."""

    name: str

    def write(self, records: Sequence[PredictionRecord]) -> None: ...

    def find(self, request_id: str, row: int) -> PredictionRecord | None: ...

    def add_feedback(self, feedback: FeedbackRecord) -> None: ...

    def live_rows(self, window: int) -> list[LiveRow]: ...

    def delete(self, request_id: str) -> int: ...

    def prune(self, older_than: datetime) -> int: ...

    def close(self) -> None: ...


# One encoder for every record: json.dumps with options builds a new one each call.
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def compact(value: Any) -> str:
    """JSON text without spaces; a row kept as sent (JsonText) is that text already."""
    return value if isinstance(value, JsonText) else _ENCODER.encode(value)


def check_feedback_target(found: PredictionRecord | None, feedback: FeedbackRecord) -> None:
    """Refuse feedback on a row never logged, or on a row that got no prediction."""
    where = f"request {feedback.request_id} row {feedback.row}"
    if found is None:
        raise UnknownPrediction(f"no prediction logged for {where}: check the X-Request-ID")
    if found.status != ANSWERED:
        raise UnknownPrediction(
            f"{where} was refused (status {found.status}): it has no prediction to give feedback on"
        )


def duplicate(feedback: FeedbackRecord) -> DuplicateFeedback:
    return DuplicateFeedback(
        f"request {feedback.request_id} row {feedback.row} already has its feedback: it is "
        "recorded once (forget-request deletes a request's records)"
    )


# --- SQLite ------------------------------------------------------------------------------


def explain(path: Path, error: BaseException) -> str:
    """One line: the file, SQLite's message, and what to do about it."""
    message = " ".join(str(error).split()) or type(error).__name__
    hint = next((text for key, text in HINTS.items() if key in message.lower()), None)
    return f"{path}: {message}" + (f" ({hint})" if hint else "")


class SinkUnavailable(OSError):
    """The sink cannot be read or written now (the log retries; /feedback answers 503)."""


def logged_json(value: Any) -> str | None:
    """A JSON column's text; None for a value JSON cannot hold (nested past the encoder's
    recursion limit): one such row must not stop the log from writing the others."""
    if value is None:
        return None
    try:
        return compact(value)
    except (RecursionError, ValueError, TypeError):
        return None


def _values(record: PredictionRecord) -> tuple[Any, ...]:
    return (
        record.request_id, record.row, record.time, record.model_version, record.status,
        record.latency_ms, logged_json(record.input), logged_json(record.prediction),
        record.probability, record.refused_rule,
    )  # fmt: skip


@functools.cache
def _insert(rows: int) -> str:
    """INSERT of `rows` rows; OR IGNORE: a batch written again after a failure stays one copy."""
    one = f"({', '.join('?' for _ in COLUMNS)})"
    return f"INSERT OR IGNORE INTO predictions ({', '.join(COLUMNS)}) VALUES " + ", ".join(
        [one] * rows
    )


# One row, for executemany: what tools writing a log of their own use (fetch_window.py).
INSERT_PREDICTION = _insert(1)


def _record(row: tuple[Any, ...]) -> PredictionRecord:
    values = dict(zip(COLUMNS, row, strict=True))
    for name in ("input", "prediction"):
        values[name] = None if values[name] is None else json.loads(values[name])
    return PredictionRecord(**values)


@contextmanager
def _transaction(connection: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """BEGIN IMMEDIATE: take the write lock first, so the busy timeout applies to it."""
    connection.execute("BEGIN IMMEDIATE")
    try:
        yield connection
    except BaseException:
        if connection.in_transaction:
            connection.rollback()
        raise
    connection.execute("COMMIT")


class SqliteSink:
    """One SQLite file (WAL mode) that every server process of a machine writes.

    WAL lets readers (the live metric, feedback checks) go on while a process
    writes, and each batch is one short transaction, so several workers share
    the file; `busy_timeout` makes a writer wait for another's lock. The
    writing thread and the request handlers use a connection each, opened on
    first use and reopened after any error: a file moved away, repaired or
    given disk space again is picked up by the next retry.
    """

    name = "sqlite"

    def __init__(self, path: Path, busy_timeout: float = BUSY_TIMEOUT_SECONDS) -> None:
        self.path = Path(path)
        self.busy_timeout = busy_timeout
        self._connections: dict[str, sqlite3.Connection] = {}
        self._locks = {"writer": threading.Lock(), "requests": threading.Lock()}

    def _open(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(
            self.path, timeout=self.busy_timeout, isolation_level=None, check_same_thread=False
        )
        try:
            self._configure(connection)
        except BaseException:
            connection.close()
            raise
        return connection

    def _configure(self, connection: sqlite3.Connection) -> None:
        """WAL, NORMAL synchronous (safe in WAL: a power cut may lose the last commits only)."""
        connection.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000)}")
        self._switch_to_wal(connection)
        connection.execute("PRAGMA synchronous = NORMAL")
        with _transaction(connection):
            for statement in SCHEMA:
                connection.execute(statement)

    def _switch_to_wal(self, connection: sqlite3.Connection) -> None:
        """PRAGMA journal_mode = WAL, tried again until the busy timeout has passed.

        SQLite's busy timeout does not cover this switch: while another connection
        writes to a file not yet in WAL mode (processes opening a new log together),
        SQLite answers "database is locked" at once rather than wait, as waiting
        could deadlock (https://sqlite.org/c3ref/busy_handler.html). The sink waits
        here as it waits for any other lock.
        """
        deadline = time.monotonic() + self.busy_timeout
        while True:
            try:
                connection.execute("PRAGMA journal_mode = WAL")
                return
            except sqlite3.OperationalError as error:
                busy = error.sqlite_errorcode & 0xFF == sqlite3.SQLITE_BUSY  # extended codes too
                if not busy or time.monotonic() > deadline:
                    raise
            time.sleep(WAL_RETRY_SECONDS)

    @contextmanager
    def _session(self, role: str) -> Iterator[sqlite3.Connection]:
        """The connection of a role ("writer" or "requests"), dropped after a failure."""
        with self._locks[role]:
            try:
                connection = self._connections.get(role) or self._open()
                self._connections[role] = connection
                yield connection
            except (sqlite3.Error, OSError) as error:
                self._drop(role)
                raise SinkUnavailable(explain(self.path, error)) from error

    def _drop(self, role: str) -> None:
        connection = self._connections.pop(role, None)
        if connection is not None:
            connection.close()

    def write(self, records: Sequence[PredictionRecord]) -> None:
        """One transaction; one INSERT of many rows at a time, not one a row (executemany).

        Python lets go of the GIL around each SQLite step: with a step a row,
        the writing thread and the event loop would hand the GIL to each
        other hundreds of times a batch, and the API's throughput pays it.
        """
        rows = [_values(record) for record in records]
        with self._session("writer") as db, _transaction(db):
            for start in range(0, len(rows), ROWS_PER_INSERT):
                chunk = rows[start : start + ROWS_PER_INSERT]
                db.execute(_insert(len(chunk)), [value for row in chunk for value in row])

    def find(self, request_id: str, row: int) -> PredictionRecord | None:
        with self._session("requests") as db:
            found = db.execute(
                f"SELECT {', '.join(COLUMNS)} FROM predictions WHERE request_id = ? AND row = ?",
                (request_id, row),
            ).fetchone()
        return None if found is None else _record(found)

    def add_feedback(self, feedback: FeedbackRecord) -> None:
        with self._session("requests") as db, _transaction(db):
            status = db.execute(
                "SELECT status FROM predictions WHERE request_id = ? AND row = ?",
                (feedback.request_id, feedback.row),
            ).fetchone()
            found = None if status is None else _stub(feedback, status[0])
            check_feedback_target(found, feedback)
            try:
                db.execute(
                    "INSERT INTO feedback (request_id, row, outcome, time) VALUES (?, ?, ?, ?)",
                    (feedback.request_id, feedback.row, compact(feedback.outcome), feedback.time),
                )
            except sqlite3.IntegrityError:
                raise duplicate(feedback) from None

    def live_rows(self, window: int) -> list[LiveRow]:
        with self._session("requests") as db:
            found = db.execute(LIVE_ROWS, (ANSWERED, window)).fetchall()
        return [
            (json.loads(prediction), probability, json.loads(outcome))
            for prediction, probability, outcome in reversed(found)
        ]

    def delete(self, request_id: str) -> int:
        with self._session("requests") as db, _transaction(db):
            deleted = 0
            for table in ("predictions", "feedback"):
                cursor = db.execute(f"DELETE FROM {table} WHERE request_id = ?", (request_id,))
                deleted += cursor.rowcount
        return deleted

    def prune(self, older_than: datetime) -> int:
        """Delete the records older than a moment, a chunk a transaction."""
        cutoff = format_time(older_than)
        deleted = 0
        for table in ("predictions", "feedback"):
            while True:
                with self._session("writer") as db, _transaction(db):
                    cursor = db.execute(
                        f"DELETE FROM {table} WHERE rowid IN "
                        f"(SELECT rowid FROM {table} WHERE time < ? LIMIT ?)",
                        (cutoff, PRUNE_CHUNK_ROWS),
                    )
                deleted += cursor.rowcount
                if cursor.rowcount < PRUNE_CHUNK_ROWS:
                    break
        return deleted

    def close(self) -> None:
        for role, lock in self._locks.items():
            with lock:
                self._drop(role)


def _stub(feedback: FeedbackRecord, status: int) -> PredictionRecord:
    """Just enough of a logged row to check a feedback against (its status)."""
    return PredictionRecord(
        feedback.request_id, feedback.row, "", None, status, 0.0, None, None, None, None
    )


# --- stdout ------------------------------------------------------------------------------


class StdoutSink:
    """One JSON line a record on stdout, for the log collector of Cloud Run or Kubernetes.

    Lines are `{"type": "prediction", ...}` and `{"type": "feedback", ...}`
    with the fields of records.py. The platform keeps and queries them: on
    Google Cloud, a Cloud Logging sink routes the lines to BigQuery, where
    predictions and feedback are joined by (request_id, row) for the report
    and for retraining (docs/monitoring.md); elsewhere, the collector of the
    cluster (Fluent Bit, Vector...) does the same. Retention is the store's
    setting there: `prune` does nothing.

    Feedback is checked against the last RECENT_PREDICTIONS predictions this
    process answered, held in memory without their inputs. With several
    replicas (or workers), feedback for a row another replica answered gets
    404 with a message saying so: send it to the log store instead, or give
    each replica sticky sessions.
    """

    name = "stdout"

    def __init__(self, stream: TextIO | None = None, remembered: int = RECENT_PREDICTIONS) -> None:
        self._stream = stream  # None: sys.stdout at each write (tests swap it)
        self._remembered = remembered
        self._recent: OrderedDict[tuple[str, int], PredictionRecord] = OrderedDict()
        self._with_feedback: set[tuple[str, int]] = set()
        self._joined: deque[LiveRow] = deque(maxlen=remembered)
        self._lock = threading.Lock()

    def _emit(self, lines: list[dict[str, Any]]) -> None:
        stream = self._stream or sys.stdout
        stream.write("".join(_line(line) + "\n" for line in lines))
        stream.flush()

    def write(self, records: Sequence[PredictionRecord]) -> None:
        with self._lock:
            self._emit([_as_json(record) for record in records])
            for record in records:
                self._remember(record._replace(input=None))

    def _remember(self, record: PredictionRecord) -> None:
        key = (record.request_id, record.row)
        self._recent[key] = record
        while len(self._recent) > self._remembered:
            forgotten, _ = self._recent.popitem(last=False)
            self._with_feedback.discard(forgotten)

    def find(self, request_id: str, row: int) -> PredictionRecord | None:
        with self._lock:
            return self._recent.get((request_id, row))

    def add_feedback(self, feedback: FeedbackRecord) -> None:
        key = (feedback.request_id, feedback.row)
        with self._lock:
            found = self._recent.get(key)
            if found is None:
                raise UnknownPrediction(
                    f"request {feedback.request_id} row {feedback.row} is not among the "
                    f"predictions this replica answered recently (the last {self._remembered}): "
                    "with the stdout log, feedback must reach the replica that answered, or be "
                    "joined in the log store"
                )
            check_feedback_target(found, feedback)
            if key in self._with_feedback:
                raise duplicate(feedback)
            self._emit([feedback.as_json()])
            self._with_feedback.add(key)
            self._joined.append((found.prediction, found.probability, feedback.outcome))

    def live_rows(self, window: int) -> list[LiveRow]:
        with self._lock:
            return list(self._joined)[-window:]

    def delete(self, request_id: str) -> int:
        """Forget the request in memory; its lines are the log store's to delete."""
        with self._lock:
            keys = [key for key in self._recent if key[0] == request_id]
            for key in keys:
                del self._recent[key]
                self._with_feedback.discard(key)
        return len(keys)

    def prune(self, older_than: datetime) -> int:
        return 0

    def close(self) -> None:
        with self._lock:
            (self._stream or sys.stdout).flush()


def _as_json(record: PredictionRecord) -> dict[str, Any]:
    """The record's line; its input null when it is no longer JSON (see logged_json)."""
    try:
        return record.as_json()
    except ValueError:
        return record._replace(input=None).as_json()


def _line(fields: dict[str, Any]) -> str:
    """One JSON line; the input left out (null) when JSON cannot hold it (see logged_json)."""
    try:
        return compact(fields)
    except (RecursionError, ValueError, TypeError):
        return compact({**fields, "input": None})


# --- choosing ----------------------------------------------------------------------------


def custom_sink(spec: str, settings: LogSettings) -> Sink:
    """The sink a `module:factory` setting names, checked to have every method."""
    module_name, _, factory_name = spec.partition(":")
    key = "monitoring.yaml: `prediction_log.sink`"
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise PipelineError(
            f"{key} names module {module_name!r}, which fails to import: {error}"
        ) from None
    factory = getattr(module, factory_name, None)
    if not callable(factory):
        raise PipelineError(f"{key}: module {module_name!r} has no function {factory_name!r}.")
    sink = factory(settings)
    missing = [name for name in SINK_METHODS if not callable(getattr(sink, name, None))]
    if missing:
        raise PipelineError(
            f"{key}: {spec} returned a sink without {', '.join(missing)} (see sinks.Sink)."
        )
    if not isinstance(getattr(sink, "name", None), str):
        sink.name = spec
    return sink


def open_sink(settings: LogSettings) -> Sink:
    """The sink the settings choose (`auto` resolved: stdout on a platform, else sqlite)."""
    chosen = settings.chosen_sink
    if chosen == "sqlite":
        return SqliteSink(settings.path)
    if chosen == "stdout":
        return StdoutSink()
    return custom_sink(chosen, settings)
