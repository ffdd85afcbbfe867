"""deploy.yaml: how strict the gate is, how the registry names the model, where CI
delivers it and how the API runs. A missing key (or file) means its default below.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from ..core.errors import PipelineError
from ..core.settings import Settings, Text
from ..serving.settings import MODEL_DIR_VARIABLE, ServingSettings

DEPLOY_SETTINGS = Path("deploy.yaml")
GATE_REPORT = Path("reports/gate.json")
GATE_SUMMARY = Path("reports/gate.md")
PACKAGE = __name__.split(".")[0]
Target = Literal["container", "cloud-run", "kubernetes"]
# dotted key -> the environment variable (a CI or container variable) that overrides it
VARIABLES = {
    "delivery.gcp_project": "GCP_PROJECT",
    "delivery.gcp_region": "GCP_REGION",
    "delivery.gke_cluster": "GKE_CLUSTER",
    "serving.model_dir": MODEL_DIR_VARIABLE,
}


class GateSettings(Settings):
    # The champion must be beaten by at least `margin`; `latency_rows` single-row
    # predictions are timed for the latency check.
    margin: float = Field(default=0.005, ge=0, le=1)
    latency_rows: int = Field(default=200, ge=1)
    slice_column: Text | None = None  # a column whose categories must not regress
    max_slice_drop: float = Field(default=0.05, ge=0, le=1)  # how much worse a slice may be
    min_slice_rows: int = 20  # smaller slices are reported, not judged


class RegistrySettings(Settings):
    model_name: Text = PACKAGE


class CloudRunSettings(Settings):
    # false keeps the services private (callers need an identity token, the
    # smoke test sends one); true lets anyone reach them, the API token still
    # guarding POST /predict.
    public: bool = False


class DeliverySettings(Settings):
    target: Target = "container"
    image: Text = PACKAGE.replace("_", "-")
    service: Text = PACKAGE.replace("_", "-")
    gcp_project: Text | None = None
    gcp_region: Text | None = None
    artifact_repository: Text = "ml-models"
    gke_cluster: Text | None = None
    canary_percent: int = Field(default=10, ge=1, le=100)
    cloud_run: CloudRunSettings = CloudRunSettings()

    def require(self, name: str, variable: str) -> str:
        value = getattr(self, name)
        if not value:
            raise PipelineError(
                f"{DEPLOY_SETTINGS}: `delivery.{name}` is not set (nor {variable}): the "
                f"{self.target} target needs it."
            )
        return str(value)


class DeploySettings(Settings):
    delivery: DeliverySettings = DeliverySettings()
    gate: GateSettings = GateSettings()
    registry: RegistrySettings = RegistrySettings()
    serving: ServingSettings = ServingSettings()
    # Read by orchestration/settings.py, when the project has an orchestrator.
    orchestrator: dict[str, Any] | None = None


def load_deploy_settings(path: Path = DEPLOY_SETTINGS) -> DeploySettings:
    """Read deploy.yaml (defaults when it is absent), then the environment's overrides."""
    return DeploySettings.load(path, optional=True, variables=VARIABLES)


def load_registry_settings(path: Path = DEPLOY_SETTINGS) -> RegistrySettings:
    return load_deploy_settings(path).registry


def load_delivery_settings(path: Path = DEPLOY_SETTINGS) -> DeliverySettings:
    return load_deploy_settings(path).delivery
