"""Command `runs`: rank the tracked runs by the canvas's success metric.

Reads the store through MLflow's public API (`MlflowClient.search_runs`): the
local SQLite file or a team's tracking server alike. docs/experiments.md
gives a SQL recipe that ranks the runs of the SQLite file without MLflow (it
reads MLflow's own tables, which MLflow's migrations may change).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from ..core import paths
from ..core.canvas import SuccessMetric, load_canvas
from ..core.params import load_params
from . import record


def row(run: Any, metric: str) -> dict[str, Any]:
    """A run as the table shows it."""
    params, tags = run.data.params, run.data.tags
    return {
        "run_id": run.info.run_id,
        "run_name": run.info.run_name,
        "started_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(run.info.start_time / 1000)),
        "metric": run.data.metrics[metric],
        "architecture": params.get("architecture"),
        "architecture_version": params.get("architecture_version"),
        "hyperparameters": " ".join(
            f"{key[3:]}={value}" for key, value in sorted(params.items()) if key.startswith("hp.")
        ),
        "numeric_features": params.get("features.numeric"),
        "categorical_features": params.get("features.categorical"),
        "data_md5": params.get("data_md5"),
        "git_commit": tags.get("git_commit"),
        "git_dirty": tags.get("git_dirty"),
        "tags": tags,
    }


def rank_runs(
    uri: str, experiment: str, metric: str, higher_is_better: bool = True, limit: int = 10
) -> list[dict[str, Any]]:
    """The finished runs with the metric, best first (see `row` for the keys)."""
    if record.missing_store(uri):
        return []
    client = record.client(uri)
    found = client.get_experiment_by_name(experiment)
    if found is None:
        return []
    runs = client.search_runs(
        [found.experiment_id],
        filter_string="attributes.status = 'FINISHED'",
        order_by=[
            f"metrics.`{metric}` {'DESC' if higher_is_better else 'ASC'}",
            "attributes.start_time DESC",
        ],
        max_results=limit,
    )
    return [row(run, metric) for run in runs if metric in run.data.metrics]


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
    goal = load_canvas(canvas_path).success_metric
    uri, experiment = params.tracking.effective_uri, params.tracking.experiment
    missing = record.missing_store(uri)
    if missing:
        print(f"No tracked runs yet: {missing} does not exist. Run `uv run poe pipeline` first.")
        return []
    rows = rank_runs(uri, experiment, goal.name, goal.higher_is_better, limit)
    if not rows:
        print(f"No finished run with metric {goal.name} in experiment '{experiment}' of {uri} yet.")
        return []
    order = "highest" if goal.higher_is_better else "lowest"
    print(
        f"Runs of experiment '{experiment}' by {goal.name} ({order} first; "
        f"canvas goal {goal.threshold}), from {uri}:"
    )
    print(format_table(rows, goal))
    print("(* the run's tree had changes not committed: see its code_digest tag)")
    return rows


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--limit", type=int, default=10, help="runs shown (default 10)")
