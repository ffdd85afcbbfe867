"""Shared fixtures: a tiny data set that meets the test contract, and a tmp project.

The tests use their own canvas and params (below), not the project's files, so
they keep testing the package when you edit canvas.yaml or params.yaml for your
problem. test_config checks that your own files load.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

TEST_CANVAS: dict[str, Any] = {
    "prediction_target": "malignant",
    "success_metric": {"name": "roc_auc", "threshold": 0.5, "higher_is_better": True},
    # Generous: the gate times this machine's predictions, and a busy CI runner must
    # not refuse a test's model (test_gate.py sets a tiny budget to see a refusal).
    "latency_budget_ms": 10_000,
    "data_contract": {
        "min_rows": 20,
        "columns": {
            "radius": {"type": "float", "min": 5.0, "max": 40.0, "max_missing": 0.0},
            "texture": {"type": "float", "min": 5.0, "max": 50.0, "max_missing": 0.05},
            "area": {"type": "float", "min": 100.0, "max": 4000.0, "max_missing": 0.0},
            "smoothness": {"type": "float", "min": 0.0, "max": 0.3, "max_missing": 0.05},
            "clinic": {
                "type": "category",
                "allowed": ["north", "south", "east", "west"],
                "max_missing": 0.0,
            },
            "malignant": {"type": "int", "allowed": [0, 1], "max_missing": 0.0},
        },
    },
}

TEST_PARAMS: dict[str, Any] = {
    "features": {
        "numeric": ["radius", "texture", "area", "smoothness"],
        "categorical": ["clinic"],
        "target": "malignant",
    },
    "split": {"test_size": 0.25, "seed": 0},
    "model": {
        "architecture": "logistic_regression",
        "architecture_version": 1,
        "hyperparameters": {
            "logistic_regression": {"C": 1.0, "max_iter": 200},
            "random_forest": {"n_estimators": 10, "max_depth": 3},
            "gradient_boosting": {"max_iter": 20, "max_depth": 2},
        },
    },
    "tracking": {"enabled": False, "uri": "sqlite:///mlflow.db", "experiment": "tests"},
}


def make_frame(rows: int = 80, seed: int = 0) -> pd.DataFrame:
    """Deterministic rows within TEST_CANVAS's contract; the target is learnable."""
    rng = np.random.default_rng(seed)
    target = np.arange(rows) % 2
    radius = np.clip(12 + 5 * target + rng.normal(0, 1.5, rows), 6, 39)
    frame = pd.DataFrame(
        {
            "radius": radius.round(4),
            "texture": np.clip(18 + 3 * target + rng.normal(0, 2, rows), 6, 49).round(4),
            "area": (radius**2 * 3.1).round(2),
            "smoothness": np.clip(0.09 + 0.01 * target + rng.normal(0, 0.01, rows), 0.01, 0.29),
            "clinic": np.array(["north", "south", "east", "west"])[np.arange(rows) % 4],
            "malignant": target,
        }
    )
    frame["smoothness"] = frame["smoothness"].round(5)
    frame.loc[5, "texture"] = np.nan  # one missing value: 1/80 is within max_missing 0.05
    return frame


@dataclass
class TmpProject:
    """A project folder in tmp_path (the current directory during the test)."""

    root: Path
    params: dict[str, Any]
    canvas: dict[str, Any]

    def write_config(self) -> None:
        (self.root / "params.yaml").write_text(yaml.safe_dump(self.params, sort_keys=False))
        (self.root / "canvas.yaml").write_text(yaml.safe_dump(self.canvas, sort_keys=False))

    def set(self, section: str, dotted_key: str, value: Any) -> None:
        """Change one key of `params` or `canvas` (e.g. "params", "model.architecture")."""
        node = getattr(self, section)
        *parents, last = dotted_key.split(".")
        for part in parents:
            node = node[part]
        node[last] = value
        self.write_config()

    def write_data(self, frame: pd.DataFrame, path: str = "data/raw/dataset.csv") -> Path:
        target = self.root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        frame.to_csv(target, index=False, lineterminator="\n")
        return target


@pytest.fixture
def tiny_frame() -> pd.DataFrame:
    return make_frame()


@pytest.fixture
def project(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiny_frame: pd.DataFrame
) -> TmpProject:
    """tmp_path with canvas.yaml, params.yaml and data/raw/dataset.csv; cwd set to it."""
    # The same behaviour on a laptop and on a CI runner: tests that need CI set it.
    for variable in (
        "CI",
        "GITHUB_ACTIONS",
        "GITLAB_CI",
        "MLFLOW_TRACKING_URI",
        "DVC_EXP_NAME",
        "GITHUB_STEP_SUMMARY",
        "GITHUB_BASE_REF",
        "CI_MERGE_REQUEST_TARGET_BRANCH_NAME",
        "CI_DEFAULT_BRANCH",
    ):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.chdir(tmp_path)
    tmp = TmpProject(tmp_path, copy.deepcopy(TEST_PARAMS), copy.deepcopy(TEST_CANVAS))
    tmp.write_config()
    tmp.write_data(tiny_frame)
    return tmp
