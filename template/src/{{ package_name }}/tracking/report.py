"""Command `report`: what this change does to the metrics and params, in markdown.

Runs `dvc metrics diff <base> --md` and `dvc params diff <base> --md`, adds the
canvas goal's pass/fail line and the current metrics, writes the result to
reports/ci-report.md, and appends it to $GITHUB_STEP_SUMMARY when set (the
page of a GitHub Actions run). A base that cannot be found (a shallow clone, a
first commit) is said in the report; it never fails the command.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ..core import files, paths
from ..core.canvas import METRIC_NAMES, SuccessMetric, load_canvas
from ..core.commands import Command
from ..core.errors import PipelineError

# CI variables naming the branch a change will merge into, in priority order.
BASE_BRANCH_VARIABLES = (
    "GITHUB_BASE_REF",  # GitHub Actions, pull requests
    "CI_MERGE_REQUEST_TARGET_BRANCH_NAME",  # GitLab CI, merge requests
    "CI_DEFAULT_BRANCH",  # GitLab CI, other pipelines
)


def _git(*args: str) -> subprocess.CompletedProcess[str] | None:
    try:
        return subprocess.run(
            ["git", *args], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None


def ref_resolves(ref: str) -> bool:
    """True when git knows the ref as a commit."""
    result = _git("rev-parse", "--verify", "--quiet", ref + "^{commit}")
    return result is not None and result.returncode == 0


def default_base(
    environ: Mapping[str, str] = os.environ, resolves: Callable[[str], bool] = ref_resolves
) -> str:
    """The ref to compare with: the CI's target branch, else origin/main, else main."""
    for variable in BASE_BRANCH_VARIABLES:
        branch = environ.get(variable, "").strip()
        if branch:
            return f"origin/{branch}"
    return "origin/main" if resolves("origin/main") else "main"


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
            f"Base `{base}` not found (shallow clone, or no such branch yet): nothing to "
            f"compare with. Fetch it (`git fetch origin <branch>`) or pass `--base <ref>`.",
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
    base = base or default_base()
    base_found = ref_resolves(base)
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


COMMAND = Command(
    "report", "markdown report of metric and param changes against a base", run, add_arguments
)
