"""Command `deploy`: put an image in an environment, smoke-test it, roll back on failure.

The target (deploy.yaml's `delivery.target`: container, cloud-run or
kubernetes, targets.py) decides how. Whatever the target, the new version is
checked with the project's `smoke` checks against what was actually deployed,
takes the traffic only when they pass, and the previous version is put back
when anything fails. The outcome is written to reports/deploy-<environment>.json
and the job summary, and, with a shared registry, to the model version's tag
`live.<environment>`: what is live is recorded where the models are.
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
from .registry import who
from .settings import load_delivery_settings, load_registry_settings
from .targets import target_for

ENVIRONMENTS = ("staging", "production")


def record(environment: str, entry: dict, params_path: Path) -> None:
    files.write_json(Path(f"reports/deploy-{environment}.json"), entry)
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary:
        line = f"**{environment}**: {entry['outcome']} (model {entry['version']}, {entry['image']})"
        with Path(summary).open("a", encoding="utf-8") as stream:
            stream.write(line + "\n\n")
    if entry["outcome"] != "live" or not os.environ.get("MLFLOW_TRACKING_URI"):
        return  # no shared registry to record it in (the report file says it all)
    from . import registry

    client, _ = registry.open_registry(params_path)
    name = load_registry_settings().model_name
    if not entry["version"].isdigit():
        return  # a candidate, not a registered version
    client.set_model_version_tag(name, entry["version"], f"live.{environment}", json.dumps(entry))


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
        "who": who(),
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
