"""Time the generated project's drift check against Evidently's data-drift preset; print Markdown.

    uv run python bench/drift.py --project /path/to/a/level-4/project [--rows 1000000]
    uv run python bench/drift.py --generate          # copy a level-4 project and sync it

The data is synthetic and the same for both: a reference of 100,000 rows
(the training data) and a current window of 1,000,000 rows, 10 features:
nine numbers (normal, log-normal, exponential and Poisson counts) and one
category of five values. In the current window one number (`n2`) is moved
by 0.25 of its standard deviation and one category (`d`) gains 10 points
of share, taken from the others in proportion. The bench then:

1. runs the project's check in memory (`monitoring.drift.check_features`
   on a DataFrame, after `monitoring.profile.build_profile` on the
   reference), in the project's environment;
2. runs Evidently's `DataDriftPreset` (tests included: its own verdict per
   column) on the same two DataFrames, read from the same Parquet files, in
   an environment of its own (Evidently needs pandas < 3; created with uv
   unless --evidently-env points at one);
3. writes the current window as a SQLite prediction log of 1,000,000 rows
   (the schema of docs/decisions/0009-level-4-monitoring.md) and times the
   `drift` command on it from start to exit (reading the log, the check, the
   JSON and HTML reports), and, in process, reading the log alone.

The machine may be shared: the load average is printed with the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
RESULTS = REPO_ROOT / "bench" / "results" / "drift.json"
THIS_FILE = Path(__file__).resolve()
NUMERIC = [f"n{i}" for i in range(9)]
CATEGORY = "segment"
CATEGORIES = ["a", "b", "c", "d", "e"]
SHARES = [0.40, 0.25, 0.15, 0.12, 0.08]
SHIFTED_NUMBER, SHIFTED_CATEGORY = "n2", "d"
SHIFT_SD, SHIFT_POINTS = 0.25, 0.10
EVIDENTLY_REQUIREMENTS = ["evidently", "pandas<3", "pyarrow"]


def run(command: list[str], cwd: Path, ok: tuple[int, ...] = (0,), **options) -> str:
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, **options)
    if result.returncode not in ok:
        raise RuntimeError(
            f"{command[:4]} exited with {result.returncode}:\n{result.stdout[-2000:]}"
            f"\n{result.stderr[-2000:]}"
        )
    return result.stdout


def package_of(project: Path) -> str:
    return next(init.parent.name for init in sorted((project / "src").glob("*/__init__.py")))


def last_json_line(output: str) -> dict:
    return json.loads(output.strip().splitlines()[-1])


# --- Workers: run in the project's environment or in Evidently's ------------------------------


def make_data(workdir: Path, rows: int, reference_rows: int, seed: int = 0) -> dict:
    """reference.parquet and current.parquet, the current one with the two shifts."""
    import numpy as np
    import pandas as pd

    def frame(size: int, generator: np.random.Generator, shares: list[float]) -> pd.DataFrame:
        columns = {}
        for index, name in enumerate(NUMERIC[:6]):
            columns[name] = generator.normal(10.0 * index, 1.0 + index, size)
        columns["n6"] = generator.lognormal(0.0, 0.5, size)
        columns["n7"] = generator.exponential(2.0, size)
        columns["n8"] = generator.poisson(3.0, size).astype("float64")
        columns[CATEGORY] = generator.choice(np.array(CATEGORIES, dtype=object), size, p=shares)
        return pd.DataFrame(columns)

    reference = frame(reference_rows, np.random.default_rng(seed), SHARES)
    moved = SHARES[CATEGORIES.index(SHIFTED_CATEGORY)]
    others = (1 - moved - SHIFT_POINTS) / (1 - moved)
    current_shares = [
        share + SHIFT_POINTS if name == SHIFTED_CATEGORY else share * others
        for name, share in zip(CATEGORIES, SHARES, strict=True)
    ]
    current = frame(rows, np.random.default_rng(seed + 1), current_shares)
    current[SHIFTED_NUMBER] += SHIFT_SD * reference[SHIFTED_NUMBER].std()
    reference.to_parquet(workdir / "reference.parquet")
    current.to_parquet(workdir / "current.parquet")
    return {
        "reference_rows": len(reference),
        "rows": len(current),
        "project_python": platform.python_version(),
    }


def config_files(workdir: Path) -> tuple[Path, Path]:
    """params.yaml and canvas.yaml describing the bench's features, for build_profile."""
    import yaml

    columns = {name: {"type": "float"} for name in NUMERIC}
    columns[CATEGORY] = {"type": "category", "allowed": CATEGORIES}
    columns["label"] = {"type": "int", "allowed": [0, 1]}
    params = {
        "features": {"numeric": NUMERIC, "categorical": [CATEGORY], "target": "label"},
        "split": {"test_size": 0.2, "seed": 0},
        "model": {"architecture": "logistic_regression", "architecture_version": 1},
    }
    canvas = {
        "prediction_target": "label",
        "success_metric": {"name": "roc_auc", "threshold": 0.5},
        "data_contract": {"columns": columns},
    }
    (workdir / "params.yaml").write_text(yaml.safe_dump(params))
    (workdir / "canvas.yaml").write_text(yaml.safe_dump(canvas))
    return workdir / "params.yaml", workdir / "canvas.yaml"


