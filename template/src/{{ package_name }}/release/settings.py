"""deploy.yaml: the settings level 3 adds, in a file of its own.

canvas.yaml says what success means; deploy.yaml says how strict the gate is
and how the registry names the model. Every key has a default in code, so a
missing key (or a missing file) means "the default".
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ..core.errors import PipelineError
from ..core.settings import Reader

DEPLOY_SETTINGS = Path("deploy.yaml")
GATE_REPORT = Path("reports/gate.json")
GATE_SUMMARY = Path("reports/gate.md")
PACKAGE = __name__.split(".")[0]
TARGETS = ("container", "cloud-run", "kubernetes")


@dataclass(frozen=True)
class GateSettings:
    margin: float = 0.005  # the champion must be beaten by at least this much
    latency_rows: int = 200  # single-row predictions timed for the latency check
    slice_column: str | None = None  # a column whose categories must not regress
    max_slice_drop: float = 0.05  # how much worse than the champion a slice may be
    min_slice_rows: int = 20  # smaller slices are reported, not judged


@dataclass(frozen=True)
class RegistrySettings:
    model_name: str = PACKAGE


def _reader(path: Path) -> Reader | None:
    return Reader.of_file(path) if path.is_file() else None


def load_gate_settings(path: Path = DEPLOY_SETTINGS) -> GateSettings:
    reader = _reader(path)
    if reader is None:
        return GateSettings()
    defaults = GateSettings()
    slice_column = reader.get("gate.slice_column", None)
    if slice_column is not None:
        slice_column = reader.text("gate.slice_column")
    rows = reader.integer("gate.latency_rows", defaults.latency_rows)
    if rows < 1:
        raise reader.fail("gate.latency_rows", f"must be at least 1 (got {rows})")
    return GateSettings(
        margin=reader.fraction("gate.margin", defaults.margin),
        latency_rows=rows,
        slice_column=slice_column,
        max_slice_drop=reader.fraction("gate.max_slice_drop", defaults.max_slice_drop),
        min_slice_rows=reader.integer("gate.min_slice_rows", defaults.min_slice_rows),
    )


def load_registry_settings(path: Path = DEPLOY_SETTINGS) -> RegistrySettings:
    reader = _reader(path)
    if reader is None:
        return RegistrySettings()
    if reader.get("registry.model_name", None) is None:
        return RegistrySettings()
    return RegistrySettings(model_name=reader.text("registry.model_name"))


@dataclass(frozen=True)
class DeliverySettings:
    target: str = "container"
    image: str = PACKAGE.replace("_", "-")
    service: str = PACKAGE.replace("_", "-")
    gcp_project: str | None = None
    gcp_region: str | None = None
    artifact_repository: str = "ml-models"
    gke_cluster: str | None = None
    canary_percent: int = 10
    # Cloud Run: false keeps the services private (callers need an identity
    # token, the smoke test sends one); true lets anyone reach them, the API
    # token still guarding POST /predict.
    cloud_run_public: bool = False

    def require(self, name: str, variable: str) -> str:
        value = getattr(self, name)
        if not value:
            raise PipelineError(
                f"{DEPLOY_SETTINGS}: `delivery.{name}` is not set (nor {variable}): the "
                f"{self.target} target needs it."
            )
        return str(value)


def load_delivery_settings(
    path: Path = DEPLOY_SETTINGS, environ: Mapping[str, str] = os.environ
) -> DeliverySettings:
    """The `delivery:` section; GCP_PROJECT, GCP_REGION and GKE_CLUSTER override it."""
    reader = _reader(path)
    defaults = DeliverySettings()
    if reader is None:
        return defaults
    target = reader.text("delivery.target", defaults.target)
    if target not in TARGETS:
        raise reader.fail("delivery.target", f"must be one of {', '.join(TARGETS)}")
    canary = reader.integer("delivery.canary_percent", defaults.canary_percent)
    if not 1 <= canary <= 100:
        raise reader.fail("delivery.canary_percent", f"must be between 1 and 100 (got {canary})")

    def optional(key: str, variable: str) -> str | None:
        value = environ.get(variable) or reader.get(f"delivery.{key}", None)
        return str(value) if value else None

    return DeliverySettings(
        target=target,
        image=reader.text("delivery.image", defaults.image),
        service=reader.text("delivery.service", defaults.service),
        gcp_project=optional("gcp_project", "GCP_PROJECT"),
        gcp_region=optional("gcp_region", "GCP_REGION"),
        artifact_repository=reader.text(
            "delivery.artifact_repository", defaults.artifact_repository
        ),
        gke_cluster=optional("gke_cluster", "GKE_CLUSTER"),
        canary_percent=canary,
        cloud_run_public=reader.boolean("delivery.cloud_run.public", defaults.cloud_run_public),
    )
