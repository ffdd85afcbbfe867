"""Measure the template on this machine; print a Markdown table for docs/benchmarks.md.

    uv run python bench/bench.py [--runs 5]

Figures are medians of several runs, with uv's cache warm (a first `uv sync`
fills it before timing). Results are also written to bench/results/latest.json.
Levels 1-3 with the default answers, and level 3 with `orchestrator: kubeflow`
for the kfp pipeline. The serving API is measured by bench/serving.py.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Callable
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from tests import helpers  # noqa: E402  (the tests' own way to copy and update)

# Measure what a user's machine does: Python writes bytecode there.
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
for name, value in helpers.GIT_IDENTITY.items():
    os.environ.setdefault(name, value)

ANSWERS = {"project_name": "Bench Project"}
PACKAGE = "bench_project"


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def run(command: list[str], cwd: Path) -> None:
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(
            f"{command} in {cwd} exited with {result.returncode}:\n"
            f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        )


def copier_cli(template: Path, destination: Path, level: int) -> None:
    copier = Path(sys.executable).parent / "copier"
    run(
        [str(copier), "copy", "--defaults", "--quiet", "--vcs-ref", "HEAD",
         "--data", f"project_name={ANSWERS['project_name']}", "--data", f"level={level}",
         str(template), str(destination)],
        cwd=destination.parent,
    )  # fmt: skip


def snapshot_template(workdir: Path) -> Path:
    template = workdir / "template"
    for relative in helpers.template_files(REPO_ROOT):
        (template / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO_ROOT / relative, template / relative)
    helpers.git(template, "init", "-q", "-b", "main")
    helpers.commit_all(template, "snapshot")
    return template


def directory_size_mb(path: Path) -> float:
    total = sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())
    return total / 1e6


def median(samples: list[float]) -> float:
    return round(statistics.median(samples), 2)


def bench_copy(template: Path, workdir: Path, level: int, runs: int) -> float:
    samples = []
    for index in range(runs):
        destination = workdir / f"copy-{level}-{index}"
        samples.append(timed(lambda d=destination: copier_cli(template, d, level)))
    return median(samples)


def copy_to_green(template: Path, destination: Path, level: int) -> None:
    copier_cli(template, destination, level)
    helpers.git(destination, "init", "-q", "-b", "main")
    helpers.git(destination, "add", "-A")
    run(["uv", "run", "poe", "ci"], cwd=destination)


def bench_copy_to_green(template: Path, workdir: Path, level: int, runs: int) -> dict:
    copy_to_green(template, workdir / f"warmup-{level}", level)  # fills uv's cache
    samples = [
        timed(lambda i=index: copy_to_green(template, workdir / f"green-{level}-{i}", level))
        for index in range(runs)
    ]
    venv = workdir / f"warmup-{level}" / ".venv"
    return {"seconds": median(samples), "venv_mb": round(directory_size_mb(venv))}


def bench_update(template: Path, workdir: Path, start: int, runs: int) -> float:
    """`copier update` from level `start` to the next one."""
    samples = []
    for index in range(runs):
        project = workdir / f"update-{start}-{index}"
        helpers.copy_template(template, project, {**ANSWERS, "level": start})
        helpers.git(project, "init", "-q", "-b", "main")
        helpers.commit_all(project, f"level {start}")
        samples.append(timed(lambda p=project: helpers.update_project(p, {"level": start + 1})))
    return median(samples)


def bench_pipeline(project: Path, runs: int) -> dict:
    """dvc repro cold and no-op."""
    cold, noop = [], []
    for _ in range(runs):
        for output in ("data/interim", "data/processed", "models", "reports"):
            shutil.rmtree(project / output, ignore_errors=True)
        (project / "dvc.lock").unlink(missing_ok=True)
        shutil.rmtree(project / ".dvc" / "cache", ignore_errors=True)
        cold.append(timed(lambda: run(["uv", "run", "dvc", "repro"], cwd=project)))
        noop.append(timed(lambda: run(["uv", "run", "dvc", "repro"], cwd=project)))
    return {"repro_cold_seconds": median(cold), "repro_noop_seconds": median(noop)}


def forget_digests(project: Path) -> None:
    """Since 0.3.0 an identical run is not recorded again: make the next one new."""
    connection = sqlite3.connect(project / "mlflow.db")
    with connection:
        connection.execute("UPDATE tags SET value = 'forgotten' WHERE key = 'run_digest'")
    connection.close()


def set_tracking(project: Path, enabled: bool) -> None:
    params = project / "params.yaml"
    text = params.read_text(encoding="utf-8")
    before, after = ("false", "true") if enabled else ("true", "false")
    params.write_text(text.replace(f"enabled: {before}", f"enabled: {after}"), encoding="utf-8")


def bench_tracking(projects: dict[str, Path], runs: int) -> dict:
    """The evaluate stage recording a new run, then with `tracking.enabled: false`.

    Projects and modes take turns, so a change of the machine's load hits them alike.
    """
    evaluate = ["uv", "run", "python", "-m", PACKAGE, "evaluate"]
    samples = {name: {True: [], False: []} for name in projects}
    for _ in range(runs):
        for name, project in projects.items():
            for enabled in (True, False):
                set_tracking(project, enabled)
                forget_digests(project)
                samples[name][enabled].append(timed(lambda p=project: run(evaluate, cwd=p)))
            set_tracking(project, True)
    return {
        name: {
            "evaluate_tracked_seconds": median(by_mode[True]),
            "evaluate_untracked_seconds": median(by_mode[False]),
            "tracking_overhead_seconds": round(median(by_mode[True]) - median(by_mode[False]), 2),
        }
        for name, by_mode in samples.items()
    }


def release_template(workdir: Path, version: str) -> Path:
    """An earlier release of the template (tests/helpers.py RELEASES), as a one-commit repo."""
    template = workdir / f"template-{version}"
    template.mkdir()
    commit = dict(helpers.RELEASES)[version]
    archive = subprocess.run(
        ["git", "archive", commit], cwd=REPO_ROOT, check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x"], cwd=template, input=archive, check=True)
    helpers.git(template, "init", "-q", "-b", "main")
    helpers.commit_all(template, f"release {version}")
    return template


def level2_project(workdir: Path, version: str) -> Path:
    """A level-2 project from an earlier release, its pipeline run."""
    project = workdir / f"level2-{version}"
    copier_cli(release_template(workdir, version), project, 2)
    helpers.git(project, "init", "-q", "-b", "main")
    helpers.git(project, "add", "-A")
    run(["uv", "run", "poe", "sample-data"], cwd=project)
    run(["uv", "run", "dvc", "repro"], cwd=project)
    return project


# Where a tracked run's time goes, in the evaluate stage's situation (pandas and
# scikit-learn already imported); printed as JSON by the project's Python.
TRACKING_BREAKDOWN = """
import json, os, time
os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
import pandas, sklearn.metrics
start = time.perf_counter()
from mlflow.tracking import MlflowClient
from mlflow.entities import Metric, Param, RunTag
imported = time.perf_counter()
client = MlflowClient(tracking_uri="sqlite:///mlflow.db")
experiment = client.get_experiment_by_name("pipeline")
opened = time.perf_counter()
run = client.create_run(experiment.experiment_id)
client.log_batch(run.info.run_id, metrics=[Metric("roc_auc", 0.9, 0, 0)],
                 params=[Param("p", "1")], tags=[RunTag("t", "1")])
