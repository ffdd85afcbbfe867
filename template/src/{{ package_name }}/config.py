"""Load and check params.yaml (how to train) and canvas.yaml (what success means).

Both files are read into small frozen dataclasses. Any problem (a missing file,
a YAML syntax error, a missing key, a value of the wrong type) raises a
PipelineError that names the file, the key and the fix.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .errors import PipelineError

METRIC_NAMES = ("roc_auc", "accuracy", "f1", "precision", "recall")
COLUMN_TYPES = ("float", "int", "category")


@dataclass(frozen=True)
class Features:
    numeric: list[str]
    categorical: list[str]
    target: str

    @property
    def columns(self) -> list[str]:
        """The model's input columns, numeric first."""
        return [*self.numeric, *self.categorical]


@dataclass(frozen=True)
class Split:
    test_size: float
    seed: int


@dataclass(frozen=True)
class Model:
    architecture: str
    architecture_version: int
    hyperparameters: dict[str, dict[str, Any]]

    @property
    def selected_hyperparameters(self) -> dict[str, Any]:
        """Hyperparameters of the selected architecture ({} when none are set)."""
        return dict(self.hyperparameters.get(self.architecture) or {})


@dataclass(frozen=True)
class Tracking:
    enabled: bool
    uri: str
    experiment: str

    @property
    def effective_uri(self) -> str:
        """The tracking URI in use: MLFLOW_TRACKING_URI overrides params.yaml."""
        return os.environ.get("MLFLOW_TRACKING_URI") or self.uri


@dataclass(frozen=True)
class Params:
    features: Features
    split: Split
    model: Model
    tracking: Tracking


@dataclass(frozen=True)
class SuccessMetric:
    name: str
    threshold: float
    higher_is_better: bool

    def is_met(self, value: float) -> bool:
        return value >= self.threshold if self.higher_is_better else value <= self.threshold

    def verdict(self, value: float) -> str:
        """One line such as `roc_auc = 0.9812 (threshold 0.95): meets the canvas goal`."""
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


def read_yaml(path: Path) -> dict[str, Any]:
    """Read a YAML mapping; a missing file or a syntax error becomes a PipelineError."""
    if not path.is_file():
        raise PipelineError(f"{path} is missing: run the command from the project root.")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise PipelineError(f"{path} is not valid YAML{where}: {problem}.") from None
    if not isinstance(data, dict):
        raise PipelineError(f"{path} must hold a YAML mapping (key: value lines).")
    return data


class _Reader:
    """Fetch dotted keys from a mapping with type checks and precise messages."""

    def __init__(self, data: dict[str, Any], source: Path) -> None:
        self.data = data
        self.source = source

    def fail(self, key: str, problem: str) -> PipelineError:
        return PipelineError(f"{self.source}: `{key}` {problem}.")

    def get(self, key: str, default: Any = ...) -> Any:
        node: Any = self.data
        for part in key.split("."):
            if not isinstance(node, dict) or part not in node:
                if default is not ...:
                    return default
                raise self.fail(key, "is missing")
            node = node[part]
        return node

    def text(self, key: str, default: Any = ...) -> str:
        value = self.get(key, default)
        if not isinstance(value, str) or not value.strip():
            raise self.fail(key, f"must be a non-empty text (got {value!r})")
        return value

    def number(self, key: str, default: Any = ...) -> float:
        value = self.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(key, f"must be a number (got {value!r})")
        return float(value)

    def integer(self, key: str, default: Any = ...) -> int:
        value = self.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(key, f"must be a whole number (got {value!r})")
        return value

    def boolean(self, key: str, default: Any = ...) -> bool:
        value = self.get(key, default)
        if not isinstance(value, bool):
            raise self.fail(key, f"must be true or false (got {value!r})")
        return value

    def names(self, key: str) -> list[str]:
        value = self.get(key, [])
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.fail(key, f"must be a list of column names (got {value!r})")
        return list(value)

    def mapping(self, key: str, default: Any = ...) -> dict[str, Any]:
        value = self.get(key, default)
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self.fail(key, f"must be a mapping (got {value!r})")
        return value


def load_params(path: Path) -> Params:
    """Read params.yaml: features, split, model and tracking sections."""
    reader = _Reader(read_yaml(path), path)

    features = Features(
        numeric=reader.names("features.numeric"),
        categorical=reader.names("features.categorical"),
        target=reader.text("features.target"),
    )
    if not features.columns:
        raise reader.fail("features", "must list at least one numeric or categorical column")
    repeated = sorted({c for c in features.columns if features.columns.count(c) > 1})
    if repeated:
        raise reader.fail("features", f"lists {', '.join(repeated)} more than once")
    if features.target in features.columns:
        raise reader.fail("features.target", f"({features.target}) must not also be a feature")

    test_size = reader.number("split.test_size")
    if not 0 < test_size < 1:
        raise reader.fail("split.test_size", f"must be between 0 and 1 (got {test_size})")
    split = Split(test_size=test_size, seed=reader.integer("split.seed"))

    hyperparameters = reader.mapping("model.hyperparameters", {})
    for name, values in hyperparameters.items():
        if values is not None and not isinstance(values, dict):
            raise reader.fail(f"model.hyperparameters.{name}", "must be a mapping of values")
    model = Model(
        architecture=reader.text("model.architecture"),
        architecture_version=reader.integer("model.architecture_version"),
        hyperparameters={name: dict(values or {}) for name, values in hyperparameters.items()},
    )

    tracking = Tracking(
        enabled=reader.boolean("tracking.enabled", True),
        uri=reader.text("tracking.uri", "sqlite:///mlflow.db"),
        experiment=reader.text("tracking.experiment", "pipeline"),
    )
    return Params(features=features, split=split, model=model, tracking=tracking)


def _column_rule(reader: _Reader, name: str, raw: Any) -> ColumnRule:
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
    reader = _Reader(read_yaml(path), path)
    metric_name = reader.text("success_metric.name")
    if metric_name not in METRIC_NAMES:
        raise reader.fail("success_metric.name", f"must be one of {', '.join(METRIC_NAMES)}")
    success_metric = SuccessMetric(
        name=metric_name,
        threshold=reader.number("success_metric.threshold"),
        higher_is_better=reader.boolean("success_metric.higher_is_better", True),
    )
    min_rows = reader.integer("data_contract.min_rows", 1)
    columns = reader.mapping("data_contract.columns")
    if not columns:
        raise reader.fail("data_contract.columns", "must describe at least one column")
    contract = DataContract(
        min_rows=min_rows,
        columns={str(name): _column_rule(reader, str(name), raw) for name, raw in columns.items()},
    )
    latency = reader.get("latency_budget_ms", None)
    return Canvas(
        prediction_target=reader.text("prediction_target"),
        success_metric=success_metric,
        data_contract=contract,
        latency_budget_ms=latency if isinstance(latency, int | float) else None,
    )


def check_target(params: Params, canvas: Canvas, params_path: Path, canvas_path: Path) -> None:
    """params.yaml's features.target must be the canvas's prediction_target."""
    if params.features.target != canvas.prediction_target:
        raise PipelineError(
            f"{params_path}: `features.target` is {params.features.target!r} but {canvas_path} "
            f"predicts {canvas.prediction_target!r}: make them the same."
        )
