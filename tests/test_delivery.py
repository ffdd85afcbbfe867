"""Level 3's delivery, proven up to the cloud boundary.

A level-3 project per deploy target is generated, locked, committed and
cloned; its train and deploy workflows run here job by job (tests/workflows.py),
each job in a fresh clone of it as on a new runner, against a shared registry
(an MLflow store at an absolute path, named by the MLFLOW_TRACKING_URI
secret). Only docker, gcloud and kubectl are stand-ins (tests/standins.py):
they record each call, accept only the real flags, answer with the real
tools' words, and start the project's own API where the real tool would
start a container, a revision or a pod (behind Cloud Run's IAM for a private
service). Nothing in the generated project is stubbed. The GitLab jobs of
delivery need a Docker engine (docker:dind) and are checked as written.
"""

from __future__ import annotations

import http.server
import json
import os
import subprocess
import threading
import urllib.error
import urllib.request
from pathlib import Path
from typing import ClassVar

import pytest
import yaml

from tests import helpers, runners, workflows
from tests.cloud import Cloud as StandIns
from tests.cloud import setup_gcloud_components

# One worker builds the module's projects once (pyproject's --dist loadgroup).
pytestmark = pytest.mark.xdist_group("delivery")

PROJECT_NAME = "Churn Prediction"
IMAGE = "churn-prediction"


class Cloud(StandIns):
    """The stand-ins and registry, and the context of a push to the default branch."""

    def context(self) -> dict:
        return workflows.environment_context(
            Path("."), MLFLOW_TRACKING_URI=self.store, MODEL_API_TOKEN="s3cret"
        )


def new_project(template: Path, tmp_path_factory, target: str) -> Path:
    origin = tmp_path_factory.mktemp(f"{target}-origin") / "project"
    answers = {"project_name": PROJECT_NAME, "level": 3, "deploy_target": target}
    helpers.copy_template(template, origin, answers)
    helpers.lock_and_commit(origin)
    return helpers.clone(origin, tmp_path_factory.mktemp(f"{target}-clone") / "project")


@pytest.fixture(scope="module")
def cloud(tmp_path_factory):
    made = Cloud(tmp_path_factory.mktemp("cloud"))
    yield made
    made.stop()


def run(project: Path, cloud: Cloud, workflow: str, **extra: str) -> dict:
    env = cloud.env(setup_gcloud_components(project, workflow), **extra)
    return workflows.run_workflow(project, workflow, cloud.context(), env, cloud.runner(project))


def assert_success(results: dict, *jobs: str) -> None:
    for job in jobs:
        assert results[job].result == "success", f"{job}: {results[job].log}"


def commit_of(project: Path) -> str:
    return helpers.git(project, "rev-parse", "HEAD").strip()


# --- container target ----------------------------------------------------------------


@pytest.fixture(scope="module")
def container(template, tmp_path_factory, cloud):
    project = new_project(template, tmp_path_factory, "container")
    results = run(project, cloud, "train.yml")
    return project, results


@pytest.mark.slow
def test_train_promotes_and_deploys_the_champion_image(container, cloud):
    project, results = container
    assert_success(results, "train", "deploy/build", "deploy/staging", "deploy/production")
    assert results["train"].outputs["promoted"] == "true"
    assert results["report-failure"].result == "skipped"

    tag = f"ghcr.io/team/{IMAGE}:{commit_of(project)[:12]}"
    (build,) = cloud.calls("build")
    assert tag in build["argv"] and f"ghcr.io/team/{IMAGE}:model-1" in build["argv"]
    assert "MODEL_VERSION=1" in build["argv"]
    runs = cloud.calls("run")
    assert [call["argv"][-1] for call in runs] == [tag, tag]  # staging, production
    pushed = [call["argv"][-1] for call in cloud.calls("push")]
    assert pushed[-2:] == [f"ghcr.io/team/{IMAGE}:staging", f"ghcr.io/team/{IMAGE}:production"]
    production = results["deploy/production"].folder
    live = json.loads((production / "reports" / "deploy-production.json").read_text())
    assert (live["outcome"], live["version"], live["image"]) == ("live", "1", tag)


