"""GET /metrics: the API's Prometheus metrics, whose names and labels are the contract of
docs/monitoring.md (API_METRICS is the one list of them; `check-monitoring` checks that
dashboards and rules use no other).

Events and state are prometheus_client counters, a histogram and gauges: with several
uvicorn workers each writes its values to files in PROMETHEUS_MULTIPROC_DIR and whichever
answers a scrape adds them up. Facts known at scrape time (the model, the canvas budget, the
live metric) are computed by a collector when scraped. prometheus_client is imported inside
the functions: the API runs without the `monitoring` group until level 4 installs it.
"""

from __future__ import annotations

import atexit
import logging
import math
import os
import shutil
import tempfile
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric
    from prometheus_client.registry import CollectorRegistry

# (prediction, probability of the positive class, true outcome), newest last.
LiveRow = tuple[Any, float | None, Any]

MULTIPROCESS_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
# The text format every Prometheus version reads (render takes no Accept header).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# The canvas may leave latency_budget_ms out: the budget the load test uses then.
DEFAULT_LATENCY_BUDGET_MS = 200.0
# prometheus_client's default buckets (seconds); the latency budget is added.
BASE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
# The endpoints whose error counters exist from the start (the middleware's `handler`).
ERROR_HANDLERS = ("/predict", "/feedback")
LOGGER = logging.getLogger("uvicorn.error")


@dataclass(frozen=True)
class MetricSpec:
    """One metric of the contract. `scraped`: computed by the collector when scraped."""

    name: str
    kind: str  # counter, histogram or gauge
    help: str
    labels: tuple[str, ...] = ()
    scraped: bool = False


API_METRICS = (
    MetricSpec(
        "model_api_requests_total",
        "counter",
        "HTTP requests answered, by handler, method and status.",
        ("handler", "method", "status"),
    ),
    MetricSpec(
        "model_api_request_duration_seconds",
        "histogram",
        "Time to answer a request, server side, in seconds.",
        ("handler", "method"),
    ),
    MetricSpec(
        "model_api_errors_total", "counter", "Requests answered 500 or above.", ("handler",)
    ),
    MetricSpec(
        "model_api_predictions_total", "counter", "Rows predicted, by class.", ("prediction",)
    ),
    MetricSpec(
        "model_api_refused_rows_total",
        "counter",
        "Rows refused for what was sent: the contract (422), a body not read (400, 413, 415).",
    ),
    MetricSpec("model_api_feedback_total", "counter", "Feedback recorded (POST /feedback)."),
    MetricSpec(
        "model_api_model_info",
        "gauge",
        "The model served: always 1, with its name and version.",
        ("name", "version"),
        scraped=True,
    ),
    MetricSpec(
        "model_api_latency_budget_seconds",
        "gauge",
        "The canvas latency budget (latency_budget_ms), in seconds.",
        scraped=True,
    ),
    MetricSpec(
        "model_api_prediction_log_written_total", "counter", "Rows the prediction log wrote."
    ),
    MetricSpec(
        "model_api_prediction_log_dropped_total",
        "counter",
        "Rows the prediction log dropped: its buffer was full.",
    ),
    MetricSpec(
        "model_api_prediction_log_buffered_rows",
        "gauge",
        "Rows waiting to be written to the prediction log.",
    ),
    MetricSpec(
        "model_api_prediction_log_healthy",
        "gauge",
        "1 when the prediction log's last write succeeded in every process, else 0.",
    ),
    MetricSpec(
        "model_api_live_metric",
        "gauge",
        "The canvas success metric on the latest feedback joined to its predictions.",
        ("metric",),
        scraped=True,
    ),
    MetricSpec(
        "model_api_live_metric_goal",
        "gauge",
        "The canvas threshold of the success metric.",
        ("metric",),
        scraped=True,
    ),
    MetricSpec(
        "model_api_live_metric_meets_goal",
        "gauge",
        "1 when the live metric meets the canvas goal, else 0.",
        ("metric",),
        scraped=True,
    ),
    MetricSpec(
        "model_api_live_metric_rows",
        "gauge",
        "Feedback rows (answered, with an outcome) in the live metric's window.",
        ("metric",),
        scraped=True,
    ),
)
METRIC_NAMES = tuple(spec.name for spec in API_METRICS)
SPECS = {spec.name: spec for spec in API_METRICS}


