"""Time a level-4 project's local retraining loop: shift, detect, retrain, gate, promote.

    uv run python bench/loop.py --project /path/to/a/level-4/project [--worse] [--rows 2500]

The loop is the project's own `retrain-loop` command (tests/monitoring/loop.py),
run in a copy of the project in a temporary folder (its data and registry
are left alone), with the project's environment: the copy has the
project's files but .venv, and `uv run --project` points at the original's.
Without data the copy gets the sample data; without a champion the loop
trains and promotes one first, a step timed apart ("setup"). Then:

- the loop's own steps, each timed by the command: export, the shift, the
  API started and fed shifted traffic with feedback, drift, monitor,
  feedback-to-data, `dvc repro`, `release --promote`;
- the figure: from the shift to the gate's verdict (every step but the setup).

The machine may be shared: the load average is printed with the figures.
Results: bench/results/loop.json (loop-worse.json with --worse), and a Markdown table
on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
RESULTS = REPO_ROOT / "bench" / "results"
LOOP_CODE = (
    "import json, sys\n"
    "from tests.monitoring import loop\n"
    "result = loop.run(worse={worse}, rows={rows})\n"
    "print(json.dumps(result))\n"
)


def run(command: list[str], cwd: Path) -> str:
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(
            f"{command[:5]} exited with {result.returncode}:\n{result.stdout[-3000:]}"
            f"\n{result.stderr[-3000:]}"
        )
    return result.stdout


def copy_project(project: Path, workdir: Path) -> Path:
    """The project's files (git and DVC included) without its environment."""
    copy = workdir / "project"
    shutil.copytree(
        project, copy, symlinks=False, ignore=shutil.ignore_patterns(".venv", "__pycache__")
    )
    return copy


def in_project(project: Path, *command: str) -> list[str]:
    return ["uv", "run", "--frozen", "--project", str(project), *command]


def ensure_data(original: Path, copy: Path) -> None:
    if (copy / "data" / "raw" / "dataset.csv").is_file():
        return
    run(in_project(original, "python", "scripts/make_sample_data.py"), copy)
    run(in_project(original, "python", "-m", "dvc", "add", "data/raw/dataset.csv"), copy)


def time_loop(original: Path, copy: Path, worse: bool, rows: int | None) -> dict:
    code = LOOP_CODE.format(worse=worse, rows=rows)
    started = time.perf_counter()
    output = run(in_project(original, "python", "-c", code), copy)
    seconds = time.perf_counter() - started
    result = json.loads(output.strip().splitlines()[-1])
    result["process_seconds"] = round(seconds, 1)
    return result


def table(results: dict) -> str:
    loop = results["loop"]
    steps = loop["steps"]
    # The first step finds the champion, or trains and promotes one: setup, timed apart.
    setup = steps[0]["seconds"]
    shift_to_gate = round(sum(step["seconds"] for step in steps[1:]), 1)
    lines = [
        f"Machine: {results['machine']} (shared with other jobs); load average before: "
        f"{results['load_before']}, after: {results['load_after']}. Project: "
        f"{results['project']}, {'poisoned feedback' if loop['worse'] else 'true outcomes'}, "
        f"shift {loop['shift']['column']} +{loop['shift']['deviations']:g} sd.",
        "",
        "| step | seconds | outcome |",
        "|---|---:|---|",
    ]
    for step in steps:
        outcome = step["outcome"].replace("|", "\\|")
        lines.append(f"| {step['name']} | {step['seconds']:.1f} | {outcome[:140]} |")
    verdict = "promoted" if loop["promoted"] else "refused (the champion stays)"
    lines += [
        "",
        f"- from the shift to the gate's verdict (export to release): **{shift_to_gate} s**, "
        f"candidate {verdict}",
        f"- setup (the champion found, or a first one trained and promoted): {setup:.1f} s",
        f"- the whole command, process start to exit: {loop['process_seconds']} s",
        f"- champion {loop['champion_before']} -> {loop['champion_after']}, data "
        f"{loop['data_before'][:8]} -> {(loop['data_after'] or '')[:8]}",
    ]
    results["shift_to_gate_seconds"] = shift_to_gate
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project", type=Path, required=True, help="a level-4 project, synced")
    parser.add_argument("--worse", action="store_true", help="poisoned feedback: gate refuses")
    parser.add_argument("--rows", type=int, help="rows of shifted traffic (the loop's default)")
    args = parser.parse_args()
    original = args.project.resolve()
    with tempfile.TemporaryDirectory(prefix="mlops-ladder-bench-loop-") as tmp:
        copy = copy_project(original, Path(tmp))
        ensure_data(original, copy)
        results: dict = {
            "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.system()}",
            "project": original.name,
            "load_before": round(os.getloadavg()[0], 2),
        }
        results["loop"] = time_loop(original, copy, args.worse, args.rows)
        results["load_after"] = round(os.getloadavg()[0], 2)
    text = table(results)
    RESULTS.mkdir(parents=True, exist_ok=True)
    name = "loop-worse.json" if args.worse else "loop.json"
    (RESULTS / name).write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