@pytest.mark.slow
def test_a_second_clone_sharing_the_registry_is_refused_and_the_champion_stays(
    container, cloud, tmp_path
):
    """Two clones in different folders, one store: the second model is as good as
    the champion, meets the canvas, but does not beat it by the margin."""
    project, _ = container
    other = helpers.clone(project, tmp_path / "another-team-member" / "project")
    cloud.forget_calls()

    results = run(other, cloud, "train.yml")

    assert_success(results, "train")
    assert results["train"].outputs["promoted"] == "false"
    assert results["deploy"].result == "skipped"  # a refusal is not a failure either
    assert results["report-failure"].result == "skipped"
    assert cloud.calls() == []
    gate = json.loads((results["train"].folder / "reports" / "gate.json").read_text())
    checks = {check["name"]: check["passed"] for check in gate["checks"]}
    assert checks == {"canvas metric": True, "latency": True, "beats the champion": False}
    assert gate["champion"]["version"] == "1"
    versions = helpers.run_step(
        other, helpers.Step("check", "uv run poe models"), {"MLFLOW_TRACKING_URI": cloud.store}
    )
    assert "1        challenger,champion" in versions and "\n2 " not in versions


@pytest.mark.slow
@pytest.mark.full_matrix  # a rollback: the scheduled workflow (each job a fresh runner)
def test_a_failed_smoke_test_moves_no_tag(container, cloud):
    project, _ = container
    cloud.forget_calls()

    results = run(project, cloud, "deploy-container.yml", STANDIN_SCENARIO="broken")

    assert_success(results, "build")
    assert results["staging"].result == "failure"
    assert results["production"].result == "skipped"
    assert not [c for c in cloud.calls("push") if c["argv"][-1].endswith(":staging")]
    staging = results["staging"].folder
    record = json.loads((staging / "reports" / "deploy-staging.json").read_text())
    assert record["outcome"] == "rolled back" and "smoke" in record["error"]


class IssuesApi(http.server.BaseHTTPRequestHandler):
    requests: ClassVar[list[tuple[str, str, dict | None]]] = []

    def do_GET(self) -> None:  # no open issue yet
        self.requests.append(("GET", self.path, None))
        self.reply(200, [])

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.requests.append(("POST", self.path, body))
        self.reply(201, {"number": 7})

    def reply(self, status: int, body: object) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.mark.slow
def test_a_failed_training_opens_an_issue_with_a_link_to_the_run(container, cloud, tmp_path):
    project, _ = container
    server = http.server.HTTPServer(("127.0.0.1", 0), IssuesApi)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    context = cloud.context()
    (tmp_path / "a-file").write_text("not a folder\n")
    context["secrets"]["MLFLOW_TRACKING_URI"] = f"sqlite:///{tmp_path}/a-file/mlflow.db"
    api = f"http://127.0.0.1:{server.server_port}"
    try:
        results = workflows.run_workflow(
            project, "train.yml", context, cloud.env(GITHUB_API_URL=api), cloud.runner(project)
        )
    finally:
        server.shutdown()
        server.server_close()

    assert results["train"].result == "failure"
    assert_success(results, "report-failure")
    method, path, body = IssuesApi.requests[-1]
    assert (method, path) == ("POST", "/repos/Team/project/issues")
    assert body["labels"] == ["pipeline-failure"]
    assert "/Team/project/actions/runs/42" in body["body"]


# --- Cloud Run -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cloud_run(template, tmp_path_factory):
    cloud = Cloud(tmp_path_factory.mktemp("cloud-run"))
    project = new_project(template, tmp_path_factory, "cloud-run")
    yield project, cloud, run(project, cloud, "train.yml")
    cloud.stop()


def traffic_calls(cloud: Cloud) -> list[list[str]]:
    return [c["argv"] for c in cloud.calls("run services update-traffic")]


def service_url(cloud: Cloud, environment: str) -> str:
    state = json.loads(cloud.state.read_text())
    return state["services"][f"{IMAGE}-{environment}"]["url"]


