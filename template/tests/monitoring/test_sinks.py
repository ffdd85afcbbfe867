"""The sinks: SQLite (WAL, several writers), stdout JSON lines, and `module:factory`."""

import io
import json
import sqlite3
import threading
from datetime import UTC, datetime, timedelta

import pytest

from ..package import PipelineError, load

records = load("monitoring.records")
settings_module = load("monitoring.settings")
sinks = load("monitoring.sinks")


def _record(request_id="a" * 32, row=0, status=200, time=None, prediction=1, **changes):
    answered = status == 200
    record = records.PredictionRecord(
        request_id=request_id,
        row=row,
        time=time or records.utc_now(),
        model_version="3" if answered else None,
        status=status,
        latency_ms=1.5,
        input={"radius": 14.0, "clinic": "south"},
        prediction=prediction if answered else None,
        probability=0.875 if answered else None,
        refused_rule=None if answered else "radius: too large",
    )
    return record._replace(**changes)


def _feedback(request_id="a" * 32, row=0, outcome=1):
    return records.FeedbackRecord(request_id, row, outcome, records.utc_now())


@pytest.fixture
def sqlite_sink(tmp_path):
    sink = sinks.SqliteSink(tmp_path / "logs" / "predictions.db")
    yield sink
    sink.close()


@pytest.fixture
def stdout():
    return io.StringIO()


@pytest.fixture
def stdout_sink(stdout):
    return sinks.StdoutSink(stdout, remembered=3)


def test_sqlite_creates_its_folder_and_tables_in_wal_mode(sqlite_sink):
    sqlite_sink.write([_record()])

    connection = sqlite3.connect(sqlite_sink.path)
    tables = {name for (name,) in connection.execute("SELECT name FROM sqlite_master")}
    mode = connection.execute("PRAGMA journal_mode").fetchone()[0]
    connection.close()
    assert {"predictions", "feedback"} <= tables
    assert mode == "wal"


def test_sqlite_gives_back_a_record_as_written(sqlite_sink):
    record = _record(row=2)

    sqlite_sink.write([record])

    assert sqlite_sink.find(record.request_id, 2) == record
    assert sqlite_sink.find(record.request_id, 3) is None


def nested(depth: int) -> list[object]:
    """A list inside a list... `depth` deep: past the JSON encoder's recursion limit."""
    value: list[object] = []
    for _ in range(depth):
        value = [value]
    return value


def test_a_row_json_cannot_hold_is_written_without_its_input(sqlite_sink, stdout_sink, stdout):
    """One such row must not stop the log: the writer would retry its batch forever."""
    odd, plain = _record(input=nested(100_000), status=422), _record(request_id="b" * 32)

    sqlite_sink.write([odd, plain])
    stdout_sink.write([odd, plain])

    assert sqlite_sink.find(odd.request_id, 0).input is None
    assert sqlite_sink.find(plain.request_id, 0) == plain
    lines = [json.loads(line) for line in stdout.getvalue().splitlines()]
    assert [line["input"] for line in lines] == [None, plain.input]


def test_sqlite_stores_json_text_in_the_json_columns(sqlite_sink):
    sqlite_sink.write([_record(prediction="yes")])

    connection = sqlite3.connect(sqlite_sink.path)
    stored = connection.execute("SELECT input, prediction FROM predictions").fetchone()
    connection.close()
    assert stored == ('{"radius":14.0,"clinic":"south"}', '"yes"')


