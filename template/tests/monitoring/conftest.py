"""Fixtures of the monitoring tests: the level-4 API in process, its log, fake sinks.

The API is the one `create_app` builds from the serving tests' model folder
(tests/serving/conftest.py), in a tmp project whose monitoring.yaml the tests
write: the log goes to logs/predictions.db there, flushed often so the tests
do not wait.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient

from ..package import load
from ..serving import conftest as serving

# The serving tests' fixtures, here too: a model folder built once, copied per test.
built_folder = serving.built_folder
model_dir = serving.model_dir

app_module = load("serving.app")
serving_settings = load("serving.settings")
sinks = load("monitoring.sinks")

GOOD = {"radius": 14.0, "texture": 20.5, "area": 610.0, "smoothness": 0.1, "clinic": "south"}
TOKEN = "token-for-tests"
LOG_PATH = Path("logs/predictions.db")
FAST_LOG = {"path": str(LOG_PATH), "flush_seconds": 0.05, "batch_rows": 50}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "slow: a server under load (test_load.py), the retraining loop (test_loop.py)"
    )


def write_monitoring(root: Path, log: dict[str, Any] | None = None, **sections: Any) -> None:
    """monitoring.yaml in the project: FAST_LOG with `log`'s keys changed, and other sections."""
    data = {"prediction_log": {**FAST_LOG, **(log or {})}, **sections}
    (root / "monitoring.yaml").write_text(yaml.safe_dump(data))


def start_client(model_dir: Path, **settings: Any) -> TestClient:
    """The API with its lifespan running (the log's thread started, the model loaded)."""
    app = app_module.create_app(model_dir, serving_settings.ServingSettings(**settings))
    client = TestClient(app, raise_server_exceptions=False)
    client.__enter__()
    assert app.state.model.wait(30), app.state.model.error
    return client


@pytest.fixture
def start_api(model_dir: Path) -> Iterator[Any]:
    """start_api(**serving settings) -> a TestClient; every client is stopped after the test."""
    started: list[TestClient] = []

    def start(**settings: Any) -> TestClient:
        client = start_client(model_dir, **settings)
        started.append(client)
        return client

    yield start
    for client in started:
        client.__exit__(None, None, None)


@pytest.fixture
def api(project: Any, start_api: Any) -> TestClient:
    """The level-4 API logging to logs/predictions.db of the tmp project."""
    write_monitoring(project.root)
    return start_api()


def stop(client: TestClient) -> None:
    """The lifespan shutdown: the log writes what it holds."""
    client.__exit__(None, None, None)


def monitoring_of(client: TestClient) -> Any:
    return client.app.state.monitoring  # type: ignore[attr-defined]


def written(client: TestClient) -> None:
    """Wait until the rows answered so far are in the sink (up to a minute: a busy runner)."""
    monitoring = monitoring_of(client)
    assert monitoring.flush(timeout=60), monitoring.log.health()


def logged(path: Path = LOG_PATH, table: str = "predictions") -> list[dict[str, Any]]:
    """The rows of a table of the SQLite log, JSON columns decoded, in write order.

    None before the log's first write: the file and its tables come with the
    writing thread's first connection, which a test that logs nothing does not wait for.
    """
    if not path.is_file():
        return []
    connection = sqlite3.connect(path)
    connection.row_factory = sqlite3.Row
    try:
        found = connection.execute("SELECT 1 FROM sqlite_master WHERE name = ?", (table,))
        if found.fetchone() is None:
            return []
        rows = [dict(row) for row in connection.execute(f"SELECT * FROM {table} ORDER BY rowid")]
    finally:
        connection.close()
    for row in rows:
        for column in ("input", "prediction", "outcome"):
            if row.get(column) is not None:
                row[column] = json.loads(row[column])
    return rows


def metric_samples(text: str, name: str) -> dict[str, float]:
    """The samples of one metric in a Prometheus text body, by their label text."""
    samples = {}
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            series, _, value = line.rpartition(" ")
            samples[series[len(name) :]] = float(value)
    return samples


class MemorySink:
    """A sink in memory that fails on demand: `failure` is raised by write while set."""

    name = "memory"

    def __init__(self) -> None:
        self.records: list[Any] = []
        self.batches: list[int] = []
        self.failure: Exception | None = None
        self.pruned: list[Any] = []
        self.closed = False
        self._lock = threading.Lock()

    def write(self, records: Any) -> None:
        with self._lock:
            if self.failure is not None:
                raise self.failure
            self.records.extend(records)
            self.batches.append(len(records))

    def find(self, request_id: str, row: int) -> Any:
        with self._lock:
            return next(
                (r for r in self.records if (r.request_id, r.row) == (request_id, row)), None
            )

    def add_feedback(self, feedback: Any) -> None:
        found = self.find(feedback.request_id, feedback.row)
        sinks.check_feedback_target(found, feedback)

    def live_rows(self, window: int) -> list[Any]:
        return []

    def delete(self, request_id: str) -> int:
        return 0

    def prune(self, older_than: Any) -> int:
        self.pruned.append(older_than)
        return 0

    def close(self) -> None:
        self.closed = True


class RecordedMetrics:
    """Stands for ApiMetrics in the log's tests: remembers the calls the log makes."""

    def __init__(self) -> None:
        self.written = 0
        self.dropped = 0
        self.states: list[tuple[int, bool]] = []

    def log_written(self, rows: int) -> None:
        self.written += rows

    def log_dropped(self, rows: int) -> None:
        self.dropped += rows

    def set_log_state(self, buffered: int, healthy: bool) -> None:
        self.states.append((buffered, healthy))
