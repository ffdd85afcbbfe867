"""Command `drift`: does the data the API answers still look like the training data?

    uv run <package> drift                       # the last drift.window_rows rows of the log
    uv run <package> drift --since 2025-06-01    # every row logged since (UTC)
    uv run <package> drift --last 20000 --window 10000 --reference other/profile.json

Reads a window of the SQLite prediction log (monitoring.yaml
`prediction_log.path`, or --log) read-only, so it runs while the API writes
it: the last N rows written (`--last`, default `drift.window_rows`), or
those logged since a time (`--since`), or both. The answered rows (status
200) are compared feature by feature with the reference profile of the
training data (`profile` stage; by default the model folder's copy,
models/serving/reference-profile.json, else models/reference-profile.json):

- a number: the population stability index on the reference's quantile
  bins and the two-sample Kolmogorov-Smirnov test on its sample of values;
- a category: the largest change of one category's share (and the total
  variation distance), with a chi-square test of the counts;
- both: the change of the missing rate.

A feature drifts when an effect size passes its threshold (monitoring.yaml
`drift:`) and the test's p-value is below `drift.p_value`: at large windows
the p-value alone would flag changes too small to matter, at small ones the
effect size alone would flag noise. Training-serving skew is the share of
the window's rows the data contract refused (status 422), by rule. Below
`drift.min_rows` answered rows (or `--window`) the check refuses to judge.

It writes reports/drift.json (per feature: each statistic, its threshold,
drifted or not; the refused share; the overall verdict) and reports/drift.html
(self-contained: a plot per feature, reference vs current), and prints
which features drifted and by how much.

Exit codes: 0 no drift; 3 drift found (a feature drifted, or the refused
share passed its threshold: the reports are written); 1 the check could not
run (no log, no reference, a window too small, a log without a feature of
the reference), with a one-line error.
"""

from __future__ import annotations

import argparse
import html
import json
import sqlite3
import warnings
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core import files, paths
from ..core.commands import positive_int
from ..core.errors import PipelineError
from . import drift_stats
from .profile import FORMAT as PROFILE_FORMAT
from .profile import REFERENCE_PROFILE, category_key, numbers_of
from .records import loads
from .report import tick_label
from .settings import MONITORING_SETTINGS, DriftSettings, load_monitoring_settings

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

DRIFT_JSON = paths.REPORTS / "drift.json"
DRIFT_HTML = paths.REPORTS / "drift.html"
DRIFT_EXIT_CODE = 3
ANSWERED = 200
REFUSED = 422
LOG_HINT = (
    "the model API writes it at level 4: start it (`uv run poe serve`) and send it traffic, "
    "or pass --log"
)
REFERENCE_HINT = "run the pipeline (its `profile` stage) and export the model, or pass --reference"
PLOT_BINS = 40
MAX_CATEGORIES = 15
REFERENCE_COLOR, CURRENT_COLOR = "#999999", "#4c72b0"


class DriftFound(SystemExit):
    """Drift was found: the command exits with DRIFT_EXIT_CODE once its reports are written."""

    def __init__(self) -> None:
        super().__init__(DRIFT_EXIT_CODE)


@dataclass(frozen=True)
class Window:
    """The rows of the log the check judges."""

    path: Path
    rows: int  # every logged row of the window, answered or refused
    inputs: list[dict[str, Any]]  # the answered rows, as sent
    refused_rules: list[str]  # one per refused row (status 422)
    first: str | None
    last: str | None


# --- The reference ------------------------------------------------------------------------------


def reference_path(given: Path | None, model_dir: Path) -> Path:
    """--reference, else the model folder's copy, else the one the pipeline wrote."""
    if given is not None:
        return given
    exported = model_dir / REFERENCE_PROFILE.name
    return exported if exported.is_file() else REFERENCE_PROFILE


def load_reference(path: Path) -> dict[str, Any]:
    """The reference profile; a missing or unreadable one is a PipelineError."""
    if not path.is_file():
        raise PipelineError(f"{path} is missing (no reference profile): {REFERENCE_HINT}.")
    try:
        profile = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as error:
        raise PipelineError(f"{path} is not a reference profile ({error}).") from None
    if not isinstance(profile, dict) or not isinstance(profile.get("features"), dict):
        raise PipelineError(f"{path} is not a reference profile (no `features`): {REFERENCE_HINT}.")
    if profile.get("format") != PROFILE_FORMAT:
        raise PipelineError(
            f"{path} has format {profile.get('format')!r}, not {PROFILE_FORMAT}: {REFERENCE_HINT}."
        )
    if not profile["features"]:
        raise PipelineError(f"{path} profiles no feature: {REFERENCE_HINT}.")
    return profile