@pytest.mark.slow
def test_cloud_run_creates_each_private_service_on_the_first_deployment(cloud_run):
    """A missing service is found missing by listing it, not by an error's wording."""
    project, cloud, first = cloud_run
    assert_success(first, "train", "deploy/build", "deploy/staging", "deploy/production")
    registry = "europe-west1-docker.pkg.dev/my-gcp-project/ml-models"
    assert f"{registry}/{IMAGE}:{commit_of(project)[:12]}" in cloud.calls("build")[0]["argv"]
    listed = [c["argv"] for c in cloud.calls("run services list")]
    assert f"--filter=metadata.name={IMAGE}-staging" in listed[0]
    deploys = cloud.calls("run deploy")
    assert [("--no-traffic" in c["argv"]) for c in deploys] == [False, False]  # new services
    assert all("--no-allow-unauthenticated" in c["argv"] for c in deploys)


@pytest.mark.slow
def test_cloud_run_smoke_tests_each_new_revision_before_it_takes_traffic(cloud_run):
    project, cloud, _ = cloud_run
    cloud.forget_calls()

    again = run(project, cloud, "deploy-cloud-run.yml")  # now the services exist

    assert_success(again, "build", "staging", "production")
    deploys = cloud.calls("run deploy")
    assert all("--no-traffic" in call["argv"] for call in deploys)
    splits = [arg for call in traffic_calls(cloud) for arg in call if arg.startswith("--to-tags")]
    assert splits == ["--to-tags=candidate=10"]
    assert "--to-latest" in traffic_calls(cloud)[-1]


@pytest.mark.slow
def test_the_smoke_tests_send_an_identity_token_for_the_private_service(cloud_run):
    """Minted for the service's URL by the CI's service account (keyless credentials
    cannot mint one themselves), and sent where Cloud Run's IAM reads it first."""
    _, cloud, _ = cloud_run

    minted = [c["argv"] for c in cloud.calls("auth print-identity-token")]

    audiences = {environment: f"--audiences={service_url(cloud, environment)}"
                 for environment in ("staging", "production")}  # fmt: skip
    assert any(audiences["staging"] in argv for argv in minted)
    assert any(audiences["production"] in argv for argv in minted)
    assert all("--impersonate-service-account=sa@example" in argv for argv in minted)


@pytest.mark.slow
def test_a_private_cloud_run_service_refuses_a_caller_without_an_identity_token(cloud_run):
    _, cloud, _ = cloud_run
    url = service_url(cloud, "production")

    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"{url}/ready", timeout=10)

    assert refused.value.code == 403
    page = refused.value.read().decode()
    assert "Your client does not have permission to get URL <code>/ready</code>" in page


@pytest.mark.slow
def test_a_public_cloud_run_service_is_deployed_and_smoke_tested_without_a_token(
    cloud_run, tmp_path
):
    """deploy.yaml `delivery.cloud_run.public: true`: --allow-unauthenticated, no token."""
    _, cloud, first = cloud_run
    folder = first["deploy/staging"].folder
    settings = yaml.safe_load((folder / "deploy.yaml").read_text())
    settings["delivery"]["cloud_run"]["public"] = True
    (folder / "deploy.yaml").write_text(yaml.safe_dump(settings))
    credentials = tmp_path / "credentials.json"
    credentials.write_text(json.dumps({"type": "external_account"}))
    image = first["deploy/build"].outputs["image"]
    cloud.forget_calls()

    helpers.run_step(
        folder,
        helpers.Step("deploy", f"uv run poe deploy --environment staging --image {image}"),
        cloud.env(MODEL_API_TOKEN="s3cret",
                  CLOUDSDK_AUTH_CREDENTIAL_FILE_OVERRIDE=str(credentials)),
    )  # fmt: skip

    (deploy,) = cloud.calls("run deploy")
    assert "--allow-unauthenticated" in deploy["argv"]
    assert cloud.calls("auth print-identity-token") == []
    with urllib.request.urlopen(f"{service_url(cloud, 'staging')}/ready", timeout=10) as answer:
        assert answer.status == 200


@pytest.mark.slow
@pytest.mark.full_matrix  # a rollback: the scheduled workflow (each job a fresh runner)
def test_cloud_run_rolls_the_traffic_back_when_the_smoke_test_fails(cloud_run):
    project, cloud, _ = cloud_run
    cloud.forget_calls()

    results = run(project, cloud, "deploy-cloud-run.yml", STANDIN_SCENARIO="broken")

    assert results["staging"].result == "failure"
    assert results["production"].result == "skipped"
    (rollback,) = [c for c in traffic_calls(cloud) if any("--to-revisions" in a for a in c)]
    assert any(arg.endswith("=100") for arg in rollback)
    assert not [c for c in traffic_calls(cloud) if "--to-latest" in c]


