"""Talking to a model API: JSON requests (httpx2), and a local server for `--start`.

httpx2 comes with the release group: the checks (`smoke`, deploy) run where
the project's tools are installed, never in the API image (serving group).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core import paths
from ..core.errors import PipelineError
from .app import MODEL_LOADED

PACKAGE = __name__.split(".")[0]
READY_TIMEOUT = 60.0
# The longest wait for one answer. A healthy API answers in milliseconds; these
# bounds are for a busy CI runner, where a first /metrics (imports) or a shutdown
# (the log flushed) takes seconds: only a stuck server makes a check wait them out.
REQUEST_TIMEOUT = 30.0
# One /ready poll while a server starts (no answer yet: polled again, up to `timeout`).
READY_POLL_TIMEOUT = 10.0
# How long a local server has to stop after SIGTERM (its log written) before it is killed.
STOP_TIMEOUT = 30.0
# Level 4's prediction log. A server started for a check writes its own, in a
# temporary folder: synthetic traffic never reaches the project's log.
PREDICTION_LOG_VARIABLE = "PREDICTION_LOG_PATH"


@dataclass(frozen=True)
class Answer:
    status: int
    body: Any  # the decoded JSON, or the raw text when it is not JSON
    seconds: float


def join(base_url: str, path: str) -> str:
    """base_url + path, keeping a base path such as https://host/models/churn."""
    return base_url.rstrip("/") + path


def request(
    url: str,
    method: str = "GET",
    body: Any = None,
    token: str | None = None,
    timeout: float = REQUEST_TIMEOUT,
    extra_headers: Mapping[str, str] | None = None,
) -> Answer:
    """One HTTP request; any status is an Answer, an unreachable server a PipelineError.

    `extra_headers`: what a platform in front of the API needs, e.g. Cloud
    Run's `X-Serverless-Authorization` identity token for a private service.
    """
    try:
        import httpx2
    except ImportError:
        raise PipelineError("httpx2 is not installed: run `uv sync` (release group).") from None

    headers = {"Accept": "application/json", **(extra_headers or {})}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    try:
        response = httpx2.request(method, url, json=body, headers=headers, timeout=timeout)
    except httpx2.HTTPError as error:
        raise PipelineError(f"cannot reach {url}: {error or type(error).__name__}") from None
    try:
        content = response.json()
    except ValueError:
        content = response.text
    return Answer(response.status_code, content, response.elapsed.total_seconds())


def wait_ready(
    base_url: str,
    timeout: float,
    process: subprocess.Popen | None = None,
    extra_headers: Mapping[str, str] | None = None,
) -> float:
    """Poll /ready until 200; return the seconds waited.

    No answer or 502/503/504 mean "still starting": wait, up to `timeout`.
    Fail at once if the local server stops, the model fails to load, or /ready
    answers anything else (a broken server will not become ready).
    """
    start, last = time.perf_counter(), "no answer"
    while True:
        if process is not None and process.poll() is not None:
            raise PipelineError(f"the local server stopped with code {process.returncode}")
        try:
            answer = request(
                join(base_url, "/ready"), timeout=READY_POLL_TIMEOUT, extra_headers=extra_headers
            )
        except PipelineError as error:
            last = str(error)  # not listening yet
        else:
            if answer.status == 200:
                return time.perf_counter() - start
            if isinstance(answer.body, dict) and answer.body.get("status") == "failed":
                raise PipelineError(f"the model failed to load: {answer.body.get('detail')}")
            last = f"/ready answered {answer.status}"
            if answer.status not in (502, 503, 504):  # a proxy's 502/504 mean starting too
                raise PipelineError(f"{base_url} is not a ready model API ({last})")
        if time.perf_counter() - start > timeout:
            raise PipelineError(f"{base_url} was not ready after {timeout:g} s ({last})")
        time.sleep(0.05)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


