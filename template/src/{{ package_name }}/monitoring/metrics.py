"""GET /metrics: the API's Prometheus metrics (names in docs/monitoring.md).

INTERFACE STUB (to be implemented): the prediction log and the API middleware
call these methods; the names and labels are the contract of
docs/decisions/0009-level-4-monitoring.md.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

# (prediction, probability of the positive class, true outcome), newest last.
LiveRow = tuple[Any, float | None, Any]


def prepare_multiprocess(workers: int) -> None:
    """Before uvicorn starts its workers: give them one PROMETHEUS_MULTIPROC_DIR, wiped."""


class ApiMetrics:
    def __init__(
        self,
        *,
        model_name: str,
        model_version: str,
        canvas: Any,
        settings: Any,
        live_rows: Callable[[int], list[LiveRow]],
        log_health: Callable[[], dict[str, Any]],
    ) -> None:
        self.live_rows = live_rows
        self.log_health = log_health

    def observe_request(self, handler: str, method: str, status: int, seconds: float) -> None:
        """One HTTP request answered (every endpoint but /metrics itself)."""

    def observe_rows(self, predictions: list[Any], refused: int) -> None:
        """The classes predicted by one /predict request, and its rows refused."""

    def observe_feedback(self) -> None:
        """One feedback recorded."""

    def log_written(self, rows: int) -> None:
        """Rows the prediction log wrote to its sink."""

    def log_dropped(self, rows: int) -> None:
        """Rows the prediction log dropped (its buffer was full)."""

    def set_log_state(self, buffered: int, healthy: bool) -> None:
        """The log's buffered rows and whether its last write succeeded."""

    def render(self) -> tuple[bytes, str]:
        """The scrape body and its content type."""
        return b"", "text/plain; version=0.0.4; charset=utf-8"
