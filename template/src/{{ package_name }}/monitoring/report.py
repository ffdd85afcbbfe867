"""Command `monitoring-report`; the one reader of the log's window and the one HTML renderer.

    uv run <package> monitoring-report                  # reports/monitoring.html, last 7 days
    uv run <package> monitoring-report --days 1 --output today.html

The page holds what the Grafana dashboard ("Model API", monitoring/grafana)
cannot show offline: the canvas metric on the latest feedback against its
goal and the model's test score (`performance`), and each feature of the
window against the reference profile (`drift`). Traffic, latency and the
live metric over time are the dashboard's. The window is the last
`report.days` days back from the newest record, not from now: a log copied
from production reports what it did there. Plots are PNG data URIs: the
page opens offline and can be kept as a CI artifact.
"""

from __future__ import annotations

import argparse
import base64
import html
import io
import sqlite3
import time
import warnings
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core import files
from ..core.errors import PipelineError
from .records import ANSWERED, loads
from .settings import MONITORING_SETTINGS, MonitoringSettings, load_monitoring_settings

if TYPE_CHECKING:
    from matplotlib.figure import Figure

PREDICTION_COLUMNS = (
    "request_id", "row", "time", "model_version", "status",
    "latency_ms", "input", "prediction", "probability", "refused_rule",
)  # fmt: skip
LOG_HINT = (
    "the model API writes it at level 4: start it (`uv run poe serve`) and send it traffic "
    "(e.g. `uv run poe simulate`), or pass --log"
)
DASHBOARD = (
    'the Grafana dashboard "Model API" (monitoring/grafana; http://127.0.0.1:3000 with '
    "`docker compose -f compose.yaml -f compose.monitoring.yaml up`)"
)
CONTRACT_REFUSED = 422  # the skew: rows the data contract refused (400, 413, 415 are not read)
LABEL_CHARS = 20
STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}"
    "table{border-collapse:collapse;margin:.5rem 0 1rem}td,th{border:1px solid #ccc;"
    "padding:.2rem .5rem;text-align:left}.drifted,.missed{color:#b42318;font-weight:bold}"
    ".ok,.met{color:#1a7f37}img{max-width:100%}"
)


# --- The log's window ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Window:
    """The rows of the log a check or the report reads."""

    path: Path
    rows: int  # every logged row of the window, answered or refused
    inputs: list[dict[str, Any]]  # the answered rows, as sent
    refused_rules: list[str]  # one per refused row (status 422)
    first: str | None
    last: str | None

    def by_rule(self) -> dict[str, int]:
        """Refused rows per rule, the most frequent first."""
        counts = Counter(self.refused_rules)
        return dict(sorted(counts.items(), key=lambda item: -item[1]))


def open_log(path: Path) -> sqlite3.Connection:
    """The log opened read-only: readers never create, lock or change it."""
    if not path.is_file():
        raise PipelineError(f"{path} is missing: {LOG_HINT}.")
    connection = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        found = {str(row[1]) for row in connection.execute("PRAGMA table_info(predictions)")}
    except sqlite3.DatabaseError as error:
        connection.close()
        raise PipelineError(f"{path} is not a prediction log (SQLite says: {error}).") from None
    missing = [name for name in PREDICTION_COLUMNS if name not in found]
    if missing:
        connection.close()
        what = "no `predictions` table" if not found else f"no column {', '.join(missing)}"
        raise PipelineError(
            f"{path} is not a prediction log: it has {what}; point --log (or monitoring.yaml "
            "prediction_log.path) at the API's log."
        )
    return connection


