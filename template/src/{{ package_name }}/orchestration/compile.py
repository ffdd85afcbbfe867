"""Command `pipeline-compile`: write the pipeline as kfp YAML (reports/pipeline.yaml),
offline. data_uri, deploy_url and deploy_ref stay parameters a run can change.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from .settings import COMPILED, TARGETS, load_orchestrator_settings


def run(
    out: Path = COMPILED,
    image: str | None = None,
    data_uri: str | None = None,
    target: str | None = None,
) -> Path:
    from .pipeline import compile_pipeline, make_build

    settings = load_orchestrator_settings()
    if target:
        settings = settings.model_copy(update={"target": target})
    build = make_build(settings, image=image, data_uri=data_uri)
    start = time.perf_counter()
    compile_pipeline(build, out)
    seconds = time.perf_counter() - start
    print(
        f"pipeline-compile: {build.name} for {settings.target} in {seconds:.2f} s -> {out}\n"
        f"  image {build.image}\n  data  {build.data_uri}"
    )
    return out


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=COMPILED, help=f"default: {COMPILED}")
    parser.add_argument("--image", help="the steps' image (default: orchestrator.image)")
    parser.add_argument("--data-uri", help="the raw data (default: the DVC remote's copy)")
    parser.add_argument("--target", choices=TARGETS, help="default: orchestrator.target")
