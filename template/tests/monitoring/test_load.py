"""Under load, with two workers: every row answered is logged, and /metrics adds up.

The slow test of the folder (marked `slow`, about 10-30 s): `serve --workers
2` in a child process, 16 clients sending single rows, batches and refused
rows, then SIGTERM. The log flushes only at shutdown here (flush_seconds is
long), so the count also proves that a clean stop writes everything.

Deterministic on a busy runner: it asserts counts, never speed, and each wait
(the workers ready, their counts in /metrics, the stop) is bounded generously
and ends as soon as it is over.
"""

import http.client
import json
import sqlite3
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest

from ..package import load
from .conftest import GOOD, metric_samples, write_monitoring

client = load("serving.client")

pytestmark = pytest.mark.slow

CLIENTS = 16
REQUESTS_EACH = 100
BATCH = [GOOD, {**GOOD, "radius": 30.0}, {**GOOD, "clinic": "west"}, GOOD, GOOD]
REFUSED = {"rows": [GOOD, {**GOOD, "radius": 99.0}]}


def _body(number):
    """Single rows mostly, a batch of 5 every 4th request, a refused batch every 7th."""
    if number % 7 == 0:
        return REFUSED
    if number % 4 == 0:
        return {"rows": BATCH}
    return {**GOOD, "texture": 10.0 + number % 30}


def _send(port, first):
    """One keep-alive client: counts of rows answered (200) and refused (422), by status."""
    rows = Counter()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        for number in range(first, first + REQUESTS_EACH):
            body = _body(number)
            connection.request(
                "POST", "/predict", json.dumps(body), {"Content-Type": "application/json"}
            )
            answer = connection.getresponse()
            answer.read()
            rows[answer.status] += len(body["rows"]) if "rows" in body else 1
    finally:
        connection.close()
    return rows


def _every_worker_ready(url, in_a_row=40, timeout=60.0):
    """/ready 200 on that many new connections in a row: each worker has loaded the model."""
    deadline = time.monotonic() + timeout
    streak = 0
    while streak < in_a_row:
        assert time.monotonic() < deadline, "the workers were not all ready in time"
        ready = client.request(client.join(url, "/ready")).status == 200
        streak = streak + 1 if ready else 0
        if not ready:
            time.sleep(0.05)


def _counts(scraped):
    """Rows answered, rows refused and /predict requests, as /metrics counts them."""
    requests = metric_samples(scraped, "model_api_requests_total")
    return (
        sum(metric_samples(scraped, "model_api_predictions_total").values()),
        sum(metric_samples(scraped, "model_api_refused_rows_total").values()),
        sum(count for labels, count in requests.items() if 'handler="/predict"' in labels),
    )


def _settled_metrics(url, counts, timeout=60.0):
    """/metrics once the workers have counted everything sent (each counts off the
    request path, within intake.INTAKE_SECONDS on an idle machine), or at the timeout."""
    deadline = time.monotonic() + timeout
    while True:
        scraped = client.request(client.join(url, "/metrics")).body
        if _counts(scraped) == counts or time.monotonic() > deadline:
            return scraped
        time.sleep(0.05)


def _logged_rows(path):
    connection = sqlite3.connect(path)
    try:
        found = connection.execute("SELECT status, COUNT(*) FROM predictions GROUP BY status")
        return dict(found.fetchall())
    finally:
        connection.close()


def test_every_answered_row_is_logged_under_load_with_two_workers(project, model_dir, monkeypatch):
    monkeypatch.delenv("PREDICTION_LOG_PATH", raising=False)  # no log chosen by the caller
    write_monitoring(project.root, {"flush_seconds": 30})
    server = client.LocalServer(model_dir, workers=2)

    with server:
        log_path = server.prediction_log  # a check's log: its own, not the project's
        _every_worker_ready(server.url)
        with ThreadPoolExecutor(CLIENTS) as pool:
            counts = pool.map(_send, [server.port] * CLIENTS, range(0, 10**6, REQUESTS_EACH))
            sent = sum(counts, Counter())
        expected = (sent[200], sent[422], CLIENTS * REQUESTS_EACH)
        scraped = _settled_metrics(server.url, expected)  # sending is over
        server.stop()  # SIGTERM: each worker's lifespan shutdown writes its buffer
        output = server.output()
        logged_rows = _logged_rows(log_path)

    # 503: a worker still loading its model on a starved machine (the 40 ready
    # answers may all have come from the other one); such requests are not
    # answered, so not logged. Every answered row must be.
    assert set(sent) <= {200, 422, 503} and sent[200] and sent[422], sent
    assert logged_rows == {200: sent[200], 422: sent[422]}
    assert not log_path.exists()  # removed with the server
    assert not (project.root / "logs").exists()  # the project's log untouched
    assert _counts(scraped) == expected  # answered rows, refused rows, /predict requests
    assert output.count("Application shutdown complete") == 2  # both lifespans ran to the end
    assert "prediction log:" not in output  # no error, no row dropped
