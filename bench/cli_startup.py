"""Measure a generated project's command-line start-up; print Markdown tables.

    uv run python bench/cli_startup.py PROJECT [--runs 7] [--candidates PYTHON]

PROJECT is a generated, synced project (`uv sync` done). For each command line
the script reports the median wall time of `--runs` runs, through the venv's
script (`.venv/bin/<package>`, what `uv run <package>` ends in) and through
`uv run` itself, and the modules `python -X importtime` sees imported, with the
heavy libraries among them. `--candidates PYTHON` also times the same
two-command app written with argparse, Typer and cyclopts (the libraries
weighed in docs/decisions/0013) under PYTHON, an interpreter whose environment
has them (`uv venv v && VIRTUAL_ENV=v uv pip install typer cyclopts`).
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

# Measure what a user's machine does: Python writes bytecode there (this one may not).
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)

HEAVY = ("pandas", "numpy", "sklearn", "scipy", "mlflow", "fastapi", "pydantic", "onnxruntime")
IMPORT_LINE = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \|(\s*)(\S+)")

# One app, two commands, in each library weighed (docs/decisions/0013).
CANDIDATES = {
    "argparse": """
import argparse
parser = argparse.ArgumentParser()
commands = parser.add_subparsers(dest="command", required=True)
commands.add_parser("read", help="read the raw data")
runs = commands.add_parser("runs", help="rank the runs")
runs.add_argument("--limit", type=int, default=10)
parser.parse_args()
""",
    "typer": """
import typer
app = typer.Typer()
@app.command()
def read():
    "read the raw data"
@app.command()
def runs(limit: int = 10):
    "rank the runs"
app()
""",
    "cyclopts": """
import cyclopts
app = cyclopts.App()
@app.command
def read():
    "read the raw data"
@app.command
def runs(limit: int = 10):
    "rank the runs"
app()
""",
}


def median_seconds(command: list[str], cwd: Path, runs: int) -> float:
    subprocess.run(command, cwd=cwd, capture_output=True, check=False)  # warm-up: bytecode
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, cwd=cwd, capture_output=True, check=False)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def imported(python: Path, code: str, cwd: Path) -> tuple[int, list[str]]:
    """How many modules an interpreter running `code` imports, and which heavy ones."""
    result = subprocess.run(
        [str(python), "-X", "importtime", "-c", code], cwd=cwd, capture_output=True, text=True
    )
    names = [match[4] for match in IMPORT_LINE.finditer(result.stderr)]
    return len(names), [name for name in HEAVY if name in names]


def project_table(project: Path, runs: int) -> None:
    package = next(p.parent.name for p in sorted((project / "src").glob("*/__init__.py")))
    bindir = project / ".venv" / ("Scripts" if os.name == "nt" else "bin")
    python = bindir / "python"
    print("| command line | venv script (s) | `uv run` (s) | modules imported | heavy libraries |")
    print("|---|---|---|---|---|")
    for argv in (["--help"], ["read", "--help"], ["runs", "--help"]):
        direct = median_seconds([str(bindir / package), *argv], project, runs)
        through_uv = median_seconds(["uv", "run", package, *argv], project, runs)
        code = f"import sys; sys.argv = {[package, *argv]!r}\nfrom {package}.cli import main\n"
        code += "try:\n    main()\nexcept SystemExit:\n    pass\n"
        count, heavy = imported(python, code, project)
        print(
            f"| `{package} {' '.join(argv)}` | {direct:.2f} | {through_uv:.2f} | {count} "
            f"| {', '.join(heavy) or '-'} |"
        )
    seconds = median_seconds([str(python), "-c", "pass"], project, runs)
    print(f"| `python -c pass` | {seconds:.2f} | - | - | - |")


def candidates_table(python: Path, cwd: Path, runs: int) -> None:
    print("\n| library | `app --help` (s) | `app runs --help` (s) | modules imported |")
    print("|---|---|---|---|")
    with tempfile.TemporaryDirectory() as folder:
        for library, code in CANDIDATES.items():
            app = Path(folder) / f"{library}_app.py"
            app.write_text(code, encoding="utf-8")
            helps = [
                median_seconds([str(python), str(app), *argv], cwd, runs)
                for argv in (["--help"], ["runs", "--help"])
            ]
            count, _ = imported(python, f"import {library}", cwd)
            print(f"| {library} | {helps[0]:.2f} | {helps[1]:.2f} | {count} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("project", type=Path)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--candidates", type=Path, metavar="PYTHON")
    options = parser.parse_args()
    project = options.project.resolve()
    project_table(project, options.runs)
    if options.candidates:
        candidates_table(options.candidates, project, options.runs)
    print(f"\n{options.runs} runs each, median.")


if __name__ == "__main__":
    main()
