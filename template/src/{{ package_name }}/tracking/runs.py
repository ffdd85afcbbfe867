"""Command `runs`: rank the tracked runs by the canvas's success metric.

A plain SQL query on MLflow's SQLite file (tables experiments, runs,
latest_metrics, params, tags), run with Python's sqlite3 module: no MLflow
import, no server, instant. docs/experiments.md shows the same query.
"""

from __future__ import annotations

import argparse
import sqlite3
from pathlib import Path
from typing import Any

from ..core import paths
from ..core.canvas import SuccessMetric, load_canvas
from ..core.errors import PipelineError
from ..core.params import load_params

# :metric, :experiment, :higher_is_better (1 or 0) and :limit are bound at run time.
RANKING_SQL = """
SELECT
    r.run_uuid AS run_id,
    r.name AS run_name,
    datetime(r.start_time / 1000, 'unixepoch') AS started_utc,
    m.value AS metric,
    (SELECT value FROM params WHERE run_uuid = r.run_uuid AND key = 'architecture')
        AS architecture,
    (SELECT value FROM params WHERE run_uuid = r.run_uuid AND key = 'architecture_version')
        AS architecture_version,
    (SELECT group_concat(substr(key, 4) || '=' || value, ' ') FROM params
        WHERE run_uuid = r.run_uuid AND key LIKE 'hp.%') AS hyperparameters,
    (SELECT value FROM params WHERE run_uuid = r.run_uuid AND key = 'features.numeric')
        AS numeric_features,
    (SELECT value FROM params WHERE run_uuid = r.run_uuid AND key = 'features.categorical')
        AS categorical_features,
    (SELECT value FROM params WHERE run_uuid = r.run_uuid AND key = 'data_md5') AS data_md5,
    (SELECT value FROM tags WHERE run_uuid = r.run_uuid AND key = 'git_commit') AS git_commit,
    (SELECT value FROM tags WHERE run_uuid = r.run_uuid AND key = 'git_dirty') AS git_dirty
FROM runs AS r
JOIN experiments AS e ON e.experiment_id = r.experiment_id
JOIN latest_metrics AS m ON m.run_uuid = r.run_uuid AND m.key = :metric
WHERE e.name = :experiment
  AND r.lifecycle_stage = 'active'
  AND r.status = 'FINISHED'
ORDER BY CASE WHEN :higher_is_better THEN -m.value ELSE m.value END, r.start_time DESC
LIMIT :limit
"""


def database_path(uri: str) -> Path:
    """The file behind a sqlite:/// tracking URI."""
    prefix = "sqlite:///"
    if not uri.startswith(prefix):
        raise PipelineError(
            f"`runs` reads a local SQLite store (sqlite:///...), not {uri}: "
            "open that server's MLflow UI instead."
        )
    return Path(uri[len(prefix) :])


def query(db_path: Path, sql: str, values: dict[str, Any]) -> list[dict[str, Any]]:
    """Rows of a read-only query on the SQLite store, as dictionaries."""
    try:
        connection = sqlite3.connect(f"file:{db_path.as_posix()}?mode=ro", uri=True)
    except sqlite3.Error as error:
        raise PipelineError(f"cannot open {db_path}: {error}") from None
    try:
        connection.row_factory = sqlite3.Row
        return [dict(row) for row in connection.execute(sql, values).fetchall()]
    except sqlite3.Error as error:
        raise PipelineError(f"{db_path} is not a readable MLflow store: {error}") from None
    finally:
        connection.close()


def rank_runs(
    db_path: Path, experiment: str, metric: str, higher_is_better: bool = True, limit: int = 10
) -> list[dict[str, Any]]:
    """Return the best runs first, as dictionaries (see RANKING_SQL for the keys)."""
    values = {
        "metric": metric,
        "experiment": experiment,
        "higher_is_better": int(higher_is_better),
        "limit": limit,
    }
    return query(db_path, RANKING_SQL, values)


def features_cell(row: dict[str, Any], width: int = 40) -> str:
    """`9: radius,texture,...`: how many features, and which, shortened."""
    names = [
        name
        for column in ("numeric_features", "categorical_features")
        for name in (row.get(column) or "").split(",")
        if name
    ]
    listed = ",".join(names)
    if len(listed) > width:
        listed = listed[: width - 3] + "..."
    return f"{len(names)}: {listed}" if names else "-"


def commit_cell(row: dict[str, Any]) -> str:
    """The commit's first 8 characters, `*` when the tree had local changes."""
    commit = (row.get("git_commit") or "-")[:8]
    return commit + ("*" if row.get("git_dirty") == "true" else "")


def format_table(rows: list[dict[str, Any]], goal: SuccessMetric) -> str:
    """Plain-text table, best run first."""
    header = ["#", goal.name, "goal", "architecture", "hyperparameters", "features", "data"]
    header += ["commit", "run"]
    lines = [header]
    for rank, row in enumerate(rows, start=1):
        lines.append(
            [
                str(rank),
                f"{row['metric']:.4f}",
                "met" if goal.is_met(row["metric"]) else "below",
                f"{row['architecture']} v{row['architecture_version']}",
                row["hyperparameters"] or "-",
                features_cell(row),
                (row["data_md5"] or "-")[:8],
                commit_cell(row),
                f"{row['run_name']} ({row['started_utc']})",
            ]
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in lines
    )


def run(
    params_path: Path = paths.PARAMS, canvas_path: Path = paths.CANVAS, limit: int = 10
) -> list[dict[str, Any]]:
    params = load_params(params_path)
    canvas = load_canvas(canvas_path)
    goal = canvas.success_metric
    db_path = database_path(params.tracking.effective_uri)
    if not db_path.is_file():
        print(f"No tracked runs yet: {db_path} does not exist. Run `uv run poe pipeline` first.")
        return []
    rows = rank_runs(db_path, params.tracking.experiment, goal.name, goal.higher_is_better, limit)
    if not rows:
        print(
            f"No finished run with metric {goal.name} in experiment "
            f"'{params.tracking.experiment}' of {db_path} yet."
        )
        return []
    order = "highest" if goal.higher_is_better else "lowest"
    print(
        f"Runs of experiment '{params.tracking.experiment}' by {goal.name} ({order} first; "
        f"canvas goal {goal.threshold}), from {db_path}:"
    )
    print(format_table(rows, goal))
    print("(* the run's tree had changes not committed: see its code_digest tag)")
    return rows


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--limit", type=int, default=10, help="runs shown (default 10)")
