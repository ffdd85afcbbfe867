"""Command `image`: build the API's image from the exported model folder, tagged
`:<commit>` and `:model-<version>` (`--push`: push them), in the CI provider's
registry or Artifact Registry. Writes the commit tag's reference as output `image`.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from ..core import git
from ..core.errors import PipelineError
from ..serving.model_folder import open_model_folder
from ..serving.settings import load_serving_settings
from . import external
from .settings import DeliverySettings, load_delivery_settings

DOTENV = Path("release.env")  # GitLab: the job's dotenv report, read by later jobs


def write_output(name: str, value: str) -> None:
    """An output for later steps or jobs: $GITHUB_OUTPUT, or GitLab's dotenv report."""
    target = os.environ.get("GITHUB_OUTPUT")
    if not target and os.environ.get("GITLAB_CI") == "true":
        target = str(DOTENV)
    if target:
        with Path(target).open("a", encoding="utf-8") as stream:
            stream.write(f"{name.upper() if target == str(DOTENV) else name}={value}\n")


def default_registry(settings: DeliverySettings) -> str:
    """Artifact Registry for the Google Cloud targets; the container target names its own."""
    if settings.target == "container":
        raise PipelineError("the container target needs --registry, e.g. ghcr.io/my-org")
    region = settings.require("gcp_region", "GCP_REGION")
    project = settings.require("gcp_project", "GCP_PROJECT")
    return f"{region}-docker.pkg.dev/{project}/{settings.artifact_repository}"


def run(
    registry: str | None = None,
    push: bool = False,
    base: str | None = None,
    pipeline: bool = False,
) -> str:
    settings = load_delivery_settings()
    registry = registry or default_registry(settings)
    commit = git.commit()
    if commit == git.NO_COMMIT:
        raise PipelineError("the image is tagged with the commit: commit your work first")
    if pipeline:  # the kfp steps' image: the code of the commit, no model inside
        repository = f"{registry.rstrip('/')}/{settings.image}-pipeline"
        version = "none"
        tags = [f"{repository}:{commit[:12]}"]
        command = ["docker", "build", "--target", "pipeline"]
    else:
        folder = open_model_folder(load_serving_settings().model_dir)
        repository = f"{registry.rstrip('/')}/{settings.image}"
        version = folder.version
        tags = [f"{repository}:{commit[:12]}", f"{repository}:model-{version}"]
        command = ["docker", "build", "--target", "api"]
    command += ["--build-arg", f"MODEL_VERSION={version}", "--build-arg", f"GIT_COMMIT={commit}"]
    if base:
        command += ["--build-arg", f"BASE={base}"]
    for tag in tags:
        command += ["--tag", tag]
    external.run([*command, "."], "build the image", timeout=1800)
    if push:
        if registry.split("/")[0].endswith("docker.pkg.dev"):
            host = registry.split("/")[0]
            external.run(["gcloud", "auth", "configure-docker", host, "--quiet"], "log docker in")
        for tag in tags:
            external.run(["docker", "push", tag], "push the image")
    print(f"image: {tags[0]} (model version {version})")
    write_output("image", tags[0])
    write_output("version", version)
    return tags[0]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--registry", help="e.g. ghcr.io/my-org (default for Google Cloud: Artifact Registry)"
    )
    parser.add_argument("--push", action="store_true", help="push every tag after the build")
    parser.add_argument("--base", help="base image (the Dockerfile's BASE build argument)")
    parser.add_argument(
        "--pipeline", action="store_true", help="the kfp pipeline's image, not the API's"
    )
