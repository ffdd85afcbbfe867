"""The secrets a pipeline step needs, as environment variables (never in the compiled
pipeline, whose parameters anyone who sees a run can read). Run here: the command's
environment; Kubeflow: a Kubernetes secret mapped to every step; Vertex AI: read here
from Secret Manager (MLFLOW_TRACKING_URI -> secret mlflow-tracking-uri) with the
steps' identity. A secret that does not exist is skipped: every one is optional.
"""

from __future__ import annotations

import base64
import os

import httpx2

METADATA_URL = "http://metadata.google.internal/computeMetadata/v1"
SECRET_MANAGER_URL = "https://secretmanager.googleapis.com/v1"
TIMEOUT_SECONDS = 10


def secret_id(name: str) -> str:
    """MLFLOW_TRACKING_URI -> mlflow-tracking-uri (Secret Manager's naming)."""
    return name.lower().replace("_", "-")


def _get_json(url: str, headers: dict[str, str]) -> dict:
    response = httpx2.get(url, headers=headers, timeout=TIMEOUT_SECONDS)
    return response.raise_for_status().json()


def metadata_url() -> str:
    """GCE_METADATA_HOST (the variable Google's libraries honour) moves the server."""
    host = os.environ.get("GCE_METADATA_HOST")
    return f"http://{host}/computeMetadata/v1" if host else METADATA_URL


def access_token() -> str:
    """The step's identity's OAuth token, from the metadata server Vertex AI provides."""
    url = f"{metadata_url()}/instance/service-accounts/default/token"
    return str(_get_json(url, {"Metadata-Flavor": "Google"})["access_token"])


def from_secret_manager(project: str, names: list[str]) -> dict[str, str]:
    """The latest version of each secret that exists; missing ones are left out."""
    headers = {"Authorization": f"Bearer {access_token()}"}
    found: dict[str, str] = {}
    for name in names:
        secret = f"projects/{project}/secrets/{secret_id(name)}/versions/latest"
        url = f"{SECRET_MANAGER_URL}/{secret}:access"
        try:
            payload = _get_json(url, headers)["payload"]["data"]
        except httpx2.HTTPStatusError as error:
            answer = error.response
            if answer.status_code != 404:  # no permission: the step will miss it
                print(f"secrets: cannot read {secret_id(name)} ({answer.status_code})")
            continue
        found[name] = base64.b64decode(payload).decode("utf-8").strip()
    return found


def load(names: list[str], source: str) -> list[str]:
    """Set the missing variables of `names` from `source`; return the names set.

    `source` is "" (the environment only) or "gcp:<project>" (Secret Manager).
    """
    missing = [name for name in names if not os.environ.get(name)]
    if not missing or not source.startswith("gcp:"):
        return []
    found = from_secret_manager(source.removeprefix("gcp:"), missing)
    os.environ.update(found)
    return sorted(found)
