"""What the level-4 prediction log costs the model API, and whether it loses rows; print Markdown.

    uv run python bench/prediction_log.py --project /path/to/level-4/project [--duration 10]

The project is a generated level-4 project whose model folder exists
(models/serving; written with `<package> export --candidate` when missing, so
its pipeline must have run). The same model folder is served three ways, one
after the other, with 1 then 2 workers, and loaded at concurrency 16 (one row
a request, the model folder's examples in turn) by bench/loadgen.py
(run with the project's Python):

- `level 3`: the monitoring package hidden (a sitecustomize on PYTHONPATH
  makes `find_spec("<package>.monitoring")` answer None, in the parent and in
  every worker): the API exactly as level 3 serves it;
- `null sink`: level 4 with `prediction_log.sink` set to a `module:factory`
  sink that discards its rows: the middleware, the records, the buffer and
  the metrics, without storage;
- `sqlite`: level 4 as shipped, the SQLite log in a temporary folder.

Each configuration runs `--runs` times, interleaved (level 3, null, sqlite,
then again) so that a drift of the machine spreads over all three; the table
gives the medians. For the sqlite runs it also counts the rows the server
answered (model_api_predictions_total, scraped after the load) against the
rows in the log after SIGTERM: they must be equal. Server and client share
the machine: read the figures as ratios, next to the load average printed
with them. POSIX only (process groups).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

CONCURRENCY = 16
MODES = ("level 3", "null sink", "sqlite")

NULL_SINK = '''"""A prediction-log sink that keeps nothing (bench/prediction_log.py)."""


class NullSink:
    name = "null"

    def write(self, records):
        pass

    def add_feedback(self, feedback):
        raise LookupError("the null sink keeps nothing")

    def live_rows(self, window):
        return []

    def delete(self, request_id):
        return 0

    def prune(self, older_than):
        return 0

    def close(self):
        pass


def make(settings):
    return NullSink()
'''

# Hides the monitoring package when BENCH_WITHOUT_MONITORING is set: imported
# by every Python process started with this folder on PYTHONPATH.
SITECUSTOMIZE = """import importlib.util
import os

if os.environ.get("BENCH_WITHOUT_MONITORING"):
    _find_spec = importlib.util.find_spec

    def _without_monitoring(name, package=None):
        if name.endswith(".monitoring"):
            return None
        return _find_spec(name, package)

    importlib.util.find_spec = _without_monitoring
"""

LOADGEN = Path(__file__).resolve().parent / "loadgen.py"


def run(command: list[str], cwd: Path, **options) -> str:
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, **options)
    if result.returncode != 0:
        raise RuntimeError(
            f"{command[:4]} exited with {result.returncode}:\n{result.stdout[-2000:]}"
            f"\n{result.stderr[-2000:]}"
        )
    return result.stdout


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def package_of(project: Path) -> str:
    return next(init.parent.name for init in sorted((project / "src").glob("*/__init__.py")))


def ensure_model_folder(project: Path, package: str) -> Path:
    folder = project / "models" / "serving"
    if not (folder / "metadata.json").is_file():
        run(["uv", "run", package, "export", "--candidate"], project)
    return folder


class Server:
    """`<package> serve` in its own process group, in a folder of its own settings."""

    def __init__(self, command: list[str], cwd: Path, url: str, env: dict[str, str]):
        self.command, self.cwd, self.url, self.env = command, cwd, url, env
        self.process: subprocess.Popen | None = None
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 (lives as long as the server)

    def start(self, timeout: float = 120.0) -> None:
        self.process = subprocess.Popen(
            self.command, cwd=self.cwd, env=self.env, stdout=self.log,
            stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        started = time.perf_counter()
        while time.perf_counter() - started < timeout:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server stopped:\n{self.output()[-3000:]}")
            with (
                contextlib.suppress(OSError),
                urllib.request.urlopen(self.url + "/ready", timeout=1) as answer,
            ):
                if answer.status == 200:
                    return
            time.sleep(0.05)
        raise RuntimeError(f"the server was not ready after {timeout} s")

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read().decode("utf-8", errors="replace")

    def stop(self) -> None:
        """SIGTERM to the group (the parent passes it to its workers), then wait."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        deadline = time.perf_counter() + 10  # workers of the group still flushing
        while time.perf_counter() < deadline:
            try:
                os.killpg(self.process.pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)


def monitoring_settings(mode: str, log_path: Path) -> str:
    sink = "bench_null_sink:make" if mode == "null sink" else "sqlite"
    return f"prediction_log:\n  sink: {sink}\n  path: {log_path}\n"


def answered_rows(url: str) -> int | None:
    """Rows the server answered: model_api_predictions_total summed over classes and workers."""
    try:
        with urllib.request.urlopen(url + "/metrics", timeout=10) as answer:
            text = answer.read().decode()
    except OSError:
        return None
    return round(
        sum(
            float(line.rpartition(" ")[2])
            for line in text.splitlines()
            if line.startswith("model_api_predictions_total{")
        )
    )


def logged_rows(path: Path) -> int:
    if not path.is_file():
        return 0
    connection = sqlite3.connect(path)
    try:
        return connection.execute("SELECT COUNT(*) FROM predictions").fetchone()[0]
    finally:
        connection.close()


