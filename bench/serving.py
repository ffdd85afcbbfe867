"""Measure the generated project's model API against `mlflow models serve`; print Markdown.

    uv run python bench/serving.py --project /path/to/generated/project [--duration 10]
    uv run python bench/serving.py --generate [--level 3]     # copy, sample data, dvc repro

The project must have run its pipeline (models/model.joblib, data/processed/test.csv
and a tracked run in mlflow.db). The bench then:

1. writes the model folder (models/serving) with `<package> export --candidate`,
   unless one is there, and registers the model the gate passed (`gate`, then
   `register`: MLflow's scikit-learn flavour), unless a version is registered;
2. times the cold start of `<package> serve` (process start to the first 200
   from /ready) and of `mlflow models serve --env-manager local` on the
   registered version (start to the first 200 from /ping): the same model;
3. loads both at concurrency 1 and 16, one row a request, with wrk (when
   installed) and with bench/loadgen.py (asyncio, the project's Python);
4. sizes the runtime dependency set (project dependencies + the serving group,
   installed in a fresh venv) against MLflow's.

MLflow runs from a throwaway venv (full mlflow at the project's mlflow-skinny
version, plus the project's own scikit-learn, numpy, pandas, scipy and skops
versions). Servers and load share the machine: read the figures as ratios,
and look at the load average printed with them. POSIX only (process groups,
wrk).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
RESULTS = REPO_ROOT / "bench" / "results" / "serving.json"
MLFLOW_LIBRARIES = ("scikit-learn", "numpy", "pandas", "scipy", "skops")
CONCURRENCIES = (1, 16)
LOADGEN = REPO_ROOT / "bench" / "loadgen.py"


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


def directory_mb(path: Path) -> int:
    total = sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())
    return round(total / 1e6)


def generate(level: int, workdir: Path) -> Path:
    """A fresh project from the working tree, with its pipeline run."""
    sys.path.insert(0, str(REPO_ROOT))
    from tests import helpers

    template = helpers.snapshot_template(workdir / "template")
    project = workdir / "project"
    helpers.copy_template(template, project, {"project_name": "Bench Serving", "level": level})
    helpers.git(project, "init", "-q", "-b", "main")
    helpers.git(project, "add", "-A")
    run(["uv", "run", "poe", "sample-data"], project)
    run(["uv", "run", "dvc", "repro"], project)
    return project


def ensure_model_folder(project: Path, package: str) -> dict:
    """The model folder the API serves, written by the project's own export command."""
    folder = project / "models" / "serving"
    if not (folder / "metadata.json").is_file():
        run(["uv", "run", package, "export", "--candidate"], project)
    return json.loads((folder / "metadata.json").read_text())


def latest_version(project: Path) -> tuple[str, str] | None:
    connection = sqlite3.connect(project / "mlflow.db")
    try:
        return connection.execute(
            "SELECT name, version FROM model_versions ORDER BY creation_time DESC LIMIT 1"
        ).fetchone()
    finally:
        connection.close()


def registered_model(project: Path, package: str) -> str:
    """The URI MLflow serves: the latest registered version, registered here if none is."""
    if latest_version(project) is None:
        run(["uv", "run", package, "gate"], project)
        run(["uv", "run", package, "register"], project)
    name, version = latest_version(project)
    return f"models:/{name}/{version}"


def mlflow_venv(project: Path, workdir: Path) -> Path:
    names = ("mlflow-skinny", *MLFLOW_LIBRARIES)
    versions = json.loads(
        run(
            ["uv", "run", "python", "-c",
             "import json, importlib.metadata as m; "
             f"print(json.dumps({{n: m.version(n) for n in {names!r}}}))"],
            project,
        )
    )  # fmt: skip
    # Full mlflow at the skinny's version: the same tracking-store schema.
    versions["mlflow"] = versions.pop("mlflow-skinny")
    python = run(["uv", "run", "python", "-c", "import sys; print(sys.executable)"], project)
    venv = workdir / "mlflow-env"
    run(["uv", "venv", "-q", "--python", python.strip(), str(venv)], workdir)
    pins = [f"{name}=={version}" for name, version in versions.items()]
    run(["uv", "pip", "install", "-q", "--python", str(venv), *pins], workdir)
    return venv


