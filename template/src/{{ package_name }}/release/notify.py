"""Command `notify-failure`: open an issue labelled `pipeline-failure` about a failed
workflow, or comment on the open one (one issue, not one per night). GitLab needs a
project access token in GITLAB_ISSUES_TOKEN: the job token cannot write issues.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

import httpx2

from ..core.errors import PipelineError

LABEL = "pipeline-failure"


def call(client: httpx2.Client, method: str, url: str, **options: Any) -> Any:
    try:
        response = client.request(method, url, **options)
        response.raise_for_status()
        return response.json() if response.content else None
    except (httpx2.HTTPError, ValueError) as error:
        raise PipelineError(f"notify-failure: {method} {url} failed: {error}") from None


def github(what: str) -> str:
    environ = os.environ
    repository = environ["GITHUB_REPOSITORY"]
    server = environ.get("GITHUB_SERVER_URL", "https://github.com")
    text = f"The {what} workflow failed: {server}/{repository}/actions/runs/"
    text += environ.get("GITHUB_RUN_ID", "")
    api = environ.get("GITHUB_API_URL", "https://api.github.com")
    headers = {
        "Authorization": f"Bearer {environ['GITHUB_TOKEN']}",
        "Accept": "application/vnd.github+json",
    }
    base = f"{api}/repos/{repository}/issues"
    with httpx2.Client(headers=headers, timeout=30) as client:
        found = call(client, "GET", base, params={"labels": LABEL, "state": "open"})
        if found:
            number = found[0]["number"]
            call(client, "POST", f"{base}/{number}/comments", json={"body": text})
            return f"commented on issue #{number}"
        issue = {"title": f"{what} failed", "body": text, "labels": [LABEL]}
        return f"opened issue #{call(client, 'POST', base, json=issue)['number']}"


def gitlab(what: str) -> str:
    environ = os.environ
    token = environ.get("GITLAB_ISSUES_TOKEN")
    if not token:
        raise PipelineError(
            "notify-failure: set GITLAB_ISSUES_TOKEN (a project access token with the api "
            "scope) to open issues from CI"
        )
    base = f"{environ['CI_API_V4_URL']}/projects/{environ['CI_PROJECT_ID']}/issues"
    text = f"The {what} pipeline failed: {environ.get('CI_PIPELINE_URL', '')}"
    with httpx2.Client(headers={"PRIVATE-TOKEN": token}, timeout=30) as client:
        found = call(client, "GET", base, params={"labels": LABEL, "state": "opened"})
        if found:
            number = found[0]["iid"]
            call(client, "POST", f"{base}/{number}/notes", json={"body": text})
            return f"commented on issue #{number}"
        issue = {"title": f"{what} failed", "labels": LABEL, "description": text}
        return f"opened issue #{call(client, 'POST', base, json=issue)['iid']}"


def run(what: str) -> str:
    if os.environ.get("GITHUB_ACTIONS") == "true":
        outcome = github(what)
    elif os.environ.get("GITLAB_CI") == "true":
        outcome = gitlab(what)
    else:
        raise PipelineError("notify-failure runs in GitHub Actions or GitLab CI only")
    print(f"notify-failure: {outcome}")
    return outcome


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--what", required=True, help="the workflow that failed, e.g. train")