def measure(
    project: Path, package: str, model_dir: Path, workdir: Path, mode: str, workers: int,
    bodies: list, args: argparse.Namespace,
) -> dict:  # fmt: skip
    """One server, one load: req/s and percentiles; answered and logged rows for sqlite."""
    folder = Path(tempfile.mkdtemp(prefix="run-", dir=workdir))
    log_path = folder / "predictions.db"
    (folder / "monitoring.yaml").write_text(monitoring_settings(mode, log_path))
    if (project / "deploy.yaml").is_file():
        (folder / "deploy.yaml").write_text((project / "deploy.yaml").read_text())
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(workdir), os.environ.get("PYTHONPATH")])),
        "PREDICTION_LOG_PATH": str(log_path),
        "ORT_DISABLE_TELEMETRY": "1",
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    env.pop("MODEL_API_TOKEN", None)
    if mode == "level 3":
        env["BENCH_WITHOUT_MONITORING"] = "1"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    entry = str(project / ".venv" / "bin" / package)
    command = [entry, "serve", "--port", str(port), "--workers", str(workers),
               "--model-dir", str(model_dir)]  # fmt: skip
    server = Server(command, folder, url, env)
    server.start()
    try:
        python = str(project / ".venv" / "bin" / "python")
        client = [python, str(LOADGEN), f"{url}/predict",
                  json.dumps(bodies), str(args.duration), str(CONCURRENCY)]  # fmt: skip
        (level,) = json.loads(run(client, project).strip().splitlines()[-1])
        answered = answered_rows(url) if mode != "level 3" else None
    finally:
        server.stop()
    result = {
        "req_s": level["req_s"],
        "p50_ms": level["p50_ms"],
        "p95_ms": level["p95_ms"],
        "errors": level["errors"],
    }
    if mode == "sqlite":
        result |= {"rows_answered": answered, "rows_logged": logged_rows(log_path)}
    print(
        f"measured {mode}, {workers} worker(s): {level['req_s']:.0f} req/s, "
        f"p95 {level['p95_ms']:.2f} ms",
        file=sys.stderr,
    )
    return result


def summary(runs: list[dict]) -> dict:
    middle = {
        key: round(statistics.median(run[key] for run in runs), 2)
        for key in ("req_s", "p50_ms", "p95_ms")
    }
    middle["errors"] = sum(run["errors"] for run in runs)
    if "rows_logged" in runs[0]:
        middle["rows_answered"] = sum(run["rows_answered"] or 0 for run in runs)
        middle["rows_logged"] = sum(run["rows_logged"] for run in runs)
    return middle


def table(results: dict) -> str:
    lines = [
        f"Machine: {results['machine']}; load average before: {results['load_before']}, "
        f"after: {results['load_after']}; {results['duration_s']} s a run, "
        f"{results['runs']} run(s) a configuration (medians), concurrency {CONCURRENCY}, "
        f"one row a request; fast path: {results['fast_path']}.",
        "",
        "| workers | prediction log | req/s | p50 ms | p95 ms | throughput vs level 3 "
        "| rows answered | rows logged |",
        "|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for workers, modes in results["levels"].items():
        base = modes["level 3"]["req_s"]
        for mode, figures in modes.items():
            change = "" if mode == "level 3" else f"{(figures['req_s'] / base - 1) * 100:+.1f}%"
            lines.append(
                f"| {workers} | {mode} | {figures['req_s']:.0f} | {figures['p50_ms']:.2f} | "
                f"{figures['p95_ms']:.2f} | {change} | {figures.get('rows_answered', '')} | "
                f"{figures.get('rows_logged', '')} |"
            )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project", type=Path, required=True, help="a level-4 project")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds a run (10)")
    parser.add_argument("--runs", type=int, default=2, help="runs a configuration (2)")
    parser.add_argument("--workers", default="1,2", help="worker counts, comma-separated (1,2)")
    parser.add_argument("--results", type=Path, help="also write the figures as JSON there")
    args = parser.parse_args()

    project = args.project.resolve()
    package = package_of(project)
    if not (project / "src" / package / "monitoring").is_dir():
        raise SystemExit(f"{project} is not a level-4 project (no src/{package}/monitoring)")
    model_dir = ensure_model_folder(project, package)
    metadata = json.loads((model_dir / "metadata.json").read_text())
    bodies = json.loads((model_dir / "examples.json").read_text())["rows"]
    worker_counts = [int(count) for count in args.workers.split(",")]
    server_python = run(
        [str(project / ".venv" / "bin" / "python"), "-c", "import platform; "
         "print(platform.python_version())"], project,
    ).strip()  # fmt: skip
    results: dict = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, the API on Python "
        f"{server_python}",
        "load_before": round(os.getloadavg()[0], 2),
        "duration_s": args.duration,
        "runs": args.runs,
        "fast_path": bool(metadata.get("fast_path", {}).get("used")),
    }
    with tempfile.TemporaryDirectory(prefix="mlops-ladder-bench-log-") as tmp:
        workdir = Path(tmp)
        (workdir / "bench_null_sink.py").write_text(NULL_SINK)
        (workdir / "sitecustomize.py").write_text(SITECUSTOMIZE)
        runs: dict = {workers: {mode: [] for mode in MODES} for workers in worker_counts}
        for _ in range(args.runs):
            for workers in worker_counts:
                for mode in MODES:
                    runs[workers][mode].append(
                        measure(project, package, model_dir, workdir, mode, workers, bodies, args)
                    )
    results["levels"] = {
        workers: {mode: summary(found) for mode, found in modes.items()}
        for workers, modes in runs.items()
    }
    results["load_after"] = round(os.getloadavg()[0], 2)
    if args.results:
        args.results.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
