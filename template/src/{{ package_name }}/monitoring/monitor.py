"""Command `monitor`: should the model be retrained? The monitor workflow's one decision.

    uv run <package> monitor                # drift + performance on the latest window, cadence
    uv run <package> monitor --force        # retrain whatever they say (the manual trigger)

Retraining is wanted when `drift` or `performance` trips on the latest window
of the log, when the champion is older than `monitor.retrain_every_days` (0:
off), or with --force; a check that cannot judge is reported, never a crash.
Writes reports/monitor.json and reports/monitor.md (also the GitHub job
summary) and the outputs `retrain` and `reason` ($GITHUB_OUTPUT, or GitLab's
dotenv report monitor.env). Exit 0 whatever the verdict: the train workflow
acts on the output; 1 only when the command itself fails.
"""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..core import files, paths
from ..core.errors import PipelineError
from .settings import MONITORING_SETTINGS, load_monitoring_settings

MONITOR_JSON = paths.REPORTS / "monitor.json"
MONITOR_MD = paths.REPORTS / "monitor.md"
DOTENV = Path("monitor.env")  # GitLab: the job's dotenv report, read by the train job
TRIPPED, OK, CANNOT_JUDGE, OFF = "tripped", "ok", "cannot judge", "off"


@dataclass(frozen=True)
class Check:
    name: str
    state: str  # TRIPPED, OK, CANNOT_JUDGE or OFF
    summary: str  # one line: what was found, or why nothing could be judged


def one_line(text: object) -> str:
    return " ".join(str(text).split())


def drift_check(log: Path | None, settings_path: Path, json_path: Path) -> Check:
    """`drift` as a check: tripped when it exits 3, its reason read back from its report."""
    from . import drift

    try:
        drift.run(
            log=log,
            settings_path=settings_path,
            json_path=json_path,
            html_path=json_path.with_suffix(".html"),
        )
    except drift.DriftFound:
        report = json.loads(json_path.read_text(encoding="utf-8"))
        found = list(report.get("drifted_features", []))
        if report.get("skew", {}).get("refused_share", {}).get("exceeded"):
            found.append("refused rows")
        return Check("drift", TRIPPED, f"drift in {', '.join(found) or 'the window'}")
    except PipelineError as error:
        return Check("drift", CANNOT_JUDGE, one_line(error))
    return Check("drift", OK, "no drift")


def performance_check(
    log: Path | None, settings_path: Path, params_path: Path, json_path: Path
) -> Check:
    """`performance` as a check, without its exit code."""
    from . import performance

    try:
        report = performance.evaluate(
            log=log, settings_path=settings_path, params_path=params_path, json_path=json_path
        )
    except PipelineError as error:
        return Check("performance", CANNOT_JUDGE, one_line(error))
    print(performance.verdict_line(report))
    if report["tripped"]:
        return Check("performance", TRIPPED, "; ".join(report["reasons"]))
    return Check(
        "performance", OK, f"{report['metric']} {report['value']:.4f} on {report['rows']} rows"
    )


def champion_trained_at(params_path: Path) -> tuple[datetime | None, str]:
    """When the champion's run started (the registry), else the model folder's `trained_at`."""
    from ..serving.settings import load_serving_settings
    from .performance import registered_version

    client, champion, why = registered_version(params_path, None)
    if champion is not None:
        started = client.get_run(champion.run_id).info.start_time / 1000
        return datetime.fromtimestamp(started, UTC), f"the registry (version {champion.version})"
    metadata_file = load_serving_settings().model_dir / "metadata.json"
    if metadata_file.is_file():
        try:
            trained = json.loads(metadata_file.read_text(encoding="utf-8")).get("trained_at")
            return datetime.fromisoformat(str(trained)), f"the model folder ({metadata_file})"
        except (ValueError, AttributeError):
            pass
    return None, f"{why}, and no model folder"


def cadence_check(every_days: int, params_path: Path, now: datetime) -> Check:
    """Due when the champion was trained more than `every_days` days ago."""
    if every_days == 0:
        return Check("cadence", OFF, "no cadence (monitor.retrain_every_days: 0)")
    trained_at, source = champion_trained_at(params_path)
    if trained_at is None:
        return Check("cadence", CANNOT_JUDGE, f"the champion's age is unknown: {source}")
    if trained_at.tzinfo is None:
        trained_at = trained_at.replace(tzinfo=UTC)
    age = (now - trained_at).total_seconds() / 86400
    state = TRIPPED if age > every_days else OK
    return Check(
        "cadence", state, f"champion trained {age:.1f} days ago (every {every_days} days; {source})"
    )


