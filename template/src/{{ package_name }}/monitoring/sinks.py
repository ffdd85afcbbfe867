"""Where the prediction log goes: SQLite, JSON lines on stdout, or your own sink.

monitoring.yaml's `prediction_log.sink` chooses (docs/monitoring.md): `sqlite`,
`stdout` (Cloud Run, Kubernetes) or `module:factory`, where `factory(settings)`
returns an object with the methods of `Sink`. A factory must not connect: it
runs in every server process, and a sink that is down must not stop the API
(connect in `write`, which the log retries).
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
# Rows deleted a transaction when pruning: other processes write in between.
PRUNE_CHUNK_ROWS = 5000
# Predictions the stdout sink remembers (without their inputs) to check feedback.
RECENT_PREDICTIONS = 50_000
SINK_METHODS = ("write", "add_feedback", "live_rows", "delete", "prune", "close")

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


class SinkUnavailable(OSError):
    """The sink cannot be read or written now (the log retries; /feedback answers 503)."""


class Sink(Protocol):
    name: str

    def write(self, records: Sequence[PredictionRecord]) -> None: ...

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


def logged_json(value: Any) -> str | None:
    """A JSON column's text; None for a value JSON cannot hold (nested past the encoder's
    limit): one such row must not stop the log from writing the others."""
    try:
        return None if value is None else compact(value)
    except (RecursionError, ValueError, TypeError):
        return None


def check_feedback_target(status: int | None, feedback: FeedbackRecord) -> None:
    """Refuse feedback on a row never logged (status None), or on a row refused."""
    where = f"request {feedback.request_id} row {feedback.row}"
    if status is None:
        raise UnknownPrediction(f"no prediction logged for {where}: check the X-Request-ID")
    if status != ANSWERED:
        raise UnknownPrediction(
            f"{where} was refused (status {status}): it has no prediction to give feedback on"
        )


def duplicate(feedback: FeedbackRecord) -> DuplicateFeedback:
    return DuplicateFeedback(
        f"request {feedback.request_id} row {feedback.row} already has its feedback: it is "
        "recorded once (forget-request deletes a request's records)"
    )


def explain(path: Path, error: BaseException) -> str:
    """One line: the file, SQLite's message, and what to do about it."""
    message = " ".join(str(error).split()) or type(error).__name__
    hint = next((text for key, text in HINTS.items() if key in message.lower()), None)
    return f"{path}: {message}" + (f" ({hint})" if hint else "")


@functools.cache
def _insert(rows: int) -> str:
    """INSERT of `rows` rows; OR IGNORE: a batch written again after a failure stays one copy."""
    one = f"({', '.join('?' for _ in COLUMNS)})"
    return f"INSERT OR IGNORE INTO predictions ({', '.join(COLUMNS)}) VALUES " + ", ".join(
        [one] * rows
    )


# One row, for executemany: what tools writing a log of their own use (fetch_window.py).
INSERT_PREDICTION = _insert(1)