def series_names() -> frozenset[str]:
    """The series names a query can use: a histogram adds _bucket, _sum and _count."""
    names: set[str] = set()
    for spec in API_METRICS:
        if spec.kind == "histogram":
            names.update(f"{spec.name}{suffix}" for suffix in ("_bucket", "_sum", "_count"))
        else:
            names.add(spec.name)
    return frozenset(names)


# ---------------------------------------------------------------------------
# Several worker processes


def prepare_multiprocess(workers: int) -> None:
    """Before uvicorn starts its workers: give them one PROMETHEUS_MULTIPROC_DIR, wiped.

    Each worker writes its values to files there, named by its process id; the
    files of an earlier run would be added to this run's counts, so they are
    deleted. Unset with one worker: nothing to do, the process keeps its
    values in memory. Unset with several: a fresh temporary folder, removed
    when this (the parent) process exits. serve.py calls it before the app is
    built; workers, spawned afterwards, inherit the variable.
    """
    folder = os.environ.get(MULTIPROCESS_VARIABLE)
    if folder:
        wipe_multiprocess_folder(Path(folder))
    elif workers > 1:
        created = tempfile.mkdtemp(prefix="prometheus-multiproc-")
        atexit.register(shutil.rmtree, created, ignore_errors=True)
        os.environ[MULTIPROCESS_VARIABLE] = created


def wipe_multiprocess_folder(folder: Path) -> None:
    """Create the folder if needed, and delete the value files of an earlier run."""
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("*.db"):
        stale.unlink(missing_ok=True)


def multiprocess_folder() -> Path | None:
    """The folder this process writes its values to, or None when they stay in memory.

    prometheus_client chooses when it is first imported: a variable set later
    (in the parent by prepare_multiprocess, say) does not change this process.
    """
    from prometheus_client import values

    folder = os.environ.get(MULTIPROCESS_VARIABLE)
    if not folder or values.ValueClass is values.MutexValue:
        return None
    return Path(folder)


def forget_dead_processes(folder: Path) -> None:
    """Drop the live gauges (buffered rows, log health) of workers that are gone.

    uvicorn replaces a worker that dies; its counters must still count, but its
    last buffered rows and health must not: prometheus_client's
    mark_process_dead removes exactly those. Only on POSIX, where signal 0
    checks that a process exists without touching it.
    """
    if os.name != "posix":
        return
    from prometheus_client import multiprocess

    pids = {_pid_of(path) for path in folder.glob("gauge_live*_*.db")}
    for pid in sorted(pid for pid in pids if pid is not None):
        if not _is_running(pid):
            multiprocess.mark_process_dead(pid, str(folder))


def _pid_of(path: Path) -> int | None:
    tail = path.stem.rpartition("_")[2]
    return int(tail) if tail.isdigit() else None


def _is_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, under another user
    return True


# ---------------------------------------------------------------------------
# The live value of the canvas success metric


def positive_label(labels: set[Any]) -> Any | None:
    """The class the metric calls positive, as scikit-learn does in evaluate: 1 for 0/1 (or
    booleans), else the greater of two labels (the API's probability is its). None otherwise."""
    if labels <= {0, 1}:
        return 1
    if len(labels) != 2:
        return None
    try:
        return max(labels)
    except TypeError:  # labels of different types: no order
        return None


def live_metric_value(name: str, rows: Sequence[LiveRow]) -> float | None:
    """The canvas metric on answered rows with their outcome, by evaluate's compute_metrics (the
    one implementation); None where it is undefined (ROC AUC of one class or of no probability)."""
    from ..pipeline.evaluate import compute_metrics

    if name == "roc_auc":
        rows = [row for row in rows if row[1] is not None]
    try:
        positive = positive_label({value for row in rows for value in (row[0], row[2])})
    except TypeError:  # an unhashable outcome: not a class
        return None
    if not rows or (positive is None and name != "accuracy"):
        return None
    actual = [outcome == positive for _, _, outcome in rows]
    predicted = [prediction == positive for prediction, _, _ in rows]
    if name == "accuracy":  # any classes: the share of rows predicted right
        actual = [outcome == prediction for prediction, _, outcome in rows]
        predicted = [True] * len(rows)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ROC AUC of one class: NaN, and a warning
        value = compute_metrics(actual, [row[1] or 0.0 for row in rows], predicted)[name]
    return None if math.isnan(value) else value


