"""Command `load`: a load test in plain Python, judged against the canvas latency budget.

    uv run <package> load --start                       # a local server, started and stopped
    uv run <package> load --url http://host:8000 --concurrency 32 --duration 20

Sends POST /predict (one row a request by default, rows taken in turn from
the test split or the model folder's examples) over keep-alive connections,
first from 1 client, then from --concurrency clients, each for --duration
seconds after a short warm-up. Prints p50/p95/p99 latency and throughput per
level, and fails when a request fails or when p95 exceeds the latency budget
(--budget-ms, else `latency_budget_ms` of the model's canvas, from /version).

The client is asyncio over raw HTTP/1.1: it costs far less CPU per request
than an HTTP library, which matters when it shares the machine with the
server. For figures to publish, run a dedicated tool (wrk) from another host.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import ssl
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..core import files, paths
from ..core.errors import PipelineError
from .client import LocalServer, add_target_arguments, join, parse_url, request, wait_ready
from .settings import load_serving_settings

WARM_UP_SECONDS = 1.0
MAX_PAYLOADS = 200


@dataclass(frozen=True)
class Level:
    concurrency: int
    requests: int
    errors: int
    seconds: float
    p50_ms: float
    p95_ms: float
    p99_ms: float

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def percentile(sorted_values: list[float], fraction: float) -> float:
    """The nearest-rank percentile of an ascending list."""
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(fraction * len(sorted_values)) - 1))
    return sorted_values[index]


def http_requests(
    url: str, bodies: list[Any], token: str | None, route: str = "/predict"
) -> list[bytes]:
    """Ready-to-send POST requests to url + route, one per body."""
    parts = parse_url(join(url, route))
    host = parts.netloc
    path = parts.path or "/"
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    encoded = []
    for body in bodies:
        payload = json.dumps(body).encode()
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(payload)}\r\n{auth}\r\n"
        )
        encoded.append(head.encode("latin-1") + payload)
    return encoded


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """Read one HTTP/1.1 response; return its status and whether the connection stays open."""
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
    status_line, *lines = head.split("\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip().lower()
    if "content-length" in headers:
        await reader.readexactly(int(headers["content-length"]))
    elif headers.get("transfer-encoding") == "chunked":
        while True:
            size = int((await reader.readline()).split(b";")[0], 16)
            await reader.readexactly(size + 2)  # the chunk and its CRLF
            if size == 0:
                break
    return int(status_line.split()[1]), headers.get("connection") != "close"


class Client:
    """One keep-alive connection sending requests in turn until a deadline."""

    def __init__(self, url: str, payloads: list[bytes], offset: int) -> None:
        parts = parse_url(url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.tls = ssl.create_default_context() if parts.scheme == "https" else None
        self.payloads = payloads
        self.next = offset
        self.latencies: list[float] = []
        self.errors = 0

    async def run(self, deadline: float) -> None:
        connection = None
        while time.perf_counter() < deadline:
            try:
                if connection is None:
                    connection = await asyncio.open_connection(self.host, self.port, ssl=self.tls)
                reader, writer = connection
                payload = self.payloads[self.next % len(self.payloads)]
                self.next += 1
                start = time.perf_counter()
                writer.write(payload)
                status, keep_open = await read_response(reader)
                self.latencies.append(time.perf_counter() - start)
                if status != 200:
                    self.errors += 1
                if not keep_open:
                    writer.close()
                    connection = None
            except (OSError, asyncio.IncompleteReadError, ValueError):
                self.errors += 1  # a reset or garbled answer: count it, reconnect
                connection = None
                await asyncio.sleep(0.01)
        if connection is not None:
            connection[1].close()


async def _level(url: str, payloads: list[bytes], concurrency: int, seconds: float) -> Level:
    clients = [Client(url, payloads, offset=i * 7) for i in range(concurrency)]
    start = time.perf_counter()
    await asyncio.gather(*(client.run(start + seconds) for client in clients))
    elapsed = time.perf_counter() - start
    latencies = sorted(value for client in clients for value in client.latencies)
    return Level(
        concurrency=concurrency,
        requests=len(latencies),
        errors=sum(client.errors for client in clients),
        seconds=round(elapsed, 3),
        p50_ms=round(percentile(latencies, 0.50) * 1000, 3),
        p95_ms=round(percentile(latencies, 0.95) * 1000, 3),
        p99_ms=round(percentile(latencies, 0.99) * 1000, 3),
    )


def _runner() -> asyncio.Runner:
    """uvloop when installed (it comes with uvicorn[standard]): less client overhead."""
    try:
        import uvloop
    except ImportError:
        return asyncio.Runner()
    return asyncio.Runner(loop_factory=uvloop.new_event_loop)


def measure(
    url: str, payloads: list[bytes], concurrencies: list[int], seconds: float
) -> list[Level]:
    with _runner() as runner:
        warm_up = min(WARM_UP_SECONDS, seconds / 2)
        runner.run(_level(url, payloads, max(concurrencies), warm_up))
        return [runner.run(_level(url, payloads, c, seconds)) for c in concurrencies]


def table(levels: list[Level]) -> str:
    lines = [
        "| concurrency | requests | errors | req/s | p50 ms | p95 ms | p99 ms |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for level in levels:
        lines.append(
            f"| {level.concurrency} | {level.requests} | {level.errors} | "
            f"{level.per_second:.0f} | {level.p50_ms:.2f} | {level.p95_ms:.2f} | "
            f"{level.p99_ms:.2f} |"
        )
    return "\n".join(lines)


def request_bodies(model_dir: Path, data: Path, batch_rows: int) -> list[Any]:
    """Bodies of rows taken in turn from --data, else from the model folder's examples."""
    from .model_folder import open_model_folder
    from .smoke import data_rows

    folder = open_model_folder(model_dir)
    number_limit = load_serving_settings().number_limit
    rows = data_rows(data, folder.features, MAX_PAYLOADS * batch_rows, number_limit)
    rows = rows or folder.examples["rows"]
    if not rows:
        raise PipelineError(f"no rows to send: {data} is missing and {model_dir} has no examples.")
    if batch_rows == 1:
        return rows[:MAX_PAYLOADS]
    batches = [rows[i : i + batch_rows] for i in range(0, len(rows), batch_rows)]
    return [{"rows": batch} for batch in batches if len(batch) == batch_rows] or [
        {"rows": (rows * batch_rows)[:batch_rows]}
    ]