# --- The window of the log ----------------------------------------------------------------------


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


def open_log(path: Path) -> sqlite3.Connection:
    """The log opened read-only: the check never creates, locks or changes it."""
    if not path.is_file():
        raise PipelineError(f"{path} is missing (no prediction log): {LOG_HINT}.")
    connection = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        found = {str(row[1]) for row in connection.execute("PRAGMA table_info(predictions)")}
    except sqlite3.DatabaseError as error:
        connection.close()
        raise PipelineError(f"{path} is not a prediction log (SQLite says: {error}).") from None
    missing = {"time", "status", "input", "refused_rule"} - found
    if missing:
        connection.close()
        raise PipelineError(
            f"{path} is not a prediction log (its `predictions` table lacks "
            f"{', '.join(sorted(missing))}): point --log at the API's log."
        )
    return connection


def _query(last: int | None, since: str | None) -> tuple[str, list[Any]]:
    """The newest rows first, in write order (rowid: cheaper than sorting by time)."""
    sql = "SELECT status, input, refused_rule, time FROM predictions"
    arguments: list[Any] = []
    if since is not None:
        sql += " WHERE time >= ?"
        arguments.append(since)
    sql += " ORDER BY rowid DESC"
    if last is not None:
        sql += " LIMIT ?"
        arguments.append(last)
    return sql, arguments


def _decoded(text: str) -> Any:
    try:
        return loads(text)
    except ValueError:
        return None


def decode_inputs(texts: list[str]) -> list[dict[str, Any]]:
    """The logged inputs that are JSON objects, decoded in one call when they all are (a call
    per row is twice as slow at a million rows); texts made encodable (records.loads)."""
    try:
        decoded = loads("[" + ",".join(texts) + "]")
    except ValueError:  # a text that is not JSON: decode row by row, without it
        decoded = [_decoded(text) for text in texts]
    return [row for row in decoded if isinstance(row, dict)]


def read_window(path: Path, last: int | None, since: str | None) -> Window:
    """The last `last` rows written (all when None), logged at or after `since` (when given)."""
    connection = open_log(path)
    try:
        rows = connection.execute(*_query(last, since)).fetchall()
    except sqlite3.DatabaseError as error:
        raise PipelineError(f"{path} cannot be read (SQLite says: {error}).") from None
    finally:
        connection.close()
    texts = [text for status, text, _, _ in rows if status == ANSWERED and text is not None]
    refused = [rule or "no rule recorded" for status, _, rule, _ in rows if status == REFUSED]
    times = [moment for *_, moment in rows if moment is not None]
    return Window(
        path=path,
        rows=len(rows),
        inputs=decode_inputs(texts),
        refused_rules=refused,
        first=min(times) if times else None,
        last=max(times) if times else None,
    )


def require_rows(window: Window, minimum: int) -> None:
    """Refuse to judge a window too small for the thresholds' calibration."""
    answered = len(window.inputs)
    if answered < minimum:
        refused = f" (and {len(window.refused_rules):,} refused)" if window.refused_rules else ""
        raise PipelineError(
            f"the window holds {answered:,} answered rows{refused}, fewer than the {minimum:,} "
            "a verdict needs (--window, monitoring.yaml drift.min_rows): widen it (--last, "
            "--since) or wait for more traffic."
        )


def feature_frame(
    inputs: list[dict[str, Any]], names: list[str], log: Path, reference: Path
) -> pd.DataFrame:
    """The features of the answered rows, one column each; a key never sent is an error."""
    import pandas as pd

    absent = [name for name in names if not any(name in row for row in inputs)]
    if absent:
        listed = ", ".join(f"'{name}'" for name in absent)
        raise PipelineError(
            f"the rows of {log} lack the feature {listed} of {reference}: serve the model the "
            "reference profiles (or list the feature in monitoring.yaml prediction_log.never_log)."
        )
    return pd.DataFrame.from_records(inputs, columns=names)


# --- Judging ------------------------------------------------------------------------------------