class LocalServer:
    """`<package> serve` in a child process on a free port, stopped on exit.

    At level 4 the server logs its predictions to `prediction_log`, a file of
    its own in a temporary folder removed on exit: checks never write into
    the project's log, which drift, performance and retraining read. A
    PREDICTION_LOG_PATH given in `environment`, or set here, is kept.
    """

    def __init__(
        self,
        model_dir: Path,
        workers: int = 1,
        timeout: float = READY_TIMEOUT,
        environment: dict[str, str] | None = None,
    ) -> None:
        self.model_dir, self.workers, self.timeout = model_dir, workers, timeout
        self.environment = {**os.environ, "PYTHONUNBUFFERED": "1", **(environment or {})}
        given = self.environment.get(PREDICTION_LOG_VARIABLE)
        self.prediction_log = Path(given) if given else None
        self.port, self.url, self.start_seconds = 0, "", 0.0
        self._process: subprocess.Popen | None = None
        self._files = contextlib.ExitStack()  # the output file, the log's folder
        self._log: Any = None

    def __enter__(self) -> LocalServer:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._log = self._files.enter_context(tempfile.TemporaryFile())
        if self.prediction_log is None:
            folder = tempfile.TemporaryDirectory(prefix="model-api-", ignore_cleanup_errors=True)
            self.prediction_log = Path(self._files.enter_context(folder)) / "predictions.db"
            self.environment[PREDICTION_LOG_VARIABLE] = str(self.prediction_log)
        command = [
            sys.executable, "-m", PACKAGE, "serve", "--host", "127.0.0.1",
            "--port", str(self.port), "--model-dir", str(self.model_dir),
            "--workers", str(self.workers),
        ]  # fmt: skip
        started = time.perf_counter()
        self._process = subprocess.Popen(
            command, stdout=self._log, stderr=subprocess.STDOUT, env=self.environment
        )
        try:
            self._wait_for_every_worker(started + self.timeout)
        except PipelineError as error:
            self.stop()
            errors = [line for line in self.output().splitlines() if line.startswith("error: ")]
            self._files.close()  # the server's own `error: ...` line, when it printed one:
            detail = f" ({errors[-1].removeprefix('error: ')})" if errors else ""
            raise PipelineError(f"{error}{detail}") from None
        self.start_seconds = time.perf_counter() - started
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
        self._files.close()

    def _wait_for_every_worker(self, deadline: float) -> None:
        """/ready, then each worker's `model loaded` line: requests reach any of them."""
        assert self._process is not None
        wait_ready(self.url, deadline - time.perf_counter(), self._process)
        while (loaded := self.output().count(MODEL_LOADED)) < self.workers:
            if self._process.poll() is not None:
                code = self._process.returncode
                raise PipelineError(f"the local server stopped with code {code}")
            if time.perf_counter() > deadline:
                raise PipelineError(
                    f"{self.url}: {loaded} of {self.workers} workers had loaded the model "
                    f"after {self.timeout:g} s"
                )
            time.sleep(0.05)

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()

    def output(self) -> str:
        if self._log is None or self._log.closed:
            return ""
        self._log.seek(0)
        return str(self._log.read().decode("utf-8", errors="replace"))


def parse_url(url: str) -> urllib.parse.SplitResult:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise PipelineError(f"--url must be an http:// or https:// address (got {url!r})")
    return parts


def add_target_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of the commands that call an API: which one, with what rows."""
    target = parser.add_mutually_exclusive_group()
    target.add_argument("--url", help="base URL of a running API, e.g. http://127.0.0.1:8000")
    target.add_argument(
        "--start", action="store_true", help="start a local server on a free port, then stop it"
    )
    parser.add_argument(
        "--model-dir", type=Path, help="model folder (default: MODEL_DIR or serving.model_dir)"
    )
    parser.add_argument(
        "--data", type=Path, default=paths.TEST_DATA, help="rows to send (default: test split)"
    )
    parser.add_argument(
        "--timeout", type=float, default=30.0, help="seconds to wait for /ready (30)"
    )
