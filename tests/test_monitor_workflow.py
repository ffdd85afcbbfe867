"""Level 4's monitor workflow, proven up to the cloud boundary, on GitHub and GitLab.

A level-4 project is generated, locked and committed; a team member's clone
trains and promotes a champion into a shared registry (an MLflow store at an
absolute path, the MLFLOW_TRACKING_URI secret), then serves it as
production would, under the project's own simulator (`poe simulate`). What
production leaves is where the deploy target leaves it: a published copy of
the SQLite log at a URL (container), or the API's stdout lines in a BigQuery
table filled by the Cloud Logging sink (Cloud Run, Kubernetes: the `bq`
stand-in of tests/standins.py answers the workflow's queries from them).

The monitor workflow (or pipeline) then runs job by job, each job in a fresh
clone (GitHub: tests/workflows.py's player with the cloud stand-ins; GitLab:
gitlab-ci-local, tests/runners.py): jobs share only job outputs, artifacts,
the registry and the cloud. Nothing in the generated project is stubbed.
"""

from __future__ import annotations

import functools
import http.server
import json
import signal
import sqlite3
import subprocess
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml

from tests import helpers, runners, standins, workflows
from tests.cloud import Cloud

# One worker builds the module's projects once (pyproject's --dist loadgroup).
pytestmark = pytest.mark.xdist_group("monitor-workflow")

PACKAGE = "churn_prediction"
ROWS = 2500  # the loop's own traffic: drift's smallest window (2,000 rows), with room
FEEDBACK_SHARE = "0.2"
TOKEN = "s3cret"
RECORDS = ("prediction", "feedback")  # the kinds of line the API prints with the stdout sink


