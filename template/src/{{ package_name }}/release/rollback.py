"""Command `rollback`: move `champion` back to the version that held it before.

Each promotion pushes a champion on the history's stack, each rollback pops one.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..core import paths
from ..core.errors import PipelineError
from . import registry


def run(reason: str = "rollback", params_path: Path = paths.PARAMS) -> str:
    client, name = registry.open_model(params_path)
    current = registry.version_with_alias(client, name, registry.CHAMPION)
    if current is None:
        raise PipelineError(f"model {name!r} has no champion to roll back")
    stack = registry.champions(registry.history(client, name))
    if len(stack) < 2:
        raise PipelineError(
            f"version {current.version} of {name!r} was the first champion: nothing to roll "
            "back to (promote another version with `uv run poe promote --version N`)"
        )
    previous = stack[-2]
    gate = registry.model_version(client, name, previous).tags.get("gate", "")
    registry.move_alias(client, name, registry.CHAMPION, "rollback", previous, reason, gate)
    print(f"rollback: {name} version {previous} is the champion again (was {current.version})")
    return previous


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--reason", default="rollback", help="why, recorded in the history")
