"""What tracking costs a pipeline run: 0.5.1's level-2 project and this one, side by side.

    uv run python bench/tracking.py [--runs 7] [--also <commit>]

Both projects are copied with the default answers (0.5.1 from its release
commit, this one from the working tree's last commit), synced, given the
sample data and a `dvc repro`. Then the `evaluate` stage runs tracked and
untracked (`tracking.enabled: false`), the projects and modes taking turns so
that a change of the machine's load hits them alike; each tracked run records
a new run (earlier runs' digests are marked forgotten first). Figures are
medians: wall time, and CPU time (user + system of the stage and every process
it starts). Where the time goes in this project is measured too (importing
MLflow, opening the store, recording a run, in the stage's situation), and
the `runs` command of each project. `--also <commit>` adds the project of
another commit of this repository (an earlier design) to the turns. Results
also go to bench/results/tracking.json, with the 1-minute load average before
and after: the machine's other work changes every figure.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench  # copies, release templates, the helpers of the 0.5.1-era measure

RELEASE = "0.5.1"

# In the project's Python, pandas and scikit-learn already imported (the stage's
# situation): import MLflow, open the store, record one run with the fluent API (the
# identical-run search, then the run), as tracking/record.py does.
BREAKDOWN = """
import json, os, time
os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
import pandas, sklearn.metrics
start = time.perf_counter()
import mlflow
imported = time.perf_counter()
mlflow.set_tracking_uri("sqlite:///mlflow.db")
experiment = mlflow.get_experiment_by_name("pipeline")
opened = time.perf_counter()
mlflow.search_runs([experiment.experiment_id], "tags.run_digest = 'bench'", output_format="list")
with mlflow.start_run(experiment_id=experiment.experiment_id):
    mlflow.log_params({"p": "1"})
    mlflow.log_metrics({"roc_auc": 0.9})
    mlflow.set_tags({"t": "1"})
    mlflow.log_artifact("models/model.joblib", artifact_path="model")
done = time.perf_counter()
print(json.dumps({"import_mlflow": imported - start, "open_store": opened - imported,
                  "log_run": done - opened}))
"""


def timed_child(command: list[str], cwd: Path) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the child and its children) of one command."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        raise RuntimeError(f"{command} failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def project_now(workdir: Path) -> Path:
    project = workdir / "level2-now"
    bench.copier_cli(bench.snapshot_template(workdir), project, 2)
    bench.helpers.git(project, "init", "-q", "-b", "main")
    bench.helpers.git(project, "add", "-A")
    bench.run(["uv", "run", "poe", "sample-data"], cwd=project)
    bench.run(["uv", "run", "dvc", "repro"], cwd=project)
    return project


def project_at(workdir: Path, commit: str) -> Path:
    """A level-2 project from any commit of this repository (`--also`), its pipeline run."""
    template = workdir / f"template-{commit[:8]}"
    template.mkdir()
    archive = subprocess.run(
        ["git", "archive", commit], cwd=bench.REPO_ROOT, check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x"], cwd=template, input=archive, check=True)
    bench.helpers.git(template, "init", "-q", "-b", "main")
    bench.helpers.commit_all(template, commit)
    project = workdir / f"level2-{commit[:8]}"
    bench.copier_cli(template, project, 2)
    bench.helpers.git(project, "init", "-q", "-b", "main")
    bench.helpers.git(project, "add", "-A")
    bench.run(["uv", "run", "poe", "sample-data"], cwd=project)
    bench.run(["uv", "run", "dvc", "repro"], cwd=project)
    return project


def overhead(projects: dict[str, Path], runs: int) -> dict:
    evaluate = ["uv", "run", "python", "-m", bench.PACKAGE, "evaluate"]
    samples = {name: {mode: ([], []) for mode in (True, False)} for name in projects}
    for _ in range(runs):
        for name, project in projects.items():
            for enabled in (True, False):
                bench.set_tracking(project, enabled)
                bench.forget_digests(project)
                wall, cpu = timed_child(evaluate, project)
                samples[name][enabled][0].append(wall)
                samples[name][enabled][1].append(cpu)
            bench.set_tracking(project, True)
    results = {}
    for name, modes in samples.items():
        wall = {mode: statistics.median(modes[mode][0]) for mode in modes}
        cpu = {mode: statistics.median(modes[mode][1]) for mode in modes}
        results[name] = {
            "evaluate_tracked_seconds": round(wall[True], 2),
            "evaluate_untracked_seconds": round(wall[False], 2),
            "tracking_overhead_seconds": round(wall[True] - wall[False], 2),
            "evaluate_tracked_cpu_seconds": round(cpu[True], 2),
            "evaluate_untracked_cpu_seconds": round(cpu[False], 2),
            "tracking_overhead_cpu_seconds": round(cpu[True] - cpu[False], 2),
            "samples": {str(mode): [round(s, 2) for s in modes[mode][0]] for mode in modes},
        }
    return results


def ranking(projects: dict[str, Path], runs: int) -> dict:
    """`<package> runs`: SQL through sqlite3 in 0.5.1, MLflow's search_runs now."""
    command = ["uv", "run", "python", "-m", bench.PACKAGE, "runs"]
    samples: dict[str, list[float]] = {name: [] for name in projects}
    for _ in range(runs):
        for name, project in projects.items():
            samples[name].append(timed_child(command, project)[0])
    return {name: round(statistics.median(v), 2) for name, v in samples.items()}


def breakdown(project: Path, runs: int) -> dict:
    python = str(project / ".venv" / "bin" / "python")
    samples: dict[str, list[float]] = {}
    for _ in range(runs):
        output = subprocess.run(
            [python, "-c", BREAKDOWN], cwd=project, check=True, capture_output=True, text=True
        ).stdout
        for key, value in json.loads(output.strip().splitlines()[-1]).items():
            samples.setdefault(key, []).append(value)
        wall, _ = timed_child([python, "-c", "pass"], project)
        samples.setdefault("python_start", []).append(wall)
    return {f"{key}_seconds": round(statistics.median(v), 2) for key, v in samples.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="runs per measure (median)")
    parser.add_argument(
        "--also", action="append", default=[], metavar="COMMIT",
        help="measure the project of another commit of this repository too (repeatable)",
    )  # fmt: skip
    args = parser.parse_args()
    output = bench.REPO_ROOT / "bench" / "results" / "tracking.json"
    output.parent.mkdir(exist_ok=True)
    results = bench.result_header(args.runs)
    try:
        with tempfile.TemporaryDirectory(prefix="mlops-ladder-tracking-") as tmp:
            workdir = Path(tmp)
            projects = {
                RELEASE: bench.level2_project(workdir, RELEASE),
                **{commit: project_at(workdir, commit) for commit in args.also},
                "now": project_now(workdir),
            }
            results["tracking_level2"] = overhead(projects, args.runs)
            results["breakdown_now"] = breakdown(projects["now"], args.runs)
            results["runs_command_seconds"] = ranking(projects, args.runs)
            results["load_after"] = round(os.getloadavg()[0], 2)
    finally:
        output.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