# ---------------------------------------------------------------------------
# The metrics of one API process


class ScrapeTimeMetrics:
    """The collector of what is computed when scraped: model, budget, live metric."""

    def __init__(self, owner: ApiMetrics) -> None:
        self.owner = owner

    def describe(self) -> list[Metric]:
        """The families without samples: registering never computes the live metric."""
        return list(self._families(with_samples=False))

    def collect(self) -> Iterator[Metric]:
        yield from self._families(with_samples=True)

    def _families(self, *, with_samples: bool) -> Iterator[Metric]:
        from prometheus_client.core import GaugeMetricFamily

        owner = self.owner
        families = {
            spec.name: GaugeMetricFamily(spec.name, spec.help, labels=spec.labels)
            for spec in API_METRICS
            if spec.scraped
        }
        if with_samples:
            families["model_api_model_info"].add_metric(
                [owner.model_name, owner.model_version], 1.0
            )
            families["model_api_latency_budget_seconds"].add_metric([], owner.budget_seconds)
            self._add_live_metric(families)
        yield from families.values()

    def _add_live_metric(self, families: dict[str, Any]) -> None:
        """Goal and rows always; the value and its verdict from min_feedback_rows on."""
        goal = self.owner.success_metric
        if goal is None:
            return  # no canvas: no goal to measure against
        labels = [goal.name]
        families["model_api_live_metric_goal"].add_metric(labels, float(goal.threshold))
        rows = self.owner.joined_rows()
        if rows is None:
            return  # the log could not be read: said in the server's log
        families["model_api_live_metric_rows"].add_metric(labels, float(len(rows)))
        if len(rows) < self.owner.min_feedback_rows:
            return
        value = live_metric_value(goal.name, rows)
        if value is None:
            return
        families["model_api_live_metric"].add_metric(labels, value)
        families["model_api_live_metric_meets_goal"].add_metric(
            labels, 1.0 if goal.is_met(value) else 0.0
        )