def project_check(workdir: Path, package: str) -> dict:
    """The project's profile of the reference, then its check on the current window, timed."""
    import importlib

    import pandas as pd

    profile = importlib.import_module(f"{package}.monitoring.profile")
    drift = importlib.import_module(f"{package}.monitoring.drift")
    settings = importlib.import_module(f"{package}.monitoring.settings")
    params = importlib.import_module(f"{package}.core.params")
    canvas = importlib.import_module(f"{package}.core.canvas")
    params_path, canvas_path = config_files(workdir)
    reference = pd.read_parquet(workdir / "reference.parquet")
    current = pd.read_parquet(workdir / "current.parquet")

    started = time.perf_counter()
    built = profile.build_profile(
        reference, params.load_params(params_path), canvas.load_canvas(canvas_path), "bench"
    )
    profile_seconds = time.perf_counter() - started
    (workdir / "reference-profile.json").write_text(json.dumps(built))
    # Imports (scipy) before the clock starts, as Evidently's are.
    drift.check_features(built, current.head(1_000), settings.DriftSettings())

    started = time.perf_counter()
    verdicts = drift.check_features(built, current, settings.DriftSettings())
    check_seconds = time.perf_counter() - started
    return {
        "profile_seconds": round(profile_seconds, 3),
        "check_seconds": round(check_seconds, 3),
        "columns": {name: project_summary(verdict) for name, verdict in verdicts.items()},
    }


def project_summary(verdict: dict) -> dict:
    if verdict["kind"] == "numeric":
        scores = {
            "KS": round(verdict["ks_statistic"]["value"], 4),
            "PSI": round(verdict["psi"]["value"], 4),
        }
    else:
        change = verdict["largest_share_change"]
        scores = {
            f"share change of {change['category']}": round(change["value"], 4),
            "TVD": round(verdict["total_variation"], 4),
        }
    return {"drifted": verdict["drifted"], "scores": scores}


def evidently_check(workdir: Path) -> dict:
    """Evidently's DataDriftPreset on the same frames, with its per-column verdicts."""
    import warnings

    warnings.filterwarnings("ignore")
    import evidently
    import pandas as pd
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    reference = pd.read_parquet(workdir / "reference.parquet")
    current = pd.read_parquet(workdir / "current.parquet")
    definition = DataDefinition(numerical_columns=NUMERIC, categorical_columns=[CATEGORY])

    started = time.perf_counter()
    snapshot = Report([DataDriftPreset()], include_tests=True).run(
        Dataset.from_pandas(current, data_definition=definition),
        Dataset.from_pandas(reference, data_definition=definition),
    )
    seconds = time.perf_counter() - started
    result = snapshot.dict()
    scores = {
        metric["config"]["column"]: metric
        for metric in result["metrics"]
        if metric["config"].get("type", "").endswith("ValueDrift")
    }
    verdicts = {
        test["metric_config"]["params"]["column"]: test["status"] == "FAIL"
        for test in result["tests"]
        if test["metric_config"]["params"].get("type", "").endswith("ValueDrift")
    }
    return {
        "version": evidently.__version__,
        "check_seconds": round(seconds, 3),
        "columns": {
            name: {
                "drifted": verdicts[name],
                "scores": {metric["config"]["method"]: round(float(metric["value"]), 4)},
                "threshold": metric["config"]["threshold"],
            }
            for name, metric in scores.items()
        },
    }