def parse_since(text: str) -> str:
    """An ISO 8601 time (UTC when no offset is given) in the log's format, to compare as text."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise PipelineError(
            f"--since {text!r} is not an ISO 8601 time (e.g. 2025-06-01 or 2025-06-01T12:00)."
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")


def decode_inputs(texts: list[str]) -> list[dict[str, Any]]:
    """The logged inputs that are JSON objects: decoded in one call when all are (a call per row
    is twice as slow at a million rows), else row by row without the others."""
    try:
        decoded = loads("[" + ",".join(texts) + "]")
    except ValueError:
        decoded = []
        for text in texts:
            try:
                decoded.append(loads(text))
            except ValueError:
                continue
    return [row for row in decoded if isinstance(row, dict)]


def read_window(path: Path, last: int | None, since: str | None, days: int | None = None) -> Window:
    """The last `last` rows written (all when None), logged at or after `since`, or within
    `days` days back from the newest record (when given)."""
    connection = open_log(path)
    try:
        if days is not None:
            newest = connection.execute("SELECT MAX(time) FROM predictions").fetchone()[0]
            if newest is None:
                raise PipelineError(f"{path} holds no prediction yet: {LOG_HINT}.")
            try:
                since = parse_since(str(datetime.fromisoformat(newest) - timedelta(days=days)))
            except (TypeError, ValueError):
                shown = f"a `time` is not an ISO 8601 time ({newest!r})"
                raise PipelineError(f"{path}: {shown}.") from None
        sql, arguments = "SELECT status, input, refused_rule, time FROM predictions", list[Any]()
        if since is not None:
            sql, arguments = f"{sql} WHERE time >= ?", [since]
        sql += " ORDER BY rowid DESC"  # newest first, in write order: cheaper than by time
        if last is not None:
            sql, arguments = f"{sql} LIMIT ?", [*arguments, last]
        rows = connection.execute(sql, arguments).fetchall()
    except sqlite3.DatabaseError as error:
        raise PipelineError(f"{path} cannot be read (SQLite says: {error}).") from None
    finally:
        connection.close()
    texts = [text for status, text, _, _ in rows if status == ANSWERED and text is not None]
    refused = [rule for status, _, rule, _ in rows if status == CONTRACT_REFUSED]
    refused = [rule or "no rule recorded" for rule in refused]
    times = [str(moment) for *_, moment in rows if moment is not None]
    first, last_time = (min(times), max(times)) if times else (None, None)
    return Window(path, len(rows), decode_inputs(texts), refused, first, last_time)


# --- The renderer: HTML pages and their plots ---------------------------------------------------


def escape(value: object) -> str:
    """Any value as HTML text: rules, versions and categories come from callers."""
    if isinstance(value, float):
        return f"{value:.4g}"
    return html.escape(str(value), quote=True)


def table(headers: list[str], rows: list[list[Any]], classes: list[str] | None = None) -> str:
    """An HTML table; `classes`, one per row, marks its second cell (ok, drifted, met...)."""
    head = "".join(f"<th>{escape(name)}</th>" for name in headers)
    lines = []
    for index, row in enumerate(rows):
        kind = f" class='{classes[index]}'" if classes else ""
        cells = [f"<td{kind if n == 1 else ''}>{escape(cell)}</td>" for n, cell in enumerate(row)]
        lines.append(f"<tr>{''.join(cells)}</tr>")
    return f"<table><tr>{head}</tr>{''.join(lines)}</table>"


def page(title: str, sections: list[str]) -> str:
    """One self-contained page: its style and images inside it."""
    return (
        f"<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'><title>{escape(title)}"
        f"</title><style>{STYLE}</style></head><body>\n<h1>{escape(title)}</h1>\n"
        + "\n".join(sections)
        + "\n</body></html>\n"
    )


def tick_label(value: Any) -> str:
    """A category as an axis shows it: one line of at most LABEL_CHARS characters (callers'
    texts may be long or hold line breaks, which would squeeze the plot to nothing)."""
    text = " ".join(str(value).split())
    return text if len(text) <= LABEL_CHARS else text[: LABEL_CHARS - 1] + "…"


@contextmanager
def plotting() -> Iterator[None]:
    """matplotlib's settings for the pages: text drawn as given (a `$` starts no maths), and
    no warning for a character its font lacks (categories are what callers sent)."""
    from matplotlib import rc_context

    style: dict[Any, Any] = {"text.parse_math": False, "font.size": 9}
    with rc_context(style), warnings.catch_warnings():
        warnings.filterwarnings("ignore", r"Glyph .* missing from font", UserWarning)
        yield


def new_figure() -> Figure:
    """A figure of its own, off pyplot: no global state, no GUI backend, none left open."""
    from matplotlib.figure import Figure

    return Figure(figsize=(6, 2.8), dpi=90)


def image(figure: Figure, alt: str) -> str:
    """The figure as an <img> whose PNG the page carries (a data URI)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", bbox_inches="tight")
    encoded = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f"<img alt='{escape(alt)}' src='data:image/png;base64,{encoded}'>"


