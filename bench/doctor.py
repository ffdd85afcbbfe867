"""Measure what moving the level doctor out of the project changed; print Markdown.

    uv run python bench/doctor.py --before 66cb9ad --after HEAD [--runs 3]

For each template ref: a level-1 and a level-2 project with the default
answers, copied from a clone of this repository at that ref (an absolute local
path, as the README says), `git init`, committed, `uv sync`ed. Then:

- lines of src/ and scripts/ (every file, `wc -l`), level 1 and level 2;
- `poe doctor` wall time in the level-1 project, as `.venv/bin/poe doctor`
  (what `uv run poe doctor` runs once the project is in sync):
  - cold: uv's cache empty (UV_CACHE_DIR in a new folder): uvx clones the
    template at the recorded commit, builds the tool and fetches pyyaml;
  - new version: the usual cache, in a project generated from one more
    (empty) commit of the template, which uv has not built yet: what the
    first run after an update costs (pyyaml is in the cache already);
  - warm: median of --runs runs with the usual cache.
  A ref whose doctor is scripts/doctor.py has no uvx: its three rows are the
  same command.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
COPIER = [str(REPO_ROOT / ".venv" / "bin" / "copier")]
GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "bench",
    "GIT_AUTHOR_EMAIL": "bench@example.com",
    "GIT_COMMITTER_NAME": "bench",
    "GIT_COMMITTER_EMAIL": "bench@example.com",
}


def run(command: list[str], cwd: Path, env: dict | None = None) -> str:
    result = subprocess.run(
        command, cwd=cwd, env={**os.environ, **(env or {})}, capture_output=True, text=True
    )
    if result.returncode != 0:
        raise RuntimeError(f"{command} in {cwd}: {result.stdout[-2000:]}{result.stderr[-2000:]}")
    return result.stdout


def timed(command: list[str], cwd: Path, env: dict | None = None) -> float:
    start = time.perf_counter()
    run(command, cwd, env)
    return time.perf_counter() - start


def lines(project: Path) -> int:
    files = [
        path
        for folder in ("src", "scripts")
        if (project / folder).is_dir()
        for path in sorted((project / folder).rglob("*"))
        if path.is_file() and "__pycache__" not in path.parts
    ]
    return sum(len(path.read_bytes().splitlines()) for path in files)


def project_at(template: Path, level: int, destination: Path) -> Path:
    run(
        [*COPIER, "copy", "--trust", "--defaults", "--quiet", "--vcs-ref", "HEAD",
         "--data", f"level={level}", str(template), str(destination)],
        cwd=REPO_ROOT,
    )  # fmt: skip
    for command in (
        ["git", "init", "-q"],
        ["git", "add", "-A"],
        ["git", "commit", "-qm", "start", "--no-verify"],
        ["uv", "sync", "-q"],
    ):
        run(command, destination)  # fmt: skip
    return destination


def measure(ref: str, workspace: Path, runs: int) -> dict[str, object]:
    template = workspace / f"template-{ref}"
    run(["git", "clone", "-q", str(REPO_ROOT), str(template)], workspace)
    run(["git", "checkout", "-q", ref], template)
    commit = run(["git", "rev-parse", "--short", "HEAD"], template).strip()
    projects = {
        level: project_at(template, level, workspace / f"{ref}-l{level}") for level in (1, 2)
    }
    doctor = [str(projects[1] / ".venv" / "bin" / "poe"), "doctor"]
    cold_cache = workspace / f"cache-{ref}"
    cold = timed(doctor, projects[1], {"UV_CACHE_DIR": str(cold_cache)})
    run(["git", "commit", "-q", "--allow-empty", "-m", "bench: a version uv has not built"],
        template)  # fmt: skip
    updated = project_at(template, 1, workspace / f"{ref}-l1-new")
    new_version = timed([str(updated / ".venv" / "bin" / "poe"), "doctor"], updated)
    warm = statistics.median(timed(doctor, projects[1]) for _ in range(runs))
    return {
        "ref": f"{ref} ({commit})",
        "lines l1": lines(projects[1]),
        "lines l2": lines(projects[2]),
        "cold": cold,
        "new version": new_version,
        "warm": warm,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", default="main")
    parser.add_argument("--after", default="HEAD")
    parser.add_argument("--runs", type=int, default=3)
    arguments = parser.parse_args()
    os.environ.update(GIT_IDENTITY)
    os.environ.setdefault("DVC_NO_ANALYTICS", "1")
    with tempfile.TemporaryDirectory(prefix="bench-doctor-") as folder:
        rows = [
            measure(ref, Path(folder), arguments.runs)
            for ref in (arguments.before, arguments.after)
        ]
    print(
        "| template | src+scripts lines, level 1 | level 2 "
        "| `poe doctor` cold | new version | warm |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    for row in rows:
        print(
            f"| {row['ref']} | {row['lines l1']} | {row['lines l2']} | {row['cold']:.2f} s "
            f"| {row['new version']:.2f} s | {row['warm']:.2f} s |"
        )


if __name__ == "__main__":
    main()