# --- Kubernetes ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def kubernetes(template, tmp_path_factory):
    cloud = Cloud(tmp_path_factory.mktemp("kubernetes"))
    project = new_project(template, tmp_path_factory, "kubernetes")
    yield project, cloud, run(project, cloud, "train.yml")
    cloud.stop()


@pytest.mark.slow
def test_kubernetes_applies_the_image_waits_and_smoke_tests(kubernetes):
    project, cloud, results = kubernetes
    assert_success(results, "train", "deploy/build", "deploy/staging", "deploy/production")
    image = f"europe-west1-docker.pkg.dev/my-gcp-project/ml-models/{IMAGE}:"
    image += commit_of(project)[:12]
    assert [c["argv"] for c in cloud.calls("applied images")] == [[image], [image]]
    assert len(cloud.calls("rollout status")) == 2
    assert cloud.calls("rollout undo") == []


def test_kubectl_without_the_gke_auth_plugin_fails_as_the_real_one(tmp_path):
    """get-credentials succeeds with a warning; every kubectl call then fails."""
    cloud = StandIns(tmp_path)
    credentials = tmp_path / "credentials.json"
    credentials.write_text(json.dumps({"type": "external_account"}))
    env = {**os.environ, **cloud.env(CLOUDSDK_AUTH_CREDENTIAL_FILE_OVERRIDE=str(credentials))}
    manifests = tmp_path / "k8s"
    manifests.mkdir()
    (manifests / "deployment.yaml").write_text("kind: Deployment\n")

    fetched = subprocess.run(
        ["gcloud", "container", "clusters", "get-credentials", "ml-cluster", "--region", "r1",
         "--project", "p1"], env=env, capture_output=True, text=True,
    )  # fmt: skip
    applied = subprocess.run(
        ["kubectl", "--namespace", "staging", "apply", "--filename", str(manifests)],
        env=env, capture_output=True, text=True,
    )  # fmt: skip

    assert fetched.returncode == 0 and "CRITICAL: ACTION REQUIRED" in fetched.stderr
    assert applied.returncode == 1
    assert "exec: executable gke-gcloud-auth-plugin not found" in applied.stderr


def test_the_kubernetes_deploy_jobs_install_the_gke_auth_plugin(template, tmp_path):
    project = tmp_path / "project"
    helpers.copy_template(template, project, {"level": 3, "deploy_target": "kubernetes"})

    assert setup_gcloud_components(project, "deploy-kubernetes.yml") == {"gke-gcloud-auth-plugin"}
    spec = yaml.safe_load((project / ".github/workflows/deploy-kubernetes.yml").read_text())
    for name in ("staging", "production"):  # the jobs that run kubectl
        setup = [step for step in spec["jobs"][name]["steps"]
                 if "setup-gcloud" in step.get("uses", "")]  # fmt: skip
        assert setup[0]["with"]["install_components"] == "gke-gcloud-auth-plugin", name


@pytest.mark.slow
@pytest.mark.full_matrix  # a rollback: the scheduled workflow (each job a fresh runner)
def test_kubernetes_undoes_a_rollout_that_does_not_finish(kubernetes):
    project, cloud, _ = kubernetes
    cloud.forget_calls()

    results = run(project, cloud, "deploy-kubernetes.yml", STANDIN_SCENARIO="rollout-fails")

    assert results["staging"].result == "failure"
    (undo,) = cloud.calls("rollout undo")
    assert undo["argv"][:2] == ["--namespace", "staging"]
    log = results["staging"].log
    assert f'error: deployment "{IMAGE}" exceeded its progress deadline' in log


# --- what is scanned rather than run --------------------------------------------------

KUBERNETES_VERSIONS = ("1.31.0", "1.32.0", "1.33.0", "1.34.0")  # the supported ones


