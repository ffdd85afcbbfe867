"""The pipeline's exit handler: say how the run ended, and start the deploy after a promotion.

It runs last, whether the steps succeeded or not. kfp lets an exit handler
see only the run's final state, not the other steps' outputs, so the verdict
is read where the steps left it, in the shared tracking store: the run of the
model carries the tags `pipeline_job`, `gate_passed` and `gate_reason`, and a
promotion by this run is the registry history's move "pipeline run <job>".

Then it writes a summary (the step's Markdown output, and its log), and
- posts it to the team's chat: PIPELINE_NOTIFY_URL, a Slack, Teams, Google Chat
  or Mattermost incoming webhook (JSON `{"text": ...}`);
- after a promotion, starts the deploy workflow at `orchestrator.deploy_url`
  with the PIPELINE_DEPLOY_TOKEN: a GitHub `repository_dispatch` (event
  `model-promoted`, URL ending in /dispatches), a GitLab pipeline trigger (URL
  ending in /trigger/pipeline), or any URL (JSON, bearer token).
A post that fails makes this step fail, so the run shows it.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

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


def post(url: str, body: bytes, headers: dict[str, str]) -> int:
    """POST and return the HTTP status; an error status or no answer is a PipelineError."""
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    where = urllib.parse.urlsplit(url)._replace(query="", fragment="").geturl()
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        error.close()
        raise PipelineError(f"{where} answered {error.code} {error.reason}") from None
    except (urllib.error.URLError, TimeoutError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise PipelineError(f"cannot reach {where}: {reason}") from None


def notify(url: str, text: str) -> int:
    body = json.dumps({"text": text}).encode("utf-8")
    return post(url, body, {"Content-Type": "application/json"})


def deploy_request(
    url: str, ref: str, token: str | None, payload: dict[str, str]
) -> tuple[bytes, dict[str, str]]:
    """The body and headers that start the deploy workflow, by the kind of URL."""
    path = urllib.parse.urlsplit(url).path.rstrip("/")
    if path.endswith("/trigger/pipeline"):  # GitLab: the trigger token is a form field
        fields = {"token": token or "", "ref": ref}
        fields.update({f"variables[{key.upper()}]": value for key, value in payload.items()})
        body = urllib.parse.urlencode(fields).encode("utf-8")
        return body, {"Content-Type": "application/x-www-form-urlencoded"}
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if path.endswith("/dispatches"):  # GitHub repository_dispatch
        headers["Accept"] = "application/vnd.github+json"
        headers["X-GitHub-Api-Version"] = "2022-11-28"
        document: dict[str, Any] = {"event_type": DEPLOY_EVENT, "client_payload": payload}
    else:
        document = {"event": DEPLOY_EVENT, **payload}
    return json.dumps(document).encode("utf-8"), headers


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
                posted["notify"] = notify(notify_url, text)
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
                body, headers = deploy_request(
                    deploy_url, deploy_ref, os.environ.get(DEPLOY_TOKEN), payload
                )
                try:
                    posted["deploy"] = post(deploy_url, body, headers)
                    print(f"report: deploy workflow started ({posted['deploy']})")
                except PipelineError as failure:
                    problems.append(f"deploy trigger: {failure}")
            else:
                print("report: no deploy URL (orchestrator.deploy_url): deploy not started")
        if problems:
            raise PipelineError("; ".join(problems))
        return {"outcome": outcome(state, verdict), "verdict": verdict, "posted": posted}