def write_log(workdir: Path) -> dict:
    """The current window as a SQLite prediction log, one answered row per frame row."""
    import sqlite3

    import pandas as pd

    current = pd.read_parquet(workdir / "current.parquet")
    path = workdir / "predictions.db"
    path.unlink(missing_ok=True)
    started = time.perf_counter()
    connection = sqlite3.connect(path)
    connection.execute("PRAGMA journal_mode = WAL")
    connection.execute(
        "CREATE TABLE predictions (request_id TEXT NOT NULL, row INTEGER NOT NULL, "
        "time TEXT NOT NULL, model_version TEXT, status INTEGER NOT NULL, latency_ms REAL NOT "
        "NULL, input TEXT, prediction TEXT, probability REAL, refused_rule TEXT, "
        "PRIMARY KEY (request_id, row))"
    )
    connection.execute("CREATE INDEX predictions_by_time ON predictions (time)")
    columns = list(current.columns)
    values = current.itertuples(index=False, name=None)
    records = (
        (f"{number:032x}", 0, f"2025-06-01T{number // 3_600_000 % 24:02d}:00:00.000+00:00", "1",
         200, 3.0, json.dumps(dict(zip(columns, row, strict=True))), "1", 0.5, None)
        for number, row in enumerate(values)
    )  # fmt: skip
    with connection:
        connection.executemany(f"INSERT INTO predictions VALUES ({', '.join('?' * 10)})", records)
    connection.close()
    return {"rows": len(current), "write_seconds": round(time.perf_counter() - started, 1)}


def read_log(workdir: Path, package: str, rows: int) -> dict:
    """The command's reading step alone: the window out of SQLite, then the feature frame."""
    import importlib

    import pandas  # noqa: F401 (imported before the clock starts)

    drift = importlib.import_module(f"{package}.monitoring.drift")
    report = importlib.import_module(f"{package}.monitoring.report")  # the log's one reader
    reference = json.loads((workdir / "reference-profile.json").read_text())
    names = list(reference["features"])
    log = workdir / "predictions.db"
    started = time.perf_counter()
    window = report.read_window(log, rows, None)
    read_seconds = time.perf_counter() - started
    drift.feature_frame(window.inputs, names, log, workdir / "reference-profile.json")
    frame_seconds = time.perf_counter() - started - read_seconds
    return {"read_seconds": round(read_seconds, 2), "frame_seconds": round(frame_seconds, 2)}


def worker(step: str, workdir: Path, package: str, rows: int, reference_rows: int) -> dict:
    if step == "data":
        return make_data(workdir, rows, reference_rows)
    if step == "project":
        return project_check(workdir, package)
    if step == "evidently":
        return evidently_check(workdir)
    if step == "log":
        return write_log(workdir)
    if step == "read":
        return read_log(workdir, package, rows)
    raise ValueError(step)


# --- The bench --------------------------------------------------------------------------------


def evidently_env(given: Path | None, workdir: Path) -> Path:
    """A Python with Evidently (and pandas < 3): the given one, or a fresh venv."""
    if given is not None:
        return given / "bin" / "python"
    venv = workdir / "evidently-env"
    run(["uv", "venv", "-q", "--python", "3.12", str(venv)], workdir)
    run(["uv", "pip", "install", "-q", "--python", str(venv), *EVIDENTLY_REQUIREMENTS], workdir)
    return venv / "bin" / "python"


def generate(workdir: Path) -> Path:
    """A fresh level-4 project from the working tree, its environment synced."""
    sys.path.insert(0, str(REPO_ROOT))
    from tests import helpers

    template = helpers.snapshot_template(workdir / "template")
    project = workdir / "project"
    helpers.copy_template(template, project, {"project_name": "Bench Drift", "level": 4})
    run(["uv", "sync", "-q"], project)
    return project


def time_command(project: Path, package: str, workdir: Path, rows: int) -> dict:
    """The `drift` command from process start to exit (3: drift found) on the 1M-row log."""
    command = [
        str(project / ".venv" / "bin" / package), "drift",
        "--log", str(workdir / "predictions.db"),
        "--reference", str(workdir / "reference-profile.json"),
        "--last", str(rows),
    ]  # fmt: skip
    started = time.perf_counter()
    output = run(command, workdir, ok=(0, 3))
    seconds = time.perf_counter() - started
    summary = output.strip().splitlines()[-1]
    return {"command_seconds": round(seconds, 2), "summary": summary}


