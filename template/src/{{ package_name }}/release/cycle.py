"""Command `release`: what the train workflow does after training.

Gate the model; if it passes and the registry is shared, register it (and with
`--promote`, promote it). A refusal is a normal outcome: reported, exit 0.
Writes `promoted=true|false` and `version` as outputs for the deploy step.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..core import paths
from ..core.errors import PipelineError
from . import gate, promote, register
from .image import write_output


def run(promote_it: bool = False, params_path: Path = paths.PARAMS) -> dict:
    passed, version = False, None
    try:
        gate.run(params_path=params_path)
        passed = True
    except PipelineError as error:
        if not str(error).startswith("gate refused the model"):
            raise
        print(f"release: {error}: nothing registered (a normal outcome)")
    if passed and not gate.shared_registry():
        print("release: no shared registry (MLFLOW_TRACKING_URI): nothing registered")
    elif passed:
        version = register.run(params_path=params_path)
        if promote_it:
            promote.run(version=version, reason="passed the gate in CI")
    promoted = version is not None and promote_it
    write_output("promoted", str(promoted).lower())
    write_output("version", version or "")
    return {"passed": passed, "version": version, "promoted": promoted}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--promote", dest="promote_it", action="store_true", help="promote a passing model"
    )
