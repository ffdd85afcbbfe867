"""The prediction log: a bounded buffer written in batches by a thread; its commands.

The writing thread's tests wait for an outcome with `_eventually`, bounded
generously (a minute) for a starved runner: a wait ends as soon as the
outcome is there, and none of them asserts how fast it came.
"""

import time
from datetime import UTC, datetime, timedelta

import pytest

from ..package import load
from .conftest import LOG_PATH, MemorySink, RecordedMetrics, logged, write_monitoring

cli = load("cli")
intake = load("monitoring.intake")
log_module = load("monitoring.log")
records = load("monitoring.records")
settings_module = load("monitoring.settings")
sinks = load("monitoring.sinks")


def _rows(count, request_id="a" * 32, status=200):
    return [
        records.PredictionRecord(
            request_id, row, records.utc_now(), "3", status, 1.0, {"x": row}, 1, 0.9, None
        )
        for row in range(count)
    ]


def _log(sink=None, metrics=None, **settings):
    chosen = {"flush_seconds": 0.05, "batch_rows": 10, "buffer_rows": 100, **settings}
    return log_module.PredictionLog(
        sink or MemorySink(), settings_module.LogSettings(**chosen), metrics
    )


def _eventually(condition, timeout=60.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "not reached in time"
        time.sleep(0.01)


@pytest.fixture
def sink():
    return MemorySink()


def test_rows_are_written_in_batches_of_batch_rows(sink):
    log = _log(sink, batch_rows=10, flush_seconds=30)
    log.start()

    log.submit(_rows(25))
    _eventually(lambda: len(sink.records) == 20)
    log.close()

    assert sink.batches == [10, 10, 5]


def test_a_partial_batch_is_written_after_flush_seconds(sink):
    """Nothing else writes these 3 rows: the batch is 500, the log stays open."""
    log = _log(sink, batch_rows=500, flush_seconds=0.05)
    log.start()

    log.submit(_rows(3))

    _eventually(lambda: len(sink.records) == 3)
    log.close()


def test_close_writes_every_buffered_row_then_closes_the_sink(sink):
    log = _log(sink, batch_rows=500, flush_seconds=30)
    log.start()
    log.submit(_rows(7))

    log.close()

    assert len(sink.records) == 7
    assert sink.closed
    assert log.health()["written"] == 7


def test_close_writes_the_buffer_even_when_never_started(sink):
    log = _log(sink)
    log.submit(_rows(4))

    log.close()

    assert len(sink.records) == 4


def test_flush_returns_once_the_rows_buffered_are_written(sink):
    log = _log(sink, batch_rows=500, flush_seconds=30)
    log.start()
    log.submit(_rows(3))

    assert log.flush(timeout=60)

    assert len(sink.records) == 3
    log.close()


def test_rows_past_the_bound_are_counted_as_dropped(sink):
    metrics = RecordedMetrics()
    sink.failure = OSError("sink down")
    log = _log(sink, metrics, buffer_rows=5)

    log.submit(_rows(3))
    log.submit(_rows(4, request_id="b" * 32))

    health = log.health()
    assert (health["buffered"], health["dropped"]) == (5, 2)
    assert metrics.dropped == 2


def test_a_failing_sink_keeps_the_rows_and_reports_the_error(sink):
    metrics = RecordedMetrics()
    sink.failure = OSError(28, "No space left on device")
    log = _log(sink, metrics)
    log.start()

    log.submit(_rows(3))
    _eventually(lambda: log.health()["error"] is not None)

    health = log.health()
    assert health == {
        "sink": "memory",
        "healthy": False,
        "buffered": 3,
        "dropped": 0,
        "written": 0,
        "error": "[Errno 28] No space left on device",
    }
    _eventually(lambda: (3, False) in metrics.states)
    log.close(timeout=0.2)


def test_the_rows_are_written_once_the_sink_is_back(sink):
    metrics = RecordedMetrics()
    sink.failure = OSError("sink down")
    log = _log(sink, metrics)
    log.start()
    log.submit(_rows(3))
    _eventually(lambda: log.health()["error"] is not None)

    sink.failure = None

    _eventually(lambda: len(sink.records) == 3)
    health = log.health()
    assert (health["healthy"], health["written"], health["error"]) == (True, 3, None)
    assert metrics.written == 3
    _eventually(lambda: metrics.states[-1] == (0, True))
    log.close()


def test_rows_still_unwritable_at_close_are_counted_as_dropped(sink):
    metrics = RecordedMetrics()
    sink.failure = OSError("sink down")
    log = _log(sink, metrics)
    log.start()
    log.submit(_rows(3))

    log.close(timeout=0.3)

    assert log.health()["dropped"] == 3
    assert metrics.dropped == 3


def test_retention_prunes_at_start(sink):
    log = _log(sink, retention_days=30)

    log.start()
    _eventually(lambda: sink.pruned)
    log.close()

    expected = datetime.now(UTC) - timedelta(days=30)
    assert abs(sink.pruned[0] - expected) < timedelta(minutes=1)


def test_retention_zero_keeps_everything(sink):
    log = _log(sink, retention_days=0)
    log.start()
    log.submit(_rows(1))

    log.close()

    assert sink.pruned == []


def test_feedback_on_a_buffered_row_flushes_then_records(sink):
    log = _log(sink, batch_rows=500, flush_seconds=30)
    log.start()
    log.submit(_rows(1))

    log.add_feedback("a" * 32, 0, 1)  # no UnknownPrediction: written first

    assert len(sink.records) == 1
    log.close()


def test_feedback_on_an_unknown_row_is_refused(sink):
    log = _log(sink, flush_seconds=0.01)
    log.start()

    with pytest.raises(sinks.UnknownPrediction, match="no prediction logged for request"):
        log.add_feedback("c" * 32, 0, 1)
    log.close()


def test_the_intakes_clock_writes_the_records_time_format():
    clock = intake.LogClock()

    for moment in (1700000000.0, 1700000000.9996, 1700000001.25, time.time()):
        expected = records.format_time(datetime.fromtimestamp(moment, UTC))
        assert clock.text(moment) == expected


# --- forget-request and prune-log ---------------------------------------------------------


@pytest.fixture
def sqlite_log(project):
    """logs/predictions.db with two requests, one with feedback, and one old request."""
    write_monitoring(project.root, {"retention_days": 30})
    sink = sinks.SqliteSink(LOG_PATH)
    old = records.format_time(datetime.now(UTC) - timedelta(days=45))
    sink.write([*_rows(2), *_rows(1, request_id="b" * 32)])
    sink.write([row._replace(time=old) for row in _rows(3, request_id="c" * 32)])
    sink.add_feedback(records.FeedbackRecord("a" * 32, 1, 0, records.utc_now()))
    sink.close()
    return LOG_PATH


def _one_line_error(capsys, argv):
    code = cli.main(argv)
    captured = capsys.readouterr()
    assert code == 1, captured
    (line,) = captured.err.strip().splitlines()
    return line


def test_forget_request_deletes_a_requests_predictions_and_feedback(sqlite_log, capsys):
    assert cli.main(["forget-request", "A" * 32]) == 0  # the id as pasted, any case

    assert capsys.readouterr().out.strip() == (
        f"forget-request: deleted 3 record(s) of request {'a' * 32} from {LOG_PATH}"
    )
    assert {row["request_id"] for row in logged()} == {"b" * 32, "c" * 32}
    assert logged(table="feedback") == []


def test_forget_request_says_when_there_was_nothing_to_delete(sqlite_log, capsys):
    assert cli.main(["forget-request", "d" * 32]) == 0

    assert "nothing to delete" in capsys.readouterr().out


def test_forget_request_refuses_a_malformed_id(sqlite_log, capsys):
    line = _one_line_error(capsys, ["forget-request", "12345"])

    assert line == (
        "error: forget-request: '12345' is not a request id (32 hexadecimal characters, as in "
        "the X-Request-ID header of the answer)."
    )


def test_forget_request_needs_the_log_file(project, capsys):
    line = _one_line_error(capsys, ["forget-request", "a" * 32])

    assert line.startswith(f"error: forget-request: {LOG_PATH} is missing: the API writes it")


def test_forget_request_on_a_corrupt_log_says_so(project, capsys):
    LOG_PATH.parent.mkdir()
    LOG_PATH.write_bytes(b"garbage" * 1000)

    line = _one_line_error(capsys, ["forget-request", "a" * 32])

    assert line.startswith(f"error: forget-request: cannot delete from {LOG_PATH}: file is not")


def test_prune_log_applies_the_retention_now(sqlite_log, capsys):
    assert cli.main(["prune-log"]) == 0

    assert capsys.readouterr().out.strip() == (
        f"prune-log: deleted 3 record(s) older than 30 days from {LOG_PATH}"
    )
    assert {row["request_id"] for row in logged()} == {"a" * 32, "b" * 32}


def test_prune_log_with_retention_zero_needs_days(project, capsys):
    write_monitoring(project.root, {"retention_days": 0})

    line = _one_line_error(capsys, ["prune-log"])

    assert "retention_days is 0 in monitoring.yaml" in line


def test_monitoring_yaml_defaults_environment_and_one_line_errors(tmp_path, monkeypatch):
    error = load("core.errors").PipelineError
    path = tmp_path / "monitoring.yaml"
    assert settings_module.load_monitoring_settings(path) == settings_module.MonitoringSettings()

    path.write_text("drift:\n  min_rows: 10\n  window_rows: 5\n")
    with pytest.raises(error, match=r"monitoring\.yaml: `drift\.window_rows` must be at least"):
        settings_module.load_monitoring_settings(path)

    path.write_text("prediction_log:\n  path: from-file.db\n")
    monkeypatch.setenv("PREDICTION_LOG_PATH", "from-env.db")
    assert settings_module.load_monitoring_settings(path).prediction_log.path.name == "from-env.db"
    monkeypatch.setenv("PREDICTION_LOG_SINK", "nowhere")
    with pytest.raises(error, match=r"`prediction_log\.sink` .* \(set by the PREDICTION_LOG_SINK"):
        settings_module.load_monitoring_settings(path)
