"""Command `models`: the registered versions (aliases, canvas metric, data version and
commit from each version's run), then the history of alias moves (who, when, why).
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


def table(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


def row(client: Any, version: Any, aliases: list[str], metric: str) -> list[str]:
    """A version with what its run recorded (nothing when the run is gone)."""
    from mlflow.exceptions import MlflowException

    try:
        data = client.get_run(version.run_id).data
        value, params, tags = data.metrics.get(metric), data.params, data.tags
    except MlflowException:
        value, params, tags = None, {}, {}
    registered = time.gmtime(version.creation_timestamp / 1000)
    return [
        str(version.version),
        ",".join(sorted(aliases)) or "-",
        "-" if value is None else f"{value:.4f}",
        params.get("data_md5", "-")[:8],
        tags.get("git_commit", "-")[:8],
        time.strftime("%Y-%m-%d %H:%M:%S", registered),
        version.run_id,
    ]


def run(params_path: Path = paths.PARAMS, canvas_path: Path = paths.CANVAS) -> list[list[str]]:
    uri = load_params(params_path).tracking.effective_uri
    metric = load_canvas(canvas_path).success_metric.name
    missing = record.missing_store(uri)
    if missing:
        print(f"No registry yet: {missing} does not exist.")
        return []
    client, name = registry.open_model(params_path)
    found = client.search_model_versions(f"name = '{name}'")
    if not found:
        print(f"No version of model {name!r} yet: `uv run poe register` after a passed gate.")
        return []
    # search_model_versions leaves the versions' aliases out: the registered model has them.
    aliases: dict[str, list[str]] = {}
    for alias, number in client.get_registered_model(name).aliases.items():
        aliases.setdefault(str(number), []).append(alias)
    versions = [
        row(client, version, aliases.get(str(version.version), []), metric)
        for version in sorted(found, key=lambda version: int(version.version), reverse=True)
    ]
    print(f"Versions of model {name!r}, newest first, from {uri}:")
    header = ["version", "aliases", metric, "data", "commit", "registered (UTC)", "run"]
    print(table([header, *versions]))
    moves = registry.history(client, name)
    if moves:
        print("\nAlias moves, oldest first:")
        history = [["when (UTC)", "move", "alias", "version", "previous", "who", "why"]]
        history += [
            [m.when, m.kind, m.alias, m.version, m.previous or "-", m.who, m.why] for m in moves
        ]
        print(table(history))
    return versions
