"""params.yaml: what the pipeline trains (features, split, model, tracking).

`model.hyperparameters.<architecture>` goes to the estimator as it is: a new
hyperparameter is one line of params.yaml, no code.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import Field, model_validator

from .canvas import Canvas
from .errors import PipelineError
from .settings import Problem, Settings, Text


class Features(Settings):
    numeric: list[str] = Field(default_factory=list)
    categorical: list[str] = Field(default_factory=list)
    target: Text

    @property
    def columns(self) -> list[str]:
        """The model's input columns, numeric first."""
        return [*self.numeric, *self.categorical]

    @model_validator(mode="after")
    def _distinct(self) -> Features:
        if not self.columns:
            raise Problem("", "must list at least one numeric or categorical column")
        repeated = sorted({c for c in self.columns if self.columns.count(c) > 1})
        if repeated:
            raise Problem("", f"lists {', '.join(repeated)} more than once")
        if self.target in self.columns:
            raise Problem("target", f"({self.target}) must not also be a feature")
        return self


class Split(Settings):
    test_size: float = Field(gt=0, lt=1)
    seed: int


class Model(Settings):
    architecture: Text
    architecture_version: int
    hyperparameters: dict[str, dict[str, Any] | None] = Field(default_factory=dict)

    @property
    def selected_hyperparameters(self) -> dict[str, Any]:
        """Hyperparameters of the selected architecture ({} when none are set)."""
        return dict(self.hyperparameters.get(self.architecture) or {})


class Tracking(Settings):
    enabled: bool = True  # false: evaluate records nothing in MLflow
    uri: Text = "sqlite:///mlflow.db"
    experiment: Text = "pipeline"

    @property
    def effective_uri(self) -> str:
        """The tracking URI in use: MLFLOW_TRACKING_URI overrides params.yaml."""
        return os.environ.get("MLFLOW_TRACKING_URI") or self.uri


class Params(Settings):
    features: Features
    split: Split
    model: Model
    tracking: Tracking = Tracking()


load_params = Params.load  # load_params(Path("params.yaml"))


def check_target(params: Params, canvas: Canvas, params_path: Path, canvas_path: Path) -> None:
    """params.yaml's features.target must be the canvas's prediction_target."""
    if params.features.target != canvas.prediction_target:
        raise PipelineError(
            f"{params_path}: `features.target` is {params.features.target!r} but {canvas_path} "
            f"predicts {canvas.prediction_target!r}: make them the same."
        )
