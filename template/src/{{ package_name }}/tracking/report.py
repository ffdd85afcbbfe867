"""Command `report`: what this change does to the metrics and params, in markdown.

Runs `dvc metrics diff <base> --md` and `dvc params diff <base> --md`, adds the
canvas goal's pass/fail line and the current metrics, writes the result to
reports/ci-report.md, and appends it to $GITHUB_STEP_SUMMARY when set (the
page of a GitHub Actions run). The base is the CI's target branch, else the
repository's default branch, whatever its name (core/git.py); in CI a missing
`origin/<branch>` is fetched first (GitLab branch pipelines fetch only their
own branch). A base that still cannot be found (a first commit, no remote) is
said in the report; it never fails the command.
"""

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


def dvc_diff(kind: str, base: str) -> tuple[bool, str]:
    """Run `dvc <kind> diff <base> --md`; return (succeeded, markdown or error line)."""
    command = [sys.executable, "-m", "dvc", kind, "diff", base, "--md"]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    except (OSError, subprocess.SubprocessError) as error:
        return False, f"could not run dvc: {error}"
    if result.returncode != 0:
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        return False, lines[-1] if lines else f"dvc exited with code {result.returncode}"
    table = result.stdout.strip()
    # With nothing changed, dvc prints an empty table: a header and its separator line.
    rows = [line for line in table.splitlines() if line.startswith("|")]
    return True, table if len(rows) > 2 else ""


def _section(title: str, base: str, outcome: tuple[bool, str], nothing: str) -> list[str]:
    succeeded, text = outcome
    lines = [f"### {title} compared with `{base}`", ""]
    if not succeeded:
        lines.append(f"Not compared: {text}")
    else:
        lines.append(text or nothing)
    return [*lines, ""]


def build_report(
    metrics: dict[str, Any],
    goal: SuccessMetric,
    base: str,
    base_found: bool,
    metrics_diff: tuple[bool, str],
    params_diff: tuple[bool, str],
) -> str:
    """Assemble the markdown report (pure function: easy to test)."""
    lines = ["## Pipeline report", ""]
    if goal.name in metrics:
        mark = "PASS" if goal.is_met(float(metrics[goal.name])) else "BELOW GOAL"
        lines.append(f"**Canvas goal: {mark}.** {goal.verdict(float(metrics[goal.name]))}.")
    else:
        lines.append(f"**Canvas goal: unknown.** reports/metrics.json has no `{goal.name}`.")
    lines.append("")
    if base_found:
        lines += _section("Metrics", base, metrics_diff, "No metric changed.")
        lines += _section("Params", base, params_diff, "No parameter changed.")
    else:
        lines += [
            f"Base `{base}` not found (a first commit, a shallow clone, or no such branch "
            f"yet): nothing to compare with. Fetch it (`git fetch origin <branch>`) or pass "
            f"`--base <ref>`.",
            "",
        ]
    lines += ["### Current metrics", "", "| metric | value |", "|---|---|"]
    for name in METRIC_NAMES:
        if name in metrics:
            lines.append(f"| {name} | {float(metrics[name]):.4f} |")
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
    base_found = git.resolves(base) or (bool(os.environ.get("CI")) and git.fetch(base))
    metrics_diff = dvc_diff("metrics", base) if base_found else (False, "")
    params_diff = dvc_diff("params", base) if base_found else (False, "")
    text = build_report(metrics, canvas.success_metric, base, base_found, metrics_diff, params_diff)
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
