"""`copier copy --defaults` of this template and of copier-uv, in paired runs.

    uv run python bench/copy_speed.py [--runs 7] [--peer gh:pawamoy/copier-uv]

Issue 18's yardstick: a copy with the defaults no slower than copier-uv's (a
template of the same kind a user could pick). Both are copied by the same copier
CLI (this repository's locked version, in a throwaway environment that also has
copier-uv's Jinja extension), one after the other in each round so that the
machine's load hits them alike; this template at each level from its last
commit (a snapshot of the tracked files), copier-uv from `--peer` (a git URL or
a local clone; its default needs github.com). Figures: medians of wall time, and
the ratio of this template's median to copier-uv's. Results also go to
bench/results/copy_speed.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench  # the snapshot of this template, the result header

PEER_ANSWERS = {
    "project_name": "Bench Project",
    "project_description": "A project to time copies",
    "author_fullname": "Bench",
    "author_email": "bench@example.com",
    "author_username": "bench",
}


def copier_environment(workdir: Path) -> Path:
    """A venv with the locked copier and copier-uv's extension loader: its copier CLI."""
    lock = (bench.REPO_ROOT / "uv.lock").read_text(encoding="utf-8")
    version = lock.split('name = "copier"\nversion = "', 1)[1].split('"', 1)[0]
    venv = workdir / "copier-venv"
    bench.run(["uv", "venv", "-q", str(venv)], cwd=workdir)
    python = venv / "bin" / "python"
    packages = [f"copier=={version}", "copier-template-extensions"]
    bench.run(["uv", "pip", "install", "-q", "--python", str(python), *packages], cwd=workdir)
    return venv / "bin" / "copier"


def copy_command(copier: Path, source: str, destination: Path, answers: dict) -> list[str]:
    data = [part for key, value in answers.items() for part in ("--data", f"{key}={value}")]
    return [str(copier), "copy", "--defaults", "--quiet", "--trust", "--vcs-ref", "HEAD",
            *data, source, str(destination)]  # fmt: skip


def timed_copy(command: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    bench.run(command, cwd=cwd)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="paired rounds (medians)")
    parser.add_argument("--peer", default="gh:pawamoy/copier-uv", help="copier-uv's source")
    args = parser.parse_args()

    results = bench.result_header(args.runs)
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        copier = copier_environment(workdir)
        template = str(bench.snapshot_template(workdir))
        cases = {"copier-uv": (args.peer, PEER_ANSWERS)}
        for level in (1, 2, 3, 4):
            cases[f"level {level}"] = (template, {**bench.ANSWERS, "level": level})
        samples: dict[str, list[float]] = {name: [] for name in cases}
        for round_number in range(args.runs + 1):  # round 0 warms the caches, not counted
            for name, (source, answers) in cases.items():
                destination = workdir / f"copy-{round_number}-{name.replace(' ', '-')}"
                seconds = timed_copy(copy_command(copier, source, destination, answers), workdir)
                if round_number:
                    samples[name].append(seconds)
    peer = statistics.median(samples["copier-uv"])
    results["load_after"] = round(os.getloadavg()[0], 2)
    results["median_seconds"] = {
        name: round(statistics.median(s), 3) for name, s in samples.items()
    }
    results["ratio_to_copier_uv"] = {
        name: round(statistics.median(s) / peer, 2) for name, s in samples.items()
    }
    output = bench.REPO_ROOT / "bench" / "results" / "copy_speed.json"
    output.parent.mkdir(exist_ok=True)
    output.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print("| copy with the defaults | median | times copier-uv's |")
    print("|---|---:|---:|")
    for name in cases:
        print(f"| {name} | {results['median_seconds'][name]:.2f} s | "
              f"{results['ratio_to_copier_uv'][name]:.2f} |")  # fmt: skip
    print(f"(load {results['load_before']} before, {results['load_after']} after)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
