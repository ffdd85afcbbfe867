"""Command `gate`: may the model the pipeline just trained replace the champion?

It must meet the canvas (success metric, p95 latency of single-row predictions),
beat the champion by `gate.margin` with both scored on the same test rows, and,
with `gate.slice_column`, lose no slice by more than `gate.max_slice_drop`.
The verdict: reports/gate.json, and reports/gate.md (also the job summary).
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core import files, paths
from ..core.canvas import Canvas, SuccessMetric, load_canvas
from ..core.errors import PipelineError
from ..core.params import Params, load_params
from .settings import (
    DEPLOY_SETTINGS,
    GATE_REPORT,
    GATE_SUMMARY,
    GateSettings,
    load_deploy_settings,
    load_registry_settings,
)

if TYPE_CHECKING:
    import pandas as pd


@dataclass
class Check:
    name: str
    passed: bool | None  # None: not judged (said in `detail`)
    value: float | None
    wanted: str
    detail: str


def test_rows(interim_path: Path, params: Params) -> pd.DataFrame:
    """The test split's rows with every column: the same rows for both models."""
    from ..pipeline.preprocess import split

    frame = files.read_csv(interim_path, paths.READ_STAGE_HINT)
    _, test = split(frame, params.features.target, params.split)
    return test


def score(
    model: Any, rows: pd.DataFrame, numeric: list[str], categorical: list[str], target: str
) -> dict[str, float]:
    """The canvas metrics of a model on rows (a model needs only its own features)."""
    from ..core.params import Features
    from ..pipeline.evaluate import evaluate

    features = Features(numeric=numeric, categorical=categorical, target=target)
    return evaluate(model, rows, features)["metrics"]


def latency_p95_ms(model: Any, rows: pd.DataFrame, columns: list[str], count: int) -> float:
    """p95 of single-row predict_proba calls, in milliseconds, in this process."""
    import numpy as np

    sample = rows[columns].head(count)
    model.predict_proba(sample.iloc[[0]])  # warm-up: first calls pay lazy set-ups
    timings = []
    for index in range(len(sample)):
        row = sample.iloc[[index]]
        start = time.perf_counter()
        model.predict_proba(row)
        timings.append((time.perf_counter() - start) * 1000)
    return float(np.percentile(timings, 95))


def shifted(goal: SuccessMetric, value: float, by: float) -> float:
    """`value` moved by `by` in the better direction (a negative `by`: the worse one)."""
    return value + by if goal.higher_is_better else value - by


def wanted(goal: SuccessMetric, bound: float) -> str:
    return f"{'>=' if goal.higher_is_better else '<='} {bound:.4f}"


def reaches(goal: SuccessMetric, value: float, bound: float) -> bool:
    return value >= bound if goal.higher_is_better else value <= bound


def canvas_checks(
    canvas: Canvas, metrics: dict[str, float], p95_ms: float, rows: int
) -> list[Check]:
    goal, budget = canvas.success_metric, canvas.latency_budget_ms
    value = metrics[goal.name]
    sign = ">=" if goal.higher_is_better else "<="
    detail = f"{goal.name} = {value:.4f} on {rows} test rows"
    metric = Check(
        "canvas metric", goal.is_met(value), value, f"{goal.name} {sign} {goal.threshold}", detail
    )
    if budget is None:
        judged, wanted_latency = None, "no budget in canvas.yaml"
    else:
        judged, wanted_latency = p95_ms <= budget, f"p95 <= {budget:g} ms"
    detail = f"p95 of single-row predictions = {p95_ms:.2f} ms"
    return [metric, Check("latency", judged, round(p95_ms, 3), wanted_latency, detail)]


def champion_check(
    goal: SuccessMetric, candidate: float, champion: dict | None, margin: float, note: str
) -> Check:
    if champion is None:
        return Check("beats the champion", None, None, f"by {margin:g}", note)
    value = champion["metrics"][goal.name]
    needed = shifted(goal, value, margin)
    return Check(
        "beats the champion",
        reaches(goal, candidate, needed),
        value,
        f"{wanted(goal, needed)} (margin {margin:g})",
        f"{goal.name} {candidate:.4f} vs champion v{champion['version']}'s {value:.4f}, "
        "re-scored on the same rows",
    )


def slice_checks(
    goal: SuccessMetric,
    rows: pd.DataFrame,
    candidate: Any,
    champion: dict | None,
    params: Params,
    settings: GateSettings,
) -> list[Check]:
    column = settings.slice_column
    if column is None:
        return []
    if column not in rows.columns:
        raise PipelineError(
            f"{DEPLOY_SETTINGS}: `gate.slice_column` is {column!r}, not a column of the data; "
            f"valid: {', '.join(map(str, rows.columns))}."
        )
    if champion is None:
        return [Check(f"slices of {column}", None, None, "", "no champion to compare with")]
    checks = []
    for value, part in rows.groupby(column, dropna=False):
        name = f"slice {column}={value}"
        if len(part) < settings.min_slice_rows or part[params.features.target].nunique() < 2:
            checks.append(Check(name, None, None, "", f"{len(part)} rows: too few to judge"))
            continue
        mine = score(candidate, part, *features_of(params))[goal.name]
        theirs = score(champion["model"], part, *champion["features"])[goal.name]
        bound = shifted(goal, theirs, -settings.max_slice_drop)
        detail = f"champion {theirs:.4f}, {len(part)} rows"
        checks.append(
            Check(name, reaches(goal, mine, bound), round(mine, 6), wanted(goal, bound), detail)
        )
    return checks


