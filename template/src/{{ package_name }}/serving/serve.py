"""Command `serve`: run the model API with uvicorn.

    uv run <package> serve [--host H] [--port P] [--workers N] [--model-dir DIR]

Options override deploy.yaml's `serving:` section. The folder and the port
are checked first: a bad folder or a port in use is a one-line error. With
more than one worker each process builds the app again (uvicorn's factory
mode), so the model folder is passed on through MODEL_DIR. Level 4's metrics
are prepared for the workers first (one shared Prometheus folder), and each
worker's lifespan shutdown writes the prediction log's buffered rows.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import socket
from pathlib import Path
from typing import Any

from ..core.commands import positive_int
from ..core.errors import PipelineError
from .settings import MODEL_DIR_VARIABLE, ServingSettings, load_serving_settings

FACTORY = f"{__name__.rpartition('.')[0]}.app:create_app"
WORKER_PING_SECONDS = 30
MONITORING = f"{__name__.split('.')[0]}.monitoring"


def check_port(host: str, port: int) -> None:
    """Fail with a clear message when host:port cannot be listened on."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        if os.name != "nt":  # as uvicorn does; on Windows it would allow a second listener
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            reason = error.strerror or str(error)
            raise PipelineError(
                f"cannot listen on {host}:{port} ({reason}): stop the program using it, "
                "or pass another --port."
            ) from None


def settings_with(
    host: str | None, port: int | None, workers: int | None, model_dir: Path | None
) -> ServingSettings:
    changes = {"host": host, "port": port, "workers": workers, "model_dir": model_dir}
    settings = load_serving_settings()
    settings = settings.model_copy(update={k: v for k, v in changes.items() if v is not None})
    if not 0 < settings.port < 65536:
        raise PipelineError(f"--port must be between 1 and 65535 (got {settings.port}).")
    return settings


def prepare_monitoring(workers: int) -> None:
    """Level 4: before any metric exists, set up the metrics the workers will share."""
    if importlib.util.find_spec(MONITORING) is not None:
        importlib.import_module(f"{MONITORING}.metrics").prepare_multiprocess(workers)


def run(
    host: str | None = None,
    port: int | None = None,
    workers: int | None = None,
    model_dir: Path | None = None,
) -> None:
    settings = settings_with(host, port, workers, model_dir)
    try:
        import uvicorn
    except ImportError:
        raise PipelineError("uvicorn is not installed: run `uv sync` (serving group).") from None
    from .app import create_app

    prepare_monitoring(settings.workers)
    app = create_app(settings.model_dir, settings)  # checks the model folder
    check_port(settings.host, settings.port)
    state = app.state.model
    path = "ONNX fast path" if state.folder.fast else "scikit-learn pipeline"
    print(
        f"serve: {state.folder.metadata['name']} model version {state.folder.version} ({path}) "
        f"on http://{settings.host}:{settings.port} with {settings.workers} worker(s); "
        "API docs at /docs",
        flush=True,
    )
    options: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "access_log": settings.access_log,
        "log_level": "info",
        "timeout_graceful_shutdown": 10,
    }
    if settings.workers == 1:
        uvicorn.run(app, **options)
        return
    os.environ[MODEL_DIR_VARIABLE] = str(settings.model_dir)
    # uvicorn kills a worker that does not answer its ping in time, losing
    # what the worker holds in memory (level 4: buffered log rows): a worker
    # busy on a loaded machine is slow, not hung.
    options["timeout_worker_healthcheck"] = WORKER_PING_SECONDS
    uvicorn.run(FACTORY, factory=True, workers=settings.workers, **options)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", help="address to listen on (deploy.yaml: serving.host)")
    parser.add_argument("--port", type=int, help="port (deploy.yaml: serving.port)")
    parser.add_argument(
        "--workers", type=positive_int, help="processes (deploy.yaml: serving.workers)"
    )
    parser.add_argument(
        "--model-dir", type=Path, help="model folder (default: MODEL_DIR or serving.model_dir)"
    )
