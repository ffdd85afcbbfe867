"""Command `forget-request`: delete every record of one request from the prediction log.

    uv run <package> forget-request <request id> [--log logs/predictions.db]

The id is the answer's `X-Request-ID`. With the stdout log the records are in
the platform's log store: delete them there; a request answered within
`flush_seconds` may still be in a server's buffer: run it again a second later.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from ..core.errors import PipelineError
from .settings import LogSettings, load_monitoring_settings
from .sinks import Sink, SinkUnavailable, SqliteSink, open_sink

REQUEST_ID = re.compile(r"[0-9a-f]{32}")


def open_log(command: str, log: Path | None) -> tuple[Sink, str]:
    """The log a command works on (and how to name it): --log, else monitoring.yaml's sink."""
    settings: LogSettings = load_monitoring_settings().prediction_log
    if log is None and settings.chosen_sink == "stdout":
        raise PipelineError(
            f"{command}: the prediction log goes to stdout here (prediction_log.sink): its "
            "records are in the platform's log store; pass --log for a SQLite file."
        )
    if log is None and settings.chosen_sink != "sqlite":
        return open_sink(settings), f"the {settings.sink} sink"
    path = log or settings.path
    if not path.is_file():
        raise PipelineError(
            f"{command}: {path} is missing: the API writes it (prediction_log.path in "
            "monitoring.yaml, or PREDICTION_LOG_PATH); pass --log to name another file."
        )
    return SqliteSink(path), str(path)


def request_id_of(text: str) -> str:
    request_id = text.strip().lower()
    if not REQUEST_ID.fullmatch(request_id):
        raise PipelineError(
            f"forget-request: {text!r} is not a request id (32 hexadecimal characters, as in "
            "the X-Request-ID header of the answer)."
        )
    return request_id


def run(request_id: str, log: Path | None = None) -> int:
    wanted = request_id_of(request_id)
    sink, name = open_log("forget-request", log)
    try:
        deleted = sink.delete(wanted)
    except SinkUnavailable as error:
        raise PipelineError(f"forget-request: cannot delete from {error}") from None
    finally:
        sink.close()
    if deleted:
        print(f"forget-request: deleted {deleted} record(s) of request {wanted} from {name}")
    else:
        print(f"forget-request: no record of request {wanted} in {name}: nothing to delete")
    return deleted


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("request_id", help="the X-Request-ID of the answer")
    parser.add_argument(
        "--log", type=Path, help="the SQLite log (default: prediction_log.path in monitoring.yaml)"
    )
