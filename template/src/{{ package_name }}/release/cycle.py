"""Command `release`: what the train workflow does after training.

Gate the model the pipeline just trained; if it passes, register it as the
challenger; with `--promote`, make it the champion. A refusal by the gate is
a normal outcome, not a failure: it is reported (reports/gate.md, the job
summary) and the command exits 0. Without a shared registry (CI with a local
SQLite store), nothing is registered or promoted, and it says so. Writes
`promoted=true|false` and `version` to $GITHUB_OUTPUT for the deploy step.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..core import paths
from ..core.errors import PipelineError
from . import gate, promote, register
from .image import write_output


def run(promote_it: bool = False, params_path: Path = paths.PARAMS) -> dict:
    passed, version, promoted = False, None, False
    try:
        gate.run(params_path=params_path)
    except PipelineError as error:
        if not str(error).startswith("gate refused the model"):
            raise
        print(f"release: {error}: nothing registered (a normal outcome)")
    else:
        passed = True
        if not gate.shared_registry():
            print("release: no shared registry (MLFLOW_TRACKING_URI): nothing registered")
        else:
            version = register.run(params_path=params_path)
            if promote_it:
                promote.run(version=version, reason="passed the gate in CI")
                promoted = True
    write_output("promoted", str(promoted).lower())
    write_output("version", version or "")
    return {"passed": passed, "version": version, "promoted": promoted}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--promote", dest="promote_it", action="store_true", help="promote a passing model"
    )