def _against(value: float, threshold: float, signed: bool = False) -> str:
    """`0.104 > 0.05` when the threshold is passed, `0.012 (threshold 0.05)` otherwise."""
    shown = f"{value:+.3f}" if signed else f"{value:.3f}"
    return (
        f"{shown} > {threshold:g}"
        if abs(value) > threshold
        else f"{shown} (threshold {threshold:g})"
    )


def _threshold(value: float, threshold: float) -> dict[str, Any]:
    return {"value": value, "threshold": threshold, "exceeded": abs(value) > threshold}


def judge_missing(profile: dict[str, Any], missing: int, rows: int, threshold: float) -> dict:
    """The missing rate before and now, and whether its change passes the threshold."""
    current = missing / rows if rows else 0.0
    change = current - float(profile["missing_rate"])
    return {
        "reference": float(profile["missing_rate"]),
        "current": current,
        **_threshold(change, threshold),
    }


def _missing_reasons(missing: dict[str, Any]) -> list[str]:
    if not missing["exceeded"]:
        return []
    return [f"missing rate {_against(missing['value'], missing['threshold'], signed=True)}"]


def numeric_statistics(
    profile: dict[str, Any], present: np.ndarray, settings: DriftSettings
) -> dict[str, Any]:
    """KS on the reference sample, PSI on the reference bins, and the mean's shift in sds."""
    import numpy as np

    shares = drift_stats.shares_of(drift_stats.bin_counts(present, np.asarray(profile["edges"])))
    psi = drift_stats.population_stability_index(profile["shares"], shares)
    statistic, p_value = drift_stats.ks_test(np.asarray(profile["sample"]), present)
    mean = float(present.mean())
    return {
        "ks_statistic": _threshold(statistic, settings.ks_statistic),
        "ks_p_value": p_value,
        "psi": _threshold(psi, settings.psi),
        "mean": {
            "reference": profile["mean"],
            "current": mean,
            "shift_sd": drift_stats.standardized_shift(profile["mean"], profile["std"], mean),
        },
        "bin_shares": shares.tolist(),
    }


def judge_numeric(profile: dict[str, Any], values: pd.Series, settings: DriftSettings) -> dict:
    """Drifted when KS or PSI passes its threshold with a KS p-value below drift.p_value."""
    import numpy as np

    numbers = numbers_of(values).to_numpy()
    present = numbers[~np.isnan(numbers)]
    absent = numbers.size - present.size
    missing = judge_missing(profile, absent, numbers.size, settings.missing_change)
    verdict: dict[str, Any] = {"kind": "numeric", "rows": numbers.size, "missing_rate": missing}
    reasons = _missing_reasons(missing)
    if present.size:
        verdict |= numeric_statistics(profile, present, settings)
        large = [
            f"{label} {_against(verdict[key]['value'], verdict[key]['threshold'])}"
            for key, label in (("ks_statistic", "KS"), ("psi", "PSI"))
            if verdict[key]["exceeded"]
        ]
        if large and verdict["ks_p_value"] < settings.p_value:
            reasons = [*large, *reasons]
    return verdict | {"drifted": bool(reasons), "reasons": reasons}


def category_counts(values: pd.Series) -> dict[str, int]:
    """Rows per category (as the profile names them), missing values left out."""
    counts: dict[str, int] = {}
    for value, count in values.value_counts(dropna=True).items():
        key = category_key(value)
        if key is not None:
            counts[key] = counts.get(key, 0) + int(count)
    return counts


def judge_categorical(profile: dict[str, Any], values: pd.Series, settings: DriftSettings) -> dict:
    """Drifted when a share moves more than drift.share_change, chi-square p < drift.p_value."""
    counts = category_counts(values)
    present = sum(counts.values())
    missing = judge_missing(profile, len(values) - present, len(values), settings.missing_change)
    compared = drift_stats.compare_categories(profile["counts"], counts)
    change = _threshold(compared.largest_change, settings.share_change)
    reasons = _missing_reasons(missing)
    if change["exceeded"] and compared.p_value < settings.p_value:
        shown = _against(change["value"], change["threshold"], signed=True)
        reasons = [f"share of '{compared.changed_category}' {shown}", *reasons]
    return {
        "kind": "categorical",
        "rows": len(values),
        "missing_rate": missing,
        "largest_share_change": change | {"category": compared.changed_category},
        "total_variation": compared.total_variation,
        "chi_square": compared.chi_square,
        "p_value": compared.p_value,
        "shares": {"reference": compared.reference_shares, "current": compared.current_shares},
        "drifted": bool(reasons),
        "reasons": reasons,
    }


