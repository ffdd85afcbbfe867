"""A log that cannot be written: the API keeps answering, says what is wrong, and recovers.

Full disk, a locked database, a corrupt file, a sink that is down then back:
each time /predict answers 200, /ready stays 200 with the problem in its
details and in the metrics, the rows wait in the buffer (dropped past its
bound, and counted) and are written once the cause is gone.

Each wait for the log's state (`_eventually`) is bounded generously (a
minute) for a starved runner; it ends as soon as the state is reached.
"""

import errno
import sqlite3
import time

import pytest

from ..package import load
from .conftest import (
    GOOD,
    LOG_PATH,
    MemorySink,
    logged,
    metric_samples,
    write_monitoring,
)

api_module = load("monitoring.api")
log_module = load("monitoring.log")
sinks = load("monitoring.sinks")


@pytest.fixture(autouse=True)
def quick_shutdown(monkeypatch):
    """A sink still down at the end of a test: shutdown gives up after 0.2 s, not 5."""
    monkeypatch.setattr(log_module, "CLOSE_SECONDS", 0.2)


def _eventually(condition, timeout=60.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "not reached in time"
        time.sleep(0.02)


def _log_details(api):
    ready = api.get("/ready")
    assert ready.status_code == 200, ready.text
    return ready.json()["details"]["prediction_log"]


def _failing(api):
    _eventually(lambda: _log_details(api)["error"] is not None)
    return _log_details(api)


def _recovered(api, rows):
    _eventually(lambda: _log_details(api)["written"] == rows)
    return _log_details(api)


def _answered(api, times=3):
    """`times` predictions answered, then handed to the log.

    The API records its answers off the request path (intake.py, every 50 ms);
    a scrape of /metrics records what is queued, so the counts that follow
    never depend on how fast the intake's thread ran.
    """
    for _ in range(times):
        assert api.post("/predict", json=GOOD).status_code == 200
    assert api.get("/metrics").status_code == 200


@pytest.fixture
def memory_sink(monkeypatch):
    sink = MemorySink()
    monkeypatch.setattr(api_module, "open_sink", lambda settings: sink)
    return sink


@pytest.fixture
def quick_sqlite(monkeypatch):
    """The SQLite sink, waiting 50 ms (not 5 s) for a lock."""
    monkeypatch.setattr(
        api_module, "open_sink", lambda settings: sinks.SqliteSink(settings.path, busy_timeout=0.05)
    )


@pytest.fixture
def down_api(project, start_api, memory_sink):
    """The API while its sink fails as a full disk does."""
    write_monitoring(project.root)
    memory_sink.failure = OSError(errno.ENOSPC, "No space left on device")
    api = start_api()
    _answered(api)
    return api


def test_a_full_disk_leaves_the_api_answering_and_ready(down_api):
    details = _failing(down_api)

    assert down_api.post("/predict", json=GOOD).status_code == 200
    assert details["healthy"] is False
    assert details["error"] == "[Errno 28] No space left on device"
    assert details["buffered"] == 3


def test_a_full_disk_shows_in_health_and_the_metrics(down_api):
    _failing(down_api)

    health = down_api.get("/health").json()["details"]["prediction_log"]
    text = down_api.get("/metrics").text

    assert health["healthy"] is False
    assert metric_samples(text, "model_api_prediction_log_healthy") == {"": 0}
    assert metric_samples(text, "model_api_prediction_log_buffered_rows") == {"": 3}


def test_the_buffered_rows_are_written_once_the_sink_is_back(down_api, memory_sink):
    _failing(down_api)

    memory_sink.failure = None

    details = _recovered(down_api, rows=3)
    assert (details["healthy"], details["buffered"], details["error"]) == (True, 0, None)
    assert len(memory_sink.records) == 3
    assert metric_samples(down_api.get("/metrics").text, "model_api_prediction_log_healthy") == {
        "": 1
    }


def test_rows_past_the_buffer_are_dropped_and_counted(project, start_api, memory_sink):
    write_monitoring(project.root, {"buffer_rows": 2})
    memory_sink.failure = RuntimeError("the collector is down")
    api = start_api()

    _answered(api, times=5)
    details = _failing(api)
    memory_sink.failure = None
    _recovered(api, rows=2)

    assert (details["buffered"], details["dropped"]) == (2, 3)
    assert details["error"] == "RuntimeError: the collector is down"
    dropped = metric_samples(api.get("/metrics").text, "model_api_prediction_log_dropped_total")
    assert dropped == {"": 3}
    assert _log_details(api)["dropped"] == 3  # still said after recovery


class SmallDisk(sinks.SqliteSink):  # type: ignore[name-defined]
    """SQLite on a disk with no room left: the file may not grow while `full` is set."""

    full = True

    def _configure(self, connection):
        super()._configure(connection)
        if self.full:  # SQLite raises the limit to the pages already used
            connection.execute("PRAGMA max_page_count = 1")


def test_a_full_sqlite_disk_is_reported_then_recovered(project, start_api, monkeypatch):
    write_monitoring(project.root)
    disk = SmallDisk(LOG_PATH)
    monkeypatch.setattr(api_module, "open_sink", lambda settings: disk)
    api = start_api()

    _answered(api, times=30)
    details = _failing(api)
    disk.full = False

    assert details["error"] == (
        f"{LOG_PATH}: database or disk is full (free disk space; the log retries)"
    )
    _recovered(api, rows=30)
    assert len(logged()) == 30


def test_a_locked_database_is_reported_then_recovered(project, start_api, quick_sqlite):
    write_monitoring(project.root)
    api = start_api()
    _answered(api, times=1)
    _recovered(api, rows=1)
    holder = sqlite3.connect(LOG_PATH, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")

    _answered(api, times=2)
    details = _failing(api)
    holder.execute("ROLLBACK")
    holder.close()

    assert details["error"].startswith(f"{LOG_PATH}: database is locked")
    _recovered(api, rows=3)
    assert len(logged()) == 3


@pytest.fixture
def corrupt_api(project, start_api):
    write_monitoring(project.root)
    LOG_PATH.parent.mkdir()
    LOG_PATH.write_bytes(b"\x00garbage, not SQLite\xff" * 512)
    api = start_api()
    _answered(api)
    return api


def test_a_corrupt_database_is_reported(corrupt_api):
    details = _failing(corrupt_api)

    assert details["error"] == (
        f"{LOG_PATH}: file is not a database (it is corrupt or not SQLite: move it away, "
        "the log starts anew)"
    )
    assert corrupt_api.get("/metrics").status_code == 200  # no live metric, still a scrape


def test_a_corrupt_database_moved_away_is_replaced(corrupt_api):
    _failing(corrupt_api)

    LOG_PATH.rename(LOG_PATH.with_suffix(".corrupt"))

    _recovered(corrupt_api, rows=3)
    assert len(logged()) == 3


def test_feedback_while_the_log_is_down_is_503(corrupt_api):
    answer = corrupt_api.post("/feedback", json={"request_id": "a" * 32, "outcome": 1})

    assert answer.status_code == 503
    assert answer.headers["Retry-After"] == "5"
    assert answer.json()["detail"] == (
        f"the prediction log cannot record feedback now ({LOG_PATH}: file is not a database "
        "(it is corrupt or not SQLite: move it away, the log starts anew)): retry later"
    )


def test_feedback_on_a_row_the_log_cannot_write_yet_is_503(down_api):
    request_id = down_api.post("/predict", json=GOOD).headers["X-Request-ID"]
    _failing(down_api)

    answer = down_api.post("/feedback", json={"request_id": request_id, "outcome": 1})

    assert answer.status_code == 503
    assert f"request {request_id} row 0 is not written yet: [Errno 28]" in answer.json()["detail"]
