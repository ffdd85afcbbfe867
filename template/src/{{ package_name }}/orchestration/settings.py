"""deploy.yaml's `orchestrator:` section: where the pipeline runs and what it reports to.

Every value comes, first found: a command-line option, an environment variable
(a CI variable), deploy.yaml, a default here. The table of docs/orchestration.md
lists them all. Secrets never go through this file or the compiled pipeline:
the steps read them from their environment (see secrets.py).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..core import git
from ..core.errors import PipelineError
from ..core.settings import Reader

DEPLOY_SETTINGS = Path("deploy.yaml")
PACKAGE = __name__.split(".")[0]
TARGETS = ("vertex", "kubeflow")
COMPILED = Path("reports/pipeline.yaml")
LOCAL_ROOT = Path("data/pipeline-runs")  # git-ignored like the rest of data/

# What the steps may need from a secret store, by environment variable name.
SECRET_NAMES = (
    "MLFLOW_TRACKING_URI",  # the shared tracking store and registry (a password in a DB URL)
    "MLFLOW_TRACKING_TOKEN",  # an MLflow server's bearer token, if it wants one
    "PIPELINE_NOTIFY_URL",  # the team's chat webhook (Slack, Teams, Google Chat, Mattermost)
    "PIPELINE_DEPLOY_TOKEN",  # GitHub token or GitLab trigger token for the deploy trigger
)

# setting -> environment variable that overrides it (docs/orchestration.md lists them)
VARIABLES = {
    "target": "PIPELINE_TARGET",
    "pipeline_name": "PIPELINE_NAME",
    "image": "PIPELINE_IMAGE",
    "image_repository": "PIPELINE_IMAGE_REPOSITORY",
    "data_uri": "PIPELINE_DATA_URI",
    "deploy_url": "PIPELINE_DEPLOY_URL",
    "deploy_ref": "PIPELINE_DEPLOY_REF",
    "vertex.project": "GOOGLE_CLOUD_PROJECT",
    "vertex.region": "GOOGLE_CLOUD_REGION",
    "vertex.pipeline_root": "PIPELINE_ROOT",
    "vertex.service_account": "PIPELINE_SERVICE_ACCOUNT",
    "kubeflow.host": "KFP_HOST",
    "kubeflow.namespace": "KFP_NAMESPACE",
    "kubeflow.experiment": "KFP_EXPERIMENT",
    "kubeflow.secret": "KFP_SECRET",
}


@dataclass(frozen=True)
class VertexSettings:
    project: str | None = None
    region: str = "us-central1"
    pipeline_root: str | None = None  # gs://bucket/folder: where step outputs go
    service_account: str | None = None  # the steps' identity (default: Compute Engine's)


@dataclass(frozen=True)
class KubeflowSettings:
    host: str | None = None  # the Kubeflow Pipelines API endpoint
    namespace: str | None = None  # multi-user Kubeflow: the profile's namespace
    experiment: str | None = None  # default: the pipeline's name
    secret: str | None = None  # a Kubernetes secret whose keys are SECRET_NAMES


@dataclass(frozen=True)
class OrchestratorSettings:
    target: str = "kubeflow"
    pipeline_name: str = PACKAGE.replace("_", "-")
    image: str | None = None
    image_repository: str | None = None
    data_uri: str | None = None
    deploy_url: str | None = None
    deploy_ref: str | None = None
    secrets: tuple[str, ...] = SECRET_NAMES
    vertex: VertexSettings = field(default_factory=VertexSettings)
    kubeflow: KubeflowSettings = field(default_factory=KubeflowSettings)

    def pipeline_image(self, commit: str | None = None) -> str:
        """The image every step runs in: `image`, else `<repository>/<name>-pipeline:<commit>`."""
        if self.image:
            return self.image
        tag = (commit or git.commit())[:12]
        name = f"{self.pipeline_name}-pipeline:{tag}"
        return f"{self.image_repository.rstrip('/')}/{name}" if self.image_repository else name

    def deploy_trigger(self) -> tuple[str | None, str]:
        """The deploy trigger's URL and ref, defaulting to the CI that compiles the pipeline."""
        url, ref = self.deploy_url, self.deploy_ref
        environ = os.environ
        if url is None and environ.get("GITHUB_REPOSITORY"):
            api = environ.get("GITHUB_API_URL", "https://api.github.com")
            url = f"{api}/repos/{environ['GITHUB_REPOSITORY']}/dispatches"
        elif url is None and environ.get("CI_API_V4_URL") and environ.get("CI_PROJECT_ID"):
            url = f"{environ['CI_API_V4_URL']}/projects/{environ['CI_PROJECT_ID']}/trigger/pipeline"
        if ref is None:
            ref = environ.get("CI_DEFAULT_BRANCH") or environ.get("DEFAULT_BRANCH") or "main"
        return url, ref


def _optional_text(reader: Reader, key: str) -> str | None:
    if reader.get(key, None) is None:
        return None
    return reader.text(key).strip()


def read_orchestrator_settings(reader: Reader) -> OrchestratorSettings:
    """The `orchestrator:` section of a settings mapping (defaults for missing keys)."""

    def text(key: str) -> str | None:
        return _optional_text(reader, f"orchestrator.{key}")

    default = OrchestratorSettings()
    secrets = (
        list(default.secrets)
        if reader.get("orchestrator.secrets", None) is None
        else reader.names("orchestrator.secrets")
    )
    for name in secrets:
        if not name.isidentifier():
            raise reader.fail("orchestrator.secrets", f"lists {name!r}, not a variable name")
    return OrchestratorSettings(
        target=text("target") or default.target,
        pipeline_name=text("pipeline_name") or default.pipeline_name,
        image=text("image"),
        image_repository=text("image_repository"),
        data_uri=text("data_uri"),
        deploy_url=text("deploy_url"),
        deploy_ref=text("deploy_ref"),
        secrets=tuple(secrets),
        vertex=VertexSettings(
            project=text("vertex.project"),
            region=text("vertex.region") or VertexSettings.region,
            pipeline_root=text("vertex.pipeline_root"),
            service_account=text("vertex.service_account"),
        ),
        kubeflow=KubeflowSettings(
            host=text("kubeflow.host"),
            namespace=text("kubeflow.namespace"),
            experiment=text("kubeflow.experiment"),
            secret=text("kubeflow.secret"),
        ),
    )


def _with_environment(settings: OrchestratorSettings) -> OrchestratorSettings:
    """Environment variables (CI variables) win over deploy.yaml."""
    top: dict[str, Any] = {}
    nested: dict[str, dict[str, Any]] = {"vertex": {}, "kubeflow": {}}
    for key, variable in VARIABLES.items():
        value = os.environ.get(variable, "").strip()
        if not value:
            continue
        section, _, name = key.rpartition(".")
        (nested[section] if section else top)[name] = value
    return replace(
        settings,
        **top,
        vertex=replace(settings.vertex, **nested["vertex"]),
        kubeflow=replace(settings.kubeflow, **nested["kubeflow"]),
    )


def load_orchestrator_settings(path: Path = DEPLOY_SETTINGS) -> OrchestratorSettings:
    """deploy.yaml's section (defaults when absent), then the environment; checked."""
    settings = (
        read_orchestrator_settings(Reader.of_file(path))
        if path.is_file()
        else OrchestratorSettings()
    )
    settings = _with_environment(settings)
    if settings.target not in TARGETS:
        raise PipelineError(
            f"the orchestrator target is {settings.target!r}: use one of {', '.join(TARGETS)} "
            f"(`orchestrator.target` in {path} or {VARIABLES['target']})"
        )
    return settings