def runtime_set_mb(project: Path, workdir: Path) -> int:
    """A fresh venv with what an image installs: the project's dependencies + serving."""
    requirements = workdir / "runtime.txt"
    exported = run(
        ["uv", "export", "--frozen", "--no-default-groups", "--group", "serving",
         "--no-emit-project", "--no-hashes", "--format", "requirements-txt"],
        project,
    )  # fmt: skip
    requirements.write_text(exported)
    python = run(["uv", "run", "python", "-c", "import sys; print(sys.executable)"], project)
    venv = workdir / "runtime-env"
    run(["uv", "venv", "-q", "--python", python.strip(), str(venv)], workdir)
    run(["uv", "pip", "install", "-q", "--python", str(venv), "-r", str(requirements)], workdir)
    return directory_mb(venv)


class Server:
    """A server command in its own process group, stopped with the whole group."""

    def __init__(self, command: list[str], cwd: Path, probe: str, env: dict | None = None):
        self.command, self.cwd, self.probe = command, cwd, probe
        self.env = {**os.environ, **(env or {})}
        self.process: subprocess.Popen | None = None
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 (lives as long as the server)

    def start(self, timeout: float = 180.0) -> float:
        started = time.perf_counter()
        self.process = subprocess.Popen(
            self.command, cwd=self.cwd, env=self.env, stdout=self.log,
            stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        while time.perf_counter() - started < timeout:
            if self.process.poll() is not None:
                self.log.seek(0)
                raise RuntimeError(f"{self.command} stopped:\n{self.log.read().decode()[-3000:]}")
            try:
                with urllib.request.urlopen(self.probe, timeout=1) as answer:
                    if answer.status == 200:
                        return time.perf_counter() - started
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"{self.command} was not ready after {timeout} s")

    def stop(self) -> None:
        """Stop the whole group: mlflow's CLI leaves its uvicorn child behind otherwise."""
        if self.process is None:
            return
        group = self.process.pid
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, signal.SIGTERM)
        deadline = time.perf_counter() + 15
        while time.perf_counter() < deadline:
            self.process.poll()  # reap our own child
            try:
                os.killpg(group, 0)
            except ProcessLookupError:
                return
            time.sleep(0.1)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, signal.SIGKILL)
        self.process.wait()


# wrk's own summary has no p95: the script prints the percentiles (microseconds).
WRK_SCRIPT = """wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = {body}
done = function(summary, latency, requests)
  for _, p in ipairs({{50, 95, 99}}) do
    io.write(string.format("percentile %d %d\\n", p, latency:percentile(p)))
  end
end
"""


def wrk(url: str, body: str, concurrency: int, seconds: float, workdir: Path) -> dict:
    script = workdir / "post.lua"
    script.write_text(WRK_SCRIPT.format(body=json.dumps(body)))
    output = run(
        ["wrk", "-t1", f"-c{concurrency}", f"-d{max(1, round(seconds))}s", "-s", str(script), url],
        workdir,
    )
    per_second = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    percentiles = {
        f"p{name}_ms": int(micros) / 1000
        for name, micros in re.findall(r"percentile (\d+) (\d+)", output)
    }
    failed = sum(int(n) for n in re.findall(r"Non-2xx or 3xx responses:\s+(\d+)", output))
    sockets = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    failed += sum(int(n) for n in sockets.groups()) if sockets else 0
    return {"req_s": round(per_second), **percentiles, "errors": failed}


def python_load(project: Path, url: str, bodies: list, seconds: float) -> list[dict]:
    """The benches' own load client (bench/loadgen.py), run with the project's Python."""
    command = ["uv", "run", "python", str(LOADGEN), url, json.dumps(bodies), str(seconds)]
    output = run([*command, *map(str, CONCURRENCIES)], project)
    return json.loads(output.strip().splitlines()[-1])


def measure_server(
    name: str, command: Callable[[int], list[str]], probe: str, route: str, bodies: list,
    project: Path, package: str, args: argparse.Namespace, workdir: Path, env: dict | None = None,
) -> dict:  # fmt: skip
    """Cold starts (each on a fresh port), then wrk and the Python client on one server."""

    def server() -> tuple[Server, str]:
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        return Server(command(port), project, base + probe, env), base + route

    starts = []
    for _ in range(args.runs):
        cold, _ = server()
        try:
            starts.append(cold.start())
        finally:
            cold.stop()
    running, endpoint = server()
    running.start()
    try:
        result = {"cold_start_s": round(statistics.median(starts), 2)}
        if shutil.which("wrk"):
            result["wrk"] = {
                c: wrk(endpoint, json.dumps(bodies[0]), c, args.duration, workdir)
                for c in CONCURRENCIES
            }
        levels = python_load(project, endpoint, bodies, args.duration)
        result["python"] = {level["concurrency"]: level for level in levels}
    finally:
        running.stop()
    print(f"measured {name}", file=sys.stderr)
    return result


