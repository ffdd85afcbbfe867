"""End to end: `dvc repro` and the kfp pipeline (kfp's local runner) on the sample data
give the same metrics; the pipeline then gates, registers and promotes the model, and
its exit handler posts the verdict and starts the deploy.

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

from ..package import NAME, SRC, load

local = load("orchestration.local")
ROOT = SRC.parent
PROJECT_FILES = ("dvc.yaml", "params.yaml", "canvas.yaml", "deploy.yaml")


@pytest.fixture
def sample_project(tmp_path, monkeypatch):
    """A copy of this project's pipeline (dvc.yaml, settings, code) with the sample data."""
    root = tmp_path / "project"
    root.mkdir()
    for name in PROJECT_FILES:
        if (ROOT / name).is_file():
            shutil.copy2(ROOT / name, root / name)
    shutil.copytree(SRC, root / "src", ignore=shutil.ignore_patterns("__pycache__"))
    (root / ".dvc").mkdir()
    (root / ".dvc" / "config").write_text("[core]\n    analytics = false\n    no_scm = true\n")
    monkeypatch.chdir(root)
    for variable in ("MLFLOW_TRACKING_URI", "DVC_EXP_NAME", "GITHUB_STEP_SUMMARY"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("DVC_NO_ANALYTICS", "1")
    sample = [sys.executable, str(ROOT / "scripts" / "make_sample_data.py")]
    subprocess.run(sample, check=True, capture_output=True)
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