client.log_artifact(run.info.run_id, "models/model.joblib", artifact_path="model")
client.set_terminated(run.info.run_id)
done = time.perf_counter()
print(json.dumps({"import_mlflow": imported - start, "open_store": opened - imported,
                  "log_run": done - opened}))
"""


def bench_tracking_breakdown(project: Path, runs: int) -> dict:
    samples: dict[str, list[float]] = {}
    for _ in range(runs):
        result = subprocess.run(
            ["uv", "run", "python", "-c", TRACKING_BREAKDOWN],
            cwd=project, check=True, capture_output=True, text=True,
        )  # fmt: skip
        for key, value in json.loads(result.stdout.strip().splitlines()[-1]).items():
            samples.setdefault(key, []).append(value)
    return {f"{key}_seconds": median(values) for key, values in samples.items()}


def bench_group_sizes(project: Path, workdir: Path, groups: list[str] | None = None) -> dict:
    """Size of the runtime environment, and what each dependency group adds to it."""
    pyproject = tomllib.loads((project / "pyproject.toml").read_text(encoding="utf-8"))
    sizes = {}
    for group in ["(runtime)", *(groups or pyproject["dependency-groups"])]:
        environment = workdir / f"venv-{project.name}-{group.strip('()')}"
        command = ["uv", "sync", "--no-default-groups", "--quiet"]
        if group != "(runtime)":
            command += ["--group", group]
        subprocess.run(
            command, cwd=project, check=True, capture_output=True,
            env={**os.environ, "UV_PROJECT_ENVIRONMENT": str(environment)},
        )  # fmt: skip
        sizes[group] = round(directory_size_mb(environment))
    runtime = sizes.pop("(runtime)")
    return {"runtime_mb": runtime, **{f"{g}_adds_mb": s - runtime for g, s in sizes.items()}}


def bench_release(project: Path, runs: int) -> dict:
    """The gate and the export of the model `poe ci` just trained (level 3)."""
    gate = ["uv", "run", "python", "-m", PACKAGE, "gate"]
    export = ["uv", "run", "python", "-m", PACKAGE, "export", "--candidate"]
    return {
        "gate_seconds": median([timed(lambda: run(gate, cwd=project)) for _ in range(runs)]),
        "export_candidate_seconds": median(
            [timed(lambda: run(export, cwd=project)) for _ in range(runs)]
        ),
    }


def fresh_store(project: Path) -> None:
    """No tracking store, no outputs: each run trains, registers and promotes version 1."""
    for output in ("data/interim", "data/processed", "models", "reports", "mlruns"):
        shutil.rmtree(project / output, ignore_errors=True)
    shutil.rmtree(project / "data" / "pipeline-runs", ignore_errors=True)
    shutil.rmtree(project / ".dvc" / "cache", ignore_errors=True)
    (project / "dvc.lock").unlink(missing_ok=True)
    (project / "mlflow.db").unlink(missing_ok=True)


def bench_orchestration(template: Path, workdir: Path, runs: int, local_runs: int) -> dict:
    """orchestrator: kubeflow: compile the kfp pipeline, run it locally; dvc repro beside it."""
    project = workdir / "kubeflow"
    helpers.copy_template(template, project, {**ANSWERS, "level": 3, "orchestrator": "kubeflow"})
    helpers.git(project, "init", "-q", "-b", "main")
    helpers.git(project, "add", "-A")
    run(["uv", "run", "poe", "sample-data"], cwd=project)  # syncs every group first
    command = ["uv", "run", "python", "-m", PACKAGE]
    compile_ = [
        timed(lambda: run([*command, "pipeline-compile"], cwd=project)) for _ in range(runs)
    ]
    local, repro = [], []
    for _ in range(local_runs):
        fresh_store(project)
        local.append(timed(lambda: run([*command, "pipeline-local"], cwd=project)))
        fresh_store(project)
        repro.append(timed(lambda: run(["uv", "run", "dvc", "repro"], cwd=project)))
    return {
        "pipeline_compile_seconds": median(compile_),
        "pipeline_local_seconds": median(local),
        "dvc_repro_cold_seconds": median(repro),
        **bench_group_sizes(project, workdir, ["orchestration"]),
    }


def measure(results: dict, runs: int) -> None:
    with tempfile.TemporaryDirectory(prefix="mlops-ladder-bench-") as tmp:
        workdir = Path(tmp)
        template = snapshot_template(workdir)
        for level in (1, 2, 3):
            results[f"copy_level{level}_seconds"] = bench_copy(template, workdir, level, runs)
        for start in (1, 2):
            results[f"update_{start}_to_{start + 1}_seconds"] = bench_update(
                template, workdir, start, runs
            )
        green_runs = max(1, runs // 2)
        for level in (1, 2, 3):
            results[f"copy_to_green_level{level}"] = bench_copy_to_green(
                template, workdir, level, green_runs
            )
        results["pipeline_level2"] = bench_pipeline(workdir / "green-2-0", green_runs)
        # Tracking before the 0.3.0 changes (release 0.2.0) and now, taking turns.
        projects = {"0.2.0": level2_project(workdir, "0.2.0"), "now": workdir / "green-2-0"}
        results["tracking_level2"] = bench_tracking(projects, runs)
        results["tracking_breakdown"] = bench_tracking_breakdown(workdir / "green-2-0", runs)
        results["release_level3"] = bench_release(workdir / "green-3-0", runs)
        results["orchestration_kubeflow"] = bench_orchestration(template, workdir, runs, green_runs)
        results["dependency_groups_level2"] = bench_group_sizes(workdir / "green-2-0", workdir)
        results["dependency_groups_level3"] = bench_group_sizes(workdir / "green-3-0", workdir)
        results["load_after"] = round(os.getloadavg()[0], 2)


def result_header(runs: int) -> dict:
    """What every bench result starts with: the machine, the runs, the load before."""
    return {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}",
        "runs": runs,
        "load_before": round(os.getloadavg()[0], 2),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="runs per measure (median)")
    args = parser.parse_args()

    output = REPO_ROOT / "bench" / "results" / "latest.json"
    output.parent.mkdir(exist_ok=True)
    results = result_header(args.runs)
    try:
        measure(results, args.runs)
    finally:  # what was measured before a failure is kept
        output.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
