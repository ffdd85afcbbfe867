"""Command `performance`: is the model still as good as it was when it was released?

    uv run <package> performance                 # the last performance.window feedback rows
    uv run <package> performance --last 2000 --log copy-of-production.db

The canvas success metric on the latest feedback joined to its predictions,
computed as the API's live metric is (metrics.live_metric_value), is judged
against the canvas threshold and against the test score the registry holds
for the version that answered (else the champion's): more than
`performance.max_drop` below it trips too. Without a registry that second
judgement is skipped, and said so. Writes reports/performance.json. Exit 0
the metric holds, 3 it tripped, 1 it cannot judge (one-line error).
"""

from __future__ import annotations

import argparse
import contextlib
from collections import Counter
from pathlib import Path
from typing import Any

from ..core import files, paths
from ..core.canvas import SuccessMetric, load_canvas
from ..core.commands import positive_int
from ..core.errors import PipelineError
from .joined import FEEDBACK_HINT, FeedbackRow, read_feedback
from .metrics import live_metric_value
from .settings import MONITORING_SETTINGS, PerformanceSettings, load_monitoring_settings

PERFORMANCE_JSON = paths.REPORTS / "performance.json"
TRIPPED_EXIT_CODE = 3  # the same as drift's: "the check found a problem"


class PerformanceDropped(SystemExit):
    """The metric tripped: the command exits with TRIPPED_EXIT_CODE once its report is written."""

    def __init__(self) -> None:
        super().__init__(TRIPPED_EXIT_CODE)


def served_version(rows: list[FeedbackRow]) -> str | None:
    """The model version that answered most of the window's rows (None when not logged)."""
    versions = Counter(row.model_version for row in rows if row.model_version is not None)
    return versions.most_common(1)[0][0] if versions else None


def live_value(goal: SuccessMetric, rows: list[FeedbackRow]) -> float:
    """The canvas metric on the rows; a PipelineError when it is undefined on them."""
    value = live_metric_value(
        goal.name, [(row.prediction, row.probability, row.outcome) for row in rows]
    )
    if value is None:
        raise PipelineError(
            f"{goal.name} is undefined on these {len(rows)} feedback rows (e.g. a single class "
            "among the outcomes): widen the window (--last) or wait for more feedback."
        )
    return value


def registered_version(params_path: Path, version: str | None) -> tuple[Any, Any, str]:
    """The registry's client, the version that answered (else the champion) and how it was
    found; (None, None, why) when there is no registry to ask, or no champion in it."""
    from ..core.params import load_params
    from ..release import gate, registry
    from ..release.settings import load_registry_settings

    try:
        if not load_params(params_path).tracking.enabled:
            return None, None, "tracking is disabled in params.yaml: no registry to ask"
        if not gate.shared_registry():
            return None, None, "no shared registry in CI (MLFLOW_TRACKING_URI)"
        client, _ = registry.open_registry(params_path)
        name = load_registry_settings().model_name
        if version is not None:
            with contextlib.suppress(PipelineError):  # an unregistered candidate answered
                answered = registry.model_version(client, name, version)
                return client, answered, "the version that answered"
        champion = registry.version_with_alias(client, name, registry.CHAMPION)
    except PipelineError as error:
        return None, None, f"the registry cannot be read ({error})"
    if champion is None:
        return None, None, f"model {name!r} has no champion in the registry"
    unregistered = f" (version {version} that answered is not registered)"
    return client, champion, "the champion" + (unregistered if version is not None else "")


def registry_test_score(
    metric: str, version: str | None, params_path: Path
) -> tuple[dict[str, Any] | None, str]:
    """The test score `evaluate` recorded with that version's run, and how it was found."""
    client, chosen, how = registered_version(params_path, version)
    if chosen is None:
        return None, how
    score = client.get_run(chosen.run_id).data.metrics.get(metric)
    if score is None:
        return None, f"version {chosen.version}'s run recorded no {metric}"
    return {"version": str(chosen.version), "test_score": float(score), "source": how}, ""


def compare_with_test_score(
    goal: SuccessMetric, value: float, reference: dict[str, Any] | None, max_drop: float
) -> dict[str, Any] | None:
    """How far the live value fell below the test score, and whether it fell too far."""
    if reference is None:
        return None
    test_score = reference["test_score"]
    drop = test_score - value if goal.higher_is_better else value - test_score
    return {**reference, "drop": round(drop, 6), "max_drop": max_drop, "exceeded": drop > max_drop}


