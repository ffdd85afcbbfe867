"""POST /predict exchanges, turned into log records and metrics in batches, off the request path.

A request only appends what it saw to a queue; a thread makes the records and
counts the metrics for a whole batch every INTAKE_SECONDS: done a request at a
time on the event loop, the same work cost the API two to three times more.
`drain` makes the metrics current (a scrape, a feedback, a shutdown).
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, NamedTuple

from .records import ANSWERED, format_time, prediction_records

if TYPE_CHECKING:
    from .log import PredictionLog

LOGGER = logging.getLogger("uvicorn.error")
INTAKE_SECONDS = 0.05
PREDICT = ("/predict", "POST")


class LogClock:
    """Timestamps in the log's format (records.format_time), the date part made once a second."""

    def __init__(self) -> None:
        self._second = -1
        self._prefix = ""

    def text(self, timestamp: float) -> str:
        second = int(timestamp)
        if second != self._second:
            moment = format_time(datetime.fromtimestamp(second, UTC))
            self._second, self._prefix = second, moment.partition(".")[0]
        milliseconds = min(int((timestamp - second) * 1000), 999)
        return f"{self._prefix}.{milliseconds:03d}+00:00"


class Exchange(NamedTuple):
    """One POST /predict as the middleware saw it."""

    request_id: str
    answered_at: float  # time.time() when the last byte of the answer was sent
    status: int
    seconds: float
    sent: list[bytes]  # the request body's chunks
    answered: list[bytes]  # the answer body's chunks


class Intake:
    """The queue of exchanges and the thread that records and counts them."""

    def __init__(self, log: PredictionLog, never_log: frozenset[str]) -> None:
        self.log = log
        self.never_log = never_log
        self.metrics: Any = None  # an ApiMetrics once started
        self._pending: deque[Exchange] = deque()
        self._clock = LogClock()
        self._draining = threading.Lock()
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None

    def add(self, exchange: Exchange) -> None:
        """The request path: one append (thread-safe without a lock)."""
        self._pending.append(exchange)

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="prediction-intake", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while not self._stopped.wait(INTAKE_SECONDS):
            self.drain()

    def drain(self) -> None:
        """Record and count every exchange queued so far."""
        with self._draining:
            taken = [self._pending.popleft() for _ in range(len(self._pending))]
            if taken:
                self._digest(taken)

    def _digest(self, exchanges: list[Exchange]) -> None:
        batch: list[Any] = []
        predictions: list[Any] = []
        refused = 0
        for exchange in exchanges:
            moment = self._clock.text(exchange.answered_at)
            sent, answered = b"".join(exchange.sent), b"".join(exchange.answered)
            try:
                records = prediction_records(
                    exchange.request_id, moment, exchange.status, round(exchange.seconds * 1000, 3),
                    sent, answered, self.never_log,
                )  # fmt: skip
            except Exception:  # one odd exchange must not cost the others their records
                LOGGER.exception("prediction log: recording request %s failed", exchange.request_id)
                continue
            batch.extend(records)
            if exchange.status == ANSWERED:
                predictions.extend(record.prediction for record in records)
            else:
                refused += len(records)
        self.log.submit(batch)
        self._count(exchanges, predictions, refused)

    def _count(self, exchanges: list[Exchange], predictions: list[Any], refused: int) -> None:
        """Every request of the batch, and its rows in one call (counters add up alike)."""
        if self.metrics is None:
            return
        try:
            for exchange in exchanges:
                self.metrics.observe_request(*PREDICT, exchange.status, exchange.seconds)
            if predictions or refused:
                self.metrics.observe_rows(predictions, refused)
        except Exception:  # the metrics must not stop the log
            LOGGER.exception("metrics: counting %d request(s) failed", len(exchanges))

    def close(self) -> None:
        """Stop the thread, then record what is still queued."""
        self._stopped.set()
        if self._thread is not None:
            self._thread.join()
        self.drain()
