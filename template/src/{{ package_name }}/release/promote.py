"""Command `promote`: make a version (default: the challenger) the champion.

Only a version that passed the gate (its `gate` tag, set by `register`) can be promoted.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..core import paths
from ..core.errors import PipelineError
from . import registry


def run(
    version: str | None = None, reason: str = "promoted", params_path: Path = paths.PARAMS
) -> str:
    client, name = registry.open_model(params_path)
    if version is None:
        challenger = registry.version_with_alias(client, name, registry.CHALLENGER)
        if challenger is None:
            raise PipelineError(
                f"model {name!r} has no challenger to promote: register one first "
                "(`uv run poe register`), or pass --version"
            )
        version = str(challenger.version)
    gate = registry.model_version(client, name, version).tags.get("gate")
    if gate is None:
        raise PipelineError(f"version {version} of {name!r} never passed the gate: not promoted")
    move = registry.move_alias(client, name, registry.CHAMPION, "promote", version, reason, gate)
    was = f" (was version {move.previous})" if move.previous else ""
    print(f"promote: {name} version {version} is the champion{was}")
    return version


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--version", help="the version to promote (default: the challenger)")
    parser.add_argument("--reason", default="promoted", help="why, recorded in the history")
