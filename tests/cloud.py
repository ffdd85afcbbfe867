"""The cloud boundary a workflow test sets up: stand-ins, a shared registry, new runners.

The stand-ins (tests/standins.py) go first on PATH with their call log and
state; the team's registry is an MLflow store at an absolute path (the
MLFLOW_TRACKING_URI secret); `bigquery` is the table a Cloud Logging sink
fills, which the `bq` stand-in answers from. Each workflow run's jobs start
on new runners: fresh clones of the project (tests/workflows.py's Runner).
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path

from tests import helpers, standins, workflows


class Cloud:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.bin = standins.install(root / "bin")
        self.log = root / "calls.jsonl"
        self.state = root / "state.json"
        self.bigquery = root / "bigquery.jsonl"
        self.bigquery.touch()
        self.store = f"sqlite:///{root / 'registry' / 'mlflow.db'}"
        (root / "registry").mkdir()
        self._runs = itertools.count(1)

    def env(self, **extra: str) -> dict[str, str]:
        """What a job's shell sees besides its own env: the stand-ins, the runner's variables."""
        return {
            "PATH": f"{self.bin}{os.pathsep}{os.environ['PATH']}",
            "STANDIN_LOG": str(self.log),
            "STANDIN_STATE": str(self.state),
            "STANDIN_BIGQUERY": str(self.bigquery),
            "GITHUB_REPOSITORY_OWNER": "Team",
            "GITHUB_REPOSITORY": "Team/project",
            "GITHUB_ACTOR": "ana",
            "GITHUB_RUN_ID": "42",
            **extra,
        }

    def calls(self, subcommand: str | None = None) -> list[dict]:
        found = standins.calls(self.log)
        return [c for c in found if subcommand is None or c["subcommand"] == subcommand]

    def forget_calls(self) -> None:
        self.log.unlink(missing_ok=True)

    def stop(self) -> None:
        """Stop what the stand-ins started (APIs where containers, revisions or pods run)."""
        standins.stop_all(self.state)

    def runner(self, project: Path, name: str = "run") -> workflows.Runner:
        """One workflow run whose jobs each start on a new runner: a fresh clone of `project`."""
        folder = self.root / "runs" / f"{next(self._runs):02d}-{name}"
        jobs = itertools.count(1)

        def checkout(job: str) -> Path:
            return helpers.clone(project, folder / f"{next(jobs):02d}-{job}" / "project")

        return workflows.Runner(folder / "artifacts", checkout)