class ApiMetrics:
    """The metrics of one API process; render() answers GET /metrics."""

    def __init__(
        self,
        *,
        model_name: str,
        model_version: str,
        canvas: Any,
        settings: Any,
        live_rows: Callable[[int], list[LiveRow]],
        log_health: Callable[[], dict[str, Any]],
    ) -> None:
        """canvas: a core.canvas.Canvas, or None when the model folder records none.

        settings: MonitoringSettings or its `metrics` section.
        """
        from prometheus_client import CollectorRegistry, disable_created_metrics

        self.live_rows = live_rows
        self.log_health = log_health
        self.model_name = model_name
        self.model_version = str(model_version)
        self.success_metric = getattr(canvas, "success_metric", None)
        budget_ms = getattr(canvas, "latency_budget_ms", None) or DEFAULT_LATENCY_BUDGET_MS
        self.budget_seconds = float(budget_ms) / 1000
        metrics_settings = getattr(settings, "metrics", settings)
        self.feedback_window = int(metrics_settings.feedback_window)
        self.min_feedback_rows = int(metrics_settings.min_feedback_rows)
        # `_created` series: not in the contract, and absent in multiprocess mode.
        disable_created_metrics()
        self.folder = multiprocess_folder()
        self.scrape_time = ScrapeTimeMetrics(self)
        self.registry: CollectorRegistry | None = None
        self._children: dict[tuple[int, tuple[str, ...]], Any] = {}
        if self.folder is None:
            self.registry = CollectorRegistry()
        else:
            self.folder.mkdir(parents=True, exist_ok=True)
        self._create_metrics(self.registry)
        if self.registry is not None:
            self.registry.register(self.scrape_time)

    def _create_metrics(self, registry: CollectorRegistry | None) -> None:
        """Unregistered (registry None) in multiprocess mode: the files are the registry."""
        from prometheus_client import Counter, Gauge, Histogram

        def counter(name: str) -> Any:
            spec = SPECS[name]
            return Counter(spec.name, spec.help, spec.labels, registry=registry)

        self._requests = counter("model_api_requests_total")
        self._errors = counter("model_api_errors_total")
        self._predictions = counter("model_api_predictions_total")
        self._refused = counter("model_api_refused_rows_total")
        self._feedback = counter("model_api_feedback_total")
        self._written = counter("model_api_prediction_log_written_total")
        self._dropped = counter("model_api_prediction_log_dropped_total")
        duration = SPECS["model_api_request_duration_seconds"]
        self._duration = Histogram(
            duration.name,
            duration.help,
            duration.labels,
            registry=registry,
            buckets=latency_buckets(self.budget_seconds),
        )
        buffered = SPECS["model_api_prediction_log_buffered_rows"]
        # The rows waiting in all live workers; a dead worker's are forgotten.
        self._buffered = Gauge(
            buffered.name, buffered.help, registry=registry, multiprocess_mode="livesum"
        )
        healthy = SPECS["model_api_prediction_log_healthy"]
        # Healthy only when every live worker is: one failing log is a failing log.
        self._healthy = Gauge(
            healthy.name, healthy.help, registry=registry, multiprocess_mode="livemin"
        )
        self._healthy.set(1)
        # A series born at its first increment hides that increment from rate():
        # the error counters of the two model endpoints start at 0.
        for handler in ERROR_HANDLERS:
            self._errors.labels(handler=handler)

    def observe_request(self, handler: str, method: str, status: int, seconds: float) -> None:
        """One HTTP request answered (every endpoint but /metrics itself)."""
        self._child(self._requests, handler, method, str(status)).inc()
        self._child(self._duration, handler, method).observe(seconds)
        if status >= 500:
            self._child(self._errors, handler).inc()

    def observe_rows(self, predictions: list[Any], refused: int) -> None:
        """The classes predicted by one /predict request, and its rows refused."""
        for prediction in predictions:
            self._child(self._predictions, str(prediction)).inc()
        if refused:
            self._refused.inc(refused)

    def _child(self, metric: Any, *labels: str) -> Any:
        """The metric's child for these label values, kept: `labels()` costs microseconds a call."""
        key = (id(metric), labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def observe_feedback(self) -> None:
        """One feedback recorded."""
        self._feedback.inc()

    def log_written(self, rows: int) -> None:
        """Rows the prediction log wrote to its sink."""
        if rows:
            self._written.inc(rows)

    def log_dropped(self, rows: int) -> None:
        """Rows the prediction log dropped (its buffer was full)."""
        if rows:
            self._dropped.inc(rows)

    def set_log_state(self, buffered: int, healthy: bool) -> None:
        """The log's buffered rows and whether its last write succeeded."""
        self._buffered.set(buffered)
        self._healthy.set(1 if healthy else 0)

    def joined_rows(self) -> list[LiveRow] | None:
        """The window of answered rows with feedback; None (and a warning) if unreadable.

        A scrape must not fail because the log cannot be read: the log's own
        metrics and /health report that.
        """
        try:
            rows = self.live_rows(self.feedback_window)
        except Exception as error:
            LOGGER.warning("metrics: no live metric, the prediction log cannot be read: %s", error)
            return None
        return [row for row in rows if row[0] is not None]

    def refresh_log_state(self) -> None:
        """This process's log state as the log reports it now (PredictionLog.health())."""
        try:
            health = self.log_health()
        except Exception as error:
            LOGGER.warning("metrics: the prediction log's state is unknown: %s", error)
            return
        buffered = health.get("buffered")
        healthy = health.get("healthy")
        if isinstance(buffered, int) and isinstance(healthy, bool):
            self.set_log_state(buffered, healthy)

    def scrape_registry(self) -> CollectorRegistry:
        """This process's registry; with several workers, a fresh one that reads all their files."""
        if self.registry is not None:
            return self.registry
        from prometheus_client import CollectorRegistry, multiprocess

        assert self.folder is not None  # multiprocess mode
        forget_dead_processes(self.folder)
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=str(self.folder))
        registry.register(self.scrape_time)
        return registry

    def render(self) -> tuple[bytes, str]:
        """The scrape body and its content type."""
        from prometheus_client import generate_latest

        self.refresh_log_state()
        return generate_latest(self.scrape_registry()), CONTENT_TYPE


def latency_buckets(budget_seconds: float) -> tuple[float, ...]:
    """The default buckets plus the budget: p95 against the budget is exact there."""
    return tuple(sorted({*BASE_BUCKETS, round(budget_seconds, 6)}))