def judge_skew(window: Window, threshold: float) -> dict[str, Any]:
    """The share of the window's rows the data contract refused, in all and by rule."""
    by_rule: dict[str, int] = {}
    for rule in window.refused_rules:
        by_rule[rule] = by_rule.get(rule, 0) + 1
    share = len(window.refused_rules) / window.rows if window.rows else 0.0
    ordered = sorted(by_rule.items(), key=lambda item: -item[1])
    return {
        "refused_rows": len(window.refused_rules),
        "rows": window.rows,
        "refused_share": _threshold(share, threshold),
        "by_rule": {rule: count / window.rows for rule, count in ordered},
    }


def check_features(
    reference: dict[str, Any], current: pd.DataFrame, settings: DriftSettings
) -> dict[str, dict[str, Any]]:
    """The verdict of every feature of the reference found in `current`'s columns."""
    verdicts = {}
    for name, profile in reference["features"].items():
        if name not in current.columns:
            continue
        judge = judge_numeric if profile["kind"] == "numeric" else judge_categorical
        verdicts[name] = judge(profile, current[name], settings)
    return verdicts


# --- Reporting ----------------------------------------------------------------------------------


def _chance(verdict: dict[str, Any], p_value: float | None, large: bool) -> str:
    """Why a large change is not counted: its test says it could be chance."""
    if not large or verdict["drifted"] or p_value is None:
        return ""
    return f", but p = {p_value:.2g}: could be chance"


def effect_sizes(verdict: dict[str, Any]) -> str:
    """A feature's effect sizes against their thresholds, as one line of text."""
    if verdict["kind"] == "categorical":
        change = verdict["largest_share_change"]
        shown = _against(change["value"], change["threshold"], signed=True)
        return (
            f"share of '{change['category']}' {shown}"
            f"{_chance(verdict, verdict['p_value'], change['exceeded'])}, "
            f"total variation {verdict['total_variation']:.3f}"
        )
    if "ks_statistic" not in verdict:
        return "no value sent"
    ks, psi = verdict["ks_statistic"], verdict["psi"]
    large = ks["exceeded"] or psi["exceeded"]
    return (
        f"KS {_against(ks['value'], ks['threshold'])}, "
        f"PSI {_against(psi['value'], psi['threshold'])}"
        f"{_chance(verdict, verdict['ks_p_value'], large)}, "
        f"mean {verdict['mean']['shift_sd']:+.2f} sd"
    )


def feature_line(name: str, verdict: dict[str, Any]) -> str:
    """One console line: the verdict, the effect sizes and the missing-rate change."""
    missing = verdict["missing_rate"]
    state = "DRIFTED" if verdict["drifted"] else "ok"
    return (
        f"  {name:<20} {state:<8} {effect_sizes(verdict)}; missing rate "
        f"{_against(missing['value'], missing['threshold'], True)}"
    )


def summary_lines(report: dict[str, Any]) -> list[str]:
    """What the console shows: the window, each feature, the refused share, the verdict."""
    window, reference, skew = report["window"], report["reference"], report["skew"]
    lines = [
        f"drift: {window['rows']:,} rows of {window['log']} ({window['answered']:,} answered, "
        f"{skew['refused_rows']:,} refused; {window['first']} to {window['last']}) against "
        f"{reference['path']} ({reference['rows']:,} training rows of data "
        f"{reference['data_version']})"
    ]
    lines += [feature_line(name, verdict) for name, verdict in report["features"].items()]
    lines += [f"  {name:<20} not judged: {why}" for name, why in report["not_judged"].items()]
    share = skew["refused_share"]
    state = "DRIFTED" if share["exceeded"] else "ok"
    limit = f"threshold {share['threshold'] * 100:g}%"
    lines.append(f"  {'(refused rows)':<20} {state:<8} {share['value'] * 100:.1f}% ({limit})")
    outputs = f"{report['outputs']['json']}, {report['outputs']['html']}"
    if not report["drifted"]:
        lines.append(f"no drift -> {outputs}")
        return lines
    found = [
        f"{name} ({'; '.join(v['reasons'])})"
        for name, v in report["features"].items()
        if v["drifted"]
    ]
    if share["exceeded"]:
        found.append(f"refused rows ({share['value'] * 100:.1f}% > {share['threshold'] * 100:g}%)")
    lines.append(f"drift found: {', '.join(found)} -> {outputs}")
    return lines


