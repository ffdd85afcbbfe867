"""Command `deploy`: put an image in an environment with deploy.yaml's target
(targets.py), smoke-test it, roll back on failure. The outcome goes to
reports/deploy-<environment>.json, the job summary and, with a shared registry,
the model version's tag `live.<environment>`.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from ..core import files, paths
from ..core.errors import PipelineError
from ..serving.model_folder import open_model_folder
from ..serving.settings import load_serving_settings
from . import registry
from .gate import job_summary
from .settings import load_delivery_settings
from .targets import target_for

ENVIRONMENTS = ("staging", "production")


def record(environment: str, entry: dict, params_path: Path) -> None:
    files.write_json(Path(f"reports/deploy-{environment}.json"), entry)
    job_summary(
        f"**{environment}**: {entry['outcome']} (model {entry['version']}, {entry['image']})\n"
    )
    # Recorded in a shared registry only, for a registered version (not a candidate).
    shared = os.environ.get("MLFLOW_TRACKING_URI")
    if entry["outcome"] == "live" and shared and entry["version"].isdigit():
        client, name = registry.open_model(params_path)
        tag = f"live.{environment}"
        client.set_model_version_tag(name, entry["version"], tag, json.dumps(entry))


def run(
    environment: str,
    image: str,
    version: str | None = None,
    params_path: Path = paths.PARAMS,
) -> dict:
    settings = load_delivery_settings()
    version = version or open_model_folder(load_serving_settings().model_dir).version
    target = target_for(settings)
    entry = {
        "environment": environment,
        "target": settings.target,
        "image": image,
        "version": version,
        "who": registry.who(),
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    print(f"deploy: model {version} ({image}) to {environment} on {settings.target}")
    try:
        entry["url"] = target.deploy(environment, image, version)
    except PipelineError as error:
        restored = target.rollback(environment)
        entry.update(outcome="rolled back", error=str(error), rollback=restored)
        record(environment, entry, params_path)
        raise PipelineError(f"deploy to {environment} failed ({error}); {restored}") from None
    entry["outcome"] = "live"
    record(environment, entry, params_path)
    print(f"deploy: model {version} is live in {environment}: {entry['url']}")
    return entry


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--environment", required=True, choices=ENVIRONMENTS)
    parser.add_argument("--image", required=True, help="the image reference to deploy")
    parser.add_argument("--version", help="the model version it serves (default: the folder's)")
