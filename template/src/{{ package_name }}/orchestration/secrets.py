"""The secrets a pipeline step needs, as environment variables, whatever runs it.

Secrets never go into the compiled pipeline (anyone who can see a run can
read its parameters). A step finds each name of `orchestrator.secrets` in its
environment:
- run here (`pipeline-local`): the environment of the command;
- Kubeflow: `pipeline-compile` maps the keys of a Kubernetes secret
  (`orchestrator.kubeflow.secret`) to environment variables of every step;
- Vertex AI: the step reads the missing ones from Secret Manager in the
  project, as the secret named like the variable in lower case with dashes
  (MLFLOW_TRACKING_URI -> mlflow-tracking-uri), with the identity the steps
  run as (the metadata server's token): plain HTTPS, no client library.
A secret that does not exist is skipped: every one of them is optional.
"""

from __future__ import annotations

import base64
import json
import os
import urllib.error
import urllib.request

METADATA_URL = "http://metadata.google.internal/computeMetadata/v1"
SECRET_MANAGER_URL = "https://secretmanager.googleapis.com/v1"
TIMEOUT_SECONDS = 10


def secret_id(name: str) -> str:
    """MLFLOW_TRACKING_URI -> mlflow-tracking-uri (Secret Manager's naming)."""
    return name.lower().replace("_", "-")


def _get_json(url: str, headers: dict[str, str]) -> dict:
    request = urllib.request.Request(url, headers=headers)
    with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:
        return json.loads(response.read().decode("utf-8"))


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
        except urllib.error.HTTPError as error:
            if error.code == 404:
                continue
            # No permission is worth saying: the step will miss what it needs.
            print(f"secrets: cannot read {secret_id(name)} ({error.code} {error.reason})")
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
