"""The local retraining loop, end to end: retrained on feedback, judged by the gate.

SLOW (marked `slow`): about 3 minutes on 2 cores. It trains four times with
`dvc repro`, registers with MLflow and starts the API twice. Skip it with
`uv run poe test -m "not slow"`.

The loop runs in a copy of this project in tmp (dvc.yaml, src/), with the
tests' own params, canvas (tracking on) and data (conftest.make_frame), so
that it never touches this project's data or registry, and keeps working
when you change yours. The first test finds no champion: the loop trains
and promotes one, then sends drifted traffic with true outcomes and
retrains on that feedback. The second sends poisoned feedback (the training
rows, their outcomes flipped). Whether a retrained model beats the champion
is the models' matter, not the loop's: the tests check what must hold either
way (the gate decided with its reasons and the registry followed it, the
data version changed, no test row reached training). test_gate.py checks
the gate's decisions on models built to be better or worse.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from ..conftest import TEST_CANVAS, TEST_PARAMS, make_frame
from ..package import load

loop = load("monitoring.loop")
files = load("core.files")
params_file = load("core.params")
preprocess = load("pipeline.preprocess")

pytestmark = [
    pytest.mark.slow,
    # MLflow's SQLAlchemy store, imported when the loop first opens the registry, uses
    # a loader SQLAlchemy 2.1 deprecates: MLflow's to fix, harmless here.
    pytest.mark.filterwarnings("ignore:The ``noload`` loader strategy:DeprecationWarning"),
]

# absolute(), not resolve(): the project holding this file, even through a symlink.
PROJECT_ROOT = Path(__file__).absolute().parents[2]
DATA = Path("data/raw/dataset.csv")
DATA_ROWS = 600
ROWS, FEEDBACK_SHARE = 600, 0.5  # 600 rows of traffic, 300 of them with feedback
CLEARED = (
    "CI", "GITHUB_ACTIONS", "GITLAB_CI", "MLFLOW_TRACKING_URI", "GITHUB_OUTPUT",
    "GITHUB_STEP_SUMMARY", "PREDICTION_LOG_PATH", "PREDICTION_LOG_SINK", "MODEL_DIR",
    "DVC_EXP_NAME",
)  # fmt: skip


def copy_project(root: Path) -> None:
    """dvc.yaml and src/ of this project; the tests' settings; the data versioned by DVC."""
    shutil.copy(PROJECT_ROOT / "dvc.yaml", root / "dvc.yaml")
    shutil.copytree(
        PROJECT_ROOT / "src", root / "src", ignore=shutil.ignore_patterns("__pycache__")
    )
    params = {**TEST_PARAMS, "tracking": {"enabled": True, "uri": "sqlite:///mlflow.db"}}
    params["tracking"]["experiment"] = "loop"
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    (root / "canvas.yaml").write_text(yaml.safe_dump(TEST_CANVAS, sort_keys=False))
    monitoring = {
        "prediction_log": {"flush_seconds": 0.1},
        "drift": {"min_rows": 400},  # the loop's window: 600 rows
    }
    (root / "monitoring.yaml").write_text(yaml.safe_dump(monitoring))
    (root / "data" / "raw").mkdir(parents=True)
    make_frame(DATA_ROWS).to_csv(root / DATA, index=False, lineterminator="\n")
    dvc = [sys.executable, "-m", "dvc"]
    subprocess.run([*dvc, "init", "--no-scm", "--quiet"], cwd=root, check=True)
    subprocess.run([*dvc, "add", "--quiet", str(DATA)], cwd=root, check=True)


@pytest.fixture(scope="module")
def project_copy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("loop")
    with pytest.MonkeyPatch.context() as patch:
        for variable in CLEARED:
            patch.delenv(variable, raising=False)
        copy_project(root)
        patch.chdir(root)
        yield root


def gate_verdict() -> dict[str, Any]:
    return dict(json.loads(Path("reports/gate.json").read_text()))


def split_inputs() -> tuple[set[tuple[str, ...]], set[tuple[str, ...]]]:
    """The inputs (every column but the target) of the data's train and test rows."""
    params = params_file.load_params(Path("params.yaml"))
    target = params.features.target
    train, test = preprocess.split(pd.read_csv(DATA), target, params.split)

    def inputs(part: pd.DataFrame) -> set[tuple[str, ...]]:
        return {tuple(row) for row in part.drop(columns=[target]).astype(str).to_numpy().tolist()}

    return inputs(train), inputs(test)


def gate_decided(result: dict[str, Any]) -> dict[str, Any]:
    """The gate judged the candidate against the champion, and the registry followed it."""
    verdict = gate_verdict()
    checks = {check["name"]: check for check in verdict["checks"]}
    assert verdict["champion"]["version"] == result["champion_before"]
    assert checks["beats the champion"]["passed"] in (True, False)
    assert verdict["reason"]
    assert result["promoted"] is verdict["passed"]
    stayed = result["champion_after"] == result["champion_before"]
    assert stayed is not verdict["passed"]
    return verdict


def test_drifted_traffic_with_true_outcomes_retrains_on_a_new_data_version(project_copy):
    original = files.md5_of(DATA)
    original_rows = len(pd.read_csv(DATA))
    _, tested_before = split_inputs()

    result = loop.run_loop(rows=ROWS, feedback_share=FEEDBACK_SHARE)

    assert result["champion_before"] == "1"  # trained and promoted by the loop: none before
    assert [step["name"] for step in result["steps"]][4:] == [
        "drift", "monitor", "feedback-to-data", "dvc repro (retrain)", "release --promote (gate)",
    ]  # fmt: skip
    assert json.loads(Path("reports/monitor.json").read_text())["retrain"] is True
    # A new data version holds the feedback rows: the test split replayed gives
    # copies of rows already there, which are not added.
    assert result["data_before"] == original != files.md5_of(DATA)
    data = pd.read_csv(DATA)
    assert original_rows < len(data) < original_rows + ROWS * FEEDBACK_SHARE
    assert not data.duplicated().any()
    # The gate judged on rows no model trained on: the champion's test rows are still
    # test rows, and no test row's inputs are among the training rows.
    trained, tested = split_inputs()
    assert tested_before <= tested and not trained & tested
    verdict = gate_decided(result)
    champion_data = files.md5_of(DATA) if verdict["passed"] else original
    assert result["data_after"] == champion_data


def test_poisoned_feedback_stays_in_training_rows_and_the_gate_decides(project_copy):
    rows_before = len(pd.read_csv(DATA))
    _, tested_before = split_inputs()

    result = loop.run_loop(rows=ROWS, feedback_share=FEEDBACK_SHARE, worse=True)

    assert json.loads(Path("reports/monitor.json").read_text())["retrain"] is True
    assert len(pd.read_csv(DATA)) > rows_before  # the poisoned rows, as a new data version
    # The poisoned rows have the inputs of training rows: the split keeps them in
    # training, so the gate judges on the same test rows as before.
    trained, tested = split_inputs()
    assert tested == tested_before and not trained & tested
    gate_decided(result)
