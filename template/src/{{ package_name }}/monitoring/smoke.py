"""Command `monitoring-smoke`: level 4 end to end, on this machine, in one command.

    uv run <package> monitoring-smoke [--rows 400] [--workers 2]

Starts the API on a free port (the model folder `export` or
`export-candidate` wrote) with several workers and a SQLite prediction log of
its own, logs/monitoring-smoke.db (made anew each run: synthetic traffic never
goes to the project's log, which drift, performance and retraining read),
sends simulated traffic with feedback plus rows the contract refuses,
scrapes /metrics, stops the server cleanly, and then checks that:

- every row sent is in the prediction log, answered or refused (none lost,
  none twice), once the server has flushed it at shutdown;
- the metrics, summed over the workers, count the same rows, nothing dropped,
  and show the live success metric once enough feedback came;

and writes the monitoring report of that log (report.path, the page the
checks-monitoring workflow keeps). The checks-monitoring workflow runs it.
"""

from __future__ import annotations

import argparse
import sqlite3
import time
from pathlib import Path
from typing import Any

from ..core import paths
from ..core.errors import PipelineError
from ..serving.client import LocalServer, join, request
from ..serving.settings import load_serving_settings
from .settings import LOG_PATH_VARIABLE, LOG_SINK_VARIABLE, load_monitoring_settings

# A value no numeric contract column accepts: the API refuses the row (422).
REFUSED_VALUE = "not a number"
# The log of this check's traffic, never the project's (prediction_log.path).
SMOKE_LOG = Path("logs/monitoring-smoke.db")


def count_rows(log: Path) -> int:
    """Rows in the prediction log (0 before its first write)."""
    if not log.is_file():
        return 0
    connection = sqlite3.connect(f"file:{log.as_posix()}?mode=ro", uri=True)
    try:
        tables = {name for (name,) in connection.execute("SELECT name FROM sqlite_master")}
        if "predictions" not in tables:
            return 0
        return int(connection.execute("SELECT COUNT(*) FROM predictions").fetchone()[0])
    finally:
        connection.close()


def fresh_log(path: Path) -> Path:
    """The path of a log made anew: the file of an earlier run removed, with SQLite's WAL files."""
    for leftover in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        leftover.unlink(missing_ok=True)
    return path


def scrape(url: str, timeout: float) -> dict[str, float]:
    """/metrics summed by metric name (labels added up)."""
    from prometheus_client.parser import text_string_to_metric_families

    answer = request(join(url, "/metrics"), "GET", timeout=timeout)
    if answer.status != 200 or not isinstance(answer.body, str):
        raise PipelineError(f"monitoring-smoke: /metrics answered {answer.status}")
    totals: dict[str, float] = {}
    for family in text_string_to_metric_families(answer.body):
        for sample in family.samples:
            totals[sample.name] = totals.get(sample.name, 0.0) + sample.value
    return totals


def scrape_settled(url: str, answered: int, refused: int, seconds: float) -> dict[str, float]:
    """/metrics once every worker has counted its rows.

    Each worker counts off the request path (within about 50 ms), and a scrape
    reaches one worker: scrape again until the counts add up, or `seconds` run
    out (the command's --timeout: generous, for a busy runner; a scrape that adds
    up ends the wait at once).
    """
    deadline = time.monotonic() + seconds
    while True:
        metrics = scrape(url, seconds)
        counted = (
            metrics.get("model_api_predictions_total", 0.0),
            metrics.get("model_api_refused_rows_total", 0.0),
        )
        if counted == (answered, refused) or time.monotonic() > deadline:
            return metrics
        time.sleep(0.1)


def send_refused_rows(url: str, token: str | None, count: int, timeout: float) -> int:
    """Rows the contract refuses (a text where a number goes): the log must keep them too."""
    version = request(join(url, "/version"), "GET", timeout=timeout).body
    features = version.get("features", {}) if isinstance(version, dict) else {}
    numeric = features.get("numeric", []) if isinstance(features, dict) else []
    if not numeric:
        return 0
    for _ in range(count):
        answer = request(
            join(url, "/predict"), "POST", {numeric[0]: REFUSED_VALUE}, token=token, timeout=timeout
        )
        if answer.status != 422:
            raise PipelineError(
                f"monitoring-smoke: a row breaking the contract got {answer.status}, not 422"
            )
    return count


def check(condition: bool, problem: str) -> None:
    if not condition:
        raise PipelineError(f"monitoring-smoke: {problem}")
    print(f"monitoring-smoke: ok  {problem.split(':')[0]}")


def run(
    rows: int = 400,
    workers: int = 2,
    feedback_share: float = 0.5,
    model_dir: Path | None = None,
    timeout: float = 60.0,
) -> dict[str, Any]:
    from . import report, simulate

    serving = load_serving_settings()
    settings = load_monitoring_settings()
    log = fresh_log(SMOKE_LOG)
    # This check reads the log back: SQLite here, whatever the machine (a CI
    # job on Kubernetes would otherwise pick stdout).
    environment = {LOG_SINK_VARIABLE: "sqlite", LOG_PATH_VARIABLE: str(log.resolve())}
    with LocalServer(
        model_dir or serving.model_dir, workers=workers, timeout=timeout, environment=environment
    ) as server:
        print(f"monitoring-smoke: {workers} workers ready in {server.start_seconds:.2f} s")
        summary = simulate.send_traffic(
            server.url,
            serving,
            paths.TEST_DATA,
            timeout,
            simulate.Traffic(rows=rows, concurrency=4, batch=1, feedback_share=feedback_share),
        )
        refused = summary.refused + send_refused_rows(server.url, serving.token, 3, timeout)
        metrics = scrape_settled(server.url, summary.answered, refused, timeout)
        server.stop()  # SIGTERM: each worker flushes its buffer
    logged = count_rows(log)
    sent = summary.answered + refused
    check(logged == sent, f"rows logged: {logged} in the log for {sent} rows sent")
    counted = metrics.get("model_api_predictions_total", 0.0)
    check(counted == summary.answered, f"rows counted: /metrics counts {counted:g} answered")
    check(
        metrics.get("model_api_refused_rows_total", 0.0) == refused,
        f"refused rows counted: {metrics.get('model_api_refused_rows_total', 0.0):g} of {refused}",
    )
    dropped = metrics.get("model_api_prediction_log_dropped_total", 0.0)
    check(dropped == 0, f"no row dropped: {dropped:g} dropped")
    if summary.feedback_recorded >= settings.metrics.min_feedback_rows:
        check("model_api_live_metric" in metrics, "live metric: absent from /metrics")
    output = report.run(log=log)
    return {"logged": logged, "sent": sent, "metrics": metrics, "report": output}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rows", type=int, default=400, help="rows of the test split to send")
    parser.add_argument("--workers", type=int, default=2, help="server processes (2)")
    parser.add_argument(
        "--feedback-share", type=float, default=0.5, help="share of rows given feedback (0.5)"
    )
    parser.add_argument(
        "--model-dir", type=Path, help="model folder (default: MODEL_DIR or serving.model_dir)"
    )
    parser.add_argument(
        "--timeout", type=float, default=60.0,
        help="seconds for the API to start, for each answer and for the metrics to add up (60)",
    )  # fmt: skip
