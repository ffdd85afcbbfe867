"""The exit handler: the summary it posts, and the deploy trigger after a promotion,
checked against a local HTTP server; and secrets read from a fake Secret Manager."""

import base64
from pathlib import Path

import pytest

from ..package import NAME, load

report = load("orchestration.report")
secrets = load("orchestration.secrets")
steps = load("orchestration.steps")

PROMOTED = {
    "found": True,
    "run_id": "0123abcd",
    "model": NAME,
    "metric": "roc_auc",
    "value": 0.9821,
    "gate_passed": "true",
    "gate_reason": "Every check passed: the model may be registered as the challenger.",
    "git_commit": "feedbeef" * 5,
    "promoted": "7",
}


def exit_handler(tmp_path, deploy_url="", state="SUCCEEDED", error=""):
    summary = tmp_path / "summary.md"
    result = report.run(
        steps.context("feedbeef", "", []), "job-1", state, error, "shop", deploy_url, "main",
        str(summary),
    )  # fmt: skip
    return result, summary.read_text()


@pytest.fixture
def verdict(monkeypatch):
    """What the tracking store says about the run (set per test)."""
    found = dict(PROMOTED)
    monkeypatch.setattr(report, "find_verdict", lambda job: found)
    return found


def test_a_promotion_is_posted_and_starts_the_github_deploy_workflow(
    webhook, verdict, monkeypatch, tmp_path
):
    monkeypatch.setenv("PIPELINE_NOTIFY_URL", f"{webhook.url}/hooks/team")
    monkeypatch.setenv("PIPELINE_DEPLOY_TOKEN", "ghs_secret")

    result, summary = exit_handler(tmp_path, f"{webhook.url}/repos/acme/shop/dispatches")

    notify, dispatch = webhook.received
    assert notify.path == "/hooks/team"
    assert notify.json()["text"] == summary
    assert summary.startswith("## shop: PROMOTED version 7")
    assert "roc_auc 0.9821" in summary
    assert dispatch.path == "/repos/acme/shop/dispatches"
    assert dispatch.headers["Authorization"] == "Bearer ghs_secret"
    assert dispatch.headers["Accept"] == "application/vnd.github+json"
    assert dispatch.json() == {
        "event_type": "model-promoted",
        "client_payload": {
            "model": NAME, "version": "7", "run_id": "0123abcd", "pipeline_job": "job-1",
        },
    }  # fmt: skip
    assert result["posted"] == {"notify": 204, "deploy": 204}


def test_the_gitlab_trigger_gets_its_token_ref_and_variables(
    webhook, verdict, monkeypatch, tmp_path
):
    monkeypatch.setenv("PIPELINE_DEPLOY_TOKEN", "glptt-secret")

    exit_handler(tmp_path, f"{webhook.url}/api/v4/projects/42/trigger/pipeline")

    (trigger,) = webhook.received
    form = trigger.form()
    assert form["token"] == "glptt-secret"
    assert form["ref"] == "main"
    assert form["variables[VERSION]"] == "7"
    assert form["variables[MODEL]"] == NAME
    assert "Authorization" not in trigger.headers


def test_a_refusal_is_posted_and_deploys_nothing(webhook, verdict, monkeypatch, tmp_path):
    verdict.update(promoted=None, gate_passed="false", gate_reason="beats the champion: ...")
    monkeypatch.setenv("PIPELINE_NOTIFY_URL", f"{webhook.url}/hooks/team")

    result, summary = exit_handler(tmp_path, f"{webhook.url}/repos/acme/shop/dispatches")

    (notify,) = webhook.received
    assert "REFUSED by the gate" in notify.json()["text"]
    assert "Gate: beats the champion" in summary
    assert result["outcome"] == "REFUSED by the gate"


def test_a_failed_run_is_posted_with_its_error(webhook, monkeypatch, tmp_path):
    def store_down(job):
        raise ConnectionError("connection refused\nmore detail")

    monkeypatch.setattr(report, "find_verdict", store_down)
    monkeypatch.setenv("PIPELINE_NOTIFY_URL", f"{webhook.url}/hooks/team")

    _, summary = exit_handler(
        tmp_path, f"{webhook.url}/dispatches", state="FAILED", error="validate failed"
    )

    (notify,) = webhook.received
    assert notify.json()["text"].startswith("## shop: FAILED")
    assert "Error: validate failed" in summary
    assert "the tracking store did not answer (connection refused)" in summary


def test_a_post_the_server_refuses_fails_the_step_in_one_line(
    webhook, verdict, monkeypatch, tmp_path, capsys
):
    webhook.status = 500
    monkeypatch.setenv("PIPELINE_NOTIFY_URL", f"{webhook.url}/hooks/team?token=hidden")

    with pytest.raises(SystemExit) as stopped:
        exit_handler(tmp_path, f"{webhook.url}/deploy")

    assert stopped.value.code == 1
    error = capsys.readouterr().err
    assert error.startswith("error: notify: http://127.0.0.1:")
    assert "answered 500" in error
    assert "deploy trigger" in error  # both tried
    assert "hidden" not in error  # a webhook's query may hold its token


def test_without_a_notify_url_the_summary_is_still_written(verdict, tmp_path, capsys):
    result, summary = exit_handler(tmp_path)

    assert result["posted"] == {}
    assert "PIPELINE_NOTIFY_URL is not set" in capsys.readouterr().out
    assert summary == Path(tmp_path / "summary.md").read_text()
    assert "PROMOTED version 7" in summary


def test_secrets_come_from_secret_manager_on_vertex(webhook, monkeypatch):
    host = webhook.url.removeprefix("http://")
    monkeypatch.setenv("GCE_METADATA_HOST", host)
    monkeypatch.setattr(secrets, "SECRET_MANAGER_URL", f"{webhook.url}/v1")
    webhook.answers = {
        "/computeMetadata/v1/instance/service-accounts/default/token": {"access_token": "ya29"},
        "/v1/projects/acme-ml/secrets/pipeline-notify-url/versions/latest:access": {
            "payload": {"data": base64.b64encode(b"https://hooks.example.com/x\n").decode()}
        },
    }
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://already-set")

    found = secrets.load(
        ["MLFLOW_TRACKING_URI", "PIPELINE_NOTIFY_URL", "PIPELINE_DEPLOY_TOKEN"], "gcp:acme-ml"
    )

    assert found == ["PIPELINE_NOTIFY_URL"]  # the deploy token does not exist: skipped
    import os

    assert os.environ["PIPELINE_NOTIFY_URL"] == "https://hooks.example.com/x"
    monkeypatch.delenv("PIPELINE_NOTIFY_URL")
    token_request, *secret_requests = webhook.received
    assert token_request.headers["Metadata-Flavor"] == "Google"
    assert {r.headers["Authorization"] for r in secret_requests} == {"Bearer ya29"}
    assert len(secret_requests) == 2  # the variable already set is not read


def test_without_a_secret_source_nothing_is_read(webhook):
    assert secrets.load(["PIPELINE_NOTIFY_URL"], "") == []
    assert webhook.received == []
