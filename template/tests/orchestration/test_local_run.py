"""End to end: `dvc repro` and the kfp pipeline (kfp's local runner) give the same
metrics; the pipeline then gates, registers and promotes the model, and its exit
handler posts the verdict and starts the deploy.

It runs this project's pipeline (dvc.yaml, deploy.yaml, src/) on the tests' own
params, canvas and data (conftest.py), which any sane model passes: it keeps
testing the pipeline when you change your data, features or hyperparameters.

The only slow test of the project (minutes: each step is a new Python process that
imports pandas, scikit-learn or MLflow). `pytest -m "not slow"` skips it.
"""

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import pytest
import yaml

from ..conftest import TEST_CANVAS, TEST_PARAMS, make_frame
from ..package import NAME, SRC, load

local = load("orchestration.local")
ROOT = SRC.parent


@pytest.fixture
def sample_project(tmp_path, monkeypatch):
    """A copy of this project's pipeline (dvc.yaml, deploy.yaml, code), the tests' settings."""
    root = tmp_path / "project"
    root.mkdir()
    shutil.copy2(ROOT / "dvc.yaml", root / "dvc.yaml")
    deploy = yaml.safe_load((ROOT / "deploy.yaml").read_text(encoding="utf-8"))
    deploy.pop("gate", None)  # the gate's defaults: your slices name your data's columns
    (root / "deploy.yaml").write_text(yaml.safe_dump(deploy))
    tracking = {"enabled": True, "uri": "sqlite:///mlflow.db", "experiment": "pipeline"}
    params = {**TEST_PARAMS, "tracking": tracking}
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    (root / "canvas.yaml").write_text(yaml.safe_dump(TEST_CANVAS, sort_keys=False))
    shutil.copytree(SRC, root / "src", ignore=shutil.ignore_patterns("__pycache__"))
    (root / ".dvc").mkdir()
    (root / ".dvc" / "config").write_text("[core]\n    analytics = false\n    no_scm = true\n")
    monkeypatch.chdir(root)
    for variable in ("MLFLOW_TRACKING_URI", "DVC_EXP_NAME", "GITHUB_STEP_SUMMARY"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("DVC_NO_ANALYTICS", "1")
    (root / "data" / "raw").mkdir(parents=True)
    make_frame().to_csv(root / "data" / "raw" / "dataset.csv", index=False, lineterminator="\n")
    return root


def champion(root: Path) -> str | None:
    with closing(sqlite3.connect(root / "mlflow.db")) as db:
        row = db.execute(
            "SELECT version FROM registered_model_aliases WHERE alias = 'champion'"
        ).fetchone()
    return None if row is None else str(row[0])


@pytest.mark.slow
def test_the_pipeline_gives_the_metrics_of_dvc_repro_then_promotes_and_reports(
    sample_project, webhook, monkeypatch
):
    repro = subprocess.run(
        [sys.executable, "-m", "dvc", "repro"], capture_output=True, text=True, env=os.environ
    )
    assert repro.returncode == 0, repro.stdout + repro.stderr
    expected = json.loads(Path("reports/metrics.json").read_text())
    monkeypatch.setenv("PIPELINE_NOTIFY_URL", f"{webhook.url}/hooks/team")
    monkeypatch.setenv("PIPELINE_DEPLOY_URL", f"{webhook.url}/repos/acme/shop/dispatches")
    monkeypatch.setenv("PIPELINE_DEPLOY_TOKEN", "ghs_secret")

    result = local.run()

    assert result["metrics"] == expected
    assert result["summary"].startswith(f"## {NAME.replace('_', '-')}: PROMOTED version 1")
    notify, dispatch = webhook.received
    assert notify.json()["text"] == result["summary"]
    assert dispatch.json()["client_payload"]["version"] == "1"
    assert dispatch.headers["Authorization"] == "Bearer ghs_secret"
    assert champion(sample_project) == "1"
    gate = json.loads((result["folder"] / "gate" / "report").read_text())
    assert gate["passed"] is True
    assert gate["candidate"]["roc_auc"] == expected["roc_auc"]
