"""monitoring.yaml: the settings level 4 adds, in a file of its own.

Every key has a default here, so a missing file, section or key keeps the
default; a key of the wrong type is a PipelineError naming the key. The
PREDICTION_LOG_PATH and PREDICTION_LOG_SINK environment variables override
`prediction_log.path` and `prediction_log.sink` (a container sets them).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

from ..core.errors import PipelineError
from ..core.settings import Reader

MONITORING_SETTINGS = Path("monitoring.yaml")
LOG_PATH_VARIABLE = "PREDICTION_LOG_PATH"
LOG_SINK_VARIABLE = "PREDICTION_LOG_SINK"
# Set on Cloud Run and in every Kubernetes pod: there the log goes to stdout.
PLATFORM_VARIABLES = ("K_SERVICE", "KUBERNETES_SERVICE_HOST")
BUILT_IN_SINKS = ("auto", "sqlite", "stdout")


@dataclass(frozen=True)
class LogSettings:
    sink: str = "auto"
    path: Path = Path("logs/predictions.db")
    retention_days: int = 90
    never_log: tuple[str, ...] = ()
    buffer_rows: int = 10_000
    batch_rows: int = 500
    flush_seconds: float = 0.5

    @property
    def chosen_sink(self) -> str:
        """The sink `auto` stands for here: stdout on Cloud Run or Kubernetes, else sqlite."""
        if self.sink != "auto":
            return self.sink
        on_platform = any(os.environ.get(name) for name in PLATFORM_VARIABLES)
        return "stdout" if on_platform else "sqlite"


@dataclass(frozen=True)
class MetricsSettings:
    feedback_window: int = 500
    min_feedback_rows: int = 30


@dataclass(frozen=True)
class ReportSettings:
    path: Path = Path("reports/monitoring.html")
    days: int = 7


@dataclass(frozen=True)
class DriftSettings:
    """The window and thresholds of `drift` (monitoring/drift.py), calibrated at 5,000 rows."""

    window_rows: int = 5_000
    min_rows: int = 2_000
    ks_statistic: float = 0.05
    psi: float = 0.1
    share_change: float = 0.05
    missing_change: float = 0.05
    refused_share: float = 0.02
    p_value: float = 0.01


@dataclass(frozen=True)
class PerformanceSettings:
    """The window and tolerances of `performance` (monitoring/performance.py)."""

    window: int = 500
    min_rows: int = 30
    max_drop: float = 0.05


@dataclass(frozen=True)
class MonitorSettings:
    """`monitor`: retrain every N days whatever the checks say (0: no cadence)."""

    retrain_every_days: int = 0


@dataclass(frozen=True)
class FetchSettings:
    """`fetch-window`: the BigQuery table of the cloud targets, and the days fetched."""

    bigquery_table: str = ""
    days: int = 7


@dataclass(frozen=True)
class MonitoringSettings:
    prediction_log: LogSettings = field(default_factory=LogSettings)
    metrics: MetricsSettings = field(default_factory=MetricsSettings)
    report: ReportSettings = field(default_factory=ReportSettings)
    drift: DriftSettings = field(default_factory=DriftSettings)
    performance: PerformanceSettings = field(default_factory=PerformanceSettings)
    monitor: MonitorSettings = field(default_factory=MonitorSettings)
    fetch_window: FetchSettings = field(default_factory=FetchSettings)


def _at_least(reader: Reader, key: str, value: float, minimum: float) -> None:
    if value < minimum:
        raise reader.fail(key, f"must be at least {minimum:g} (got {value:g})")


def _read_log(reader: Reader) -> LogSettings:
    default = LogSettings()
    sink = reader.text("prediction_log.sink", default.sink)
    if sink not in BUILT_IN_SINKS and ":" not in sink:
        raise reader.fail(
            "prediction_log.sink",
            f"must be one of {', '.join(BUILT_IN_SINKS)} or `module:factory` (got {sink!r})",
        )
    settings = LogSettings(
        sink=sink,
        path=Path(reader.text("prediction_log.path", str(default.path))),
        retention_days=reader.integer("prediction_log.retention_days", default.retention_days),
        never_log=tuple(reader.names("prediction_log.never_log")),
        buffer_rows=reader.integer("prediction_log.buffer_rows", default.buffer_rows),
        batch_rows=reader.integer("prediction_log.batch_rows", default.batch_rows),
        flush_seconds=reader.number("prediction_log.flush_seconds", default.flush_seconds),
    )
    _at_least(reader, "prediction_log.retention_days", settings.retention_days, 0)
    _at_least(reader, "prediction_log.buffer_rows", settings.buffer_rows, 1)
    _at_least(reader, "prediction_log.batch_rows", settings.batch_rows, 1)
    _at_least(reader, "prediction_log.flush_seconds", settings.flush_seconds, 0.01)
    return settings


def _read_metrics(reader: Reader) -> MetricsSettings:
    default = MetricsSettings()
    settings = MetricsSettings(
        feedback_window=reader.integer("metrics.feedback_window", default.feedback_window),
        min_feedback_rows=reader.integer("metrics.min_feedback_rows", default.min_feedback_rows),
    )
    _at_least(reader, "metrics.min_feedback_rows", settings.min_feedback_rows, 1)
    _at_least(
        reader, "metrics.feedback_window", settings.feedback_window, settings.min_feedback_rows
    )
    return settings


def _read_report(reader: Reader) -> ReportSettings:
    default = ReportSettings()
    settings = ReportSettings(
        path=Path(reader.text("report.path", str(default.path))),
        days=reader.integer("report.days", default.days),
    )
    _at_least(reader, "report.days", settings.days, 1)
    return settings


def _read_drift(reader: Reader) -> DriftSettings:
    default = DriftSettings()
    settings = DriftSettings(
        window_rows=reader.integer("drift.window_rows", default.window_rows),
        min_rows=reader.integer("drift.min_rows", default.min_rows),
        ks_statistic=reader.fraction("drift.ks_statistic", default.ks_statistic),
        psi=reader.number("drift.psi", default.psi),
        share_change=reader.fraction("drift.share_change", default.share_change),
        missing_change=reader.fraction("drift.missing_change", default.missing_change),
        refused_share=reader.fraction("drift.refused_share", default.refused_share),
        p_value=reader.fraction("drift.p_value", default.p_value),
    )
    _at_least(reader, "drift.min_rows", settings.min_rows, 1)
    _at_least(reader, "drift.window_rows", settings.window_rows, settings.min_rows)
    _at_least(reader, "drift.psi", settings.psi, 0)
    return settings


def _read_performance(reader: Reader) -> PerformanceSettings:
    default = PerformanceSettings()
    settings = PerformanceSettings(
        window=reader.integer("performance.window", default.window),
        min_rows=reader.integer("performance.min_rows", default.min_rows),
        max_drop=reader.number("performance.max_drop", default.max_drop),
    )
    _at_least(reader, "performance.min_rows", settings.min_rows, 1)
    _at_least(reader, "performance.window", settings.window, settings.min_rows)
    _at_least(reader, "performance.max_drop", settings.max_drop, 0)
    return settings


def _read_monitor(reader: Reader) -> MonitorSettings:
    default = MonitorSettings()
    days = reader.integer("monitor.retrain_every_days", default.retrain_every_days)
    _at_least(reader, "monitor.retrain_every_days", days, 0)
    return MonitorSettings(retrain_every_days=days)


def _read_fetch(reader: Reader) -> FetchSettings:
    default = FetchSettings()
    table = reader.get("fetch_window.bigquery_table", default.bigquery_table) or ""
    if not isinstance(table, str):
        raise reader.fail("fetch_window.bigquery_table", f"must be a text (got {table!r})")
    settings = FetchSettings(
        bigquery_table=table.strip(), days=reader.integer("fetch_window.days", default.days)
    )
    _at_least(reader, "fetch_window.days", settings.days, 1)
    return settings


def read_monitoring_settings(reader: Reader) -> MonitoringSettings:
    return MonitoringSettings(
        prediction_log=_read_log(reader),
        metrics=_read_metrics(reader),
        report=_read_report(reader),
        drift=_read_drift(reader),
        performance=_read_performance(reader),
        monitor=_read_monitor(reader),
        fetch_window=_read_fetch(reader),
    )


def load_monitoring_settings(path: Path = MONITORING_SETTINGS) -> MonitoringSettings:
    """Read monitoring.yaml (defaults when it is absent), then the environment's overrides."""
    found = path.is_file()
    settings = read_monitoring_settings(Reader.of_file(path)) if found else MonitoringSettings()
    log = settings.prediction_log
    log_path = os.environ.get(LOG_PATH_VARIABLE)
    if log_path:
        log = replace(log, path=Path(log_path))
    sink = os.environ.get(LOG_SINK_VARIABLE)
    if sink:
        if sink not in BUILT_IN_SINKS and ":" not in sink:
            raise PipelineError(
                f"{LOG_SINK_VARIABLE}={sink!r}: use one of {', '.join(BUILT_IN_SINKS)} "
                "or `module:factory`."
            )
        log = replace(log, sink=sink)
    return replace(settings, prediction_log=log)