def trip_reasons(goal: SuccessMetric, value: float, compared: dict[str, Any] | None) -> list[str]:
    reasons = []
    if not goal.is_met(value):
        direction = "at least" if goal.higher_is_better else "at most"
        reasons.append(
            f"{goal.name} {value:.4f} misses the canvas goal ({direction} {goal.threshold})"
        )
    if compared is not None and compared["exceeded"]:
        reasons.append(
            f"{goal.name} {value:.4f} is {compared['drop']:.4f} worse than version "
            f"{compared['version']}'s test score {compared['test_score']:.4f} "
            f"(at most {compared['max_drop']:g})"
        )
    return reasons


def require_rows(rows: list[FeedbackRow], minimum: int, log: Path) -> None:
    if len(rows) < minimum:
        raise PipelineError(
            f"{log} holds {len(rows)} answered rows with feedback, fewer than the {minimum} a "
            f"verdict needs (--min-rows, monitoring.yaml performance.min_rows): {FEEDBACK_HINT}."
        )


def evaluate(
    log: Path | None = None,
    last: int | None = None,
    min_rows: int | None = None,
    settings_path: Path = MONITORING_SETTINGS,
    canvas_path: Path = paths.CANVAS,
    params_path: Path = paths.PARAMS,
    json_path: Path | None = PERFORMANCE_JSON,
) -> dict[str, Any]:
    """Judge the window and write the report (unless json_path is None); a PipelineError when it
    cannot judge."""
    monitoring = load_monitoring_settings(settings_path)
    settings: PerformanceSettings = monitoring.performance
    files.require_file(canvas_path, "the success metric is canvas.yaml's: restore it")
    goal = load_canvas(canvas_path).success_metric
    log_path = log or monitoring.prediction_log.path
    window = last if last is not None else settings.window
    rows = read_feedback(log_path, last=window)
    require_rows(rows, min_rows if min_rows is not None else settings.min_rows, log_path)
    value = live_value(goal, rows)
    version = served_version(rows)
    reference, note = registry_test_score(goal.name, version, params_path)
    compared = compare_with_test_score(goal, value, reference, settings.max_drop)
    reasons = trip_reasons(goal, value, compared)
    report = {
        "tripped": bool(reasons),
        "reasons": reasons,
        "metric": goal.name,
        "value": value,
        "rows": len(rows),
        "window": {
            "log": str(log_path),
            "last": window,
            "first_feedback": rows[0].feedback_time,
            "last_feedback": rows[-1].feedback_time,
            "model_versions": dict(Counter(str(row.model_version) for row in rows)),
        },
        "goal": {
            "threshold": goal.threshold,
            "higher_is_better": goal.higher_is_better,
            "met": goal.is_met(value),
        },
        "test_score": compared if compared is not None else {"note": note},
        "outputs": {"json": str(json_path)} if json_path is not None else {},
    }
    if json_path is not None:
        files.write_json(json_path, report)
    return report


def verdict_line(report: dict[str, Any]) -> str:
    """One line: the value, on what, against the goal and the test score, the verdict."""
    goal, metric = report["goal"], report["metric"]
    direction = ">=" if goal["higher_is_better"] else "<="
    against = f"canvas goal {direction} {goal['threshold']} {'met' if goal['met'] else 'MISSED'}"
    test = report["test_score"]
    if "drop" in test:
        state = "TOO FAR" if test["exceeded"] else "within"
        side = "worse" if test["drop"] > 0 else "better"
        against += (
            f"; {abs(test['drop']):.4f} {side} than version {test['version']}'s test score "
            f"{test['test_score']:.4f} ({state} {test['max_drop']:g})"
        )
    else:
        against += f"; not compared with a test score ({test['note']})"
    outcome = "TRIPPED" if report["tripped"] else "ok"
    written = "".join(f" ({path})" for path in report["outputs"].values())
    return (
        f"performance: {metric} {report['value']:.4f} on the last {report['rows']} feedback rows "
        f"({against}) -> {outcome}{written}"
    )


def run(
    log: Path | None = None,
    last: int | None = None,
    min_rows: int | None = None,
    settings_path: Path = MONITORING_SETTINGS,
    json_path: Path = PERFORMANCE_JSON,
) -> dict[str, Any]:
    report = evaluate(
        log=log, last=last, min_rows=min_rows, settings_path=settings_path, json_path=json_path
    )
    print(verdict_line(report))
    if report["tripped"]:
        raise PerformanceDropped()
    return report


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--log", type=Path, help="the SQLite prediction log (default: monitoring.yaml's)"
    )
    parser.add_argument(
        "--last", type=positive_int, help="judge the last N feedback rows (performance.window)"
    )
    parser.add_argument(
        "--min-rows", type=positive_int, help="the fewest rows to judge (performance.min_rows)"
    )
