"""Command `prune-log`: delete the records older than `retention_days` (or --days) now.

    uv run <package> prune-log [--days N] [--log logs/predictions.db]

A running API prunes at start and then hourly: this is for a log no server
writes, or a shorter retention at once.
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta
from pathlib import Path

from ..core.commands import positive_int
from ..core.errors import PipelineError
from .forget import open_log
from .settings import load_monitoring_settings
from .sinks import SinkUnavailable


def run(days: int | None = None, log: Path | None = None) -> int:
    kept_days = load_monitoring_settings().prediction_log.retention_days if days is None else days
    if kept_days == 0:
        raise PipelineError(
            "prune-log: prediction_log.retention_days is 0 in monitoring.yaml (keep every "
            "record): pass --days N to delete records older than N days."
        )
    sink, name = open_log("prune-log", log)
    try:
        deleted = sink.prune(datetime.now(UTC) - timedelta(days=kept_days))
    except SinkUnavailable as error:
        raise PipelineError(f"prune-log: cannot prune {error}") from None
    finally:
        sink.close()
    print(f"prune-log: deleted {deleted} record(s) older than {kept_days} days from {name}")
    return deleted


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--days", type=positive_int, help="keep this many days (prediction_log.retention_days)"
    )
    parser.add_argument(
        "--log", type=Path, help="the SQLite log (default: prediction_log.path in monitoring.yaml)"
    )