def _figure_data_uri(figure: Any) -> str:
    import base64
    import io

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _plot_numeric(axes: Any, profile: dict[str, Any], values: pd.Series) -> None:
    import numpy as np

    reference = np.asarray(profile["sample"], dtype=np.float64)
    numbers = numbers_of(values).to_numpy()
    current = numbers[~np.isnan(numbers)]
    low, high = np.quantile(np.concatenate([reference, current]), [0.001, 0.999])
    edges = np.linspace(low, high, PLOT_BINS + 1) if high > low else PLOT_BINS
    for data, label, color in (
        (reference, "reference", REFERENCE_COLOR),
        (current, "current", CURRENT_COLOR),
    ):
        if data.size:
            axes.hist(
                data,
                bins=edges,
                density=True,
                histtype="step",
                linewidth=1.5,
                label=label,
                color=color,
            )
    axes.set_ylabel("density")


def _plot_categorical(axes: Any, verdict: dict[str, Any]) -> None:
    import numpy as np

    reference, current = verdict["shares"]["reference"], verdict["shares"]["current"]
    names = sorted(reference, key=lambda name: -max(reference[name], current[name]))[
        :MAX_CATEGORIES
    ]
    positions = np.arange(len(names))
    axes.bar(
        positions - 0.2,
        [reference[n] for n in names],
        0.4,
        label="reference",
        color=REFERENCE_COLOR,
    )
    axes.bar(
        positions + 0.2, [current[n] for n in names], 0.4, label="current", color=CURRENT_COLOR
    )
    axes.set_xticks(positions, [tick_label(name) for name in names], rotation=30, ha="right")
    axes.set_ylabel("share of rows")


def feature_plots(
    reference: dict[str, Any], current: pd.DataFrame, verdicts: dict[str, dict[str, Any]]
) -> dict[str, str] | None:
    """One PNG (as a data URI) per feature; None without matplotlib (the `report` group)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    plots = {}
    with plt.rc_context({"text.parse_math": False, "font.size": 9}), warnings.catch_warnings():
        # Categories are what callers sent: any character, drawn as a box without a glyph.
        warnings.filterwarnings("ignore", r"Glyph .* missing from font", UserWarning)
        for name, verdict in verdicts.items():
            figure, axes = plt.subplots(figsize=(6, 2.8))
            if verdict["kind"] == "numeric":
                _plot_numeric(axes, reference["features"][name], current[name])
            else:
                _plot_categorical(axes, verdict)
            axes.set_title(f"{name}: {'drifted' if verdict['drifted'] else 'no drift'}")
            axes.legend()
            plots[name] = _figure_data_uri(figure)
            plt.close(figure)
    return plots


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return html.escape(str(value), quote=True)


def feature_rows_html(verdicts: dict[str, dict[str, Any]]) -> str:
    """The summary table: one row per feature, effect sizes against thresholds."""
    rows = []
    for name, verdict in verdicts.items():
        state = "drifted" if verdict["drifted"] else "ok"
        missing = verdict["missing_rate"]
        rows.append(
            f"<tr><td>{_cell(name)}</td><td class='{state}'>{state}</td>"
            f"<td>{_cell(effect_sizes(verdict))}</td>"
            f"<td>{_cell(_against(missing['value'], missing['threshold'], True))}</td></tr>"
        )
    head = "<tr><th>feature</th><th>verdict</th><th>effect sizes</th><th>missing rate</th></tr>"
    return f"<table>{head}{''.join(rows)}</table>"


def render_html(report: dict[str, Any], plots: dict[str, str] | None) -> str:
    """The whole page: verdict, tables, then a plot per feature (images inside the page)."""
    window, skew = report["window"], report["skew"]
    verdict = "Drift found" if report["drifted"] else "No drift"
    rules = "".join(
        f"<tr><td>{_cell(rule)}</td><td>{_cell(share)}</td></tr>"
        for rule, share in skew["by_rule"].items()
    )
    reference, share = report["reference"], skew["refused_share"]
    parts = [
        f"<h1>Drift check: {verdict.lower()}</h1>",
        f"<p>{window['rows']:,} rows of {_cell(window['log'])} ({_cell(window['first'])} to "
        f"{_cell(window['last'])}), {window['answered']:,} answered, against "
        f"{_cell(reference['path'])} ({reference['rows']:,} training rows).</p>",
        feature_rows_html(report["features"]),
        "<h2>Refused rows (training-serving skew)</h2>",
        f"<p>Share of the rows: {_cell(_against(share['value'], share['threshold']))}.</p>",
        f"<table><tr><th>rule</th><th>share of rows</th></tr>{rules}</table>" if rules else "",
        "<h2>Features, reference vs current</h2>",
    ]
    if plots is None:
        parts.append("<p>No plots: they need matplotlib (the project's `report` group).</p>")
    else:
        parts += [
            f"<h3>{_cell(name)}</h3><img alt='{_cell(name)}' src='{uri}'>"
            for name, uri in plots.items()
        ]
    style = (
        "body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.2rem .5rem}"
        ".drifted{color:#b42318;font-weight:bold}.ok{color:#1a7f37}img{max-width:100%}"
    )
    return (
        f"<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'><title>{verdict}</title>"
        f"<style>{style}</style></head><body>\n" + "\n".join(parts) + "\n</body></html>\n"
    )


# --- The command --------------------------------------------------------------------------------


def build_report(
    window: Window,
    reference: dict[str, Any],
    reference_file: Path,
    verdicts: dict[str, dict[str, Any]],
    not_judged: dict[str, str],
    settings: DriftSettings,
    outputs: dict[str, str],
) -> dict[str, Any]:
    """reports/drift.json: the verdict, the window, the reference, and each feature's verdict."""
    skew = judge_skew(window, settings.refused_share)
    drifted_features = [name for name, verdict in verdicts.items() if verdict["drifted"]]
    return {
        "drifted": bool(drifted_features) or skew["refused_share"]["exceeded"],
        "drifted_features": drifted_features,
        "window": {
            "log": str(window.path),
            "rows": window.rows,
            "answered": len(window.inputs),
            "first": window.first,
            "last": window.last,
        },
        "reference": {
            "path": str(reference_file),
            "data_version": reference.get("data_version", "unknown"),
            "rows": int(reference.get("rows", 0)),
        },
        "thresholds": settings.model_dump(),
        "features": verdicts,
        "not_judged": not_judged,
        "skew": skew,
        "outputs": outputs,
    }