# --- The monitoring report ----------------------------------------------------------------------


def window_section(window: Window, days: int) -> str:
    answered, refused = len(window.inputs), len(window.refused_rules)
    rows = [
        ["rows", f"{window.rows:,}"],
        ["answered", f"{answered:,}"],
        ["refused by the data contract", f"{refused:,}"],
        ["time span (UTC)", f"{window.first} to {window.last}"],
    ]
    by_rule = [list(item) for item in window.by_rule().items()]
    return (
        f"<p>{escape(window.path)}: the last {days} day(s) back from its newest record. "
        f"Traffic, latency and the live metric over time: {escape(DASHBOARD)}.</p>"
        + table(["", "value"], rows)
        + (table(["refused rule", "rows"], by_rule) if by_rule else "")
    )


def performance_section(log: Path, settings_path: Path) -> str:
    from . import performance

    heading = "<h2>Success metric on the latest feedback</h2>"
    try:
        report = performance.evaluate(log=log, settings_path=settings_path, json_path=None)
    except PipelineError as error:
        return f"{heading}<p>Not judged: {escape(error)}</p>"
    state = "missed" if report["tripped"] else "met"
    return f"{heading}<p class='{state}'>{escape(performance.verdict_line(report))}</p>"


def drift_section(window: Window, monitoring: MonitoringSettings) -> str:
    from . import drift

    try:
        reference_file = drift.reference_path()
        profile = drift.load_reference(reference_file)
        report, current = drift.judge(window, profile, reference_file, monitoring, window=1)
    except PipelineError as error:
        return f"<h2>Features against the reference profile</h2><p>Not judged: {escape(error)}</p>"
    answered, minimum = len(window.inputs), monitoring.drift.min_rows
    few = (
        f"Only {answered:,} answered rows, fewer than drift.min_rows ({minimum:,}): the plots "
        "show the window, but its verdicts are not calibrated (`drift` refuses to judge it)."
    )
    return drift.section(report, profile, current, few if answered < minimum else "")


def run(
    output: Path | None = None,
    days: int | None = None,
    log: Path | None = None,
    settings_path: Path = MONITORING_SETTINGS,
) -> Path:
    started = time.perf_counter()
    settings = load_monitoring_settings(settings_path)
    output = output or settings.report.path
    days = settings.report.days if days is None else days
    if days < 1:
        raise PipelineError(f"--days must be at least 1 (got {days}).")
    log = log or settings.prediction_log.path
    window = read_window(log, None, None, days=days)
    sections = [
        window_section(window, days),
        performance_section(log, settings_path),
        drift_section(window, settings),
    ]
    files.write_text(output, page(f"Monitoring report: {window.last}", sections))
    shown = f"{window.rows:,} row" + ("" if window.rows == 1 else "s")
    seconds = time.perf_counter() - started
    print(f"monitoring-report: wrote {output} ({shown}, {seconds:.2f} s)")
    return output


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--output", type=Path, help="the HTML file (default: report.path)")
    parser.add_argument("--days", type=int, help="days back from the newest record (report.days)")
    parser.add_argument("--log", type=Path, help="the SQLite log (prediction_log.path)")
