"""Fixtures of the serving tests: a model folder built from the tiny test frame.

The folder is built once per session (training and the ONNX conversion take
a second) and copied into each test's tmp project as models/serving, with the
test split as data/processed/test.csv: the commands' defaults find both.
"""

from __future__ import annotations

import copy
import shutil
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from ..conftest import TEST_CANVAS, TEST_PARAMS, make_frame
from ..package import load

canvas_file = load("core.canvas")
params_file = load("core.params")
preprocess = load("pipeline.preprocess")
train = load("pipeline.train")
model_folder = load("serving.model_folder")

VERSION = "3"


def build_folder(
    root: Path,
    architecture: str = "logistic_regression",
    canvas: dict[str, Any] | None = None,
    fast: bool = True,
    coded_category: bool = False,
) -> Path:
    """Train on the tiny frame and write root/serving; return its path.

    coded_category adds `visits`, a categorical feature coded as whole numbers.
    """
    params_data = copy.deepcopy(TEST_PARAMS)
    params_data["model"]["architecture"] = architecture
    canvas_data = copy.deepcopy(canvas or TEST_CANVAS)
    frame = make_frame()
    if coded_category:
        frame["visits"] = [position % 3 for position in range(len(frame))]
        params_data["features"]["categorical"].append("visits")
        rule = {"type": "int", "allowed": [0, 1, 2], "max_missing": 0.0}
        canvas_data["data_contract"]["columns"]["visits"] = rule
    root.mkdir(parents=True, exist_ok=True)
    (root / "params.yaml").write_text(yaml.safe_dump(params_data))
    (root / "canvas.yaml").write_text(yaml.safe_dump(canvas_data))
    params = params_file.load_params(root / "params.yaml")
    canvas_settings = canvas_file.load_canvas(root / "canvas.yaml")
    selected = frame[[*params.features.columns, params.features.target]]
    train_split, test_split = preprocess.split(selected, params.features.target, params.split)
    model = train.fit(params, train_split)
    metadata = model_folder.describe_model(
        params,
        canvas_settings,
        version=VERSION,
        run_id="run-1",
        git_commit="0123abc",
        data_version="d41d8cd9",
    )
    test_split.to_csv(root / "test.csv", index=False)
    return_path = root / "serving"
    model_folder.write_model_folder(return_path, model, metadata, test_split, fast=fast)
    return return_path


@pytest.fixture(scope="session")
def built_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_folder(tmp_path_factory.mktemp("built"))


@pytest.fixture
def model_dir(project: Any, built_folder: Path) -> Path:
    """models/serving and data/processed/test.csv in the tmp project (the cwd)."""
    target = project.root / "models" / "serving"
    shutil.copytree(built_folder, target)
    test_data = project.root / "data" / "processed" / "test.csv"
    test_data.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(built_folder.parent / "test.csv", test_data)
    return target


@pytest.fixture
def test_rows(built_folder: Path) -> pd.DataFrame:
    return pd.read_csv(built_folder.parent / "test.csv")