class Production:
    """A level-4 project, a team member's clone, the cloud, and the team's storage."""

    def __init__(self, template: Path, root: Path, answers: dict) -> None:
        self.root = root
        self.origin = root / "origin" / "project"
        helpers.copy_template(template, self.origin, {"project_name": "Churn Prediction",
                                                      "level": 4, **answers})  # fmt: skip
        helpers.lock_and_commit(self.origin)
        self.team = helpers.clone(self.origin, root / "team" / "project")
        self.cloud = Cloud(root / "cloud")
        self.store = self.cloud.store
        self.storage = root / "storage"  # where the team publishes its copy of the log
        self.storage.mkdir()
        self._api_lines: dict[str | None, list[dict]] = {}

    def runner(self, name: str) -> workflows.Runner:
        return self.cloud.runner(self.origin, name)

    # --- the team's side -------------------------------------------------------------

    def team_runs(self, command: str, **extra: str) -> str:
        env = {"MLFLOW_TRACKING_URI": self.store, "MODEL_API_TOKEN": TOKEN, **extra}
        return helpers.run_step(self.team, helpers.Step("the team", command), env)

    def train_champion(self) -> None:
        self.team_runs("uv run poe sample-data && uv run poe pipeline")
        self.team_runs("uv run poe release --promote && uv run poe export")

    def team_python(self, script: str) -> str:
        """What a line of Python prints in the team's environment (stdout only)."""
        env = helpers.user_environment(MLFLOW_TRACKING_URI=self.store)
        done = subprocess.run([".venv/bin/python", "-c", script], cwd=self.team, env=env,
                              capture_output=True, text=True, check=True)  # fmt: skip
        return done.stdout.strip().splitlines()[-1]

    def hurtful_shift(self) -> str:
        """The loop's own choice: the numeric feature whose shift hurts the champion most."""
        script = "from tests.monitoring import loop; print(loop.choose_shift(None)[0].column)"
        return f"{self.team_python(script)}=+3"

    def simulate(self, url_or_start: str, shift: str | None, **env: str) -> str:
        """Drifted traffic: the test split, shifted. Stable traffic: the training rows.

        The sample's test split has 114 rows: cycled to 2,500 it is not a fresh
        sample of the training distribution (docs/monitoring.md, the simulator).
        """
        command = f"uv run poe simulate {url_or_start} --rows {ROWS} "
        command += f"--feedback-share {FEEDBACK_SHARE} --feedback-delay 0.5"
        command += f" --shift {shift}" if shift else " --data data/processed/train.csv"
        return self.team_runs(command, **env)

    def publish_sqlite_log(self, shift: str | None) -> Path:
        """Traffic logged to SQLite, then the copy the docs publish (`.backup`)."""
        live = self.root / "host" / "predictions.db"
        live.parent.mkdir(exist_ok=True)
        live.unlink(missing_ok=True)
        self.simulate("--start", shift, PREDICTION_LOG_SINK="sqlite",
                      PREDICTION_LOG_PATH=str(live))  # fmt: skip
        copy = self.storage / "predictions.db"
        copy.unlink(missing_ok=True)
        with sqlite3.connect(live) as source, sqlite3.connect(copy) as target:
            source.backup(target)
        return copy

    def api_lines(self, shift: str | None) -> list[dict]:
        """Traffic to the API printing its records (Cloud Run's log): its record lines."""
        if shift in self._api_lines:
            return self._api_lines[shift]
        port = standins.free_port()
        stdout = self.root / "api-stdout.jsonl"
        env = helpers.user_environment(PREDICTION_LOG_SINK="stdout", MODEL_API_TOKEN=TOKEN)
        with stdout.open("w") as stream:
            server = subprocess.Popen(
                [".venv/bin/python", "-m", PACKAGE, "serve", "--host", "127.0.0.1",
                 "--port", str(port), "--workers", "1"],
                cwd=self.team, env=env, stdout=stream, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            try:
                wait_ready(f"http://127.0.0.1:{port}")
                self.simulate(f"--url http://127.0.0.1:{port}", shift)
            finally:
                server.send_signal(signal.SIGTERM)
                server.wait(timeout=30)
        self._api_lines[shift] = json_lines(stdout)
        return self._api_lines[shift]

    def log_to_bigquery(self, shift: str | None, kinds: tuple[str, ...] = RECORDS) -> list[dict]:
        """The API's lines of these kinds, routed to the table by the Cloud Logging sink."""
        lines = [line for line in self.api_lines(shift) if line["type"] in kinds]
        self.cloud.log_to_bigquery(lines)
        return lines

    # --- the registry ----------------------------------------------------------------

    def versions(self) -> str:
        return self.team_runs("uv run poe models")

    def data_md5_of_champion(self) -> str:
        script = "from tests.monitoring import loop; print(loop.champion_version()[1])"
        return self.team_python(script)


def json_lines(path: Path) -> list[dict]:
    records = []
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue  # the server's own lines: Cloud Logging keeps them as text
        if isinstance(record, dict) and record.get("type") in RECORDS:
            records.append(record)
    return records


def wait_ready(url: str, seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/ready", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"the API at {url} was not ready in {seconds:.0f} s")


@pytest.fixture(scope="module")
def storage_server() -> Iterator[Callable[[Path], str]]:
    """The team's storage: files served over http, as a pre-signed URL would serve them."""
    servers: list[http.server.ThreadingHTTPServer] = []

    def serve(folder: Path) -> str:
        handler = functools.partial(_QuietFiles, directory=str(folder))
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_port}"

    yield serve
    for server in servers:
        server.shutdown()
        server.server_close()


class _QuietFiles(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


def context(production: Production, event: str, inputs: dict | None = None, **secrets) -> dict:
    made = workflows.environment_context(
        Path("."), MLFLOW_TRACKING_URI=production.store, MODEL_API_TOKEN=TOKEN, **secrets
    )
    made["github"]["event_name"] = event
    made["vars"]["BIGQUERY_TABLE"] = "my-gcp-project.predictions.run_googleapis_com_stdout"
    made["inputs"] = inputs or {}
    return made


def assert_success(results: dict, *jobs: str) -> None:
    for job in jobs:
        assert results[job].result == "success", f"{job}: {results[job].log}"


def dvc_md5(path: Path) -> str:
    return yaml.safe_load(path.read_text())["outs"][0]["md5"]


def data_rows(path: Path) -> int:
    return len(path.read_text().splitlines()) - 1


# --- GitHub, the container target: drift, then retraining through the gate --------------


@pytest.fixture(scope="module")
def container(template, tmp_path_factory, storage_server):
    production = Production(template, tmp_path_factory.mktemp("monitor-container"),
                            {"ci": "github", "deploy_target": "container"})  # fmt: skip
    production.train_champion()
    yield production, storage_server(production.storage)
    production.cloud.stop()


@pytest.mark.slow
def test_drifted_traffic_retrains_through_the_gate_and_deploys_the_new_champion(container):
    production, storage_url = container
    champion_data = production.data_md5_of_champion()
    shift = production.hurtful_shift()
    production.publish_sqlite_log(shift)
    url = f"{storage_url}/predictions.db"

    runner = production.runner("drifted")
    results = workflows.run_workflow(
        production.team, "monitor.yml", context(production, "schedule", PREDICTION_LOG_URL=url),
        production.cloud.env(), runner,
    )  # fmt: skip

    assert_success(results, "monitor")
    monitor = results["monitor"]
    assert monitor.outputs["retrain"] == "true", monitor.outputs
    drift = json.loads((monitor.folder / "reports" / "drift.json").read_text())
    assert shift.split("=")[0] in drift["drifted_features"]
    artifact = runner.artifacts / "training-data"
    handed = sorted(path.name for path in artifact.iterdir())
    assert handed == ["dataset.csv", "dataset.csv.dvc", "feedback-ids.txt", "feedback-ids.txt.dvc"]

    assert_success(results, "retrain", "retrain/train", "retrain/deploy/production")
    assert results["retrain/train"].outputs["promoted"] == "true"
    trained_on = results["retrain/train"].folder / "data" / "raw"
    feedback_rows = len((trained_on / "feedback-ids.txt").read_text().split())
    assert feedback_rows > 0
    assert data_rows(trained_on / "dataset.csv") == data_rows(artifact / "dataset.csv")
    new_data = dvc_md5(trained_on / "dataset.csv.dvc")
    assert production.data_md5_of_champion() == new_data != champion_data
    assert "2        challenger,champion" in production.versions()
    (build,) = production.cloud.calls("build")
    assert "ghcr.io/team/churn-prediction:model-2" in build["argv"]


@pytest.mark.slow
@pytest.mark.full_matrix  # on every .ci/run: the same verdict from BigQuery (below)
def test_a_stable_window_retrains_nothing(container):
    production, storage_url = container
    production.publish_sqlite_log(shift=None)
    url = f"{storage_url}/predictions.db"
    before = production.versions()

    runner = production.runner("stable")
    results = workflows.run_workflow(
        production.team, "monitor.yml", context(production, "schedule", PREDICTION_LOG_URL=url),
        production.cloud.env(), runner,
    )  # fmt: skip

    assert_success(results, "monitor")
    assert results["monitor"].outputs["retrain"] == "false", results["monitor"].outputs
    assert results["retrain"].result == "skipped"
    assert not (runner.artifacts / "training-data").exists()
    reports = runner.artifacts / "monitor-reports"
    assert {"monitor.md", "drift.json", "performance.json"} <= {p.name for p in reports.iterdir()}
    assert production.versions() == before


@pytest.mark.slow
def test_without_the_published_log_the_monitor_says_what_is_missing(container):
    production, _ = container

    results = workflows.run_workflow(
        production.team, "monitor.yml", context(production, "workflow_dispatch"),
        production.cloud.env(), production.runner("no-url"),
    )  # fmt: skip

    assert results["monitor"].result == "failure"
    assert "PREDICTION_LOG_URL is not set" in results["monitor"].log
    assert results["retrain"].result == "skipped"


# --- GitHub, Cloud Run: the window from BigQuery -----------------------------------------


@pytest.fixture(scope="module")
def cloud_run(template, tmp_path_factory):
    production = Production(template, tmp_path_factory.mktemp("monitor-cloud-run"),
                            {"ci": "github", "deploy_target": "cloud-run"})  # fmt: skip
    production.train_champion()
    yield production
    production.cloud.stop()


@pytest.mark.slow
def test_cloud_run_reads_the_window_from_bigquery_with_the_keyless_credentials(cloud_run):
    production = cloud_run
    lines = production.log_to_bigquery(shift=None)
    predictions = [line for line in lines if line["type"] == "prediction"]

    results = workflows.run_workflow(
        production.team, "monitor.yml", context(production, "schedule"), production.cloud.env(),
        production.runner("bigquery"),
    )  # fmt: skip

    assert_success(results, "monitor")
    queries = production.cloud.calls("query")
    assert len(queries) == 2  # the predictions, then the feedback
    table = "`my-gcp-project.predictions.run_googleapis_com_stdout`"
    assert all(table in call["argv"][-1] for call in queries)
    fetched = sqlite3.connect(results["monitor"].folder / "logs" / "predictions.db")
    assert fetched.execute("SELECT COUNT(*) FROM predictions").fetchone()[0] == len(predictions)
    assert fetched.execute("SELECT COUNT(*) FROM feedback").fetchone()[0] > 0
    # `time` came back from the entries' timestamps, where the logging agent put it
    earliest = fetched.execute("SELECT MIN(time) FROM predictions").fetchone()[0]
    assert earliest == min(line["time"] for line in predictions)
    fetched.close()
    assert results["monitor"].outputs["retrain"] == "false", results["monitor"].outputs
    assert results["retrain"].result == "skipped"


@pytest.mark.slow
def test_a_table_without_feedback_yet_gives_a_window_without_feedback(cloud_run, tmp_path):
    """Before the first feedback line, the sink's table has no `outcome` column at all."""
    production = cloud_run
    predictions = production.log_to_bigquery(shift=None, kinds=("prediction",))
    credentials = tmp_path / "credentials.json"
    credentials.write_text(json.dumps({"type": "external_account"}))
    env = production.cloud.env(
        BIGQUERY_TABLE="my-gcp-project.predictions.run_googleapis_com_stdout",
        CLOUDSDK_AUTH_CREDENTIAL_FILE_OVERRIDE=str(credentials),
    )

    said = helpers.run_step(
        production.team, helpers.Step("the team", "uv run poe fetch-window"), env
    )

    assert f"{len(predictions):,} predictions and 0 feedback from BigQuery" in said


# --- GitLab: the monitor job's verdict holds or starts the train job ----------------------
# The pipeline runs with gitlab-ci-local (tests/runners.py), from a fresh clone
# of the project, each job in its own copy of the tracked files
# (`--shell-isolation`): the train job gets only the monitor job's artifacts
# and its dotenv verdict, as on GitLab.

# Jobs a schedule pipeline also runs after a promotion, not run here: they need
# `services: docker:dind` and gitlab-ci-local's shell executor has no Docker
# engine on this machine (docs/testing.md).
DOCKER_SERVICE_JOBS = {"build-image", "deploy-staging", "deploy-production"}
SCHEDULE = {"CI_PIPELINE_SOURCE": "schedule"}


@pytest.fixture(scope="module")
def gitlab(template, tmp_path_factory, storage_server):
    production = Production(template, tmp_path_factory.mktemp("monitor-gitlab"),
                            {"ci": "gitlab", "deploy_target": "container"})  # fmt: skip
    production.train_champion()
    production.publish_sqlite_log(shift=None)
    yield production, f"{storage_server(production.storage)}/predictions.db"


def test_gitlab_merges_the_monitor_hold_into_the_level_3_train_job(template, tmp_path):
    project = tmp_path / "project"
    helpers.copy_template(template, project, {"level": 4, "ci": "gitlab"})
    train = runners.gitlab_preview(project, tmp_path / "gitlab")["train"]
    assert train["needs"] == [{"job": "monitor", "artifacts": True, "optional": True}]
    assert train["before_script"][0].startswith('[ "${RETRAIN:-true}" = "true" ]')
    assert train["script"][-1] == "uv run poe release $PROMOTE"  # level 3's, kept


def monitor_then_train(production: Production, variables: dict[str, str]) -> runners.GitlabRun:
    """The monitor job, then the train job that waits for it, from a fresh clone."""
    run = Path(tempfile.mkdtemp(prefix="gitlab-run-", dir=production.root))
    pipeline = helpers.clone(production.origin, run / "project")
    pipeline_variables = runners.gitlab_variables(**variables)
    jobs = runners.gitlab_jobs(pipeline, run / "state", pipeline_variables)
    kept = {name for name, when in jobs.items() if when != "never"}
    assert {"monitor", "train"} | DOCKER_SERVICE_JOBS <= kept, jobs
    preview = runners.gitlab_preview(pipeline, run / "state")
    assert all("services" in preview[name] for name in DOCKER_SERVICE_JOBS)
    return runners.run_gitlab(
        pipeline, ["monitor", "train"], pipeline_variables, run / "state",
        production.cloud.env(), isolate=True,
    )  # fmt: skip


@pytest.mark.slow
def test_gitlab_schedule_on_a_stable_window_holds_the_train_job(gitlab):
    production, url = gitlab
    variables = {**SCHEDULE, "PREDICTION_LOG_URL": url, "MLFLOW_TRACKING_URI": production.store}

    results = monitor_then_train(production, variables).jobs

    assert results["monitor"].result == "success", results["monitor"].output
    assert results["monitor"].dotenv["RETRAIN"] == "false"
    assert results["train"].result == "success", results["train"].output
    assert "monitor: no retraining" in results["train"].output
    assert not (results["train"].folder / "reports" / "gate.json").exists()


@pytest.mark.slow
def test_gitlab_run_by_hand_with_force_retrain_trains_on_the_feedback(gitlab):
    production, url = gitlab
    champion_data = production.data_md5_of_champion()
    variables = {"CI_PIPELINE_SOURCE": "web", "MONITOR": "true", "FORCE_RETRAIN": "true",
                 "PREDICTION_LOG_URL": url, "MLFLOW_TRACKING_URI": production.store}  # fmt: skip

    results = monitor_then_train(production, variables).jobs

    assert results["monitor"].result == "success", results["monitor"].output
    assert results["monitor"].dotenv["RETRAIN"] == "true"
    assert results["train"].result == "success", results["train"].output
    trained_on = results["train"].folder / "data" / "raw"
    assert len((trained_on / "feedback-ids.txt").read_text().split()) > 0
    assert (results["train"].folder / "reports" / "gate.json").is_file()  # the gate decided
    metadata = json.loads((results["train"].folder / "reports" / "metadata.json").read_text())
    assert metadata["data_md5"] == dvc_md5(trained_on / "dataset.csv.dvc")
    # The stable window replays the training split: every feedback row is a copy of
    # a row the data holds, which feedback-to-data skips, so the data version stays.
    assert metadata["data_md5"] == champion_data
    assert "already in the data" in results["monitor"].output + results["train"].output
