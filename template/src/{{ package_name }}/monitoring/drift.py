"""Command `drift`: does the data the API answers still look like the training data?

    uv run <package> drift                       # the last drift.window_rows rows of the log
    uv run <package> drift --since 2025-06-01    # every row logged since (UTC)
    uv run <package> drift --last 20000 --window 10000 --reference other/profile.json

The answered rows of a window of the prediction log are compared feature by
feature with the reference profile of the training data (`profile` stage;
the model folder's copy first): a number with the population stability
index on the reference's quantile bins and the two-sample Kolmogorov-Smirnov
test on its sample; a category with the largest change of one share and a
chi-square test; both with the change of the missing rate. A feature drifts
when an effect size passes its threshold (monitoring.yaml `drift:`) AND the
test's p-value is below `drift.p_value`: at large windows the p-value alone
flags changes too small to matter, at small ones the effect size alone flags
noise. The share of rows the contract refused (422) is the training-serving
skew. Below `drift.min_rows` answered rows (or `--window`) it refuses to judge.

Writes reports/drift.json and reports/drift.html (a plot per feature) and
prints what drifted. Exit 0 no drift, 3 drift found (reports written), 1
cannot run (no log, no reference, a window too small...), with a one-line error.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core import files, paths
from ..core.commands import positive_int
from ..core.errors import PipelineError
from . import drift_stats
from .profile import FORMAT as PROFILE_FORMAT
from .profile import REFERENCE_PROFILE, category_key, numbers_of
from .report import (
    Window,
    escape,
    image,
    new_figure,
    page,
    parse_since,
    plotting,
    read_window,
    table,
    tick_label,
)
from .settings import (
    MONITORING_SETTINGS,
    DriftSettings,
    MonitoringSettings,
    load_monitoring_settings,
)

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

DRIFT_JSON = paths.REPORTS / "drift.json"
DRIFT_HTML = paths.REPORTS / "drift.html"
DRIFT_EXIT_CODE = 3
REFERENCE_HINT = "run the pipeline (its `profile` stage) and export the model, or pass --reference"
PLOT_BINS = 40
MAX_CATEGORIES = 15
REFERENCE_COLOR, CURRENT_COLOR = "#999999", "#4c72b0"


class DriftFound(SystemExit):
    """Drift was found: the command exits with DRIFT_EXIT_CODE once its reports are written."""

    def __init__(self) -> None:
        super().__init__(DRIFT_EXIT_CODE)


# --- The reference ------------------------------------------------------------------------------


def reference_path(given: Path | None = None) -> Path:
    """--reference, else the model folder's copy, else the one the pipeline wrote."""
    from ..serving.settings import load_serving_settings

    if given is not None:
        return given
    exported = load_serving_settings().model_dir / REFERENCE_PROFILE.name
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
    share = len(window.refused_rules) / window.rows if window.rows else 0.0
    return {
        "refused_rows": len(window.refused_rules),
        "rows": window.rows,
        "refused_share": _threshold(share, threshold),
        "by_rule": {rule: count / window.rows for rule, count in window.by_rule().items()},
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


def _plot_numeric(axes: Any, profile: dict[str, Any], values: pd.Series) -> None:
    import numpy as np

    reference = np.asarray(profile["sample"], dtype=np.float64)
    numbers = numbers_of(values).to_numpy()
    current = numbers[np.isfinite(numbers)]
    low, high = np.quantile(np.concatenate([reference, current]), [0.001, 0.999])
    with np.errstate(over="ignore"):
        if not np.isfinite(high - low):  # values near the float's limits: no axis holds them
            return
    edges = np.linspace(low, high, PLOT_BINS + 1) if high > low else PLOT_BINS
    for data, label, color in (
        (reference, "reference", REFERENCE_COLOR),
        (current, "current", CURRENT_COLOR),
    ):
        if data.size:
            axes.hist(data, bins=edges, density=True, histtype="step", linewidth=1.5,
                      label=label, color=color)  # fmt: skip
    axes.set_ylabel("density")


def _plot_categorical(axes: Any, verdict: dict[str, Any]) -> None:
    import numpy as np

    reference, current = verdict["shares"]["reference"], verdict["shares"]["current"]
    names = sorted(reference, key=lambda name: -max(reference[name], current[name]))
    positions = np.arange(len(names[:MAX_CATEGORIES]))
    for offset, shares, label, color in (
        (-0.2, reference, "reference", REFERENCE_COLOR),
        (0.2, current, "current", CURRENT_COLOR),
    ):
        heights = [shares[name] for name in names[:MAX_CATEGORIES]]
        axes.bar(positions + offset, heights, 0.4, label=label, color=color)
    labels = [tick_label(name) for name in names[:MAX_CATEGORIES]]
    axes.set_xticks(positions, labels, rotation=30, ha="right")
    axes.set_ylabel("share of rows")


def feature_image(
    name: str, verdict: dict[str, Any], profile: dict[str, Any], current: pd.DataFrame
) -> str:
    """The feature's plot, reference against current, as an <img>."""
    figure = new_figure()
    axes = figure.subplots()
    if verdict["kind"] == "numeric":
        _plot_numeric(axes, profile["features"][name], current[name])
    else:
        _plot_categorical(axes, verdict)
    axes.set_title(f"{name}: {'drifted' if verdict['drifted'] else 'no drift'}")
    axes.legend()
    return image(figure, name)


def section(
    report: dict[str, Any], profile: dict[str, Any], current: pd.DataFrame, note: str = ""
) -> str:
    """The drift page's body, also the monitoring report's section: verdicts, skew, plots."""
    window, skew, reference = report["window"], report["skew"], report["reference"]
    verdicts = report["features"]
    rows = [
        [name, "drifted" if v["drifted"] else "ok", effect_sizes(v),
         _against(v["missing_rate"]["value"], v["missing_rate"]["threshold"], True)]
        for name, v in verdicts.items()
    ]  # fmt: skip
    share = skew["refused_share"]
    parts = [
        f"<h2>Drift: {'drift found' if report['drifted'] else 'no drift'}</h2>",
        f"<p class='missed'>{escape(note)}</p>" if note else "",
        f"<p>{window['rows']:,} rows of {escape(window['log'])} ({escape(window['first'])} to "
        f"{escape(window['last'])}), {window['answered']:,} answered, against "
        f"{escape(reference['path'])} ({reference['rows']:,} training rows).</p>",
        table(["feature", "verdict", "effect sizes", "missing rate"], rows, [r[1] for r in rows]),
        "<h3>Refused rows (training-serving skew)</h3>",
        f"<p>Share of the rows: {escape(_against(share['value'], share['threshold']))}.</p>",
        table(["rule", "share of rows"], [list(item) for item in skew["by_rule"].items()]),
    ]
    with plotting():
        for name, verdict in verdicts.items():
            parts += [f"<h3>{escape(name)}</h3>", feature_image(name, verdict, profile, current)]
    return "\n".join(parts)


# --- The command --------------------------------------------------------------------------------


def build_report(
    window: Window,
    reference: dict[str, Any],
    reference_file: Path,
    verdicts: dict[str, dict[str, Any]],
    not_judged: dict[str, str],
    settings: DriftSettings,
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
    }


def judge(
    logged: Window,
    profile: dict[str, Any],
    reference_file: Path,
    monitoring: MonitoringSettings,
    window: int | None = None,
) -> tuple[dict[str, Any], pd.DataFrame]:
    """The report of a window against the reference profile, and the window's features."""
    settings = monitoring.drift
    require_rows(logged, window if window is not None else settings.min_rows)
    never_logged = set(monitoring.prediction_log.never_log)
    not_judged = {
        n: "not logged (prediction_log.never_log)" for n in profile["features"] if n in never_logged
    }
    names = [name for name in profile["features"] if name not in never_logged]
    current = feature_frame(logged.inputs, names, logged.path, reference_file)
    verdicts = check_features(profile, current, settings)
    report = build_report(logged, profile, reference_file, verdicts, not_judged, settings)
    return report, current


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
    monitoring = load_monitoring_settings(settings_path)
    reference_file = reference_path(reference)
    profile = load_reference(reference_file)
    limit = last if last is not None else (None if since else monitoring.drift.window_rows)
    logged = read_window(
        log or monitoring.prediction_log.path, limit, parse_since(since) if since else None
    )
    report, current = judge(logged, profile, reference_file, monitoring, window)
    report["outputs"] = {"json": str(json_path), "html": str(html_path)}
    files.write_json(json_path, report)
    files.write_text(html_path, page("Drift check", [section(report, profile, current)]))
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
