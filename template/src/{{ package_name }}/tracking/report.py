"""Command `report`: what this change does to the metrics and params, in markdown
(docs/experiments.md). A base that cannot be found is said in the report: it never
fails the command, as a first commit or a clone without remote has none."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from ..core import files, git, paths
from ..core.canvas import METRIC_NAMES, SuccessMetric, load_canvas
from ..core.errors import PipelineError


def dvc_diff(kind: str, base: str) -> str:
    """`dvc <kind> diff <base> --md` as a report section; a failure is said in it."""
    command = [sys.executable, "-m", "dvc", kind, "diff", base, "--md"]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    except (OSError, subprocess.SubprocessError) as error:
        text = f"Not compared: could not run dvc: {error}"
    else:
        errors = [line for line in result.stderr.splitlines() if line.strip()]
        # With nothing changed, dvc prints an empty table: a header and its separator line.
        rows = [line for line in result.stdout.splitlines() if line.startswith("|")]
        if result.returncode != 0:
            text = f"Not compared: {errors[-1] if errors else f'dvc exited {result.returncode}'}"
        elif len(rows) > 2:
            text = result.stdout.strip()
        else:
            text = f"No {'metric' if kind == 'metrics' else 'parameter'} changed."
    return f"### {kind.capitalize()} compared with `{base}`\n\n{text}\n"


def build_report(metrics: dict[str, Any], goal: SuccessMetric, comparison: str) -> str:
    """The canvas verdict, the comparison with the base, the current metrics."""
    if goal.name in metrics:
        value = float(metrics[goal.name])
        verdict = f"{'PASS' if goal.is_met(value) else 'BELOW GOAL'}.** {goal.verdict(value)}."
    else:
        verdict = f"unknown.** reports/metrics.json has no `{goal.name}`."
    lines = ["## Pipeline report", "", f"**Canvas goal: {verdict}", "", comparison]
    lines += ["### Current metrics", "", "| metric | value |", "|---|---|"]
    lines += [
        f"| {name} | {float(metrics[name]):.4f} |" for name in METRIC_NAMES if name in metrics
    ]
    return "\n".join(lines) + "\n"


def run(
    base: str | None = None,
    metrics_path: Path = paths.METRICS,
    canvas_path: Path = paths.CANVAS,
    out_path: Path = paths.CI_REPORT,
) -> str:
    canvas = load_canvas(canvas_path)
    files.require_file(metrics_path, "run the pipeline first (`uv run poe pipeline`)")
    try:
        metrics = json.loads(metrics_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise PipelineError(f"{metrics_path} is not valid JSON: {error}") from None
    base = base or git.comparison_base()
    # GitLab branch pipelines fetch only their own branch: in CI, fetch the base.
    if git.resolves(base) or (os.environ.get("CI") and git.fetch(base)):
        comparison = dvc_diff("metrics", base) + "\n" + dvc_diff("params", base)
    else:
        comparison = (
            f"Base `{base}` not found (a first commit, a shallow clone, or no such branch "
            "yet): nothing to compare with. Fetch it (`git fetch origin <branch>`) or pass "
            "`--base <ref>`.\n"
        )
    text = build_report(metrics, canvas.success_metric, comparison)
    files.write_text(out_path, text)
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary:
        with Path(summary).open("a", encoding="utf-8") as stream:
            stream.write(text + "\n")
    print(text)
    print(f"report: written to {out_path}" + (" and the job summary" if summary else ""))
    return text


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--base",
        help="git ref to compare with (default: the CI target branch, else the default branch)",
    )
