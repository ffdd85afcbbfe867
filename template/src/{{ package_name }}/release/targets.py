"""Where a model API goes: a container registry, Google Cloud Run, or Kubernetes (GKE).

Each target puts an image in an environment, smoke-tests it there (`smoke`), gives
it the traffic only then, and puts the previous version back when anything fails.
docs/delivery.md explains each target.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

from ..core.errors import PipelineError
from ..serving import smoke
from ..serving.client import free_port, wait_ready
from . import external
from .settings import DeliverySettings

CANDIDATE_TAG = "candidate"
MANIFESTS = Path("k8s")
IMAGE_PLACEHOLDER = "image: placeholder"
# Cloud Run checks an identity token in this header, leaving `Authorization` to the API.
IDENTITY_HEADER = "X-Serverless-Authorization"
SERVICE_ACCOUNT_VARIABLE = "GCP_SERVICE_ACCOUNT"  # the CI's identity (docs/delivery.md)


def smoke_test(
    url: str, version: str, timeout: float = 120, extra_headers: dict[str, str] | None = None
) -> None:
    try:
        smoke.run(url=url, expect_version=version, timeout=timeout, extra_headers=extra_headers)
    except PipelineError as error:
        raise PipelineError(f"smoke test of {url}: {error}") from None


class ContainerTarget:
    """The image, smoke-tested here, then tagged `:<environment>`: a failure leaves the tag."""

    def __init__(self, settings: DeliverySettings) -> None:
        self.settings = settings

    def deploy(self, environment: str, image: str, version: str) -> str:
        port = free_port()
        name = f"{self.settings.service}-{environment}-smoke"
        external.run(
            ["docker", "run", "--detach", "--rm", "--name", name, "--read-only",
             "--tmpfs", "/tmp", "--env", "MODEL_API_TOKEN",
             "--publish", f"127.0.0.1:{port}:8000", image],
            "run the image",
        )  # fmt: skip
        try:
            smoke_test(f"http://127.0.0.1:{port}", version)
        finally:
            external.run(["docker", "stop", name], "stop the image")
        moved = f"{image.rsplit(':', 1)[0]}:{environment}"
        external.run(["docker", "tag", image, moved], "tag the image")
        external.run(["docker", "push", moved], "push the image")
        return moved

    def rollback(self, environment: str) -> str:
        return f"the `:{environment}` tag was not moved: the previous image stays in place"


class CloudRunTarget:
    """A Cloud Run service per environment; the new revision first takes no traffic.

    A private service (unless `delivery.cloud_run.public`) answers only callers with
    an identity token whose audience is the service's URL (valid on tagged revisions).
    """

    def __init__(self, settings: DeliverySettings) -> None:
        self.settings = settings
        self.project = settings.require("gcp_project", "GCP_PROJECT")
        self.region = settings.require("gcp_region", "GCP_REGION")
        self.previous: str | None = None  # the revision that served before, if any

    def service(self, environment: str) -> str:
        return f"{self.settings.service}-{environment}"

    def gcloud(self, *args: str, step: str) -> str:
        where = ["--region", self.region, "--project", self.project]
        return external.run(["gcloud", "run", *args, *where], step)

    def describe(self, environment: str) -> dict | None:
        """The service as Cloud Run describes it, or None before its first deployment.

        Listed first: `describe` fails alike for a missing service and a missing permission.
        """
        name = self.service(environment)
        listed = self.gcloud(
            "services", "list", f"--filter=metadata.name={name}",
            "--format=value(metadata.name)", step="look for the service",
        )  # fmt: skip
        if name not in listed.split():
            return None
        return json.loads(
            self.gcloud("services", "describe", name, "--format=json", step="describe the service")
        )

    def caller_headers(self, audience: str) -> dict[str, str]:
        """Nothing if public, else an identity token: minted by GCP_SERVICE_ACCOUNT in CI
        (keyless credentials cannot print one), by gcloud's own account on a machine."""
        if self.settings.cloud_run.public:
            return {}
        command = ["gcloud", "auth", "print-identity-token"]
        account = os.environ.get(SERVICE_ACCOUNT_VARIABLE)
        if account:
            command += [
                f"--impersonate-service-account={account}", f"--audiences={audience}",
                "--include-email",
            ]  # fmt: skip
        token = external.run(command, "get an identity token for the private service").strip()
        return {IDENTITY_HEADER: f"Bearer {token}"}

    @staticmethod
    def traffic(service: dict | None, key: str, value: object, wanted: str) -> str | None:
        """`wanted` of the service's traffic entry whose `key` is `value`."""
        for entry in (service or {}).get("status", {}).get("traffic", []):
            if entry.get(key) == value and entry.get(wanted):
                return str(entry[wanted])
        return None

    def deploy(self, environment: str, image: str, version: str) -> str:
        name = self.service(environment)
        before = self.describe(environment)
        self.previous = previous = self.traffic(before, "percent", 100, "revisionName")
        # A new service cannot start without traffic; an existing one keeps serving.
        first = ["--no-traffic"] if before is not None else []
        public = self.settings.cloud_run.public
        access = "--allow-unauthenticated" if public else "--no-allow-unauthenticated"
        self.gcloud(
            "deploy", name, "--image", image, f"--tag={CANDIDATE_TAG}", *first, access,
            f"--set-secrets=MODEL_API_TOKEN={self.settings.service}-token:latest",
            "--quiet", step="deploy a new revision",
        )  # fmt: skip
        after = self.describe(environment) or {}
        url = str(after.get("status", {}).get("url", ""))
        headers = self.caller_headers(url)
        tagged = self.traffic(after, "tag", CANDIDATE_TAG, "url")
        if tagged is None:
            raise PipelineError(f"Cloud Run gave no URL for the revision tagged {CANDIDATE_TAG!r}")
        smoke_test(tagged, version, extra_headers=headers)
        canary = self.settings.canary_percent
        if environment == "production" and previous is not None and canary < 100:
            self.gcloud(
                "services", "update-traffic", name, f"--to-tags={CANDIDATE_TAG}={canary}",
                step="send part of the traffic",
            )  # fmt: skip
            # The service's URL answers from either revision now: it must, through the split.
            try:
                wait_ready(url, 120, extra_headers=headers)
            except PipelineError as error:
                raise PipelineError(f"{url} with {canary}% on the new revision: {error}") from None
        self.gcloud("services", "update-traffic", name, "--to-latest", step="send all the traffic")
        return url

    def rollback(self, environment: str) -> str:
        if self.previous is None:
            return (
                "nothing to roll back to: this was the service's first revision (delete the "
                f"service `{self.service(environment)}` or deploy a fixed version)"
            )
        self.gcloud(
            "services", "update-traffic", self.service(environment),
            f"--to-revisions={self.previous}=100", step="roll the traffic back",
        )  # fmt: skip
        return f"all traffic back on revision {self.previous}"


