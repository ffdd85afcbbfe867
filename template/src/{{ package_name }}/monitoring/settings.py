"""monitoring.yaml: the settings level 4 adds, in a file of its own, as one model.

Every key has its default below, so a missing file, section or key keeps the
default; a key of the wrong type is a PipelineError naming the key. The
PREDICTION_LOG_PATH and PREDICTION_LOG_SINK environment variables override
`prediction_log.path` and `prediction_log.sink` (a container sets them).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, StringConstraints, field_validator, model_validator

from ..core.settings import PathSetting, Problem, Settings, Text

MONITORING_SETTINGS = Path("monitoring.yaml")
LOG_PATH_VARIABLE = "PREDICTION_LOG_PATH"
LOG_SINK_VARIABLE = "PREDICTION_LOG_SINK"
VARIABLES = {"prediction_log.path": LOG_PATH_VARIABLE, "prediction_log.sink": LOG_SINK_VARIABLE}
# Set on Cloud Run and in every Kubernetes pod: there the log goes to stdout.
PLATFORM_VARIABLES = ("K_SERVICE", "KUBERNETES_SERVICE_HOST")
BUILT_IN_SINKS = ("auto", "sqlite", "stdout")
# A whole number of at least 1.
Count = Annotated[int, Field(ge=1)]


def _window(window: str, smallest: str) -> Any:
    """A check that `window` holds at least `smallest` (both fields of the model)."""

    def check(settings: Settings) -> Settings:
        if getattr(settings, window) < getattr(settings, smallest):
            wanted = f"must be at least {smallest} ({getattr(settings, smallest)})"
            raise Problem(window, f"{wanted} (got {getattr(settings, window)})")
        return settings

    return model_validator(mode="after")(check)


class LogSettings(Settings):
    sink: Text = "auto"
    path: PathSetting = Path("logs/predictions.db")
    retention_days: int = Field(default=90, ge=0)
    never_log: Annotated[tuple[str, ...], Field(strict=False)] = ()
    buffer_rows: Count = 10_000
    batch_rows: Count = 500
    flush_seconds: float = Field(default=0.5, ge=0.01)

    @field_validator("sink")
    @classmethod
    def _known_sink(cls, sink: str) -> str:
        if sink not in BUILT_IN_SINKS and ":" not in sink:
            choices = ", ".join(BUILT_IN_SINKS)
            raise ValueError(f"must be one of {choices} or `module:factory` (got {sink!r})")
        return sink

    @property
    def chosen_sink(self) -> str:
        """The sink `auto` stands for here: stdout on Cloud Run or Kubernetes, else sqlite."""
        if self.sink != "auto":
            return self.sink
        on_platform = any(os.environ.get(name) for name in PLATFORM_VARIABLES)
        return "stdout" if on_platform else "sqlite"


class MetricsSettings(Settings):
    feedback_window: int = 500
    min_feedback_rows: Count = 30
    _check = _window("feedback_window", "min_feedback_rows")


class ReportSettings(Settings):
    path: PathSetting = Path("reports/monitoring.html")
    days: Count = 7


Fraction = Annotated[float, Field(ge=0, le=1)]


class DriftSettings(Settings):
    """The window and thresholds of `drift` (monitoring/drift.py), calibrated at 5,000 rows."""

    window_rows: int = 5_000
    min_rows: Count = 2_000
    ks_statistic: Fraction = 0.05
    psi: float = Field(default=0.1, ge=0)
    share_change: Fraction = 0.05
    missing_change: Fraction = 0.05
    refused_share: Fraction = 0.02
    p_value: Fraction = 0.01
    _check = _window("window_rows", "min_rows")


class PerformanceSettings(Settings):
    """The window and tolerances of `performance` (monitoring/performance.py)."""

    window: int = 500
    min_rows: Count = 30
    max_drop: float = Field(default=0.05, ge=0)
    _check = _window("window", "min_rows")


class MonitorSettings(Settings):
    """`monitor`: retrain every N days whatever the checks say (0: no cadence)."""

    retrain_every_days: int = Field(default=0, ge=0)


class FetchSettings(Settings):
    """`fetch-window`: the BigQuery table of the cloud targets, and the days fetched."""

    bigquery_table: Annotated[str, StringConstraints(strip_whitespace=True)] = ""
    days: Count = 7


class MonitoringSettings(Settings):
    prediction_log: LogSettings = LogSettings()
    metrics: MetricsSettings = MetricsSettings()
    report: ReportSettings = ReportSettings()
    drift: DriftSettings = DriftSettings()
    performance: PerformanceSettings = PerformanceSettings()
    monitor: MonitorSettings = MonitorSettings()
    fetch_window: FetchSettings = FetchSettings()


def load_monitoring_settings(path: Path = MONITORING_SETTINGS) -> MonitoringSettings:
    """Read monitoring.yaml (defaults when it is absent), then the environment's overrides."""
    return MonitoringSettings.load(path, optional=True, variables=VARIABLES)
