"""Command `models`: the registered versions, their aliases and where they come from.

Through MLflow's public API, like `runs`: versions with their aliases, canvas
metric, data version and commit (from each version's run), then the history
of alias moves (who, when, why), the registered-model tags registry.py writes.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from ..core import paths
from ..core.canvas import load_canvas
from ..core.params import load_params
from ..tracking import record
from . import registry
from .settings import load_registry_settings


def table(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


def describe(client: Any, version: Any, aliases: list[str], metric: str) -> dict[str, Any]:
    """A version with what its run recorded (nothing when the run is gone)."""
    from mlflow.exceptions import MlflowException

    try:
        data = client.get_run(version.run_id).data
        values, params, tags = data.metrics, data.params, data.tags
    except MlflowException:
        values, params, tags = {}, {}, {}
    return {
        "version": str(version.version),
        "aliases": ",".join(sorted(aliases)),
        "metric": values.get(metric),
        "data_md5": params.get("data_md5"),
        "git_commit": tags.get("git_commit"),
        "registered_utc": time.strftime(
            "%Y-%m-%d %H:%M:%S", time.gmtime(version.creation_timestamp / 1000)
        ),
        "run_id": version.run_id,
    }


def run(params_path: Path = paths.PARAMS, canvas_path: Path = paths.CANVAS) -> list[dict]:
    params = load_params(params_path)
    metric = load_canvas(canvas_path).success_metric.name
    name = load_registry_settings().model_name
    missing = record.missing_store(params.tracking.effective_uri)
    if missing:
        print(f"No registry yet: {missing} does not exist.")
        return []
    client, _ = registry.open_registry(params_path)
    found = client.search_model_versions(f"name = '{name}'")
    if not found:
        print(f"No version of model {name!r} yet: `uv run poe register` after a passed gate.")
        return []
    # search_model_versions leaves the versions' aliases out: the registered model has them.
    aliases: dict[str, list[str]] = {}
    for alias, number in client.get_registered_model(name).aliases.items():
        aliases.setdefault(str(number), []).append(alias)
    versions = [
        describe(client, version, aliases.get(str(version.version), []), metric)
        for version in sorted(found, key=lambda version: int(version.version), reverse=True)
    ]
    rows = [["version", "aliases", metric, "data", "commit", "registered (UTC)", "run"]]
    for version in versions:
        value = version["metric"]
        rows.append(
            [
                version["version"],
                version["aliases"] or "-",
                "-" if value is None else f"{value:.4f}",
                (version["data_md5"] or "-")[:8],
                (version["git_commit"] or "-")[:8],
                version["registered_utc"],
                version["run_id"],
            ]
        )
    print(f"Versions of model {name!r}, newest first, from {params.tracking.effective_uri}:")
    print(table(rows))
    moves = registry.history(client, name)
    if moves:
        print("\nAlias moves, oldest first:")
        history = [["when (UTC)", "move", "alias", "version", "previous", "who", "why"]]
        history += [
            [m.when, m.kind, m.alias, m.version, m.previous or "-", m.who, m.why] for m in moves
        ]
        print(table(history))
    return versions
