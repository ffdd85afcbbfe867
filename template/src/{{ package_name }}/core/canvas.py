"""canvas.yaml: what success means (metric, threshold, latency) and what valid data is.

The canvas is the team's file: the code reads it, never writes it, and later
levels add no key to it (their settings come in files they add whole).
"""

from __future__ import annotations

from typing import Any, Literal, get_args

from pydantic import Field

from .settings import Settings, Text

MetricName = Literal["roc_auc", "accuracy", "f1", "precision", "recall"]
METRIC_NAMES: tuple[str, ...] = get_args(MetricName)


class SuccessMetric(Settings):
    name: MetricName
    threshold: float
    higher_is_better: bool = True

    def is_met(self, value: float) -> bool:
        return value >= self.threshold if self.higher_is_better else value <= self.threshold

    def verdict(self, value: float) -> str:
        """One line such as `roc_auc = 0.9812 (at least 0.95 wanted): meets the canvas goal`."""
        direction = "at least" if self.higher_is_better else "at most"
        outcome = "meets the canvas goal" if self.is_met(value) else "below the canvas goal"
        return f"{self.name} = {value:.4f} ({direction} {self.threshold} wanted): {outcome}"


class ColumnRule(Settings):
    """One column of the data contract: its type, inclusive bounds, values, missing share."""

    type: Literal["float", "int", "category"]
    min: float | None = None
    max: float | None = None
    allowed: list[Any] | None = Field(default=None, min_length=1)
    max_missing: float = Field(default=0.0, ge=0, le=1)


class DataContract(Settings):
    min_rows: int = 1
    columns: dict[str, ColumnRule] = Field(min_length=1)


class Canvas(Settings):
    business_question: str | None = None
    prediction_target: Text
    success_metric: SuccessMetric
    data_contract: DataContract
    latency_budget_ms: float | None = Field(default=None, gt=0)


load_canvas = Canvas.load  # load_canvas(Path("canvas.yaml"))
