"""The cloud boundary a workflow test sets up: stand-ins, a shared registry, new runners.

The stand-ins (tests/standins.py) go first on PATH with their call log and
state; the team's registry is an MLflow store at an absolute path (the
MLFLOW_TRACKING_URI secret); `bigquery` is the table a Cloud Logging sink
fills (`log_to_bigquery`), which the `bq` stand-in answers from. Each
workflow run's jobs start on new runners: fresh clones of the project
(tests/workflows.py's Runner).
"""

from __future__ import annotations

import itertools
import json
import os
from datetime import UTC, datetime
from pathlib import Path

import yaml

from tests import helpers, standins, workflows

SETUP_GCLOUD = "google-github-actions/setup-gcloud"


def setup_gcloud_components(project: Path, workflow: str) -> set[str]:
    """The gcloud components a GitHub workflow's setup-gcloud steps install
    (`install_components`), the workflows it calls included.

    The workflow player provides setup-gcloud without playing it: the stand-ins
    of these components go on PATH for the run instead (Cloud.env).
    """
    folder = project / ".github" / "workflows"
    spec = yaml.safe_load((folder / workflow).read_text())
    found: set[str] = set()
    for job in spec["jobs"].values():
        if job.get("uses", "").startswith("./.github/workflows/"):
            found |= setup_gcloud_components(project, Path(job["uses"]).name)
        for step in job.get("steps", []):
            if step.get("uses", "").split("@")[0] == SETUP_GCLOUD:
                listed = str(step.get("with", {}).get("install_components", ""))
                found |= {name.strip() for name in listed.split(",") if name.strip()}
    return found


class Cloud:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.bin = standins.install(root / "bin")
        self.components = standins.install_components(root / "components")
        self.log = root / "calls.jsonl"
        self.state = root / "state.json"
        self.bigquery = root / "bigquery.jsonl"
        self.bigquery.touch()
        self.store = f"sqlite:///{root / 'registry' / 'mlflow.db'}"
        (root / "registry").mkdir()
        self._runs = itertools.count(1)

    def env(
        self, components: set[str] | frozenset[str] = frozenset(), **extra: str
    ) -> dict[str, str]:
        """What a job's shell sees besides its own env: the stand-ins, the runner's variables.

        `components`: the gcloud components installed (setup_gcloud_components);
        only those of standins.COMPONENTS are provided.
        """
        unknown = set(components) - set(standins.COMPONENTS)
        assert not unknown, f"no stand-in for the gcloud components {unknown}"
        folder = self.root / "installed" / ("-".join(sorted(components)) or "none")
        folder.mkdir(parents=True, exist_ok=True)
        for name in components:
            target = folder / name
            if not target.exists():
                target.symlink_to(self.components / name)
        return {
            "PATH": os.pathsep.join([str(self.bin), str(folder), os.environ["PATH"]]),
            "STANDIN_COMPONENTS_PATH": str(folder),
            "STANDIN_LOG": str(self.log),
            "STANDIN_STATE": str(self.state),
            "STANDIN_BIGQUERY": str(self.bigquery),
            "GITHUB_REPOSITORY_OWNER": "Team",
            "GITHUB_REPOSITORY": "Team/project",
            "GITHUB_ACTOR": "ana",
            "GITHUB_RUN_ID": "42",
            **extra,
        }

    def log_to_bigquery(self, lines: list[dict]) -> int:
        """What a Cloud Logging sink writes to BigQuery for these stdout lines: an entry
        each, the line as `jsonPayload`, its `time` lifted into the entry's `timestamp`
        (Cloud Logging docs, structured logging: special JSON fields). Returns the count."""
        now = datetime.now(UTC).isoformat()
        entries = []
        for line in lines:
            payload = dict(line)
            entries.append({"timestamp": payload.pop("time", None) or now, "jsonPayload": payload})
        self.bigquery.write_text("".join(json.dumps(entry) + "\n" for entry in entries))
        return len(entries)

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
