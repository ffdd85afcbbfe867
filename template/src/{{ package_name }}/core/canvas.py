"""canvas.yaml: what success means (metric, threshold, latency) and what valid data is.

The canvas is the team's file: the code reads it, never writes it, and later
levels add no key to it (their settings come in files they add whole).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .settings import Reader

METRIC_NAMES = ("roc_auc", "accuracy", "f1", "precision", "recall")
COLUMN_TYPES = ("float", "int", "category")


@dataclass(frozen=True)
class SuccessMetric:
    name: str
    threshold: float
    higher_is_better: bool

    def is_met(self, value: float) -> bool:
        return value >= self.threshold if self.higher_is_better else value <= self.threshold

    def verdict(self, value: float) -> str:
        """One line such as `roc_auc = 0.9812 (at least 0.95 wanted): meets the canvas goal`."""
        direction = "at least" if self.higher_is_better else "at most"
        outcome = "meets the canvas goal" if self.is_met(value) else "below the canvas goal"
        return f"{self.name} = {value:.4f} ({direction} {self.threshold} wanted): {outcome}"


@dataclass(frozen=True)
class ColumnRule:
    type: str
    min: float | None = None
    max: float | None = None
    allowed: list[Any] | None = None
    max_missing: float = 0.0


@dataclass(frozen=True)
class DataContract:
    min_rows: int
    columns: dict[str, ColumnRule] = field(default_factory=dict)


@dataclass(frozen=True)
class Canvas:
    prediction_target: str
    success_metric: SuccessMetric
    data_contract: DataContract
    latency_budget_ms: float | None = None


def _column_rule(reader: Reader, name: str, raw: Any) -> ColumnRule:
    key = f"data_contract.columns.{name}"
    if not isinstance(raw, dict):
        raise reader.fail(key, "must be a mapping such as {type: float, min: 0, max: 1}")
    column_type = raw.get("type")
    if column_type not in COLUMN_TYPES:
        raise reader.fail(f"{key}.type", f"must be one of {', '.join(COLUMN_TYPES)}")
    bounds = {}
    for bound in ("min", "max"):
        value = raw.get(bound)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise reader.fail(f"{key}.{bound}", f"must be a number (got {value!r})")
        bounds[bound] = value
    allowed = raw.get("allowed")
    if allowed is not None and (not isinstance(allowed, list) or not allowed):
        raise reader.fail(f"{key}.allowed", "must be a non-empty list of values")
    max_missing = raw.get("max_missing", 0.0)
    if isinstance(max_missing, bool) or not isinstance(max_missing, int | float):
        raise reader.fail(f"{key}.max_missing", f"must be a number (got {max_missing!r})")
    if not 0 <= max_missing <= 1:
        raise reader.fail(f"{key}.max_missing", "must be a fraction between 0 and 1")
    return ColumnRule(
        type=column_type,
        min=bounds["min"],
        max=bounds["max"],
        allowed=allowed,
        max_missing=float(max_missing),
    )


def load_canvas(path: Path) -> Canvas:
    """Read canvas.yaml: the prediction target, the success metric and the data contract."""
    reader = Reader.of_file(path)
    metric_name = reader.text("success_metric.name")
    if metric_name not in METRIC_NAMES:
        raise reader.fail("success_metric.name", f"must be one of {', '.join(METRIC_NAMES)}")
    success_metric = SuccessMetric(
        name=metric_name,
        threshold=reader.number("success_metric.threshold"),
        higher_is_better=reader.boolean("success_metric.higher_is_better", True),
    )
    columns = reader.mapping("data_contract.columns")
    if not columns:
        raise reader.fail("data_contract.columns", "must describe at least one column")
    contract = DataContract(
        min_rows=reader.integer("data_contract.min_rows", 1),
        columns={str(name): _column_rule(reader, str(name), raw) for name, raw in columns.items()},
    )
    latency = reader.get("latency_budget_ms", None)
    if latency is not None:
        latency = reader.number("latency_budget_ms")
        if latency <= 0:
            raise reader.fail("latency_budget_ms", f"must be a positive number (got {latency})")
    return Canvas(
        prediction_target=reader.text("prediction_target"),
        success_metric=success_metric,
        data_contract=contract,
        latency_budget_ms=latency,
    )
