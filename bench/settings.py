"""Lines of src/ + scripts/ of default projects, and the CLI's start-up; print Markdown.

    uv run python bench/settings.py [--ref HEAD] [--runs 3]

For each level 2, 3 and 4 it copies a default project from `--ref` (Copier's
--vcs-ref), counts the lines of its Python files under src/ and scripts/
(as `wc -l`), and at level 4 syncs it and times, in a fresh interpreter,
importing the CLI and building its parser (`cli.build_parser`): what
`<package> --help` pays before doing anything. The median of `--runs`.

Decision 0012 quotes these figures (settings as pydantic models).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def copy(ref: str, level: int, where: Path) -> Path:
    out = where / f"bench-l{level}"
    subprocess.run(
        [sys.executable, "-m", "copier", "copy", "--trust", "--defaults", "--quiet",
         "--vcs-ref", ref, "--data", f"level={level}", str(REPO_ROOT), str(out)],
        check=True,
    )  # fmt: skip
    return out


def lines(project: Path) -> int:
    files = [*project.glob("src/**/*.py"), *project.glob("scripts/**/*.py")]
    return sum(len(path.read_text(encoding="utf-8").splitlines()) for path in files)


def cli_start(project: Path, runs: int) -> float:
    subprocess.run(["uv", "sync", "--quiet"], cwd=project, check=True)
    package = next(project.glob("src/*/cli.py")).parent.name
    code = f"from {package} import cli; cli.build_parser(cli.registered_commands())"
    python = project / ".venv" / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    seconds = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([str(python), "-c", code], cwd=project, check=True)
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ref", default="HEAD")
    parser.add_argument("--runs", type=int, default=3)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        print(f"ref {options.ref}, load average {os.getloadavg()[0]:.2f}\n")
        print("| level | lines of src + scripts |\n|---:|---:|")
        for level in (2, 3, 4):
            project = copy(options.ref, level, Path(folder))
            print(f"| {level} | {lines(project):,} |")
        start = cli_start(project, options.runs)
        print(f"\nlevel 4, import the CLI and build its parser: {start:.2f} s (median)")


if __name__ == "__main__":
    main()