def differences(ours: dict, theirs: dict) -> list[str]:
    return [
        name
        for name in ours["columns"]
        if ours["columns"][name]["drifted"] != theirs["columns"][name]["drifted"]
    ]


def table(results: dict) -> str:
    ours, theirs = results["project"], results["evidently"]
    lines = [
        f"Machine: {results['machine']} (shared with other jobs), the project's Python "
        f"{results['project_python']}; load average before: "
        f"{results['load_before']}, after: {results['load_after']}. {results['rows']:,} current "
        f"rows x 10 features against a {results['reference_rows']:,}-row reference; shifted: "
        f"{SHIFTED_NUMBER} (+{SHIFT_SD} sd), {CATEGORY} ('{SHIFTED_CATEGORY}' "
        f"+{SHIFT_POINTS * 100:.0f} points).",
        "",
        "| feature | project: scores | project flags | Evidently: score (threshold) "
        "| Evidently flags |",
        "|---|---|---|---|---|",
    ]
    for name, verdict in ours["columns"].items():
        other = theirs["columns"][name]
        score = ", ".join(f"{k} {v}" for k, v in verdict["scores"].items())
        their_score = ", ".join(f"{k} {v}" for k, v in other["scores"].items())
        lines.append(
            f"| {name} | {score} | {'**yes**' if verdict['drifted'] else 'no'} | "
            f"{their_score} ({other['threshold']}) | {'**yes**' if other['drifted'] else 'no'} |"
        )
    speedup = theirs["check_seconds"] / max(ours["check_seconds"], 1e-9)
    end_to_end = results["end_to_end"]
    lines += [
        "",
        "| step | seconds |",
        "|---|---:|",
        f"| project: reference profile ({results['reference_rows']:,} rows) | "
        f"{ours['profile_seconds']} |",
        f"| project: drift check in memory | {ours['check_seconds']} |",
        f"| Evidently {theirs['version']}: DataDriftPreset in memory | {theirs['check_seconds']} |",
        f"| speed-up (Evidently / project) | {speedup:.1f}x |",
        f"| end to end: `drift` command on the {results['rows']:,}-row SQLite log | "
        f"{end_to_end['command_seconds']} |",
        f"| of which: reading the log (SQL + JSON) | {end_to_end['read_seconds']} |",
        f"| of which: rows to a DataFrame | {end_to_end['frame_seconds']} |",
        "",
        f"Flagged differently: {', '.join(results['differences']) or 'none'}.",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--workdir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--package", help=argparse.SUPPRESS)
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--project", type=Path, help="a generated level-4 project, synced")
    source.add_argument("--generate", action="store_true", help="copy a level-4 project")
    parser.add_argument("--rows", type=int, default=1_000_000, help="current rows (1,000,000)")
    parser.add_argument("--reference-rows", type=int, default=100_000, help="(100,000)")
    parser.add_argument("--evidently-env", type=Path, help="a venv with evidently, pandas<3")
    args = parser.parse_args()
    if args.worker:
        step = worker(args.worker, args.workdir, args.package, args.rows, args.reference_rows)
        print(json.dumps(step))
        return 0
    if not (args.project or args.generate):
        parser.error("pass --project or --generate")

    with tempfile.TemporaryDirectory(prefix="mlops-ladder-bench-drift-") as tmp:
        workdir = Path(tmp)
        project = generate(workdir) if args.generate else args.project.resolve()
        package = package_of(project)
        python = evidently_env(args.evidently_env, workdir)
        sizes = ["--rows", str(args.rows), "--reference-rows", str(args.reference_rows)]

        def step(name: str, interpreter: list[str]) -> dict:
            command = [*interpreter, str(THIS_FILE), "--worker", name, "--workdir", str(workdir)]
            return last_json_line(run([*command, "--package", package, *sizes], project))

        in_project = ["uv", "run", "--frozen", "python"]
        results: dict = {
            "machine": f"{platform.machine()}, {os.cpu_count()} cores",
            "load_before": round(os.getloadavg()[0], 2),
            **step("data", in_project),
        }
        results["project"] = step("project", in_project)
        results["evidently"] = step("evidently", [str(python)])
        results["log"] = step("log", in_project)
        results["end_to_end"] = {
            **time_command(project, package, workdir, args.rows),
            **step("read", in_project),
        }
        results["differences"] = differences(results["project"], results["evidently"])
        results["load_after"] = round(os.getloadavg()[0], 2)

    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
