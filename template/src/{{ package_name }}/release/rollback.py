"""Command `rollback`: move `champion` back to the version that held it before.

The history (registry.py) is a stack: each promotion pushes a champion, each
rollback pops one, so rolling back twice goes two promotions back. The move
is recorded in the history too.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..core import paths
from ..core.errors import PipelineError
from . import registry
from .settings import load_registry_settings


def run(reason: str = "rollback", params_path: Path = paths.PARAMS) -> str:
    client, _ = registry.open_registry(params_path)
    name = load_registry_settings().model_name
    current = registry.version_with_alias(client, name, registry.CHAMPION)
    if current is None:
        raise PipelineError(f"model {name!r} has no champion to roll back")
    stack = registry.champions(registry.history(client, name))
    previous = stack[-2] if len(stack) >= 2 else None
    if previous is None:
        raise PipelineError(
            f"version {current.version} of {name!r} was the first champion: nothing to roll "
            "back to (promote another version with `uv run poe promote --version N`)"
        )
    gate = registry.model_version(client, name, previous).tags.get("gate", "")
    registry.move_alias(client, name, registry.CHAMPION, "rollback", previous, reason, gate)
    print(f"rollback: {name} version {previous} is the champion again (was {current.version})")
    return previous


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--reason", default="rollback", help="why, recorded in the history")