def test_the_autoscaler_alone_sets_the_number_of_pods(template, tmp_path):
    """A `replicas:` in the Deployment would reset the autoscaler's count at every apply
    (Kubernetes docs, Horizontal Pod Autoscaling: migrating Deployments)."""
    project = tmp_path / "project"
    helpers.copy_template(template, project, {"level": 3, "deploy_target": "kubernetes"})

    deployment = yaml.safe_load((project / "k8s" / "deployment.yaml").read_text())
    autoscaler = yaml.safe_load((project / "k8s" / "hpa.yaml").read_text())

    assert "replicas" not in deployment["spec"]
    target = autoscaler["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", deployment["metadata"]["name"])


def test_the_kubernetes_manifests_are_valid_and_pass_checkov(template, tmp_path):
    project = tmp_path / "project"
    helpers.copy_template(template, project, {"level": 3, "deploy_target": "kubernetes"})
    manifests = sorted(str(path) for path in (project / "k8s").glob("*.yaml"))
    for version in KUBERNETES_VERSIONS:
        result = helpers.run_tool(
            "kubernetes-validate", "--kubernetes-version", version, "--strict", "--quiet",
            *manifests,
        )  # fmt: skip
        assert result.returncode == 0, f"Kubernetes {version}: {result.stdout}{result.stderr}"
    scan = helpers.run_tool(
        "checkov", "--directory", str(project / "k8s"), "--framework", "kubernetes",
        "--compact", "--quiet", "--skip-download", "--output", "json",
    )  # fmt: skip
    summary = json.loads(scan.stdout)["summary"]
    assert summary["failed"] == 0, scan.stdout  # skipped findings carry their reason


# --- GitLab: the delivery jobs as written (they need docker:dind to run) ------------------

TARGETS = ("container", "cloud-run", "kubernetes")
DEPLOY_JOBS = ("build-image", "deploy-staging", "deploy-production")  # each extends .deploy
PROMOTED_CHECK = '[ "$PROMOTED" = "true" ]'


def gitlab_project(template: Path, folder: Path, **answers: object) -> dict:
    project = folder / "project"
    helpers.copy_template(template, project, {"ci": "gitlab", "level": 3, **answers})
    return runners.gitlab_preview(project, folder / "gitlab")


@pytest.mark.parametrize("orchestrator", ["local", "vertex"])
def test_gitlab_trains_on_a_changed_input_only_in_push_pipelines(template, tmp_path, orchestrator):
    """`changes:` holds in every pipeline that is not a push (GitLab docs, rules:changes):
    the pipeline the kfp exit handler triggers to deploy must not train again."""
    config = gitlab_project(template, tmp_path, orchestrator=orchestrator)

    for name in ("train", "notify-failure"):
        rules = [rule for rule in config[name]["rules"] if "changes" in rule]
        assert rules, name
        for rule in rules:
            assert rule["if"].startswith('$CI_PIPELINE_SOURCE == "push" && '), (name, rule)


@pytest.mark.parametrize("level", [3, 4])
def test_gitlab_cluster_training_gives_the_client_libraries_its_credentials(
    template, tmp_path, level
):
    """`gcloud auth login --cred-file` is gcloud's account only: Vertex AI's SDK
    (pipeline-submit) reads Application Default Credentials."""
    config = gitlab_project(template, tmp_path, level=level, orchestrator="vertex")

    train = config["train"]
    written = [line for line in train["before_script"] if "create-cred-config" in line]
    assert written and "--output-file=.gcp-credentials.json" in written[0]
    expected = "$CI_PROJECT_DIR/.gcp-credentials.json"
    assert train["variables"]["GOOGLE_APPLICATION_CREDENTIALS"] == expected


@pytest.mark.parametrize("target", TARGETS)
def test_gitlab_deploy_decides_before_it_provisions(template, tmp_path, target):
    config = gitlab_project(template, tmp_path, deploy_target=target)

    for job in DEPLOY_JOBS:
        steps = [line for line in config[job]["before_script"] if not line.startswith("#")]
        assert steps[0].startswith(PROMOTED_CHECK), (job, steps[0])


def test_gitlab_kubernetes_jobs_install_the_gke_auth_plugin(template, tmp_path):
    config = gitlab_project(template, tmp_path, deploy_target="kubernetes")

    for job in DEPLOY_JOBS:
        installs = [line for line in config[job]["before_script"] if "apt-get install" in line]
        assert any("google-cloud-cli-gke-gcloud-auth-plugin" in line for line in installs), job
