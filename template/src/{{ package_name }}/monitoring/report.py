"""Command `monitoring-report`: the prediction log as one self-contained HTML page.

    uv run <package> monitoring-report                  # reports/monitoring.html, last 7 days
    uv run <package> monitoring-report --days 1 --output today.html

Reads the SQLite prediction log (monitoring.yaml `prediction_log.path`)
read-only, so it can run while the API writes the log. The window is the
last `report.days` days back from the newest record, not from now: a log
copied from production reports what it did there, whenever it is read.

The page holds a summary table; volume (answered, refused) and latency
percentiles over time against the canvas latency budget; the distribution
of the predictions; the canvas success metric on the feedback rows, over
time, against its threshold; and each input feature's distribution against
the training split (data/processed/train.csv, written by the pipeline). The
plots are PNG images inside the page (data URIs): it opens offline, can be
attached to a ticket or kept as a CI artifact, and links to nothing.
"""

from __future__ import annotations

import argparse
import base64
import html
import io
import math
import sqlite3
import time
import warnings
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core import files, paths
from ..core.canvas import Canvas, SuccessMetric, load_canvas
from ..core.errors import PipelineError
from .profile import numbers_of
from .records import loads
from .settings import MetricsSettings, load_monitoring_settings

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

PREDICTION_COLUMNS = (
    "request_id",
    "row",
    "time",
    "model_version",
    "status",
    "latency_ms",
    "input",
    "prediction",
    "probability",
    "refused_rule",
)
FEEDBACK_COLUMNS = ("request_id", "row", "outcome", "time")
# Inputs decoded for the feature plots at most: past it, one row in k (by rowid,
# so spread over the window). Decoding is most of the time and memory of a
# big window, and a histogram of 50,000 rows looks like one of millions.
INPUT_SAMPLE_ROWS = 50_000
LOG_HINT = (
    "the model API writes it at level 4: start it (`uv run poe serve`) and send it traffic "
    "(e.g. `uv run poe simulate`)"
)
# Time bins, smallest first: the first giving at most MAX_BINS bins is used.
BIN_SIZES = (
    "1s", "5s", "15s", "30s", "1min", "5min", "15min", "30min",
    "1h", "3h", "6h", "12h", "1D",
)  # fmt: skip
MAX_BINS = 60
# The live metric is drawn at this many points at most (each is one computation).
METRIC_POINTS = 100
HISTOGRAM_BINS = 30
# Numbers past this are left out of the histograms (and said so): near the float
# range's end (1.8e308), matplotlib cannot lay out an axis.
PLOTTABLE = 1e300
# matplotlib's warning for a character its font cannot draw (it draws a box).
MISSING_GLYPH = r"Glyph .* missing from font"
MAX_CATEGORIES = 15
LABEL_CHARS = 20
ANSWERED, REFUSED, FAILED = "answered", "refused", "failed"
COLORS = {ANSWERED: "#4c72b0", REFUSED: "#dd8452", FAILED: "#c44e52"}
LIVE_COLOR, TRAIN_COLOR = "#4c72b0", "#999999"
# Plot text is drawn as given: a `$` in a category must not start TeX maths.
PLOT_STYLE: dict[Any, Any] = {
    "text.parse_math": False,
    "font.size": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "legend.frameon": False,
}
PAGE_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 60rem;
       color: #222; padding: 0 1rem; }
