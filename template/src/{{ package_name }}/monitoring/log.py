"""The prediction log: records buffered in memory, written to the sink by a thread.

A request never waits for the log nor fails because of it; a failing sink is
retried with a growing delay while the rows stay buffered; past `buffer_rows`
rows are counted as dropped, never silently lost (docs/monitoring.md).
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
from collections import deque
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from itertools import islice
from typing import TYPE_CHECKING, Any

from .records import FeedbackRecord, PredictionRecord, utc_now
from .settings import LogSettings
from .sinks import Sink, SinkUnavailable, UnknownPrediction

if TYPE_CHECKING:
    from .metrics import ApiMetrics, LiveRow

LOGGER = logging.getLogger("uvicorn.error")
# Delays between retries of a failing sink: doubled from the first to the last.
FIRST_RETRY_SECONDS = 0.1
LAST_RETRY_SECONDS = 5.0
# The longest shutdown waits for the sink before counting what is left as dropped.
CLOSE_SECONDS = 5.0
PRUNE_EVERY_SECONDS = 3600.0
# Beyond flush_seconds, the time another worker may take to queue then write a row.
OTHER_WORKERS_MARGIN = 0.1


def describe(error: BaseException) -> str:
    """An error as one line; the sinks' and the system's messages already name the problem."""
    message = " ".join(str(error).split())
    speaks_for_itself = isinstance(error, SinkUnavailable) or (
        isinstance(error, OSError) and error.errno is not None
    )
    if speaks_for_itself and message:
        return message
    return f"{type(error).__name__}: {message}" if message else type(error).__name__


class PredictionLog:
    """The buffer and the writing thread of one server process."""

    def __init__(
        self, sink: Sink, settings: LogSettings, metrics: ApiMetrics | None = None
    ) -> None:
        self.sink = sink
        self.settings = settings
        self.metrics = metrics
        self._buffer: deque[PredictionRecord] = deque()
        self._changed = threading.Condition()
        self._accepted = 0  # rows ever taken into the buffer
        self._finished = 0  # rows ever taken out of it (written, or dropped at close)
        self._written = 0
        self._dropped = 0
        self._dropping = False  # said in the server log, until a write succeeds
        self._error: str | None = None
        self._flush_wanted = False
        self._closing = False
        self._abandoned = False
        self._closed = False
        self._thread: threading.Thread | None = None
        self._next_prune = 0.0

    # --- the request side ----------------------------------------------------------------

    def submit(self, records: Sequence[PredictionRecord]) -> None:
        """Buffer records (a batch from the intake); those past the bound count as dropped."""
        if not records:
            return
        with self._changed:
            room = self.settings.buffer_rows - len(self._buffer)
            kept = records if len(records) <= room else records[: max(room, 0)]
            before = len(self._buffer)
            self._buffer.extend(kept)
            self._accepted += len(kept)
            lost = len(records) - len(kept)
            self._dropped += lost
            if before < self.settings.batch_rows <= len(self._buffer):
                self._changed.notify_all()
        if lost:
            self._count_dropped(lost)

    def _count_dropped(self, rows: int) -> None:
        """Count dropped rows; say it once, not once a request, until writing resumes."""
        if self.metrics is not None:
            self.metrics.log_dropped(rows)
        if not self._dropping:
            self._dropping = True
            LOGGER.error(
                "prediction log: the buffer of %d rows is full, dropping rows until the sink "
                "takes them (%s)", self.settings.buffer_rows, self._error or "the sink is slow",
            )  # fmt: skip

    def health(self) -> dict[str, Any]:
        """The state /health, /ready and the metrics report."""
        with self._changed:
            error = self._error
            stopped = self._thread is not None and not self._thread.is_alive() and not self._closing
            if stopped and error is None:
                error = "the writing thread stopped: see the server log"
            return {
                "sink": self.sink.name,
                "healthy": error is None,
                "buffered": len(self._buffer),
                "dropped": self._dropped,
                "written": self._written,
                "error": error,
            }

    def holds(self, request_id: str, row: int) -> bool:
        """Whether a row is still in the buffer, not yet written."""
        with self._changed:
            return any(r.request_id == request_id and r.row == row for r in self._buffer)

    def flush(self, timeout: float) -> bool:
        """Ask for the rows buffered now to be written; True when they were, within timeout."""
        with self._changed:
            target = self._accepted
            if self._thread is None or not self._thread.is_alive():
                return self._finished >= target
            self._flush_wanted = True
            self._changed.notify_all()
            return self._changed.wait_for(lambda: self._finished >= target, timeout)

    def add_feedback(self, request_id: str, row: int, outcome: Any) -> None:
        """Record a row's true outcome, at once (the caller is told 201, 404 or 409).

        A row not found may still be in this process's buffer (flushed, then
        tried again) or another worker's (which writes within flush_seconds).
        """
        feedback = FeedbackRecord(request_id, row, outcome, utc_now())
        try:
            self.sink.add_feedback(feedback)
            return
        except UnknownPrediction:
            if not self.holds(request_id, row):
                time.sleep(self.settings.flush_seconds + OTHER_WORKERS_MARGIN)
            elif self._error is not None or not self.flush(timeout=CLOSE_SECONDS):
                raise SinkUnavailable(
                    f"request {request_id} row {row} is not written yet: "
                    f"{self._error or 'the log is behind'}"
                ) from None
        self.sink.add_feedback(feedback)

    def live_rows(self, window: int) -> list[LiveRow]:
        """The latest rows with feedback; none while the sink cannot be read (logged)."""
        try:
            return self.sink.live_rows(window)
        except Exception as error:  # a scrape must still answer: the live metric is absent
            LOGGER.warning(
                "prediction log: cannot read the rows with feedback: %s", describe(error)
            )
            return []

    # --- the writing thread --------------------------------------------------------------

    def start(self) -> None:
        """Start the writing thread (at lifespan start-up): prune, then write as rows come."""
        with self._changed:
            if self._thread is not None:
                return
            self._thread = threading.Thread(target=self._run, name="prediction-log", daemon=True)
            self._thread.start()
        atexit.register(self.close)  # no lifespan shutdown (killed event loop): still flushed

    def _run(self) -> None:
        retry = FIRST_RETRY_SECONDS
        failing = False
        try:
            while True:
                self._prune_when_due()
                batch = self._next_batch(retry if failing else None)
                if batch is None:
                    return
                if not batch:
                    self._report_state()
                    continue
                failing = not self._write(batch)
                retry = min(retry * 2, LAST_RETRY_SECONDS) if failing else FIRST_RETRY_SECONDS
        except BaseException:  # a bug: health() reports the thread stopped
            LOGGER.exception("prediction log: the writing thread stopped")
            raise

    def _next_batch(self, retry: float | None) -> list[PredictionRecord] | None:
        """The next rows to write ([] when none are due), None once closed and written."""
        with self._changed:
            if retry is not None:  # failing: wait before trying again, shorter when closing
                self._changed.wait(min(retry, FIRST_RETRY_SECONDS) if self._closing else retry)
            elif not self._batch_due():
                self._changed.wait(self.settings.flush_seconds)
            if self._abandoned or (self._closing and not self._buffer):
                return None
            self._flush_wanted = False
            return list(islice(self._buffer, self.settings.batch_rows))

    def _batch_due(self) -> bool:
        return self._closing or self._flush_wanted or len(self._buffer) >= self.settings.batch_rows

    def _write(self, batch: list[PredictionRecord]) -> bool:
        try:
            self.sink.write(batch)
        except Exception as error:  # any sink, any failure: keep the rows, retry
            self._failed(error, len(batch))
            return False
        with self._changed:
            for _ in range(min(len(batch), len(self._buffer))):
                self._buffer.popleft()
            self._written += len(batch)
            self._finished += len(batch)
            recovered, self._error = self._error, None
            self._dropping = False
            dropped = self._dropped
            self._changed.notify_all()
        if recovered:
            LOGGER.warning(
                "prediction log: writing again to %s (%d row(s) dropped so far)",
                self.sink.name, dropped,
            )  # fmt: skip
        if self.metrics is not None:
            self.metrics.log_written(len(batch))
        self._report_state()
        return True

    def _failed(self, error: Exception, rows: int) -> None:
        message = describe(error)
        with self._changed:
            repeated, self._error = self._error == message, message
            buffered = len(self._buffer)
        if not repeated:
            LOGGER.error(
                "prediction log: cannot write %d row(s) to %s: %s (%d buffered, retrying)",
                rows, self.sink.name, message, buffered,
            )  # fmt: skip
        self._report_state()

    def _report_state(self) -> None:
        if self.metrics is not None:
            with self._changed:
                buffered, healthy = len(self._buffer), self._error is None
            self.metrics.set_log_state(buffered, healthy)

    def _prune_when_due(self) -> None:
        """Retention: delete records older than retention_days, at start then hourly."""
        days = self.settings.retention_days
        if days == 0 or time.monotonic() < self._next_prune:
            return
        self._next_prune = time.monotonic() + PRUNE_EVERY_SECONDS
        try:
            deleted = self.sink.prune(datetime.now(UTC) - timedelta(days=days))
        except Exception as error:  # tried again in an hour; writing goes on
            LOGGER.warning("prediction log: pruning failed: %s", describe(error))
            return
        if deleted:
            LOGGER.info("prediction log: %d record(s) older than %d days deleted", deleted, days)

    def close(self, timeout: float | None = None) -> None:
        """Write what is buffered (waiting `timeout`, else CLOSE_SECONDS), then close the sink."""
        with self._changed:
            if self._closed:
                return
            self._closed = self._closing = True
            self._changed.notify_all()
        atexit.unregister(self.close)
        if self._thread is None and self._buffer:
            self._thread = threading.Thread(target=self._run, name="prediction-log", daemon=True)
            self._thread.start()
        if self._thread is not None:
            self._thread.join(CLOSE_SECONDS if timeout is None else timeout)
        with self._changed:
            self._abandoned = True
            left = len(self._buffer)
            self._buffer.clear()
            self._dropped += left
            self._finished += left
            self._changed.notify_all()
        if left:
            LOGGER.error(
                "prediction log: %d row(s) not written before shutdown, dropped: %s", left,
                self._error,
            )  # fmt: skip
            if self.metrics is not None:
                self.metrics.log_dropped(left)
        try:
            self.sink.close()
        except Exception as error:  # shutting down: say it, go on
            LOGGER.warning("prediction log: closing %s failed: %s", self.sink.name, describe(error))
