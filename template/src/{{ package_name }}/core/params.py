"""params.yaml: what the pipeline trains (features, split, model, tracking).

Read into small frozen dataclasses; every problem is a PipelineError naming
the key and the fix (see settings.py).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .canvas import Canvas
from .errors import PipelineError
from .settings import Reader


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


def _features(reader: Reader) -> Features:
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
    return features


def _model(reader: Reader) -> Model:
    hyperparameters = reader.mapping("model.hyperparameters", {})
    for name, values in hyperparameters.items():
        if values is not None and not isinstance(values, dict):
            raise reader.fail(f"model.hyperparameters.{name}", "must be a mapping of values")
    return Model(
        architecture=reader.text("model.architecture"),
        architecture_version=reader.integer("model.architecture_version"),
        hyperparameters={name: dict(values or {}) for name, values in hyperparameters.items()},
    )


def load_params(path: Path) -> Params:
    """Read params.yaml: features, split, model and tracking sections."""
    reader = Reader.of_file(path)
    test_size = reader.number("split.test_size")
    if not 0 < test_size < 1:
        raise reader.fail("split.test_size", f"must be between 0 and 1 (got {test_size})")
    return Params(
        features=_features(reader),
        split=Split(test_size=test_size, seed=reader.integer("split.seed")),
        model=_model(reader),
        tracking=Tracking(
            enabled=reader.boolean("tracking.enabled", True),
            uri=reader.text("tracking.uri", "sqlite:///mlflow.db"),
            experiment=reader.text("tracking.experiment", "pipeline"),
        ),
    )


def check_target(params: Params, canvas: Canvas, params_path: Path, canvas_path: Path) -> None:
    """params.yaml's features.target must be the canvas's prediction_target."""
    if params.features.target != canvas.prediction_target:
        raise PipelineError(
            f"{params_path}: `features.target` is {params.features.target!r} but {canvas_path} "
            f"predicts {canvas.prediction_target!r}: make them the same."
        )