def features_of(params: Params) -> tuple[list[str], list[str], str]:
    return params.features.numeric, params.features.categorical, params.features.target


def recorded_features(recorded: dict[str, str]) -> tuple[list[str], list[str]]:
    """The numeric and categorical features a run's params recorded."""
    numeric, categorical = (
        [c for c in recorded.get(f"features.{kind}", "").split(",") if c]
        for kind in ("numeric", "categorical")
    )
    return numeric, categorical


def shared_registry() -> bool:
    """In CI (a runner starts empty) only a store the team named is a registry."""
    return not os.environ.get("CI") or bool(os.environ.get("MLFLOW_TRACKING_URI"))


def find_champion(params_path: Path, rows: pd.DataFrame) -> tuple[dict | None, str]:
    """The champion re-scored on `rows`, or None with the reason."""
    from . import registry

    client, params = registry.open_registry(params_path)
    if not params.tracking.enabled:
        return None, "tracking is disabled in params.yaml: no registry to compare with"
    if not shared_registry():
        return None, (
            "no shared registry in CI (set MLFLOW_TRACKING_URI to the team's store): judged "
            "on the canvas alone; nothing will be promoted"
        )
    name = load_registry_settings().model_name
    version = registry.version_with_alias(client, name, registry.CHAMPION)
    if version is None:
        return None, f"no champion yet for model {name!r}: judged on the canvas alone"
    recorded = client.get_run(version.run_id).data.params
    numeric, categorical = recorded_features(recorded)
    missing = [c for c in [*numeric, *categorical] if c not in rows.columns]
    if missing:
        raise PipelineError(
            f"the champion (v{version.version}) needs {', '.join(missing)}, absent from the "
            "data: it cannot be re-scored on the same rows; roll the data back or retire it"
        )
    model = registry.load_version_model(name, version.version)
    features = (numeric, categorical, recorded.get("features.target", ""))
    metrics = score(model, rows, *features)
    champion = {"version": str(version.version), "metrics": metrics}
    return {**champion, "model": model, "features": features}, ""


def job_summary(text: str) -> None:
    """Append to the GitHub job's summary page, when there is one."""
    if os.environ.get("GITHUB_STEP_SUMMARY"):
        with Path(os.environ["GITHUB_STEP_SUMMARY"]).open("a", encoding="utf-8") as stream:
            stream.write(text + "\n")


def markdown(verdict: dict[str, Any]) -> str:
    outcome = "PASSED" if verdict["passed"] else "REFUSED"
    lines = [f"## Gate: {outcome}", "", verdict["reason"], ""]
    lines += ["| check | result | value | wanted | detail |", "|---|---|---|---|---|"]
    marks = {True: "pass", False: "FAIL", None: "not judged"}
    for check in verdict["checks"]:
        value = "-" if check["value"] is None else f"{check['value']:.4f}"
        lines.append(
            f"| {check['name']} | {marks[check['passed']]} | {value} | {check['wanted']} | "
            f"{check['detail']} |"
        )
    return "\n".join(lines) + "\n"


def reason(checks: list[Check], passed: bool) -> str:
    if passed:
        return "Every check passed: the model may be registered as the challenger."
    failed = [check for check in checks if check.passed is False]
    return "; ".join(f"{check.name}: {check.detail} (wanted {check.wanted})" for check in failed)


def run(
    model_path: Path = paths.MODEL,
    interim_path: Path = paths.INTERIM_DATA,
    params_path: Path = paths.PARAMS,
    canvas_path: Path = paths.CANVAS,
    settings_path: Path = DEPLOY_SETTINGS,
    report_path: Path = GATE_REPORT,
    summary_path: Path = GATE_SUMMARY,
) -> dict[str, Any]:
    import joblib

    params = load_params(params_path)
    canvas = load_canvas(canvas_path)
    settings = load_deploy_settings(settings_path).gate
    files.require_file(model_path, "run the pipeline first (`uv run poe pipeline`)")
    candidate = joblib.load(model_path)
    rows = test_rows(interim_path, params)
    goal = canvas.success_metric
    metrics = score(candidate, rows, *features_of(params))
    p95 = latency_p95_ms(candidate, rows, params.features.columns, settings.latency_rows)
    champion, note = find_champion(params_path, rows)

    checks = canvas_checks(canvas, metrics, p95, len(rows))
    checks.append(champion_check(goal, metrics[goal.name], champion, settings.margin, note))
    checks += slice_checks(goal, rows, candidate, champion, params, settings)
    passed = all(check.passed is not False for check in checks)
    verdict = {
        "passed": passed,
        "reason": reason(checks, passed),
        "model_md5": files.md5_of(model_path),
        "metric": goal.name,
        "candidate": metrics,
        "champion": None if champion is None else {k: champion[k] for k in ("version", "metrics")},
        "test_rows": len(rows),
        "checks": [asdict(check) for check in checks],
    }
    files.write_json(report_path, verdict)
    summary = markdown(verdict)
    files.write_text(summary_path, summary)
    job_summary(summary)
    print(summary)
    if not passed:
        raise PipelineError(f"gate refused the model: {verdict['reason']} ({report_path})")
    return verdict
