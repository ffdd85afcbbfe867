"""deploy.yaml's `orchestrator:` section: where the pipeline runs and what it reports to.

First found: a command-line option, an environment variable, deploy.yaml, the default
(docs/orchestration.md lists them). Secrets never go through it (see secrets.py).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Literal, get_args

from pydantic import ConfigDict, Field, field_validator

from ..core import git
from ..core.settings import Settings, Text

DEPLOY_SETTINGS = Path("deploy.yaml")
PACKAGE = __name__.split(".")[0]
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


Target = Literal["vertex", "kubeflow"]
TARGETS: tuple[str, ...] = get_args(Target)


class VertexSettings(Settings):
    project: Text | None = None
    region: Text = "us-central1"
    pipeline_root: Text | None = None  # gs://bucket/folder: where step outputs go
    service_account: Text | None = None  # the steps' identity (default: Compute Engine's)


class KubeflowSettings(Settings):
    host: Text | None = None  # the Kubeflow Pipelines API endpoint
    namespace: Text | None = None  # multi-user Kubeflow: the profile's namespace
    experiment: Text | None = None  # default: the pipeline's name
    secret: Text | None = None  # a Kubernetes secret whose keys are SECRET_NAMES


class OrchestratorSettings(Settings):
    target: Target = "kubeflow"
    pipeline_name: Text = PACKAGE.replace("_", "-")
    image: Text | None = None
    image_repository: Text | None = None
    data_uri: Text | None = None
    deploy_url: Text | None = None
    deploy_ref: Text | None = None
    secrets: Annotated[tuple[str, ...], Field(strict=False)] = SECRET_NAMES
    vertex: VertexSettings = VertexSettings()
    kubeflow: KubeflowSettings = KubeflowSettings()

    @field_validator("secrets")
    @classmethod
    def _variable_names(cls, names: tuple[str, ...]) -> tuple[str, ...]:
        for name in names:
            if not name.isidentifier():
                raise ValueError(f"lists {name!r}, not a variable name")
        return names

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


class OrchestratorFile(Settings):
    """deploy.yaml as this module sees it: its section (release/settings.py reads the rest)."""

    model_config = ConfigDict(extra="ignore")
    orchestrator: OrchestratorSettings = OrchestratorSettings()


def load_orchestrator_settings(path: Path = DEPLOY_SETTINGS) -> OrchestratorSettings:
    """deploy.yaml's section (defaults when absent), then the environment (CI variables)."""
    variables = {f"orchestrator.{key}": variable for key, variable in VARIABLES.items()}
    return OrchestratorFile.load(path, optional=True, variables=variables).orchestrator
