"""The benches' load generator: POST JSON bodies over keep-alive connections; print JSON.

    python bench/loadgen.py URL BODIES_JSON SECONDS CONCURRENCY [CONCURRENCY ...]

For each concurrency (after a short warm-up at the highest), that many
clients send the bodies in turn to URL for SECONDS; one JSON list of levels
(requests, errors, req/s, p50/p95/p99 ms) is printed. asyncio over raw
HTTP/1.1, standard library only (uvloop when installed): it costs far less
CPU per request than an HTTP library, which matters when it shares the
machine with the server. Run it with the project's Python (`uv run python`)
or any other: it imports nothing of the project. Generated projects load-test
with tests/serving/test_load.py (httpx2) instead.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
import urllib.parse

WARM_UP_SECONDS = 1.0


def encoded_requests(url: str, bodies: list) -> list[bytes]:
    parts = urllib.parse.urlsplit(url)
    head = f"POST {parts.path or '/'} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
    head += "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n"
    encoded = [json.dumps(body).encode() for body in bodies]
    return [head.format(len(data)).encode() + data for data in encoded]


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """One HTTP/1.1 response: its status, and whether the connection stays open."""
    status_line, *lines = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip().lower()
    if "content-length" in headers:
        await reader.readexactly(int(headers["content-length"]))
    elif headers.get("transfer-encoding") == "chunked":
        while size := int((await reader.readline()).split(b";")[0], 16):
            await reader.readexactly(size + 2)  # the chunk and its CRLF
        await reader.readexactly(2)
    return int(status_line.split()[1]), headers.get("connection") != "close"


async def client(url: str, payloads: list[bytes], first: int, deadline: float, seen: dict) -> None:
    parts = urllib.parse.urlsplit(url)
    connection, number = None, first
    while time.perf_counter() < deadline:
        try:
            if connection is None:
                connection = await asyncio.open_connection(parts.hostname, parts.port or 80)
            reader, writer = connection
            start = time.perf_counter()
            writer.write(payloads[number % len(payloads)])
            number += 1
            status, keep_open = await read_response(reader)
            seen["latencies"].append(time.perf_counter() - start)
            seen["errors"] += status != 200
            if not keep_open:
                writer.close()
                connection = None
        except (OSError, asyncio.IncompleteReadError, ValueError):
            seen["errors"] += 1  # a reset or garbled answer: count it, reconnect
            connection = None
            await asyncio.sleep(0.01)
    if connection is not None:
        connection[1].close()


async def level(url: str, payloads: list[bytes], concurrency: int, seconds: float) -> dict:
    seen: dict = {"latencies": [], "errors": 0}
    start = time.perf_counter()
    await asyncio.gather(
        *(client(url, payloads, 7 * i, start + seconds, seen) for i in range(concurrency))
    )
    elapsed = time.perf_counter() - start
    latencies = sorted(seen["latencies"]) or [float("nan")]

    def percentile(share: float) -> float:  # nearest rank
        index = min(len(latencies) - 1, max(0, round(share * len(latencies)) - 1))
        return round(latencies[index] * 1000, 3)

    return {
        "concurrency": concurrency,
        "requests": len(seen["latencies"]),
        "errors": seen["errors"],
        "req_s": round(len(seen["latencies"]) / elapsed),
        **{f"p{int(share * 100)}_ms": percentile(share) for share in (0.5, 0.95, 0.99)},
    }


def main() -> None:
    url, bodies, seconds, *concurrencies = sys.argv[1:]
    payloads = encoded_requests(url, json.loads(bodies))
    try:
        import uvloop

        runner = asyncio.Runner(loop_factory=uvloop.new_event_loop)
    except ImportError:
        runner = asyncio.Runner()
    with runner:
        levels = [int(c) for c in concurrencies]
        runner.run(level(url, payloads, max(levels), min(WARM_UP_SECONDS, float(seconds) / 2)))
        print(json.dumps([runner.run(level(url, payloads, c, float(seconds))) for c in levels]))


if __name__ == "__main__":
    main()