def with_image(folder: Path, image: str) -> Path:
    """The manifests of k8s/, with the API's image in place of the placeholder."""
    if not MANIFESTS.is_dir():
        raise PipelineError(f"{MANIFESTS}/ is missing: the kubernetes target applies it")
    for manifest in sorted(MANIFESTS.glob("*.yaml")):
        text = manifest.read_text(encoding="utf-8").replace(IMAGE_PLACEHOLDER, f"image: {image}")
        (folder / manifest.name).write_text(text, encoding="utf-8")
    return folder


class KubernetesTarget:
    """A Deployment per environment (namespace) on GKE: k8s/ applied with the new image,
    smoke-tested through a port-forward, undone (`kubectl rollout undo`) on failure."""

    def __init__(self, settings: DeliverySettings) -> None:
        self.settings = settings
        self.project = settings.require("gcp_project", "GCP_PROJECT")
        self.region = settings.require("gcp_region", "GCP_REGION")
        self.cluster = settings.require("gke_cluster", "GKE_CLUSTER")

    def kubectl(self, environment: str, *args: str, step: str) -> str:
        return external.run(["kubectl", "--namespace", environment, *args], step)

    def wait(self, environment: str, step: str) -> None:
        deployment = f"deployment/{self.settings.service}"
        self.kubectl(environment, "rollout", "status", deployment, "--timeout=300s", step=step)

    def credentials(self) -> None:
        external.run(
            ["gcloud", "container", "clusters", "get-credentials", self.cluster,
             "--region", self.region, "--project", self.project],
            "get the cluster's credentials",
        )  # fmt: skip

    def deploy(self, environment: str, image: str, version: str) -> str:
        deployment = f"deployment/{self.settings.service}"
        self.credentials()
        with tempfile.TemporaryDirectory() as folder:
            self.kubectl(
                environment, "apply", "--filename", str(with_image(Path(folder), image)),
                step="apply the manifests",
            )  # fmt: skip
        self.wait(environment, "wait for the rollout")
        port = free_port()
        forward = subprocess.Popen(
            ["kubectl", "--namespace", environment, "port-forward",
             f"service/{self.settings.service}", f"{port}:80"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            time.sleep(1)  # the forward listens within a second
            smoke_test(f"http://127.0.0.1:{port}", version)
        finally:
            forward.terminate()
            forward.wait(timeout=10)
        return f"{deployment} in namespace {environment}"

    def rollback(self, environment: str) -> str:
        deployment = f"deployment/{self.settings.service}"
        self.kubectl(environment, "rollout", "undo", deployment, step="undo the rollout")
        self.wait(environment, "wait for the undo")
        return f"{deployment} rolled back to its previous revision"


Target = ContainerTarget | CloudRunTarget | KubernetesTarget


def target_for(settings: DeliverySettings) -> Target:
    if settings.target == "cloud-run":
        return CloudRunTarget(settings)
    if settings.target == "kubernetes":
        return KubernetesTarget(settings)
    return ContainerTarget(settings)
