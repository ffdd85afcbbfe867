"""Command `models`: the registered versions, their aliases and where they come from.

Plain SQL on MLflow's SQLite store, like `runs`: versions with their aliases,
canvas metric, data version and commit, then the history of alias moves
(who, when, why). docs/delivery.md shows the same query.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..core import paths
from ..core.canvas import load_canvas
from ..core.params import load_params
from ..tracking.runs import database_path, query
from .settings import load_registry_settings

# :name and :metric are bound at run time.
VERSIONS_SQL = """
SELECT
    v.version AS version,
    datetime(v.creation_time / 1000, 'unixepoch') AS registered_utc,
    (SELECT group_concat(a.alias, ',') FROM registered_model_aliases AS a
        WHERE a.name = v.name AND a.version = v.version) AS aliases,
    (SELECT value FROM latest_metrics WHERE run_uuid = v.run_id AND key = :metric) AS metric,
    (SELECT value FROM params WHERE run_uuid = v.run_id AND key = 'data_md5') AS data_md5,
    (SELECT value FROM tags WHERE run_uuid = v.run_id AND key = 'git_commit') AS git_commit,
    v.run_id AS run_id
FROM model_versions AS v
WHERE v.name = :name
ORDER BY v.version DESC
"""
# Alias moves are registered-model tags `alias_move.<nanoseconds>` (registry.py).
HISTORY_SQL = """
SELECT value FROM registered_model_tags
WHERE name = :name AND key LIKE 'alias_move.%'
ORDER BY CAST(substr(key, 12) AS INTEGER)
"""


def table(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


def run(params_path: Path = paths.PARAMS, canvas_path: Path = paths.CANVAS) -> list[dict]:
    params = load_params(params_path)
    metric = load_canvas(canvas_path).success_metric.name
    name = load_registry_settings().model_name
    db_path = database_path(params.tracking.effective_uri)
    if not db_path.is_file():
        print(f"No registry yet: {db_path} does not exist.")
        return []
    values = {"name": name, "metric": metric}
    versions = query(db_path, VERSIONS_SQL, values)
    if not versions:
        print(f"No version of model {name!r} yet: `uv run poe register` after a passed gate.")
        return []
    rows = [["version", "aliases", metric, "data", "commit", "registered (UTC)", "run"]]
    for version in versions:
        value = version["metric"]
        rows.append(
            [
                str(version["version"]),
                version["aliases"] or "-",
                "-" if value is None else f"{value:.4f}",
                (version["data_md5"] or "-")[:8],
                (version["git_commit"] or "-")[:8],
                version["registered_utc"],
                version["run_id"],
            ]
        )
    print(f"Versions of model {name!r}, newest first, from {db_path}:")
    print(table(rows))
    moves = [json.loads(row["value"]) for row in query(db_path, HISTORY_SQL, {"name": name})]
    if moves:
        print("\nAlias moves, oldest first:")
        history = [["when (UTC)", "move", "alias", "version", "previous", "who", "why"]]
        history += [
            [
                m["when"],
                m["kind"],
                m["alias"],
                m["version"],
                m["previous"] or "-",
                m["who"],
                m["why"],
            ]
            for m in moves
        ]
        print(table(history))
    return versions
