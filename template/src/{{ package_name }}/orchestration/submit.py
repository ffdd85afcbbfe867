"""Command `pipeline-submit`: start a run of the compiled pipeline, without waiting
(report.py reports its end): a Vertex AI PipelineJob with the environment's Google
credentials, or a run on a Kubeflow Pipelines host (KFP_TOKEN: the bearer token).
`--dry-run` builds the same request without credentials or network and prints it.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import time
from pathlib import Path
from typing import Any

import yaml

from ..core import files
from ..core.errors import PipelineError
from .settings import COMPILED, TARGETS, VARIABLES, OrchestratorSettings, load_orchestrator_settings

TOKEN_VARIABLE = "KFP_TOKEN"


def compiled_pipeline(path: Path) -> dict[str, Any]:
    """The pipeline document of a compiled file (Kubeflow's adds a platform document)."""
    files.require_file(path, "compile it first (`uv run poe pipeline-compile`)")
    try:
        document = next(yaml.safe_load_all(path.read_text(encoding="utf-8")), None)
    except yaml.YAMLError:
        document = None
    if not isinstance(document, dict) or "pipelineInfo" not in document or "root" not in document:
        raise PipelineError(f"{path} is not a compiled kfp pipeline: run `pipeline-compile`")
    return document


def images(document: dict[str, Any]) -> list[str]:
    executors = document.get("deploymentSpec", {}).get("executors", {})
    return sorted({e["container"]["image"] for e in executors.values() if "container" in e})


def parameters(document: dict[str, Any]) -> dict[str, Any]:
    """The pipeline's parameters and the values a run gets (the compiled defaults)."""
    inputs = document["root"].get("inputDefinitions", {}).get("parameters", {})
    return {name: spec.get("defaultValue") for name, spec in inputs.items()}


def run_name(document: dict[str, Any]) -> str:
    name = document["pipelineInfo"]["name"]
    return f"{name}-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}"


def labels(document: dict[str, Any]) -> dict[str, str]:
    """Labels Vertex AI accepts (lower case, digits, - and _; 63 characters)."""
    image_tag = images(document)[0].rpartition(":")[2] if images(document) else ""
    clean = {"pipeline": document["pipelineInfo"]["name"], "image-tag": image_tag}
    return {k: re.sub(r"[^a-z0-9_-]", "-", v.lower())[:63] for k, v in clean.items() if v}


def require(value: str | None, setting: str) -> str:
    if not value:
        raise PipelineError(
            f"`orchestrator.{setting}` is not set: set it in deploy.yaml or {VARIABLES[setting]}"
        )
    return value


def check_remote_data(document: dict[str, Any], scheme: str | None) -> None:
    """A cluster cannot read this machine's files: the data must be in a bucket."""
    uri = str(parameters(document).get("data_uri") or "")
    ok = uri.startswith(f"{scheme}://") if scheme else bool(re.match(r"^[a-z0-9]+://", uri))
    if not ok:
        wanted = f"a {scheme}:// URI" if scheme else "a bucket URI (gs://, s3://, minio://)"
        raise PipelineError(
            f"the pipeline's data_uri is {uri!r}, not {wanted}: push the data to a cloud DVC "
            f"remote or set orchestrator.data_uri ({VARIABLES['data_uri']}), then compile again"
        )
    for image in images(document):
        if "/" not in image.split(":")[0]:
            raise PipelineError(
                f"the steps' image {image!r} names no registry: set orchestrator.image_repository "
                f"({VARIABLES['image_repository']}) or {VARIABLES['image']}, then compile again"
            )


def submit_vertex(
    settings: OrchestratorSettings, path: Path, document: dict[str, Any], dry_run: bool
) -> dict[str, Any]:
    check_remote_data(document, "gs")
    try:
        from google.cloud import aiplatform
    except ImportError:
        raise PipelineError(
            "submitting to Vertex AI needs google-cloud-aiplatform[pipelines] "
            "(the `vertex` dependency group: `uv sync --group vertex`)"
        ) from None
    vertex = settings.vertex
    project = require(vertex.project, "vertex.project")
    root = require(vertex.pipeline_root, "vertex.pipeline_root")
    if not root.startswith("gs://"):
        raise PipelineError(f"`orchestrator.vertex.pipeline_root` must be gs://... (got {root!r})")
    credentials = None
    if dry_run:
        from google.auth.credentials import AnonymousCredentials

        credentials = AnonymousCredentials()
    job = aiplatform.PipelineJob(
        display_name=run_name(document),
        template_path=str(path),
        pipeline_root=root,
        project=project,
        location=vertex.region,
        enable_caching=False,
        labels=labels(document),
        credentials=credentials,
    )
    pending = job._gca_resource  # the PipelineJob that submit() sends
    request = {
        "target": "vertex",
        "project": job.project,
        "location": job.location,
        "display_name": pending.display_name,
        "pipeline_root": pending.runtime_config.gcs_output_directory,
        "service_account": settings.vertex.service_account,
        "images": images(document),
        "parameters": parameters(document),
        "labels": dict(pending.labels),
    }
    if not dry_run:
        job.submit(service_account=settings.vertex.service_account)
        request["resource_name"] = job.resource_name
    return request


def submit_kubeflow(
    settings: OrchestratorSettings, path: Path, document: dict[str, Any], dry_run: bool
) -> dict[str, Any]:
    check_remote_data(document, None)
    kubeflow = settings.kubeflow
    host = require(kubeflow.host, "kubeflow.host")
    request: dict[str, Any] = {
        "target": "kubeflow",
        "host": host,
        "namespace": kubeflow.namespace,
        "experiment": kubeflow.experiment or settings.pipeline_name,
        "run_name": run_name(document),
        "images": images(document),
        "parameters": parameters(document),
        "token": "set" if os.environ.get(TOKEN_VARIABLE) else "not set",
    }
    if dry_run:
        return request
    import kfp

    client = kfp.Client(
        host=host, namespace=kubeflow.namespace, existing_token=os.environ.get(TOKEN_VARIABLE)
    )
    result = client.create_run_from_pipeline_package(
        str(path),
        arguments={},
        run_name=request["run_name"],
        experiment_name=request["experiment"],
        namespace=kubeflow.namespace,
        enable_caching=False,
    )
    request["run_id"] = result.run_id
    return request


def run(
    package: Path = COMPILED, dry_run: bool = False, target: str | None = None
) -> dict[str, Any]:
    settings = load_orchestrator_settings()
    if target:
        settings = settings.model_copy(update={"target": target})
    document = compiled_pipeline(package)
    submit = submit_vertex if settings.target == "vertex" else submit_kubeflow
    request = submit(settings, package, document, dry_run)
    verb = "would submit" if dry_run else "submitted"
    print(f"pipeline-submit: {verb} {package} to {settings.target} (not waiting):")
    print(json.dumps(request, indent=2, sort_keys=True))
    return request


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--package", type=Path, default=COMPILED, help=f"default: {COMPILED}")
    parser.add_argument(
        "--dry-run", action="store_true", help="build the request and print it; submit nothing"
    )
    parser.add_argument("--target", choices=TARGETS, help="default: orchestrator.target")
