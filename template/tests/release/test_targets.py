"""The Cloud Run target's calls to gcloud, past which is the cloud (gcloud answers here)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from ..package import PipelineError, load

targets = load("release.targets")
settings_file = load("release.settings")

SETTINGS = {"target": "cloud-run", "service": "churn", "gcp_project": "my-project",
            "gcp_region": "europe-west1"}  # fmt: skip


class Gcloud:
    """Records the commands; answers `services list` with the services that exist."""

    def __init__(self, existing: tuple[str, ...] = ()) -> None:
        self.existing = existing
        self.commands: list[list[str]] = []

    def __call__(self, command: list[str], step: str, timeout: float = 900) -> str:
        self.commands.append(command)
        if command[:4] == ["gcloud", "run", "services", "list"]:
            return "\n".join(self.existing)
        if command[:3] == ["gcloud", "auth", "print-identity-token"]:
            return "a.identity.token\n"
        raise AssertionError(f"unexpected: {command}")


def target(tmp_path: Path, monkeypatch, **delivery: object):
    path = tmp_path / "deploy.yaml"
    path.write_text(yaml.safe_dump({"delivery": {**SETTINGS, **delivery}}))
    monkeypatch.delenv("GCP_PROJECT", raising=False)
    monkeypatch.delenv("GCP_REGION", raising=False)
    return targets.CloudRunTarget(settings_file.load_delivery_settings(path))


def test_a_service_not_listed_is_missing_without_reading_an_error(tmp_path, monkeypatch):
    gcloud = Gcloud(existing=("churn-production",))
    monkeypatch.setattr(targets.external, "run", gcloud)

    assert target(tmp_path, monkeypatch).describe("staging") is None

    (listing,) = gcloud.commands
    assert "--filter=metadata.name=churn-staging" in listing
    assert "--format=value(metadata.name)" in listing


def test_ci_mints_the_identity_token_as_its_service_account(tmp_path, monkeypatch):
    gcloud = Gcloud()
    monkeypatch.setattr(targets.external, "run", gcloud)
    monkeypatch.setenv("GCP_SERVICE_ACCOUNT", "ci@my-project.iam.gserviceaccount.com")

    headers = target(tmp_path, monkeypatch).caller_headers("https://churn-staging.run.app")

    assert headers == {"X-Serverless-Authorization": "Bearer a.identity.token"}
    (minted,) = gcloud.commands
    assert "--impersonate-service-account=ci@my-project.iam.gserviceaccount.com" in minted
    assert "--audiences=https://churn-staging.run.app" in minted


def test_on_a_machine_the_token_is_the_own_account_s(tmp_path, monkeypatch):
    gcloud = Gcloud()
    monkeypatch.setattr(targets.external, "run", gcloud)
    monkeypatch.delenv("GCP_SERVICE_ACCOUNT", raising=False)

    target(tmp_path, monkeypatch).caller_headers("https://churn-staging.run.app")

    assert gcloud.commands == [["gcloud", "auth", "print-identity-token"]]


def test_a_public_service_needs_no_identity_token(tmp_path, monkeypatch):
    gcloud = Gcloud()
    monkeypatch.setattr(targets.external, "run", gcloud)

    public = target(tmp_path, monkeypatch, cloud_run={"public": True})

    assert public.caller_headers("https://churn-staging.run.app") == {}
    assert gcloud.commands == []


def test_the_public_setting_must_be_true_or_false(tmp_path, monkeypatch):
    with pytest.raises(PipelineError, match=r"delivery\.cloud_run\.public` must be true or false"):
        target(tmp_path, monkeypatch, cloud_run={"public": "yes"})
