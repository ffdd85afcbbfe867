"""Command `notify-failure`: tell the team a workflow failed, where they look: an issue.

On GitHub Actions it opens an issue labelled `pipeline-failure` with a link to
the run, or comments on the open one (one issue, not one per night); on GitLab
CI the same through the issues API, with a project access token in
GITLAB_ISSUES_TOKEN (the job token cannot write issues). A refused gate is not
a failure and never calls this.
"""

from __future__ import annotations

import argparse
import json
import os
import urllib.parse
import urllib.request
from collections.abc import Mapping
from typing import Any

from ..core.errors import PipelineError

LABEL = "pipeline-failure"


def call(method: str, url: str, headers: dict[str, str], body: dict | None = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read() or b"null")
    except (OSError, ValueError) as error:
        raise PipelineError(f"notify-failure: {method} {url} failed: {error}") from None


def github(what: str, environ: Mapping[str, str]) -> str:
    api = environ.get("GITHUB_API_URL", "https://api.github.com")
    repository = environ["GITHUB_REPOSITORY"]
    run = f"{environ.get('GITHUB_SERVER_URL', 'https://github.com')}/{repository}/actions/runs/"
    run += environ.get("GITHUB_RUN_ID", "")
    headers = {
        "Authorization": f"Bearer {environ['GITHUB_TOKEN']}",
        "Accept": "application/vnd.github+json",
    }
    base = f"{api}/repos/{repository}/issues"
    text = f"The {what} workflow failed: {run}"
    found = call("GET", f"{base}?labels={LABEL}&state=open", headers)
    if found:
        number = found[0]["number"]
        call("POST", f"{base}/{number}/comments", headers, {"body": text})
        return f"commented on issue #{number}"
    created = call(
        "POST", base, headers, {"title": f"{what} failed", "body": text, "labels": [LABEL]}
    )
    return f"opened issue #{created['number']}"


def gitlab(what: str, environ: Mapping[str, str]) -> str:
    token = environ.get("GITLAB_ISSUES_TOKEN")
    if not token:
        raise PipelineError(
            "notify-failure: set GITLAB_ISSUES_TOKEN (a project access token with the api "
            "scope) to open issues from CI"
        )
    base = f"{environ['CI_API_V4_URL']}/projects/{environ['CI_PROJECT_ID']}/issues"
    headers = {"PRIVATE-TOKEN": token}
    text = f"The {what} pipeline failed: {environ.get('CI_PIPELINE_URL', '')}"
    found = call("GET", f"{base}?labels={LABEL}&state=opened", headers)
    if found:
        number = found[0]["iid"]
        call("POST", f"{base}/{number}/notes", headers, {"body": text})
        return f"commented on issue #{number}"
    query = urllib.parse.urlencode({"title": f"{what} failed", "labels": LABEL})
    created = call("POST", f"{base}?{query}", headers, {"description": text})
    return f"opened issue #{created['iid']}"


def run(what: str) -> str:
    environ = os.environ
    if environ.get("GITHUB_ACTIONS") == "true":
        outcome = github(what, environ)
    elif environ.get("GITLAB_CI") == "true":
        outcome = gitlab(what, environ)
    else:
        raise PipelineError("notify-failure runs in GitHub Actions or GitLab CI only")
    print(f"notify-failure: {outcome}")
    return outcome


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--what", required=True, help="the workflow that failed, e.g. train")
