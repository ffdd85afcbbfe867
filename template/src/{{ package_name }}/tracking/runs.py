"""Command `runs`: rank the tracked runs by the canvas's success metric, through MLflow's
public API (`MlflowClient.search_runs`): the local SQLite file or a tracking server alike."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from ..core import paths
from ..core.canvas import load_canvas
from ..core.commands import positive_int
from ..core.params import load_params
from . import record


def row(run: Any, metric: str) -> dict[str, Any]:
    """A run as the table shows it, with its id and tags."""
    params, tags = run.data.params, run.data.tags
    features = [
        name
        for key in ("features.numeric", "features.categorical")
        for name in params.get(key, "").split(",")
        if name
    ]
    listed = ",".join(features)
    dirty = "*" if tags.get("git_dirty") == "true" else ""  # the tree had changes not committed
    started = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(run.info.start_time / 1000))
    return {
        "metric": run.data.metrics[metric],
        "architecture": f"{params.get('architecture')} v{params.get('architecture_version')}",
        "hyperparameters": " ".join(
            f"{key[3:]}={value}" for key, value in sorted(params.items()) if key.startswith("hp.")
        )
        or "-",
        # How many features, and which, shortened: `9: radius,texture,...`.
        "features": f"{len(features)}: {listed[:37] + '...' if len(listed) > 40 else listed}",
        "data": params.get("data_md5", "-")[:8],
        "commit": tags.get("git_commit", "-")[:8] + dirty,
        "run": f"{run.info.run_name} ({started})",
        "run_id": run.info.run_id,
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


def run(
    params_path: Path = paths.PARAMS, canvas_path: Path = paths.CANVAS, limit: int = 10
) -> list[dict[str, Any]]:
    params = load_params(params_path)
    goal = load_canvas(canvas_path).success_metric
    uri, experiment = params.tracking.effective_uri, params.tracking.experiment
    rows = rank_runs(uri, experiment, goal.name, goal.higher_is_better, limit)
    if not rows:
        print(
            f"No tracked runs yet with {goal.name} in experiment '{experiment}' of {uri}: "
            "`uv run poe pipeline` records them."
        )
        return []
    order = "highest" if goal.higher_is_better else "lowest"
    print(
        f"Runs of experiment '{experiment}' by {goal.name} ({order} first; "
        f"canvas goal {goal.threshold}), from {uri}:"
    )
    header = ["#", goal.name, "goal", "architecture", "hyperparameters", "features", "data"]
    header += ["commit", "run"]
    table = [header] + [
        [str(rank), f"{ranked['metric']:.4f}", "met" if goal.is_met(ranked["metric"]) else "below"]
        + [ranked[key] for key in header[3:]]
        for rank, ranked in enumerate(rows, start=1)
    ]
    sizes = [max(map(len, column)) for column in zip(*table, strict=True)]
    for line in table:
        print("  ".join(cell.ljust(size) for cell, size in zip(line, sizes, strict=True)).rstrip())
    print("(* the run's tree had changes not committed: see its code_digest tag)")
    return rows


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--limit", type=positive_int, default=10, help="runs shown (default 10)")