def _budget(url: str, given: float | None, token: str | None) -> float | None:
    if given is not None:
        return given
    answer = request(join(url, "/version"), token=token)
    budget = answer.body.get("latency_budget_ms") if isinstance(answer.body, dict) else None
    return float(budget) if isinstance(budget, int | float) else None


def judge(levels: list[Level], budget_ms: float | None) -> None:
    """Fail on any failed request, or a p95 over the budget."""
    for level in levels:
        if level.errors:
            raise PipelineError(
                f"load: {level.errors} of {level.requests} requests failed at concurrency "
                f"{level.concurrency}: check the server's log."
            )
        if level.requests == 0:
            raise PipelineError(f"load: no request completed at concurrency {level.concurrency}.")
        if budget_ms is not None and level.p95_ms > budget_ms:
            raise PipelineError(
                f"load: p95 latency {level.p95_ms:.1f} ms at concurrency {level.concurrency} "
                f"exceeds the latency budget of {budget_ms:g} ms (canvas.yaml "
                "latency_budget_ms): make the model faster, add workers or lower the load."
            )


def run(
    url: str | None = None,
    start: bool = False,
    model_dir: Path | None = None,
    data: Path = paths.TEST_DATA,
    concurrency: int = 16,
    duration: float = 5.0,
    batch_rows: int = 1,
    budget_ms: float | None = None,
    workers: int = 1,
    report: Path | None = None,
    timeout: float = 30.0,
) -> list[Level]:
    if bool(url) == start:
        raise PipelineError("load needs either --url URL (a running API) or --start.")
    if concurrency < 1 or duration <= 0 or batch_rows < 1 or workers < 1:
        raise PipelineError(
            "--concurrency, --batch-rows and --workers must be at least 1, --duration above 0."
        )
    settings = load_serving_settings()
    model_dir = model_dir or settings.model_dir
    bodies = request_bodies(model_dir, data, batch_rows)
    concurrencies = sorted({1, concurrency})
    if start:
        with LocalServer(model_dir, workers=workers, timeout=timeout) as server:
            print(f"load: local server ({workers} worker(s)) ready in {server.start_seconds:.2f} s")
            levels, budget = _measure(server.url, bodies, concurrencies, duration, budget_ms)
    else:
        assert url is not None
        wait_ready(url, timeout)
        levels, budget = _measure(url, bodies, concurrencies, duration, budget_ms)
    print(table(levels))
    if report is not None:
        result = {
            "budget_ms": budget,
            "batch_rows": batch_rows,
            "levels": [asdict(x) for x in levels],
        }
        files.write_json(report, result)
    judge(levels, budget)
    shown = f"within the {budget:g} ms budget" if budget is not None else "no latency budget set"
    print(f"load: p95 {max(level.p95_ms for level in levels):.2f} ms at worst, {shown}")
    return levels


def _measure(
    url: str, bodies: list[Any], concurrencies: list[int], seconds: float, budget: float | None
) -> tuple[list[Level], float | None]:
    token = load_serving_settings().token
    budget = _budget(url, budget, token)
    return measure(url, http_requests(url, bodies, token), concurrencies, seconds), budget


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_target_arguments(parser)
    parser.add_argument(
        "--concurrency", type=int, default=16, help="clients at the second level (16)"
    )
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per level (5)")
    parser.add_argument("--batch-rows", type=int, default=1, help="rows a request (1)")
    parser.add_argument("--budget-ms", type=float, help="p95 limit (default: the canvas budget)")
    parser.add_argument("--workers", type=int, default=1, help="server processes with --start")
    parser.add_argument("--report", type=Path, help="also write the figures as JSON there")