table { border-collapse: collapse; margin: 0.5rem 0 1rem; }
th, td { border: 1px solid #ccc; padding: 0.2rem 0.6rem; text-align: left; }
td.number { text-align: right; font-variant-numeric: tabular-nums; }
img { max-width: 100%; }
p.note { color: #555; }
p.goal-met { color: #1a7f37; font-weight: bold; }
p.goal-missed { color: #b42318; font-weight: bold; }
"""


@dataclass(frozen=True)
class LogWindow:
    """The records of the report's window, times parsed (UTC)."""

    path: Path
    start: pd.Timestamp
    end: pd.Timestamp
    predictions: pd.DataFrame  # one row per logged row (without its input), with `outcome`
    feedback: pd.DataFrame  # feedback joined to its prediction, oldest feedback first
    inputs: pd.DataFrame  # the logged inputs, one column per field: every row, or a sample
    input_stride: int  # 1: every row's input; k: one row in k


@dataclass(frozen=True)
class FeatureView:
    name: str
    numeric: bool
    live: pd.Series
    train: pd.Series | None


@dataclass
class Page:
    """The page's sections, in order, as HTML fragments."""

    title: str
    sections: list[str] = field(default_factory=list)

    def add(self, heading: str, *parts: str) -> None:
        self.sections.append(f"<h2>{escape(heading)}</h2>\n" + "\n".join(parts))

    def render(self) -> str:
        body = "\n".join(f"<section>\n{section}\n</section>" for section in self.sections)
        return (
            '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f"<title>{escape(self.title)}</title>\n<style>{PAGE_STYLE}</style>\n</head>\n"
            f"<body>\n<h1>{escape(self.title)}</h1>\n{body}\n</body>\n</html>\n"
        )


def escape(value: object) -> str:
    """Any value as HTML text: rules, versions and categories come from callers."""
    return html.escape(str(value), quote=True)


# --- Reading the log ---------------------------------------------------------------------------


def open_log(path: Path) -> sqlite3.Connection:
    """The log opened read-only: the report never creates, locks or changes it."""
    if not path.is_file():
        raise PipelineError(f"{path} is missing: {LOG_HINT}.")
    connection = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        _check_tables(connection, path)
    except BaseException:
        connection.close()
        raise
    return connection


def _table_columns(connection: sqlite3.Connection, table: str) -> set[str]:
    return {str(row[1]) for row in connection.execute(f"PRAGMA table_info({table})")}


def _check_tables(connection: sqlite3.Connection, path: Path) -> None:
    """A prediction log has its `predictions` table (docs/monitoring.md); feedback may be absent."""
    try:
        found = _table_columns(connection, "predictions")
    except sqlite3.DatabaseError as error:
        raise PipelineError(f"{path} is not a prediction log (SQLite says: {error}).") from None
    missing = [name for name in PREDICTION_COLUMNS if name not in found]
    if missing:
        what = "no `predictions` table" if not found else f"no column {', '.join(missing)}"
        raise PipelineError(
            f"{path} is not a prediction log: it has {what}; point --log (or monitoring.yaml "
            "prediction_log.path) at the API's log."
        )


def _has_feedback(connection: sqlite3.Connection) -> bool:
    return set(FEEDBACK_COLUMNS) <= _table_columns(connection, "feedback")


def _quoted(columns: tuple[str, ...], table: str) -> str:
    return ", ".join(f'{table}."{name}"' for name in columns)


def parse_times(values: pd.Series, path: Path) -> pd.Series:
    """ISO 8601 texts as UTC timestamps; a bad one is a PipelineError naming the file."""
    import pandas as pd

    try:
        return pd.to_datetime(values, utc=True, format="ISO8601")
    except (ValueError, TypeError) as error:
        raise PipelineError(f"{path}: a `time` is not an ISO 8601 time ({error}).") from None


def decode_json(text: Any) -> Any:
    """A JSON column's value (its texts encodable: records.loads); text that is not JSON is
    kept as it is."""
    if text is None:
        return None
    try:
        return loads(text)
    except (TypeError, ValueError):
        return text


def read_window(connection: sqlite3.Connection, path: Path, days: int) -> LogWindow:
    """The predictions of the last `days` days back from the newest, and their feedback."""
    import pandas as pd

    newest = connection.execute('SELECT MAX("time") FROM predictions').fetchone()[0]
    if newest is None:
        raise PipelineError(f"{path} holds no prediction yet: {LOG_HINT}.")
    end = parse_times(pd.Series([newest]), path).iloc[0]
    start = end - timedelta(days=days)
    # ISO texts compare as their times: the index-friendly filter, refined once parsed.
    bound = start.strftime("%Y-%m-%dT%H:%M:%S")
    columns = tuple(name for name in PREDICTION_COLUMNS if name != "input")
    rows = connection.execute(
        f'SELECT {_quoted(columns, "p")} FROM predictions p WHERE p."time" >= ?', (bound,)
    ).fetchall()
    predictions = pd.DataFrame.from_records(rows, columns=list(columns))
    predictions["time"] = parse_times(predictions["time"], path)
    predictions = predictions[predictions["time"] >= start].sort_values("time", kind="stable")
    predictions = predictions.reset_index(drop=True)
    if predictions.empty:
        raise PipelineError(f"{path} holds no prediction between {start} and {end}.")
    predictions["outcome"] = row_outcomes(predictions)
    feedback = _read_feedback(connection, path, bound, start)
    inputs, stride = _read_inputs(connection, path, (bound, start), len(predictions))
    return LogWindow(path, start, end, predictions, feedback, inputs, stride)


def _read_inputs(
    connection: sqlite3.Connection, path: Path, since: tuple[str, pd.Timestamp], rows: int
) -> tuple[pd.DataFrame, int]:
    """The inputs of the window's rows, of one row in k past INPUT_SAMPLE_ROWS; and k."""
    import pandas as pd

    bound, start = since
    stride = max(1, math.ceil(rows / INPUT_SAMPLE_ROWS))
    query = 'SELECT "time", "input" FROM predictions WHERE "time" >= ?'
    try:
        found = connection.execute(f"{query} AND rowid % ? = 0", (bound, stride)).fetchall()
    except sqlite3.OperationalError:  # a table WITHOUT ROWID, from a sink of your own
        found, stride = connection.execute(query, (bound,)).fetchall(), 1
    times = parse_times(pd.Series([time for time, _ in found], dtype=object), path)
    kept = [
        decode_json(text) for (_, text), keep in zip(found, times >= start, strict=True) if keep
    ]
    return pd.DataFrame.from_records([row if isinstance(row, dict) else {} for row in kept]), stride


def row_outcomes(predictions: pd.DataFrame) -> pd.Series:
    """answered (a prediction), refused (a contract rule) or failed (neither, e.g. a 503)."""
    import numpy as np
    import pandas as pd

    refused = predictions["refused_rule"].notna()
    answered = predictions["prediction"].notna() & ~refused
    labels = np.where(answered, ANSWERED, np.where(refused, REFUSED, FAILED))
    return pd.Series(labels, index=predictions.index)


def _read_feedback(
    connection: sqlite3.Connection, path: Path, bound: str, start: pd.Timestamp
) -> pd.DataFrame:
    import pandas as pd

    columns = ["time", "outcome", "predicted_at", "prediction", "probability"]
    if not _has_feedback(connection):
        return pd.DataFrame(columns=columns)
    rows = connection.execute(
        'SELECT f."time", f."outcome", p."time", p."prediction", p."probability" '
        'FROM feedback f JOIN predictions p ON p."request_id" = f."request_id" '
        'AND p."row" = f."row" WHERE p."time" >= ? AND p."prediction" IS NOT NULL',
        (bound,),
    ).fetchall()
    feedback = pd.DataFrame.from_records(rows, columns=columns)
    feedback["time"] = parse_times(feedback["time"], path)
    feedback["predicted_at"] = parse_times(feedback["predicted_at"], path)
    feedback = feedback[feedback["predicted_at"] >= start]
    for column in ("outcome", "prediction"):
        feedback[column] = [decode_json(value) for value in feedback[column]]
    return feedback.sort_values("time", kind="stable").reset_index(drop=True)


# --- Figures from the window (no plotting) -----------------------------------------------------


def bin_size(span: pd.Timedelta) -> str:
    """The smallest of BIN_SIZES that cuts the span into at most MAX_BINS bins."""
    import pandas as pd

    for size in BIN_SIZES:
        if span / pd.Timedelta(size) <= MAX_BINS:
            return size
    return BIN_SIZES[-1]


def volume(predictions: pd.DataFrame, size: str) -> pd.DataFrame:
    """Rows a bin, one column per outcome (answered, refused, failed when any)."""
    bins = predictions["time"].dt.floor(size)
    counts = predictions.groupby([bins, "outcome"]).size().unstack(fill_value=0)
    wanted = [ANSWERED, REFUSED] + ([FAILED] if FAILED in counts.columns else [])
    return counts.reindex(columns=wanted, fill_value=0)


def requests_of(predictions: pd.DataFrame) -> pd.DataFrame:
    """One row per HTTP request: a batch logs one record per row, with the request's latency."""
    return predictions.drop_duplicates("request_id")


def latency_percentiles(predictions: pd.DataFrame, size: str) -> pd.DataFrame:
    """p50, p95 and p99 of the request latency (ms), a bin."""
    import numpy as np

    requests = requests_of(predictions)
    latency = numbers_of(requests["latency_ms"])
    table = (
        latency.groupby(requests["time"].dt.floor(size))
        .quantile(np.array([0.5, 0.95, 0.99]))
        .unstack()
    )
    table.columns = ["p50", "p95", "p99"]
    return table


def positive_class(canvas: Canvas | None, seen: list[Any]) -> Any:
    """The class whose probability the API reports: the last in sorted order, as scikit-learn.

    The canvas's allowed target values are used when listed, so a window that
    saw a single class still knows which one is positive.
    """
    values = list(seen)
    if canvas is not None:
        rule = canvas.data_contract.columns.get(canvas.prediction_target)
        if rule is not None and rule.allowed:
            values = list(rule.allowed)
    ordered = sorted({value for value in values if value is not None}, key=_class_order)
    return ordered[-1] if ordered else None


def _class_order(value: Any) -> tuple[bool, Any]:
    return (isinstance(value, str), value if isinstance(value, str | int | float) else str(value))


def metric_value(name: str, outcome: Any, predicted: Any, probability: Any) -> float | None:
    """The canvas metric on boolean outcomes and predictions and the positive probability.

    The definitions of scikit-learn (ROC AUC with tied scores averaged; 0 for a
    ratio with nothing to divide), in numpy: the metric is computed at up to
    METRIC_POINTS places, and scikit-learn's checks cost a millisecond a call.
    None when it is undefined on these rows (ROC AUC needs both classes).
    """
    import numpy as np

    actual = np.asarray(outcome, dtype=bool)
    guessed = np.asarray(predicted, dtype=bool)
    if name == "roc_auc":
        return _roc_auc(actual, np.asarray(probability, dtype=float))
    if name == "accuracy":
        return float((actual == guessed).mean()) if len(actual) else None
    hits = float((actual & guessed).sum())
    precision = hits / guessed.sum() if guessed.any() else 0.0
    recall = hits / actual.sum() if actual.any() else 0.0
    if name == "precision":
        return float(precision)
    if name == "recall":
        return float(recall)
    both = precision + recall
    return float(2 * precision * recall / both) if both else 0.0


def _roc_auc(actual: Any, scores: Any) -> float | None:
    """The chance a positive row scores above a negative one (ties count half)."""
    import pandas as pd

    positives = int(actual.sum())
    negatives = len(actual) - positives
    if not positives or not negatives or pd.isna(scores).any():
        return None
    ranks = pd.Series(scores).rank(method="average").to_numpy()
    wins = ranks[actual].sum() - positives * (positives + 1) / 2
    return float(wins / (positives * negatives))


@dataclass(frozen=True)
class LiveMetric:
    goal: SuccessMetric
    rows: int  # feedback rows joined to an answered prediction in the window
    window: int
    series: pd.Series  # the metric over the last `window` rows, indexed by feedback time
    last: float | None


def live_metric(
    feedback: pd.DataFrame, goal: SuccessMetric, positive: Any, settings: MetricsSettings
) -> LiveMetric:
    """The metric as /metrics computes it (the last feedback_window rows), drawn over time."""
    import numpy as np
    import pandas as pd

    outcome = feedback["outcome"] == positive
    predicted = feedback["prediction"] == positive
    probability = pd.to_numeric(feedback["probability"], errors="coerce")
    count, window = len(feedback), settings.feedback_window
    ends = np.unique(np.linspace(settings.min_feedback_rows, count, METRIC_POINTS).astype(int))
    values: dict[pd.Timestamp, float | None] = {}
    for end in ends if count >= settings.min_feedback_rows else []:
        rows = slice(max(0, end - window), end)
        values[feedback["time"].iloc[end - 1]] = metric_value(
            goal.name, outcome.iloc[rows], predicted.iloc[rows], probability.iloc[rows]
        )
    last = values[feedback["time"].iloc[-1]] if values else None
    series = pd.Series(values, dtype=float).dropna()
    return LiveMetric(goal, count, window, series, last)


def feature_kinds(inputs: pd.DataFrame) -> dict[str, bool]:
    """Each feature and whether it is numeric: params.yaml's lists, else the logged values."""

    from ..core.params import load_params

    if paths.PARAMS.is_file():
        features = load_params(paths.PARAMS).features
        return {
            **dict.fromkeys(features.numeric, True),
            **dict.fromkeys(features.categorical, False),
        }
    kinds = {}
    for name in inputs.columns:
        values = inputs[name].dropna()
        kinds[str(name)] = bool(len(values)) and bool(numbers_of(values).notna().all())
    return kinds


def read_training(path: Path) -> pd.DataFrame | None:
    """The training split, or None before the pipeline has written it."""
    return (
        files.read_csv(path, "rerun the pipeline (`uv run poe pipeline`)")
        if path.is_file()
        else None
    )


def feature_views(inputs: pd.DataFrame, training: pd.DataFrame | None) -> list[FeatureView]:
    import pandas as pd

    views = []
    for name, numeric in feature_kinds(inputs).items():
        live = inputs[name] if name in inputs.columns else pd.Series(dtype=object)
        train = training[name] if training is not None and name in training.columns else None
        if numeric:
            live = numbers_of(live)
            train = numbers_of(train) if train is not None else None
        views.append(FeatureView(name, numeric, live, train))
    return views


def category_shares(values: pd.Series, order: list[str] | None = None) -> pd.Series:
    """Shares of each value (missing counted as "(missing)"), biggest first or in `order`."""
    labels = values.astype(object).where(values.notna(), "(missing)").astype(str)
    shares = labels.value_counts(normalize=True)
    return shares.reindex(order, fill_value=0.0) if order is not None else shares


# --- Plots (matplotlib, imported only here) ----------------------------------------------------


def new_figure(height: float = 2.6, width: float = 8.0) -> Figure:
    """A figure of its own, off pyplot: no global state, no GUI backend, no figure left open."""
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def png_uri(figure: Figure) -> str:
    """The figure as a PNG data URI, for an <img> the page carries inside itself."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _time_axis(axes: Axes) -> None:
    """Dates as the zoom needs them, the legend in a row above the plot (never over the data)."""
    from matplotlib import dates

    axes.legend(loc="lower left", bbox_to_anchor=(0, 1), ncols=5, borderaxespad=0.2)
    locator = dates.AutoDateLocator()
    axes.xaxis.set_major_locator(locator)
    axes.xaxis.set_major_formatter(dates.ConciseDateFormatter(locator))
    axes.set_xlabel("time (UTC)")


def _naive(index: Any) -> Any:
    """UTC times without their zone: matplotlib's date axis reads them directly."""
    import pandas as pd

    return pd.DatetimeIndex(index).tz_convert(None)


def plot_volume(counts: pd.DataFrame, size: str) -> str:
    import pandas as pd

    figure = new_figure()
    axes = figure.subplots()
    width = pd.Timedelta(size) / pd.Timedelta("1D")
    bottom = None
    for column in counts.columns:
        axes.bar(
            _naive(counts.index), counts[column], width=width, align="edge", bottom=bottom,
            label=column, color=COLORS[str(column)],
        )  # fmt: skip
        bottom = counts[column] if bottom is None else bottom + counts[column]
    axes.set_ylabel(f"rows per {size}")
    _time_axis(axes)
    return png_uri(figure)


def plot_latency(table: pd.DataFrame, budget_ms: float | None) -> str:
    figure = new_figure()
    axes = figure.subplots()
    times = _naive(table.index)
    for column, style in (("p50", "-"), ("p95", "--"), ("p99", ":")):
        axes.plot(times, table[column], style, marker=".", label=column)
    if budget_ms is not None:
        axes.axhline(budget_ms, color="#b42318", linewidth=1, label=f"budget {budget_ms:g} ms")
    axes.set_ylabel("latency (ms)")
    axes.set_ylim(bottom=0)
    _time_axis(axes)
    return png_uri(figure)


def plot_predictions(answered: pd.DataFrame) -> str:
    import pandas as pd

    figure = new_figure(height=2.4)
    left, right = figure.subplots(1, 2, width_ratios=[2, 1])
    probability = pd.to_numeric(answered["probability"], errors="coerce").dropna()
    left.hist(probability, bins=20, range=(0, 1), color=LIVE_COLOR)
    left.set_xlabel("probability of the positive class")
    left.set_ylabel("rows")
    shares = category_shares(answered["prediction"].map(decode_json))
    right.bar(shares.index, shares.to_numpy(), color=LIVE_COLOR)
    right.set_xlabel("predicted class")
    right.set_ylabel("share of rows")
    return png_uri(figure)


def plot_live_metric(metric: LiveMetric) -> str:
    figure = new_figure()
    axes = figure.subplots()
    axes.plot(_naive(metric.series.index), metric.series.to_numpy(), marker=".", label="live")
    goal = metric.goal
    axes.axhline(goal.threshold, color="#b42318", linewidth=1, label=f"goal {goal.threshold:g}")
    axes.set_ylabel(goal.name)
    _time_axis(axes)
    return png_uri(figure)


def plottable(values: pd.Series) -> Any:
    """The values a histogram can draw: finite, within +-PLOTTABLE. Refused rows carry what
    callers sent: `Infinity`, or 1.7e308, which overflows matplotlib's axis arithmetic."""
    import numpy as np

    numbers = values.to_numpy(dtype=float)
    return numbers[np.isfinite(numbers) & (np.abs(numbers) <= PLOTTABLE)]


def bin_edges(values: Any) -> list[float]:
    """HISTOGRAM_BINS bins over the values, or over their central 99% when floats cannot split
    the whole span (refused rows may carry numbers as large as the contract allows)."""
    import numpy as np

    try:
        with np.errstate(over="raise", invalid="raise"):
            return list(np.histogram_bin_edges(values, bins=HISTOGRAM_BINS))
    except (ValueError, FloatingPointError):
        with np.errstate(over="ignore", invalid="ignore"):  # spans past the float range
            bounds = np.percentile(values, [0.5, 50, 99.5], method="nearest")
            low, middle, high = (float(bound) for bound in bounds)
            span = high - low
        if not np.isfinite(span) or span <= abs(low) * 1e-9:
            # One bar around the median, wide enough for floats to tell its edges apart.
            half = max(0.5, abs(middle) * 1e-6)
            low, high = middle - half, middle + half
        return list(np.linspace(low, high, HISTOGRAM_BINS + 1))


def plot_numeric(view: FeatureView) -> str:
    import numpy as np

    figure = new_figure(height=2.2, width=6.0)
    axes = figure.subplots()
    live = plottable(view.live)
    train = plottable(view.train) if view.train is not None else np.array([])
    edges = bin_edges(np.concatenate([live, train]))
    if len(train):
        axes.hist(train, bins=edges, density=True, color=TRAIN_COLOR, alpha=0.6, label="training")
    if len(live):
        axes.hist(live, bins=edges, density=True, histtype="step", linewidth=1.5,
                  color=LIVE_COLOR, label="live")  # fmt: skip
    axes.set_xlabel(view.name)
    axes.set_ylabel("density")
    axes.legend(loc="upper right")
    return png_uri(figure)


def tick_label(value: Any) -> str:
    """A category as an axis shows it: one line of at most LABEL_CHARS characters (callers'
    texts may be long or hold line breaks, which would squeeze the plot to nothing)."""
    text = " ".join(str(value).split())
    return text if len(text) <= LABEL_CHARS else text[: LABEL_CHARS - 1] + "…"


def plot_categorical(view: FeatureView) -> str:
    import numpy as np

    figure = new_figure(height=2.2, width=6.0)
    axes = figure.subplots()
    live = category_shares(view.live)
    train = category_shares(view.train) if view.train is not None else None
    shown = list(dict.fromkeys([*(train.index if train is not None else []), *live.index]))
    shown = shown[:MAX_CATEGORIES]
    positions = np.arange(len(shown))
    width = 0.4 if train is not None else 0.8
    if train is not None:
        axes.bar(positions - width / 2, train.reindex(shown, fill_value=0.0).to_numpy(),
                 width=width, color=TRAIN_COLOR, label="training")  # fmt: skip
    offset = width / 2 if train is not None else 0.0
    axes.bar(positions + offset, live.reindex(shown, fill_value=0.0).to_numpy(),
             width=width, color=LIVE_COLOR, label="live")  # fmt: skip
    axes.set_xticks(
        positions, [tick_label(name) for name in shown], rotation=30 if len(shown) > 6 else 0
    )
    axes.set_xlabel(view.name)
    axes.set_ylabel("share of rows")
    axes.legend(loc="upper right")
    return png_uri(figure)


# --- The page ----------------------------------------------------------------------------------


def table_html(headers: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{escape(name)}</th>" for name in headers)
    lines = []
    for row in rows:
        cells = "".join(
            f'<td class="number">{escape(f"{cell:,}")}</td>'
            if isinstance(cell, int) and not isinstance(cell, bool)
            else f"<td>{escape(cell)}</td>"
            for cell in row
        )
        lines.append(f"<tr>{cells}</tr>")
    return f"<table>\n<tr>{head}</tr>\n" + "\n".join(lines) + "\n</table>"


def image_html(uri: str, alt: str) -> str:
    return f'<img src="{uri}" alt="{escape(alt)}">'


def note_html(text: str, kind: str = "note") -> str:
    return f'<p class="{kind}">{escape(text)}</p>'


def _span(start: pd.Timestamp, end: pd.Timestamp) -> str:
    seconds = int((end - start).total_seconds())
    shown = str(timedelta(seconds=seconds))
    return f"{start:%Y-%m-%d %H:%M:%S} to {end:%Y-%m-%d %H:%M:%S} UTC ({shown})"


def summary_section(page: Page, window: LogWindow, days: int) -> None:
    predictions = window.predictions
    counts = predictions["outcome"].value_counts()
    versions = predictions["model_version"].dropna().astype(str).value_counts()
    rows: list[list[Any]] = [
        ["rows", len(predictions)],
        ["requests", int(predictions["request_id"].nunique())],
        ["answered", int(counts.get(ANSWERED, 0))],
        ["refused", int(counts.get(REFUSED, 0))],
        ["feedback rows", len(window.feedback)],
        ["model versions seen", ", ".join(versions.index) or "none"],
        ["time span", _span(predictions["time"].iloc[0], predictions["time"].iloc[-1])],
    ]
    if counts.get(FAILED, 0):
        rows.insert(4, ["failed (no answer, e.g. the model not loaded)", int(counts[FAILED])])
    parts = [
        note_html(f"{window.path}: the last {days} day(s) back from its newest record."),
        table_html(["", "value"], rows),
    ]
    rules = predictions["refused_rule"].dropna().astype(str).value_counts()
    if len(rules):
        parts += ["<h3>Refused rows, by rule</h3>", table_html(["rule", "rows"], _pairs(rules))]
    if len(versions) > 1:
        parts += [
            "<h3>Rows by model version</h3>",
            table_html(["version", "rows"], _pairs(versions)),
        ]
    page.add("Summary", *parts)


def _pairs(counts: pd.Series) -> list[list[Any]]:
    return [[str(name), int(count)] for name, count in counts.items()]


def traffic_sections(page: Page, window: LogWindow, budget_ms: float | None) -> None:
    predictions = window.predictions
    size = bin_size(predictions["time"].iloc[-1] - predictions["time"].iloc[0])
    page.add(
        "Volume",
        image_html(plot_volume(volume(predictions, size), size), "rows over time"),
        note_html(f"Rows a {size} bin, answered and refused (a batch counts each of its rows)."),
    )
    budget = (
        f"the line is the canvas latency budget ({budget_ms:g} ms)"
        if budget_ms is not None
        else "canvas.yaml sets no latency_budget_ms"
    )
    page.add(
        "Latency",
        image_html(plot_latency(latency_percentiles(predictions, size), budget_ms), "latency"),
        note_html(f"Server-side latency of each request, percentiles a {size} bin; {budget}."),
    )
    answered = predictions[predictions["outcome"] == ANSWERED]
    parts = [note_html("No answered row in the window.")]
    if len(answered):
        parts = [image_html(plot_predictions(answered), "prediction distribution")]
    page.add("Predictions", *parts)


def metric_section(
    page: Page, window: LogWindow, canvas: Canvas | None, settings: MetricsSettings
) -> None:
    heading = "Live success metric"
    if canvas is None:
        page.add(heading, note_html(f"{paths.CANVAS} is absent: no success metric to compute."))
        return
    feedback = window.feedback
    goal = canvas.success_metric
    if len(feedback) < settings.min_feedback_rows:
        page.add(
            heading,
            note_html(
                f"{len(feedback)} feedback row(s) in the window: the live {goal.name} needs at "
                f"least {settings.min_feedback_rows} (monitoring.yaml metrics.min_feedback_rows). "
                "Callers send the true outcomes with POST /feedback."
            ),
        )
        return
    seen = [*feedback["outcome"], *feedback["prediction"]]
    metric = live_metric(feedback, goal, positive_class(canvas, seen), settings)
    parts = []
    if metric.last is not None:
        kind = "goal-met" if goal.is_met(metric.last) else "goal-missed"
        parts.append(note_html(f"Last: {goal.verdict(metric.last)}", kind))
    if len(metric.series):
        parts.append(image_html(plot_live_metric(metric), f"live {goal.name}"))
    parts.append(
        note_html(
            f"{goal.name} on the last {metric.window} feedback rows (monitoring.yaml "
            f"metrics.feedback_window) at each point, of {metric.rows} joined to their "
            "predictions; the line is the canvas threshold."
        )
    )
    page.add(heading, *parts)


def feature_section(page: Page, window: LogWindow, train_path: Path) -> None:
    training = read_training(train_path)
    parts = []
    if training is None:
        parts.append(
            note_html(
                f"{train_path} is absent (the level-2 pipeline writes it: `uv run poe pipeline`): "
                "the live distributions are shown alone."
            )
        )
    else:
        parts.append(note_html(f"Live rows (answered and refused) against {train_path}."))
    if window.input_stride > 1:
        parts.append(
            note_html(
                f"The live distributions are those of one row in {window.input_stride} "
                f"({len(window.inputs):,} of {len(window.predictions):,} rows), spread over "
                "the window."
            )
        )
    for view in feature_views(window.inputs, training):
        parts.append(f"<h3>{escape(view.name)}</h3>")
        if not view.live.notna().any():
            parts.append(
                note_html("No value in the log (monitoring.yaml prediction_log.never_log?).")
            )
            continue
        plot = plot_numeric if view.numeric else plot_categorical
        parts.append(image_html(plot(view), f"{view.name} distribution"))
        missing = float(view.live.isna().mean()) if len(view.live) else 1.0
        if missing:
            parts.append(note_html(f"{missing:.1%} of the live rows lack {view.name}."))
        left_out = int(view.live.notna().sum()) - len(plottable(view.live)) if view.numeric else 0
        if left_out:
            parts.append(
                note_html(
                    f"{left_out:,} live value(s) infinite or beyond ±{PLOTTABLE:g}: not drawn."
                )
            )
    page.add("Input features", *parts)


def build_page(
    window: LogWindow,
    days: int,
    canvas: Canvas | None,
    settings: MetricsSettings,
    train_path: Path,
) -> str:
    """The whole HTML page for the window."""
    from matplotlib import rc_context

    page = Page(f"Monitoring report: {window.end:%Y-%m-%d %H:%M} UTC")
    with rc_context(PLOT_STYLE), warnings.catch_warnings():
        # Categories are what callers sent: any character, drawn as a box without a glyph.
        warnings.filterwarnings("ignore", MISSING_GLYPH, UserWarning)
        summary_section(page, window, days)
        traffic_sections(page, window, canvas.latency_budget_ms if canvas else None)
        metric_section(page, window, canvas, settings)
        feature_section(page, window, train_path)
    return page.render()


def run(
    output: Path | None = None,
    days: int | None = None,
    log: Path | None = None,
    train: Path = paths.TRAIN_DATA,
) -> Path:
    started = time.perf_counter()
    settings = load_monitoring_settings()
    output = output or settings.report.path
    days = settings.report.days if days is None else days
    if days < 1:
        raise PipelineError(f"--days must be at least 1 (got {days}).")
    log = log or settings.prediction_log.path
    canvas = load_canvas(paths.CANVAS) if paths.CANVAS.is_file() else None
    connection = open_log(log)
    try:
        window = read_window(connection, log, days)
    finally:
        connection.close()
    files.write_text(output, build_page(window, days, canvas, settings.metrics, train))
    seconds = time.perf_counter() - started
    rows = len(window.predictions)
    shown = f"{rows:,} row" + ("" if rows == 1 else "s")
    print(f"monitoring-report: wrote {output} ({shown}, {seconds:.2f} s)")
    return output


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--output", type=Path, help="the HTML file (default: report.path)")
    parser.add_argument("--days", type=int, help="days back from the newest record (report.days)")
    parser.add_argument("--log", type=Path, help="the SQLite log (prediction_log.path)")
