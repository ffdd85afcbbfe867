"""Fixtures of the orchestration tests: a local HTTP server that records what it is sent,
and a clean environment (no CI or cloud variable leaks into the settings).

The `slow` marker is registered here: the end-to-end run with kfp's local
runner is the only test that carries it (`pytest -m "not slow"` skips it).
"""

from __future__ import annotations

import json
import threading
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from ..package import load

settings_module = load("orchestration.settings")

# CI variables that change the settings' defaults (deploy trigger, commit).
CI_VARIABLES = (
    "GITHUB_REPOSITORY",
    "GITHUB_API_URL",
    "CI_API_V4_URL",
    "CI_PROJECT_ID",
    "CI_DEFAULT_BRANCH",
    "DEFAULT_BRANCH",
    "KFP_TOKEN",
    "GCE_METADATA_HOST",
)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "slow: runs the whole pipeline (minutes)")


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in (
        *settings_module.VARIABLES.values(),
        *settings_module.SECRET_NAMES,
        *CI_VARIABLES,
    ):
        monkeypatch.delenv(variable, raising=False)


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def form(self) -> dict[str, str]:
        return dict(urllib.parse.parse_qsl(self.body.decode()))


@dataclass
class Recorder:
    url: str
    received: list[Received] = field(default_factory=list)
    status: int = 204
    # path -> JSON answered to a GET (a fake metadata server or Secret Manager)
    answers: dict[str, Any] = field(default_factory=dict)


@pytest.fixture
def webhook() -> Iterator[Recorder]:
    """A server on 127.0.0.1 that records every request and answers `status`."""
    recorder = Recorder(url="")

    class Handler(BaseHTTPRequestHandler):
        def _record(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            recorder.received.append(
                Received(self.command, self.path, dict(self.headers.items()), body)
            )

        def do_POST(self) -> None:
            self._record()
            self.send_response(recorder.status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_GET(self) -> None:
            self._record()
            path = self.path.split("?")[0]
            if path not in recorder.answers:
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            payload = json.dumps(recorder.answers[path]).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: Any) -> None:  # keep the test output clean
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    recorder.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield recorder
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
