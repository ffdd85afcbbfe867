"""Run a generated project's test suite several times in a row on a busy machine.

    uv run python bench/busy_runner.py [--level 4] [--runs 5] [--hogs 2]

Generates a project with the defaults from the committed template (HEAD),
syncs every dependency group, then starts `--hogs` CPU-bound processes (one
busy loop each) and runs the project's `pytest` `--runs` times while they
spin. Prints one line per run (exit status, wall time, load averages) and
exits 1 if any run failed. This is the robustness proof of the generated
tests (docs/testing.md), not a speed figure: compare the times only with
each other.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
BUSY_LOOP = "while True: pass"


def run(command: list[str], cwd: Path) -> None:
    subprocess.run(command, cwd=cwd, check=True, capture_output=True, text=True)


def generate(destination: Path, level: int) -> None:
    copier = Path(sys.executable).parent / "copier"
    run(
        [
            str(copier),
            "copy",
            "--trust",
            "--defaults",
            "--quiet",
            "--vcs-ref",
            "HEAD",
            "--data",
            f"level={level}",
            str(REPO_ROOT),
            str(destination),
        ],
        cwd=REPO_ROOT,
    )
    run(["git", "init", "-q"], cwd=destination)
    run(["uv", "sync", "--all-groups", "-q"], cwd=destination)


def load_averages() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--level", type=int, default=4, choices=[1, 2, 3, 4])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--hogs", type=int, default=2, help="busy loops beside the tests")
    options = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="busy-runner-") as workdir:
        project = Path(workdir) / "project"
        print(f"generating a level-{options.level} project and syncing it...", flush=True)
        generate(project, options.level)
        hogs = [subprocess.Popen([sys.executable, "-c", BUSY_LOOP]) for _ in range(options.hogs)]
        failures = 0
        try:
            for number in range(1, options.runs + 1):
                start = time.perf_counter()
                result = subprocess.run(
                    ["uv", "run", "--all-groups", "pytest", "-q", "-p", "no:cacheprovider"],
                    cwd=project,
                    capture_output=True,
                    text=True,
                )
                seconds = time.perf_counter() - start
                summary = (result.stdout.strip().splitlines() or ["(no output)"])[-1]
                print(
                    f"run {number}: exit {result.returncode} in {seconds:.0f} s, "
                    f"load {load_averages()}: {summary}",
                    flush=True,
                )
                if result.returncode != 0:
                    failures += 1
                    print(result.stdout[-3000:], result.stderr[-2000:], sep="\n")
        finally:
            for hog in hogs:
                hog.kill()
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
