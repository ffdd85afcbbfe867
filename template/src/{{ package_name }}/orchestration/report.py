"""The pipeline's exit handler: say how the run ended, and start the deploy after a promotion.

It sees only the run's final state, so the verdict comes from the tracking store (the
model's run tags `pipeline_job`, `gate_passed`, `gate_reason`; the registry history's
move "pipeline run <job>"). The summary goes to PIPELINE_NOTIFY_URL (a chat webhook,
JSON `{"text": ...}`); after a promotion, `orchestrator.deploy_url` gets a GitHub
`repository_dispatch`, a GitLab pipeline trigger, or a JSON post (docs/orchestration.md).
A post that fails makes this step fail, so the run shows it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import httpx2

from ..core import files
from ..core.errors import PipelineError
from . import steps

NOTIFY_URL = "PIPELINE_NOTIFY_URL"
DEPLOY_TOKEN = "PIPELINE_DEPLOY_TOKEN"
DEPLOY_EVENT = "model-promoted"
TIMEOUT_SECONDS = 20


def find_verdict(job: str) -> dict[str, Any]:
    """The gate's verdict and the promotion of this pipeline run, from the tracking store."""
    from ..core import paths
    from ..core.canvas import load_canvas
    from ..core.params import load_params
    from ..release import registry
    from ..release.settings import load_registry_settings

    params = load_params(paths.PARAMS)
    if not params.tracking.enabled:
        return {"found": False, "why": "tracking is disabled in params.yaml"}
    client, _ = registry.open_registry(paths.PARAMS)
    experiments = [e.experiment_id for e in client.search_experiments()]
    runs = client.search_runs(
        experiments, filter_string=f"tags.pipeline_job = '{job}'", max_results=1
    )
    if not runs:
        return {"found": False, "why": "no tracked run of this pipeline run (it stopped earlier)"}
    run = runs[0]
    metric = load_canvas(paths.CANVAS).success_metric.name
    name = load_registry_settings().model_name
    promoted = None
    try:
        moves = registry.history(client, name)
    except Exception:  # no registered model yet: nothing promoted
        moves = []
    for move in moves:
        if move.alias == registry.CHAMPION and move.why == steps.promotion_reason(job):
            promoted = move.version
    tags = run.data.tags
    return {
        "found": True,
        "run_id": run.info.run_id,
        "model": name,
        "metric": metric,
        "value": run.data.metrics.get(metric),
        "gate_passed": tags.get("gate_passed"),
        "gate_reason": tags.get("gate_reason", ""),
        "git_commit": tags.get("git_commit", "unknown"),
        "promoted": promoted,
    }


def outcome(state: str, verdict: dict[str, Any]) -> str:
    if state != "SUCCEEDED":
        return "FAILED"
    if verdict.get("promoted"):
        return f"PROMOTED version {verdict['promoted']}"
    if verdict.get("gate_passed") == "false":
        return "REFUSED by the gate"
    if verdict.get("gate_passed") == "true":
        return "PASSED the gate, not promoted"
    return "FINISHED without a verdict"


def summary(pipeline: str, job: str, state: str, error: str, verdict: dict[str, Any]) -> str:
    lines = [f"## {pipeline}: {outcome(state, verdict)}", "", f"Pipeline run `{job}`: {state}."]
    if error:
        lines.append(f"Error: {error}")
    if verdict.get("found"):
        value = verdict.get("value")
        shown = "-" if value is None else f"{value:.4f}"
        lines.append(
            f"Model run `{verdict['run_id']}` (commit {str(verdict['git_commit'])[:12]}): "
            f"{verdict['metric']} {shown}."
        )
        if verdict.get("gate_reason"):
            lines.append(f"Gate: {verdict['gate_reason']}")
    else:
        lines.append(f"No verdict: {verdict.get('why', 'unknown')}.")
    return "\n".join(lines) + "\n"


def post(url: str, **request: Any) -> int:
    """POST and return the HTTP status; an error status or no answer is a PipelineError."""
    where = httpx2.URL(url).copy_with(query=None, fragment=None)  # a query may hold a token
    try:
        response = httpx2.post(url, timeout=TIMEOUT_SECONDS, **request)
    except httpx2.HTTPError as error:
        raise PipelineError(f"cannot reach {where}: {error}") from None
    if response.is_error:
        raise PipelineError(f"{where} answered {response.status_code} {response.reason_phrase}")
    return response.status_code


def deploy_request(url: str, ref: str, token: str | None, payload: dict[str, str]) -> dict:
    """What starts the deploy workflow (post's arguments), by the kind of URL."""
    path = httpx2.URL(url).path.rstrip("/")
    if path.endswith("/trigger/pipeline"):  # GitLab: the trigger token is a form field
        fields = {"token": token or "", "ref": ref}
        fields.update({f"variables[{key.upper()}]": value for key, value in payload.items()})
        return {"data": fields}
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if path.endswith("/dispatches"):  # GitHub repository_dispatch
        headers["Accept"] = "application/vnd.github+json"
        headers["X-GitHub-Api-Version"] = "2022-11-28"
        return {"headers": headers, "json": {"event_type": DEPLOY_EVENT, "client_payload": payload}}
    return {"headers": headers, "json": {"event": DEPLOY_EVENT, **payload}}


def run(
    run_context: str,
    job: str,
    state: str,
    error: str,
    pipeline: str,
    deploy_url: str,
    deploy_ref: str,
    summary_path: str,
) -> dict[str, Any]:
    """Report the run; return what was found and posted."""
    with steps.one_line_errors():
        steps.enter(run_context)
        try:
            verdict = find_verdict(job)
        except Exception as problem:  # the store itself may be why the run failed
            first = str(problem).strip().splitlines()[0] if str(problem).strip() else repr(problem)
            verdict = {"found": False, "why": f"the tracking store did not answer ({first})"}
        text = summary(pipeline, job, state, error, verdict)
        files.write_text(Path(summary_path), text)
        print(text)
        posted: dict[str, int] = {}
        problems: list[str] = []
        notify_url = os.environ.get(NOTIFY_URL)
        if notify_url:
            try:
                posted["notify"] = post(notify_url, json={"text": text})
            except PipelineError as failure:
                problems.append(f"notify: {failure}")
        else:
            print(f"report: {NOTIFY_URL} is not set: summary not posted")
        if state == "SUCCEEDED" and verdict.get("promoted"):
            if deploy_url:
                payload = {
                    "model": str(verdict["model"]),
                    "version": str(verdict["promoted"]),
                    "run_id": str(verdict["run_id"]),
                    "pipeline_job": job,
                }
                token = os.environ.get(DEPLOY_TOKEN)
                try:
                    request = deploy_request(deploy_url, deploy_ref, token, payload)
                    posted["deploy"] = post(deploy_url, **request)
                    print(f"report: deploy workflow started ({posted['deploy']})")
                except PipelineError as failure:
                    problems.append(f"deploy trigger: {failure}")
            else:
                print("report: no deploy URL (orchestrator.deploy_url): deploy not started")
        if problems:
            raise PipelineError("; ".join(problems))
        return {"outcome": outcome(state, verdict), "verdict": verdict, "posted": posted}