def table(results: dict) -> str:
    lines = [
        f"Machine: {results['machine']}; load average before: {results['load_before']}, "
        f"after: {results['load_after']}; {results['duration_s']} s per level; "
        f"fast path: {results['fast_path']}.",
        "",
        "| server | cold start s | client | concurrency | req/s | p50 ms | p95 ms | p99 ms "
        "| errors |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name in ("api", "mlflow"):
        if name not in results:
            continue
        server = results[name]
        for client in ("wrk", "python"):
            for concurrency, level in server.get(client, {}).items():
                lines.append(
                    f"| {name} | {server['cold_start_s']} | {client} | {concurrency} | "
                    f"{level['req_s']} | {level.get('p50_ms', float('nan')):.2f} | "
                    f"{level.get('p95_ms', float('nan')):.2f} | "
                    f"{level.get('p99_ms', float('nan')):.2f} | {level['errors']} |"
                )
    if "api" in results and "mlflow" in results:
        lines += [
            "",
            "| client | concurrency | API / mlflow throughput | mlflow / API p95 |",
            "|---|---:|---:|---:|",
        ]
        for client in ("wrk", "python"):
            for concurrency in results["api"].get(client, {}):
                ours = results["api"][client][concurrency]
                theirs = results["mlflow"][client][concurrency]
                lines.append(
                    f"| {client} | {concurrency} | {ours['req_s'] / max(theirs['req_s'], 1):.1f}x "
                    f"| {theirs['p95_ms'] / ours['p95_ms']:.1f}x |"
                )
    sizes = results.get("sizes_mb", {})
    if sizes:
        lines += ["", "| environment | MB |", "|---|---:|"]
        lines += [f"| {name} | {size} |" for name, size in sizes.items()]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--project", type=Path, help="a generated project whose pipeline ran")
    source.add_argument("--generate", action="store_true", help="copy a project and run it")
    parser.add_argument("--level", type=int, default=3, help="level to generate (3)")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per level (10)")
    parser.add_argument("--runs", type=int, default=3, help="cold starts to time (median)")
    parser.add_argument("--skip-mlflow", action="store_true", help="measure the API only")
    parser.add_argument("--skip-sizes", action="store_true", help="do not build size venvs")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="mlops-ladder-bench-serving-") as tmp:
        workdir = Path(tmp)
        project = generate(args.level, workdir) if args.generate else args.project.resolve()
        package = package_of(project)
        metadata = ensure_model_folder(project, package)
        examples = json.loads((project / "models/serving/examples.json").read_text())["rows"]
        results: dict = {
            "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python "
            f"{platform.python_version()}",
            "load_before": round(os.getloadavg()[0], 2),
            "duration_s": args.duration,
            "fast_path": metadata["fast_path"].get("used"),
        }
        # The venv's own entry point: `uv run` would add its start-up to the cold start.
        entry = str(project / ".venv" / "bin" / package)
        results["api"] = measure_server(
            "api", lambda port: [entry, "serve", "--port", str(port)], "/ready", "/predict",
            examples, project, package, args, workdir,
        )  # fmt: skip
        if not args.skip_mlflow:
            venv = mlflow_venv(project, workdir)
            model_uri = registered_model(project, package)

            def mlflow_command(port: int) -> list[str]:
                return [
                    str(venv / "bin" / "mlflow"), "models", "serve", "-m", model_uri,
                    "--env-manager", "local", "-h", "127.0.0.1", "-p", str(port),
                ]  # fmt: skip

            env = {
                "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}",
                "MLFLOW_TRACKING_URI": f"sqlite:///{project / 'mlflow.db'}",
                "MLFLOW_DISABLE_TELEMETRY": "true",
            }
            bodies = [{"dataframe_records": [row]} for row in examples]
            results["mlflow"] = measure_server(
                "mlflow", mlflow_command, "/ping", "/invocations", bodies,
                project, package, args, workdir, env,
            )  # fmt: skip
            results.setdefault("sizes_mb", {})["mlflow venv (full mlflow + model libraries)"] = (
                directory_mb(venv)
            )
        if not args.skip_sizes:
            results.setdefault("sizes_mb", {})["runtime venv (project + serving group)"] = (
                runtime_set_mb(project, workdir)
            )
        results["load_after"] = round(os.getloadavg()[0], 2)

    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