def test_sqlite_takes_concurrent_writers(tmp_path):
    """Four sinks (four server processes) open one new file together and write to it.

    Deterministic: they start at once (a barrier) and each waits up to a minute for
    another's lock, where a batch holds it for milliseconds: a starved runner only
    makes it slower.
    """
    path = tmp_path / "predictions.db"
    writers = [sinks.SqliteSink(path, busy_timeout=60) for _ in range(4)]
    together = threading.Barrier(len(writers))
    failures = []

    def write(number, sink):
        together.wait()
        try:
            for batch in range(10):
                rows = [_record(request_id=f"{number:02d}{batch:030d}", row=r) for r in range(50)]
                sink.write(rows)
        except Exception as error:  # said by the assertion below, not as a thread's warning
            failures.append(error)

    threads = [threading.Thread(target=write, args=item) for item in enumerate(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for sink in writers:
        sink.close()

    assert failures == []
    connection = sqlite3.connect(path)
    assert connection.execute("SELECT COUNT(*) FROM predictions").fetchone() == (2000,)
    connection.close()


def test_sqlite_waits_for_a_writer_of_a_new_file_to_switch_it_to_wal(tmp_path):
    """SQLite refuses the switch at once, without its busy timeout, while another
    connection writes to a file not yet in WAL mode: the sink waits as for any lock.

    Deterministic: the other writer commits after 0.2 s; the sink waits up to a minute.
    """
    path = tmp_path / "predictions.db"
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")  # another process, in the middle of a write
    other.execute("CREATE TABLE other_process (value INTEGER)")
    commit = threading.Timer(0.2, other.execute, ["COMMIT"])
    commit.start()
    sink, record = sinks.SqliteSink(path, busy_timeout=60), _record()

    try:
        sink.write([record])
    finally:
        commit.join()
        other.close()

    assert sink.find(record.request_id, 0) == record
    sink.close()
    connection = sqlite3.connect(path)
    assert connection.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    connection.close()


def test_sqlite_writing_a_batch_again_keeps_one_copy(sqlite_sink):
    batch = [_record(row=0), _record(row=1)]

    sqlite_sink.write(batch)
    sqlite_sink.write(batch)  # retried after a failure that hid the commit

    connection = sqlite3.connect(sqlite_sink.path)
    assert connection.execute("SELECT COUNT(*) FROM predictions").fetchone() == (2,)
    connection.close()


def test_sqlite_records_feedback_once(sqlite_sink):
    sqlite_sink.write([_record()])

    sqlite_sink.add_feedback(_feedback(outcome=0))

    with pytest.raises(sinks.DuplicateFeedback, match="already has its feedback"):
        sqlite_sink.add_feedback(_feedback(outcome=1))


@pytest.mark.parametrize(
    ("logged", "message"),
    [
        ([], "no prediction logged for request a{32} row 0"),
        ([_record(status=422)], "was refused \\(status 422\\): it has no prediction"),
    ],
)
def test_sqlite_refuses_feedback_without_a_prediction(sqlite_sink, logged, message):
    sqlite_sink.write(logged or [_record(request_id="b" * 32)])

    with pytest.raises(sinks.UnknownPrediction, match=message):
        sqlite_sink.add_feedback(_feedback())


def test_sqlite_live_rows_are_the_latest_answered_rows_with_feedback(sqlite_sink):
    sqlite_sink.write([_record(row=row, prediction=row % 2) for row in range(4)])
    for row in range(4):
        sqlite_sink.add_feedback(_feedback(row=row, outcome=1))

    assert sqlite_sink.live_rows(2) == [(0, 0.875, 1), (1, 0.875, 1)]
    assert len(sqlite_sink.live_rows(10)) == 4


def test_sqlite_delete_removes_a_requests_predictions_and_feedback(sqlite_sink):
    sqlite_sink.write([_record(row=0), _record(row=1), _record(request_id="b" * 32)])
    sqlite_sink.add_feedback(_feedback(row=1))

    assert sqlite_sink.delete("a" * 32) == 3

    assert sqlite_sink.find("a" * 32, 0) is None
    assert sqlite_sink.find("b" * 32, 0) is not None
    assert sqlite_sink.delete("a" * 32) == 0


def test_sqlite_prune_deletes_records_older_than_the_cutoff(sqlite_sink):
    now = datetime.now(UTC)
    old = records.format_time(now - timedelta(days=100))
    sqlite_sink.write([_record(request_id="0" * 32, time=old), _record(request_id="1" * 32)])

    assert sqlite_sink.prune(now - timedelta(days=90)) == 1

    assert sqlite_sink.find("0" * 32, 0) is None
    assert sqlite_sink.find("1" * 32, 0) is not None


def test_sqlite_errors_name_the_file_and_the_fix(sqlite_sink):
    sqlite_sink.path.parent.mkdir(parents=True)
    sqlite_sink.path.write_bytes(b"not a database at all" * 100)

    with pytest.raises(sinks.SinkUnavailable) as raised:
        sqlite_sink.write([_record()])

    assert str(raised.value) == (
        f"{sqlite_sink.path}: file is not a database (it is corrupt or not SQLite: move it "
        "away, the log starts anew)"
    )


def test_stdout_writes_one_json_line_a_record(stdout_sink, stdout):
    stdout_sink.write([_record(row=0), _record(row=1, status=422)])

    lines = [json.loads(line) for line in stdout.getvalue().splitlines()]
    assert [(line["type"], line["row"], line["status"]) for line in lines] == [
        ("prediction", 0, 200),
        ("prediction", 1, 422),
    ]
    assert lines[1]["refused_rule"] == "radius: too large"
    assert lines[0]["input"] == {"radius": 14.0, "clinic": "south"}


def test_stdout_joins_feedback_to_the_predictions_of_this_replica(stdout_sink, stdout):
    stdout_sink.write([_record()])

    stdout_sink.add_feedback(_feedback(outcome=0))

    last = json.loads(stdout.getvalue().splitlines()[-1])
    assert (last["type"], last["request_id"], last["outcome"]) == ("feedback", "a" * 32, 0)
    assert stdout_sink.live_rows(10) == [(1, 0.875, 0)]
    with pytest.raises(sinks.DuplicateFeedback):
        stdout_sink.add_feedback(_feedback(outcome=0))


def test_stdout_feedback_for_another_replica_says_so(stdout_sink):
    with pytest.raises(sinks.UnknownPrediction, match="not among the predictions this replica"):
        stdout_sink.add_feedback(_feedback())


def test_stdout_remembers_only_the_latest_predictions(stdout_sink):
    stdout_sink.write([_record(row=row) for row in range(4)])  # remembers 3

    assert stdout_sink.find("a" * 32, 0) is None
    assert stdout_sink.find("a" * 32, 3).input is None  # kept without the inputs


def test_auto_is_stdout_on_a_platform_and_sqlite_elsewhere(monkeypatch, tmp_path):
    settings = settings_module.LogSettings(sink="auto", path=tmp_path / "log.db")
    for variable in settings_module.PLATFORM_VARIABLES:
        monkeypatch.delenv(variable, raising=False)

    assert isinstance(sinks.open_sink(settings), sinks.SqliteSink)
    monkeypatch.setenv("K_SERVICE", "model-api")
    assert isinstance(sinks.open_sink(settings), sinks.StdoutSink)


FACTORY_MODULE = """
class Nothing:
    def __init__(self, settings):
        self.settings = settings
    def write(self, records): pass
    def find(self, request_id, row): return None
    def add_feedback(self, feedback): pass
    def live_rows(self, window): return []
    def delete(self, request_id): return 0
    def prune(self, older_than): return 0
    def close(self): pass

def make(settings):
    return Nothing(settings)

def incomplete(settings):
    return object()
"""


@pytest.fixture
def factory_module(tmp_path, monkeypatch):
    (tmp_path / "team_sink.py").write_text(FACTORY_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    return "team_sink"


def test_a_module_factory_sink_gets_the_settings(factory_module):
    settings = settings_module.LogSettings(sink=f"{factory_module}:make")

    sink = sinks.open_sink(settings)

    assert sink.settings is settings
    assert sink.name == f"{factory_module}:make"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("no_such_module:make", "names module 'no_such_module', which fails to import"),
        ("team_sink:absent", "module 'team_sink' has no function 'absent'"),
        ("team_sink:incomplete", "returned a sink without write, find, add_feedback"),
    ],
)
def test_a_bad_module_factory_is_a_one_line_error(factory_module, spec, message):
    with pytest.raises(PipelineError, match=message):
        sinks.open_sink(settings_module.LogSettings(sink=spec))