def run(
    log: Path | None = None,
    last: int | None = None,
    since: str | None = None,
    window: int | None = None,
    reference: Path | None = None,
    settings_path: Path = MONITORING_SETTINGS,
    json_path: Path = DRIFT_JSON,
    html_path: Path = DRIFT_HTML,
) -> dict[str, Any]:
    """Judge the window, write both reports, print the summary; raise DriftFound on drift."""
    from ..serving.settings import load_serving_settings

    monitoring = load_monitoring_settings(settings_path)
    settings = monitoring.drift
    reference_file = reference_path(reference, load_serving_settings().model_dir)
    profile = load_reference(reference_file)
    log_path = log or monitoring.prediction_log.path
    limit = last if last is not None else (None if since else settings.window_rows)
    logged = read_window(log_path, limit, parse_since(since) if since else None)
    require_rows(logged, window if window is not None else settings.min_rows)
    never_logged = set(monitoring.prediction_log.never_log)
    not_judged = {
        n: "not logged (prediction_log.never_log)" for n in profile["features"] if n in never_logged
    }
    names = [name for name in profile["features"] if name not in never_logged]
    current = feature_frame(logged.inputs, names, log_path, reference_file)
    verdicts = check_features(profile, current, settings)
    outputs = {"json": str(json_path), "html": str(html_path)}
    report = build_report(logged, profile, reference_file, verdicts, not_judged, settings, outputs)
    files.write_json(json_path, report)
    files.write_text(html_path, render_html(report, feature_plots(profile, current, verdicts)))
    print("\n".join(summary_lines(report)))
    if report["drifted"]:
        raise DriftFound()
    return report


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--log", type=Path, help="the SQLite prediction log (default: monitoring.yaml's)"
    )
    parser.add_argument(
        "--last",
        type=positive_int,
        help="judge the last N rows written (default: drift.window_rows)",
    )
    parser.add_argument(
        "--since", help="judge the rows logged at or after this ISO 8601 time (UTC)"
    )
    parser.add_argument(
        "--window",
        type=positive_int,
        help="the fewest answered rows to judge (default: drift.min_rows)",
    )
    parser.add_argument(
        "--reference", type=Path, help="the reference profile (default: the model folder's)"
    )