def decide(checks: list[Check], force: bool) -> tuple[bool, str]:
    """Retrain when forced or when a check tripped; the reason in one line."""
    tripped = [f"{check.name}: {check.summary}" for check in checks if check.state == TRIPPED]
    if force:
        return True, "; ".join(["forced (--force)", *tripped])
    if tripped:
        return True, "; ".join(tripped)
    unjudged = [check.name for check in checks if check.state == CANNOT_JUDGE]
    if unjudged:
        return False, f"nothing tripped ({', '.join(unjudged)} could not judge)"
    return False, "nothing tripped"


def markdown(report: dict[str, Any]) -> str:
    verdict = "RETRAIN" if report["retrain"] else "no retraining"
    lines = [f"## Monitor: {verdict}", "", report["reason"], ""]
    lines += ["| check | state | detail |", "|---|---|---|"]
    for check in report["checks"]:
        detail = check["summary"].replace("|", "\\|")
        lines.append(f"| {check['name']} | {check['state']} | {detail} |")
    reports = ", ".join(f"`{path}`" for path in report["outputs"].values())
    return "\n".join([*lines, "", f"Reports: {reports}."]) + "\n"


def write_outputs(retrain: bool, reason: str) -> None:
    """`retrain` and `reason` for the next job: $GITHUB_OUTPUT, or GitLab's dotenv report."""
    reason = one_line(reason)
    if os.environ.get("GITHUB_OUTPUT"):
        with Path(os.environ["GITHUB_OUTPUT"]).open("a", encoding="utf-8") as stream:
            stream.write(f"retrain={str(retrain).lower()}\nreason={reason}\n")
    elif os.environ.get("GITLAB_CI") == "true":
        with DOTENV.open("w", encoding="utf-8") as stream:
            stream.write(f"RETRAIN={str(retrain).lower()}\nREASON={reason}\n")


def append_job_summary(summary: str) -> None:
    if os.environ.get("GITHUB_STEP_SUMMARY"):
        with Path(os.environ["GITHUB_STEP_SUMMARY"]).open("a", encoding="utf-8") as stream:
            stream.write(summary + "\n")


def run(
    log: Path | None = None,
    force: bool = False,
    settings_path: Path = MONITORING_SETTINGS,
    params_path: Path = paths.PARAMS,
    json_path: Path = MONITOR_JSON,
    md_path: Path = MONITOR_MD,
    now: datetime | None = None,
) -> dict[str, Any]:
    from .drift import DRIFT_JSON
    from .performance import PERFORMANCE_JSON

    settings = load_monitoring_settings(settings_path)
    drift_json = json_path.parent / DRIFT_JSON.name
    performance_json = json_path.parent / PERFORMANCE_JSON.name
    checks = [
        drift_check(log, settings_path, drift_json),
        performance_check(log, settings_path, params_path, performance_json),
        cadence_check(settings.monitor.retrain_every_days, params_path, now or datetime.now(UTC)),
    ]
    retrain, reason = decide(checks, force)
    report = {
        "retrain": retrain,
        "reason": reason,
        "forced": force,
        "log": str(log or settings.prediction_log.path),
        "checks": [asdict(check) for check in checks],
        "outputs": {
            "json": str(json_path),
            "markdown": str(md_path),
            "drift": str(drift_json),
            "performance": str(performance_json),
        },
    }
    files.write_json(json_path, report)
    summary = markdown(report)
    files.write_text(md_path, summary)
    append_job_summary(summary)
    write_outputs(retrain, reason)
    for check in checks:
        print(f"monitor: {check.name:<12} {check.state:<13} {check.summary}")
    print(f"monitor: retrain={str(retrain).lower()} ({reason}) -> {json_path}, {md_path}")
    return report


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--log", type=Path, help="the SQLite prediction log (default: monitoring.yaml's)"
    )
    parser.add_argument(
        "--force", action="store_true", help="retrain whatever the checks say (manual trigger)"
    )