def _values(r: PredictionRecord) -> tuple[Any, ...]:
    return (
        r.request_id, r.row, r.time, r.model_version, r.status, r.latency_ms,
        logged_json(r.input), logged_json(r.prediction), r.probability, r.refused_rule,
    )  # fmt: skip


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
    """One SQLite file in WAL mode, shared by every server process of a machine.

    The writing thread and the request handlers use a connection each, opened
    on first use and dropped after any error: a file moved away, repaired or
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
            connection.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000)}")
            self._switch_to_wal(connection)
            connection.execute("PRAGMA synchronous = NORMAL")  # safe in WAL mode
            with _transaction(connection):
                for statement in SCHEMA:
                    connection.execute(statement)
        except BaseException:
            connection.close()
            raise
        return connection

    def _switch_to_wal(self, connection: sqlite3.Connection) -> None:
        """Retried until the busy timeout: while another connection writes to a file not yet
        in WAL mode, SQLite refuses the switch at once (https://sqlite.org/c3ref/busy_handler.html)."""
        deadline = time.monotonic() + self.busy_timeout
        while True:
            try:
                connection.execute("PRAGMA journal_mode = WAL")
                return
            except sqlite3.OperationalError as error:
                busy = error.sqlite_errorcode & 0xFF == sqlite3.SQLITE_BUSY  # extended codes too
                if not busy or time.monotonic() > deadline:
                    raise
            time.sleep(0.01)

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
        """One transaction, many rows an INSERT: with one SQLite step a row (executemany),
        the writing thread and the event loop would trade the GIL hundreds of times a batch."""
        rows = [_values(record) for record in records]
        with self._session("writer") as db, _transaction(db):
            for start in range(0, len(rows), ROWS_PER_INSERT):
                chunk = rows[start : start + ROWS_PER_INSERT]
                db.execute(_insert(len(chunk)), [value for row in chunk for value in row])

    def add_feedback(self, feedback: FeedbackRecord) -> None:
        key = (feedback.request_id, feedback.row)
        with self._session("requests") as db, _transaction(db):
            found = db.execute(
                "SELECT status FROM predictions WHERE request_id = ? AND row = ?", key
            ).fetchone()
            check_feedback_target(None if found is None else found[0], feedback)
            try:
                db.execute(
                    "INSERT INTO feedback (request_id, row, outcome, time) VALUES (?, ?, ?, ?)",
                    (*key, compact(feedback.outcome), feedback.time),
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
            return sum(
                db.execute(f"DELETE FROM {table} WHERE request_id = ?", (request_id,)).rowcount
                for table in ("predictions", "feedback")
            )

    def prune(self, older_than: datetime) -> int:
        """Delete the records older than a moment, a chunk a transaction."""
        cutoff, deleted = format_time(older_than), 0
        for table in ("predictions", "feedback"):
            chunk = PRUNE_CHUNK_ROWS
            while chunk == PRUNE_CHUNK_ROWS:
                with self._session("writer") as db, _transaction(db):
                    chunk = db.execute(
                        f"DELETE FROM {table} WHERE rowid IN "
                        f"(SELECT rowid FROM {table} WHERE time < ? LIMIT ?)",
                        (cutoff, PRUNE_CHUNK_ROWS),
                    ).rowcount
                deleted += chunk
        return deleted

    def close(self) -> None:
        for role, lock in self._locks.items():
            with lock:
                self._drop(role)


class StdoutSink:
    """One JSON line a record on stdout, for the log collector of Cloud Run or Kubernetes.

    The platform's log store keeps the lines (and their retention: `prune`
    does nothing). Feedback is checked against the last RECENT_PREDICTIONS
    rows this process answered: feedback on another replica's row gets 404
    saying so (docs/monitoring.md).
    """

    name = "stdout"

    def __init__(self, stream: TextIO | None = None, remembered: int = RECENT_PREDICTIONS) -> None:
        self._stream = stream  # None: sys.stdout at each write (tests swap it)
        self._remembered = remembered
        # (request id, row) -> (status, prediction, probability, has feedback)
        self._recent: OrderedDict[tuple[str, int], list[Any]] = OrderedDict()
        self._joined: deque[LiveRow] = deque(maxlen=remembered)
        self._lock = threading.Lock()

    def _emit(self, lines: list[str]) -> None:
        stream = self._stream or sys.stdout
        stream.write("".join(line + "\n" for line in lines))
        stream.flush()

    def write(self, records: Sequence[PredictionRecord]) -> None:
        with self._lock:
            self._emit([_line(record) for record in records])
            for r in records:
                self._recent[(r.request_id, r.row)] = [r.status, r.prediction, r.probability, False]
            while len(self._recent) > self._remembered:
                self._recent.popitem(last=False)

    def add_feedback(self, feedback: FeedbackRecord) -> None:
        with self._lock:
            found = self._recent.get((feedback.request_id, feedback.row))
            if found is None:
                raise UnknownPrediction(
                    f"request {feedback.request_id} row {feedback.row} is not among the "
                    f"predictions this replica answered recently (the last {self._remembered}): "
                    "with the stdout log, feedback must reach the replica that answered, or be "
                    "joined in the log store"
                )
            check_feedback_target(found[0], feedback)
            if found[3]:
                raise duplicate(feedback)
            self._emit([compact(feedback.as_json())])
            found[3] = True
            self._joined.append((found[1], found[2], feedback.outcome))

    def live_rows(self, window: int) -> list[LiveRow]:
        with self._lock:
            return list(self._joined)[-window:]

    def delete(self, request_id: str) -> int:
        """Forget the request in memory; its lines are the log store's to delete."""
        with self._lock:
            keys = [key for key in self._recent if key[0] == request_id]
            for key in keys:
                del self._recent[key]
        return len(keys)

    def prune(self, older_than: datetime) -> int:
        return 0

    def close(self) -> None:
        with self._lock:
            (self._stream or sys.stdout).flush()


def _line(record: PredictionRecord) -> str:
    """The record's JSON line; its input null when JSON cannot hold it (see logged_json)."""
    try:
        return compact(record.as_json())
    except (RecursionError, ValueError, TypeError):
        return compact(record._replace(input=None).as_json())


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
