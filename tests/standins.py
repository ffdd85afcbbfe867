"""Recording stand-ins for docker, gcloud, kubectl and bq: the cloud boundary, and only it.

Installed on PATH under the tools' names (`install`), each call is checked
against the flags the real command accepts for that subcommand, appended to
a log (JSON lines), and given the effect that matters to the project's code:
what runs is the project's own API (`<package> serve` on the exported model
folder), started where the real tool would start a container, a revision or
a pod. STANDIN_SCENARIO=broken makes what is deployed answer 500 to
everything; STANDIN_SCENARIO=rollout-fails makes `kubectl rollout status` fail.

Every answer that imitates the real tool (its output, its error text, its
exit status) names where that text comes from: a source file of the tool or
a documentation page. A call the stand-ins do not model (a subcommand, a
flag, a query shape) is refused with a message that starts with `stand-in:`
and exit status 2: that is the harness speaking, not the tool.

Cloud Run: a service has one stable URL (a router on a local port) that
sends each request to a revision by the traffic split, and each traffic tag
a URL of its own. Unless the service was deployed with
--allow-unauthenticated, the router is also Cloud Run's IAM: a request
without a Google-signed identity token for the service's URL (looked for in
X-Serverless-Authorization, else in Authorization) gets Google's 403 page.
Identity tokens come from `gcloud auth print-identity-token`, with the
rules of the real command for the credentials in
CLOUDSDK_AUTH_CREDENTIAL_FILE_OVERRIDE (what google-github-actions/auth
writes: workload identity federation, an `external_account`).

GKE: kubectl reaches the cluster through the `gke-gcloud-auth-plugin`
credential plugin that `get-credentials` writes into the kubeconfig; without
it, every kubectl call fails as the real one does. The plugin is a gcloud
component: a runner has it when the workflow installs it (tests/cloud.py puts
the installed components' folder in STANDIN_COMPONENTS_PATH, the runner's own
PATH for them: this machine may have the real plugin in /usr/bin).

Texts marked "checked here" were produced by the real tools of this machine
(Google Cloud SDK 528.0.0 and its kubectl v1.32.4, offline); the others are
quoted from the source files named (paths in the Google Cloud SDK: lib/...).

`bq query` answers from STANDIN_BIGQUERY, a JSON-lines file of Cloud Logging
entries (`{"timestamp": ..., "jsonPayload": <a line the API printed>}`, as
tests/cloud.py's sink writes them), as the sink's table holds them: a
column exists only once a line has carried a (non-null) value for it, and a
query that names another field fails with BigQuery's error.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import http.server
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

TOOLS = ("docker", "gcloud", "kubectl", "bq")
COMPONENTS = ("gke-gcloud-auth-plugin",)  # gcloud components a workflow installs
REPO_ROOT = Path(__file__).resolve().parent.parent
BROKEN_SERVER = """
import http.server, sys
class Broken(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_error(500, "broken build")
    do_POST = do_GET
    def log_message(self, *args):
        pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Broken).serve_forever()
"""

# Flags each (tool, subcommand) accepts: a name with "=" takes a value. Each is
# in the command's reference (docs.docker.com/reference/cli, cloud.google.com/sdk/
# gcloud/reference, kubernetes.io/docs/reference/kubectl, the bq reference).
FLAGS = {
    ("docker", "build"): {"--build-arg=", "--tag=", "--file=", "--platform=", "--target="},
    ("docker", "push"): set(),
    ("docker", "tag"): set(),
    ("docker", "login"): {"--username=", "--password-stdin"},
    ("docker", "run"): {"--detach", "--rm", "--name=", "--read-only", "--tmpfs=", "--env=",
                        "--publish="},
    ("docker", "stop"): set(),
    ("gcloud", "run deploy"): {"--image=", "--tag=", "--no-traffic", "--set-secrets=", "--quiet",
                               "--allow-unauthenticated", "--no-allow-unauthenticated",
                               "--region=", "--project="},
    ("gcloud", "run services describe"): {"--format=", "--region=", "--project="},
    ("gcloud", "run services list"): {"--filter=", "--format=", "--region=", "--project="},
    ("gcloud", "run services update-traffic"): {"--to-tags=", "--to-latest", "--to-revisions=",
                                                "--region=", "--project="},
    ("gcloud", "auth configure-docker"): {"--quiet"},
    ("gcloud", "auth print-identity-token"): {"--impersonate-service-account=", "--audiences=",
                                              "--include-email"},
    ("gcloud", "container clusters get-credentials"): {"--region=", "--project="},
    ("kubectl", "apply"): {"--filename="},
    ("kubectl", "rollout status"): {"--timeout="},
    ("kubectl", "rollout undo"): set(),
    ("kubectl", "port-forward"): set(),
    ("bq", "query"): {"--quiet", "--use_legacy_sql=", "--format=", "--max_rows="},
}  # fmt: skip
# Where gcloud finds the credential file google-github-actions/auth writes (gcloud's
# auth/credential_file_override property); bq authenticates through gcloud, or ADC.
GCLOUD_CREDENTIALS = ("CLOUDSDK_AUTH_CREDENTIAL_FILE_OVERRIDE",)
CREDENTIAL_VARIABLES = (*GCLOUD_CREDENTIALS, "GOOGLE_APPLICATION_CREDENTIALS")

# lib/googlecloudsdk/core/credentials/store.py, NoActiveAccountException: what gcloud
# and bq say without an active account, after `ERROR: (gcloud.<command>) ` or
# `ERROR: (bq) ` on stderr, exit status 1 (checked here).
NO_ACCOUNT = """You do not currently have an active account selected.
Please run:

  $ gcloud auth login

to obtain new credentials.

If you have already logged in with a different account, run:

  $ gcloud config set account ACCOUNT

to select an already authenticated account to use."""

# Google's error page for a request Cloud Run's IAM refuses (no identity token,
# or one not for this service), as curl shows it for any private service
# (Cloud Run docs: "All Cloud Run services are deployed privately by default").
FORBIDDEN_PAGE = """<html><head>
<meta http-equiv="content-type" content="text/html;charset=utf-8">
<title>403 Forbidden</title>
</head>
<body text=#000000 bgcolor=#ffffff>
<h1>Error: Forbidden</h1>
<h2>Your client does not have permission to get URL <code>{path}</code> from this server.</h2>
<h2></h2>
</body></html>
"""
GOOGLE_ISSUER = "https://accounts.google.com"  # the `iss` of Google-signed identity tokens

# kubectl without the credential plugin: client-go's exec plugin error
# (k8s.io/client-go/plugin/pkg/client/auth/exec/exec.go: "exec: executable %s not
# found", installHintVerboseHelp, then the kubeconfig's installHint, which gcloud
# writes: lib/googlecloudsdk/api_lib/container/kubeconfig.py,
# GKE_GCLOUD_AUTH_INSTALL_HINT), inside kubectl's own message; exit status 1
# (checked here, kubeconfig as get-credentials writes it, the plugin not on PATH).
INSTALL_HINT = (
    "Install gke-gcloud-auth-plugin for use with kubectl by following "
    "https://cloud.google.com/kubernetes-engine/docs/how-to/cluster-access-for-kubectl"
    "#install_plugin"
)
PLUGIN_NOT_FOUND = f"""getting credentials: exec: executable gke-gcloud-auth-plugin not found

It looks like you are trying to use a client-go credential plugin that is not installed.

To learn more about this feature, consult the documentation available at:
      https://kubernetes.io/docs/reference/access-authn-authz/authentication/#client-go-credential-plugins

{INSTALL_HINT}"""
CLUSTER_ENDPOINT = "https://203.0.113.10"  # the kubeconfig's server (a documentation address)
# gcloud's own warning when get-credentials finds no plugin (same kubeconfig.py,
# GKE_GCLOUD_AUTH_PLUGIN_NOT_FOUND, logged at CRITICAL); the command still succeeds.
NO_AUTH_PLUGIN_WARNING = (
    "CRITICAL: ACTION REQUIRED: gke-gcloud-auth-plugin, which is needed for continued use "
    f"of kubectl, was not found or is not executable. {INSTALL_HINT}"
)


def fail(message: str, code: int = 1, stream=sys.stderr) -> None:
    print(message, file=stream)
    sys.exit(code)


def not_modelled(what: str) -> None:
    """The harness refusing a call it cannot answer as the real tool would."""
    fail(f"stand-in: {what} is not modelled here (check the real command, then add it)", 2)


def gcloud_error(command: str, message: str) -> None:
    """A gcloud error as calliope prints it: `ERROR: (gcloud.<command>) <message>`, exit 1."""
    fail(f"ERROR: (gcloud.{command.replace(' ', '.')}) {message}")


def split(tool: str, argv: list[str]) -> tuple[str, list[str], dict[str, list[str]]]:
    """(subcommand, positional arguments, options) of a call, flags checked."""
    options: dict[str, list[str]] = {}
    if tool == "kubectl" and argv[:1] == ["--namespace"]:
        options["--namespace"] = [argv[1]]
        argv = argv[2:]
    leading = []
    for item in argv:
        if item.startswith("-"):
            break
        leading.append(item)
    known = [" ".join(leading[:n]) for n in range(len(leading), 0, -1)]
    subcommand = next((words for words in known if (tool, words) in FLAGS), None)
    if subcommand is None:
        not_modelled(f"`{tool} {' '.join(leading)}`")
    allowed = FLAGS[(tool, subcommand)]
    rest = argv[len(subcommand.split()) :]
    positional: list[str] = []
    while rest:
        item = rest.pop(0)
        if not item.startswith("-"):
            positional.append(item)
            continue
        name, has_value, value = item.partition("=")
        if name + "=" in allowed:
            options.setdefault(name, []).append(value if has_value else rest.pop(0))
        elif name in allowed and not has_value:
            options.setdefault(name, []).append("")
        else:
            not_modelled(f"the flag {item} of `{tool} {subcommand}`")
    return subcommand, positional, options


def state_path() -> Path:
    return Path(os.environ["STANDIN_STATE"])


def load_state() -> dict:
    path = state_path()
    if path.is_file():
        return json.loads(path.read_text())
    return {"servers": {}, "services": {}, "revisions": {}}


def save_state(state: dict) -> None:
    """Written whole, then moved in place: the routers read it while it changes."""
    path = state_path()
    staged = path.with_name(f".{path.name}.{os.getpid()}")
    staged.write_text(json.dumps(state, indent=1))
    os.replace(staged, path)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_server(port: int) -> int:
    """What the deployed image serves: the project's API, or a broken one."""
    if os.environ.get("STANDIN_SCENARIO") == "broken":
        command = [sys.executable, "-c", BROKEN_SERVER, str(port)]
    else:
        package = next(p.parent.name for p in Path("src").glob("*/__init__.py"))
        command = [".venv/bin/python", "-m", package, "serve", "--host", "127.0.0.1",
                   "--port", str(port)]  # fmt: skip
    process = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    return process.pid


def stop_server(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)


def installed(component: str) -> bool:
    """Whether the runner has this gcloud component (tests/cloud.py, Cloud.env)."""
    return shutil.which(component, path=os.environ.get("STANDIN_COMPONENTS_PATH", "")) is not None


def credentials(variables: tuple[str, ...] = GCLOUD_CREDENTIALS) -> dict | None:
    """The credential file gcloud uses (google-github-actions/auth names it), or None."""
    for name in variables:
        path = Path(os.environ.get(name, ""))
        if os.environ.get(name) and path.is_file():
            return json.loads(path.read_text())
    return None


# --- docker ------------------------------------------------------------------------------


def docker(subcommand: str, positional: list[str], options: dict) -> None:
    """build, push, tag, login, stop: exit 0 (their output is not read by the project)."""
    state = load_state()
    if subcommand == "login":
        sys.stdin.read()
    elif subcommand == "run":
        port = int(options["--publish"][0].split(":")[1])
        state["servers"][options["--name"][0]] = start_server(port)
    elif subcommand == "stop":
        stop_server(state["servers"].pop(positional[0]))
    save_state(state)


# --- gcloud: Cloud Run -------------------------------------------------------------------


def start_router(service: str, tag: str | None) -> tuple[str, int]:
    """A URL of the service (`tag` None: the service's own), answered by `route`."""
    port = free_port()
    code = (f"import sys; sys.path.insert(0, {str(REPO_ROOT)!r}); "
            f"from tests.standins import route; route({port}, {service!r}, {tag!r})")  # fmt: skip
    process = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            break
        time.sleep(0.05)
    return f"http://127.0.0.1:{port}", process.pid


def describe(service: dict, name: str) -> dict:
    """The fields of `gcloud run services describe --format=json` the project reads."""
    return {"metadata": {"name": name}, "status": {"url": service["url"],
                                                   "traffic": service["traffic"]}}  # fmt: skip


def run_deploy(state: dict, name: str, options: dict) -> None:
    service = state["services"].get(name)
    if service is None and "--no-traffic" in options:
        # lib/googlecloudsdk/command_lib/run/config_changes.py, NoTrafficChange
        gcloud_error("run deploy", "--no-traffic not supported when creating a new service.")
    port = free_port()
    revision = f"{name}-{len(state['revisions']) + 1:05d}"
    state["servers"][revision] = start_server(port)
    state["revisions"][revision] = {"port": port}
    if service is None:
        url, pid = start_router(name, None)
        state["servers"][f"{name} router"] = pid
        service = state["services"][name] = {"url": url, "public": False, "traffic": [],
                                             "tags": {}}  # fmt: skip
    if "--allow-unauthenticated" in options:
        service["public"] = True
    elif "--no-allow-unauthenticated" in options:
        service["public"] = False
    new = {"revisionName": revision, "percent": 0}
    if "--no-traffic" not in options:  # the new revision takes all the traffic
        for entry in service["traffic"]:
            entry["percent"] = 0
        new["percent"] = 100
    for tag in options.get("--tag", []):
        if tag not in service["tags"]:
            url, pid = start_router(name, tag)
            state["servers"][f"{name} {tag}"] = pid
            service["tags"][tag] = {"url": url}
        service["tags"][tag]["revision"] = revision
        for entry in service["traffic"]:
            if entry.get("tag") == tag:
                entry.pop("tag")
                entry.pop("url")
        new.update(tag=tag, url=service["tags"][tag]["url"])
    service["traffic"].append(new)


def update_traffic(service: dict, options: dict) -> None:
    traffic = service["traffic"]
    if "--to-latest" in options:
        for entry in traffic:
            entry["percent"] = 100 if entry is traffic[-1] else 0
    for value in options.get("--to-revisions", []):
        revision, percent = value.split("=")
        for entry in traffic:
            entry["percent"] = int(percent) if entry["revisionName"] == revision else 0
    for value in options.get("--to-tags", []):
        tag, percent = value.split("=")
        tagged = [entry for entry in traffic if entry.get("tag") == tag]
        tagged[0]["percent"] = int(percent)
        others = [entry for entry in traffic if entry.get("percent") and entry not in tagged]
        others[0]["percent"] = 100 - int(percent)


def listed_names(state: dict, options: dict) -> list[str]:
    """`run services list --filter=metadata.name=NAME --format=value(metadata.name)`."""
    (wanted,) = options.get("--filter", [""])
    if not wanted.startswith("metadata.name=") or options.get("--format") != [
        "value(metadata.name)"
    ]:
        not_modelled(f"`gcloud run services list` with {options}")
    name = wanted.removeprefix("metadata.name=")
    return [name] if name in state["services"] else []


def cloud_run(subcommand: str, positional: list[str], options: dict) -> None:
    state = load_state()
    if subcommand == "run services list":
        names = listed_names(state, options)
        print("\n".join(names))
        if not names:  # lib/googlecloudsdk/calliope/base.py: log.status, on stderr
            print("Listed 0 items.", file=sys.stderr)
        return
    name = positional[0]
    service = state["services"].get(name)
    if subcommand == "run services describe":
        if service is None:
            # lib/surface/run/services/describe.py: ArgumentError, exit status 1
            gcloud_error("run services describe", f"Cannot find service [{name}]")
        print(json.dumps(describe(service, name)))
        return
    if subcommand == "run deploy":
        run_deploy(state, name, options)
    elif subcommand == "run services update-traffic":
        if service is None:
            gcloud_error("run services update-traffic", f"Cannot find service [{name}]")
        update_traffic(service, options)
    save_state(state)


def base64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def identity_token(audience: str, email: str | None) -> str:
    """A JWT shaped as Google's (header, payload, signature); only the shape and claims count."""
    now = int(time.time())
    claims = {"iss": GOOGLE_ISSUER, "aud": audience, "sub": "100000000000000000001",
              "iat": now, "exp": now + 3600}  # fmt: skip
    if email:
        claims.update(email=email, email_verified=True)
    header = {"alg": "RS256", "typ": "JWT"}
    parts = [json.dumps(header).encode(), json.dumps(claims).encode(), b"stand-in signature"]
    return ".".join(base64url(part) for part in parts)


def print_identity_token(options: dict) -> None:
    """The rules of lib/surface/auth/print_identity_token.py for the credentials."""
    command = "auth print-identity-token"
    impersonated = options.get("--impersonate-service-account", [None])[0]
    audiences = options.get("--audiences", [None])[0]
    if impersonated:  # calliope's warning for the global flag (checked here)
        print("WARNING: This command is using service account impersonation. All API calls "
              f"will be executed as [{impersonated}].", file=sys.stderr)  # fmt: skip
    found = credentials()
    if found is None:
        gcloud_error(command, NO_ACCOUNT)
    if found.get("type") != "external_account":
        not_modelled(f"`gcloud {command}` with {found.get('type')} credentials")
    # Workload identity federation credentials are no service account of their own
    # (lib/googlecloudsdk/command_lib/auth/auth_util.py, ValidIdTokenCredential): only
    # an impersonated service account can mint an identity token.
    if audiences and not impersonated:
        gcloud_error(command, "Invalid account type for `--audiences`. Requires valid service "
                              "account.")  # fmt: skip
    if "--include-email" in options and not impersonated:
        gcloud_error(command, "Invalid account type for `--include-email`. Requires an "
                              "impersonate service account.")  # fmt: skip
    if not impersonated:
        gcloud_error(command, "No identity token can be obtained from the current credentials.")
    if not audiences:
        not_modelled(f"`gcloud {command}` without --audiences")
    email = impersonated if "--include-email" in options else None
    print(identity_token(audiences, email))


def get_credentials(positional: list[str]) -> None:
    """Fetching, the plugin check, the kubeconfig entry: stderr, exit 0 (lib/surface/
    container/clusters/get_credentials.py, lib/googlecloudsdk/api_lib/container/kubeconfig.py)."""
    print("Fetching cluster endpoint and auth data.", file=sys.stderr)
    if not installed("gke-gcloud-auth-plugin"):
        print(NO_AUTH_PLUGIN_WARNING, file=sys.stderr)
    print(f"kubeconfig entry generated for {positional[0]}.", file=sys.stderr)


def gcloud(subcommand: str, positional: list[str], options: dict) -> None:
    """`auth configure-docker` only writes docker's configuration: no account needed."""
    needs_account = subcommand.startswith(("run ", "container "))
    if needs_account and credentials() is None:
        gcloud_error(subcommand, NO_ACCOUNT)
    if subcommand.startswith("run "):
        cloud_run(subcommand, positional, options)
    elif subcommand == "auth print-identity-token":
        print_identity_token(options)
    elif subcommand == "container clusters get-credentials":
        get_credentials(positional)


# --- Cloud Run's front end: IAM, then the traffic split ----------------------------------


def identity_problem(headers, audience: str) -> str | None:
    """Why Cloud Run's IAM refuses the request, or None.

    Cloud Run reads the identity token from X-Serverless-Authorization when it
    is there, else from Authorization (Cloud Run docs, Authenticating
    service-to-service: "If both headers are provided, only the
    X-Serverless-Authorization header is checked"); its `aud` must be the
    service's URL (Cloud Run docs, Set custom audiences).
    """
    raw = headers.get("X-Serverless-Authorization") or headers.get("Authorization") or ""
    scheme, _, token = raw.partition(" ")
    parts = token.split(".")
    if scheme != "Bearer" or len(parts) != 3:
        return "no identity token"
    try:
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except ValueError:
        return "not a JWT"
    if claims.get("iss") != GOOGLE_ISSUER or claims.get("aud") != audience:
        return f"a token for {claims.get('aud')!r}, not for {audience}"
    return None


def without_signature(value: str) -> str:
    """Cloud Run passes the identity token on without its signature (Authenticating
    service-to-service): an API reading `Authorization` then sees no valid token of its own."""
    scheme, _, token = value.partition(" ")
    return f"{scheme} {'.'.join(token.split('.')[:2])}."


def route(port: int, name: str, tag: str | None) -> None:
    """Serve one URL of a Cloud Run service until stopped."""

    class FrontEnd(http.server.BaseHTTPRequestHandler):
        def handle_any(self) -> None:
            state = load_state()
            service = state["services"][name]
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if not service["public"] and identity_problem(self.headers, service["url"]):
                page = FORBIDDEN_PAGE.format(path=self.path.split("?")[0]).encode()
                self.reply(403, [("Content-Type", "text/html; charset=UTF-8")], page)
                return
            if tag is not None:
                revision = service["tags"][tag]["revision"]
            else:
                serving = [e for e in service["traffic"] if e["percent"]]
                weights = [e["percent"] for e in serving]
                revision = random.choices(serving, weights)[0]["revisionName"]
            headers = {k: v for k, v in self.headers.items()
                       if k.lower() not in ("host", "content-length", "connection")}  # fmt: skip
            iam = "X-Serverless-Authorization" if "X-Serverless-Authorization" in headers else (
                "Authorization")  # fmt: skip
            if not service["public"] and iam in headers:
                headers[iam] = without_signature(headers[iam])
            upstream = http.client.HTTPConnection(
                "127.0.0.1", state["revisions"][revision]["port"], timeout=60
            )
            try:
                upstream.request(self.command, self.path, body or None, headers)
                answer = upstream.getresponse()
                data = answer.read()
            except OSError:  # the revision's container is still starting
                self.reply(503, [("Content-Type", "text/plain")], b"Service Unavailable")
                return
            finally:
                upstream.close()
            hop = ("content-length", "transfer-encoding", "connection")
            kept = [(k, v) for k, v in answer.getheaders() if k.lower() not in hop]
            self.reply(answer.status, kept, data)

        def reply(self, status: int, headers: list[tuple[str, str]], data: bytes) -> None:
            self.send_response(status)
            for key, value in headers:
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_DELETE = handle_any

        def log_message(self, *args: object) -> None:
            pass

    http.server.ThreadingHTTPServer(("127.0.0.1", port), FrontEnd).serve_forever()


# --- kubectl -------------------------------------------------------------------------------


def kubectl(subcommand: str, positional: list[str], options: dict) -> None:
    if not installed("gke-gcloud-auth-plugin"):
        if subcommand == "apply":  # the first manifest's validation needs the server
            first = sorted(Path(options["--filename"][0]).glob("*.yaml"))[0]
            fail(f'error: error validating "{first}": error validating data: failed to '
                 f'download openapi: Get "{CLUSTER_ENDPOINT}/openapi/v2?timeout=32s": '
                 f"{PLUGIN_NOT_FOUND}; if you choose to ignore these errors, turn validation "
                 "off with --validate=false")  # fmt: skip
        fail(f"Unable to connect to the server: {PLUGIN_NOT_FOUND}")
    if subcommand == "apply":
        folder = Path(options["--filename"][0])
        images = [line.split("image:")[1].split("#")[0].strip()
                  for manifest in sorted(folder.glob("*.yaml"))
                  for line in manifest.read_text().splitlines() if "image:" in line]  # fmt: skip
        record({"tool": "kubectl", "subcommand": "applied images", "argv": images})
    elif subcommand == "rollout status" and os.environ.get("STANDIN_SCENARIO") == "rollout-fails":
        # k8s.io/kubectl/pkg/polymorphichelpers/rollout_status.go, behind kubectl's
        # "error: " (k8s.io/kubectl/pkg/cmd/util/helpers.go, CheckErr): exit 1
        deployment = positional[0].split("/")[-1]
        fail(f'error: deployment "{deployment}" exceeded its progress deadline')
    elif subcommand == "port-forward":
        port = int(positional[1].split(":")[0])
        pid = start_server(port)
        signal.signal(signal.SIGTERM, lambda *_: (stop_server(pid), sys.exit(0)))
        while True:
            time.sleep(0.2)


# --- bq: the table a Cloud Logging sink fills ----------------------------------------------


def merged_schema(values: list) -> dict:
    """Field -> sub-schema (None for a leaf), in order of first appearance, from values seen.

    A field gets its column with the first line that carries a value for it
    (assumed here: a null, which has no type, makes none).
    """
    schema: dict = {}
    nested: dict[str, list] = {}
    for value in values:
        if not isinstance(value, dict):
            continue
        for key, item in value.items():
            if item is None:
                continue
            if isinstance(item, dict):
                nested.setdefault(key, []).append(item)
                schema.setdefault(key, {})
            else:
                schema.setdefault(key, None)
    for key, items in nested.items():
        schema[key] = merged_schema(items)
    return schema


def in_schema(value: object, schema: dict | None) -> object:
    """A value as TO_JSON_STRING gives a record: every column, null where the line had none."""
    if schema is None or not isinstance(value, dict):
        return value if schema is None else None
    return {key: in_schema(value.get(key), sub) for key, sub in schema.items()}


def bigquery_type(key: str, sub: dict | None, sample: object) -> str:
    if sub is not None:
        return "STRUCT<...>"
    if isinstance(sample, bool):
        return "BOOL"
    if isinstance(sample, int | float):
        return "FLOAT64"  # the numbers of a JSON payload are doubles
    return "STRING"


def missing_field(sql: str, name: str, schema: dict, entries: list[dict]) -> None:
    """BigQuery's error, as bq prints it: on stdout (bq's frontend/utils/bq_error_utils.py,
    process_error: "Error in query string: %s", return code 1). The text is BigQuery's
    for a field a log sink's jsonPayload record has no column for, e.g. "Field name X
    does not exist in STRUCT<errno FLOAT64, path STRING, method STRING, ...> at [14:26]"
    (mozilla/bigquery-etl pull request 9218)."""
    samples = {}
    for entry in entries:
        for key, value in entry["jsonPayload"].items():
            samples.setdefault(key, value)
    shown = [f"{key} {bigquery_type(key, sub, samples.get(key))}"
             for key, sub in list(schema.items())[:3]]  # fmt: skip
    fields = ", ".join(shown) + (", ..." if len(schema) > 3 else "")
    found = re.search(rf"jsonPayload\.`?{name}\b", sql)
    column = (found.start() if found else 0) + len("jsonPayload.") + 1
    job = f"my-gcp-project:bqjob_r{random.getrandbits(64):016x}_{random.getrandbits(44):011x}_1"
    fail(
        f"Error in query string: Error processing job '{job}': Field name {name} does not "
        f"exist in STRUCT<{fields}> at [1:{column}]",
        1, sys.stdout,
    )  # fmt: skip


def format_timestamp(form: str, moment: datetime) -> str:
    """BigQuery's FORMAT_TIMESTAMP for the elements the project uses (UTC)."""
    utc = moment.astimezone(UTC)
    seconds = f"{utc.second:02d}.{utc.microsecond // 1000:03d}"
    return utc.strftime(form.replace("%E3S", seconds))


def selected(expression: str, entry: dict, schema: dict) -> str | None:
    if expression == "TO_JSON_STRING(jsonPayload)":
        return json.dumps(in_schema(entry["jsonPayload"], schema), separators=(",", ":"))
    stamp = re.fullmatch(r"FORMAT_TIMESTAMP\('([^']+)', timestamp\)", expression)
    if stamp:
        return format_timestamp(stamp.group(1), datetime.fromisoformat(entry["timestamp"]))
    not_modelled(f"the SELECT expression {expression}")
    return None


def bq(subcommand: str, positional: list[str], options: dict) -> None:
    if credentials(CREDENTIAL_VARIABLES) is None:
        fail(f"ERROR: (bq) {NO_ACCOUNT}")
    if options.get("--use_legacy_sql") != ["false"] or options.get("--format") != ["json"]:
        not_modelled("a query that is not standard SQL answered in JSON")
    (sql,) = positional
    kind = re.search(r"jsonPayload\.type = '(\w+)'", sql)
    days = re.search(r"INTERVAL (\d+) DAY", sql)
    select = re.fullmatch(r"SELECT (.+) FROM `[\w.-]+` WHERE .+", sql)
    if kind is None or days is None or select is None:
        not_modelled(f"the query {sql}")
    entries = [json.loads(line) for line in Path(os.environ["STANDIN_BIGQUERY"]).read_text()
               .splitlines()]  # fmt: skip
    schema = merged_schema([entry["jsonPayload"] for entry in entries])
    for name in re.findall(r"jsonPayload\.`?(\w+)", sql):
        if name not in schema:
            missing_field(sql, name, schema, entries)
    items = re.findall(r"(.+?) AS `(\w+)`(?:, |$)", select.group(1))
    since = datetime.now(UTC) - timedelta(days=int(days.group(1)))
    rows = []
    for entry in entries:
        if entry["jsonPayload"].get("type") != kind.group(1):
            continue
        if datetime.fromisoformat(entry["timestamp"]) < since:
            continue
        rows.append({alias: selected(expression, entry, schema) for expression, alias in items})
    print(json.dumps(rows))


# --- the stand-ins' entry point and the harness's side -------------------------------------


def record(entry: dict) -> None:
    with Path(os.environ["STANDIN_LOG"]).open("a") as log:
        log.write(json.dumps(entry) + "\n")


def main(tool: str) -> None:
    subcommand, positional, options = split(tool, sys.argv[1:])
    record({"tool": tool, "subcommand": subcommand, "argv": sys.argv[1:]})
    tools = {"docker": docker, "gcloud": gcloud, "kubectl": kubectl, "bq": bq}
    tools[tool](subcommand, positional, options)


def component(name: str) -> None:
    """gke-gcloud-auth-plugin: an ExecCredential on stdout, as client-go expects."""
    credential = {"kind": "ExecCredential", "apiVersion": "client.authentication.k8s.io/v1beta1",
                  "spec": {}, "status": {"token": "stand-in"}}  # fmt: skip
    print(json.dumps(credential))


def _executables(folder: Path, names: tuple[str, ...], entry: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        script = folder / name
        script.write_text(
            f"#!{sys.executable}\nimport sys\nsys.path.insert(0, {str(REPO_ROOT)!r})\n"
            f"from tests.standins import {entry}\n{entry}({name!r})\n"
        )
        script.chmod(0o755)
    return folder


def install(folder: Path) -> Path:
    """Executables named after the tools, running this file with this Python."""
    return _executables(folder, TOOLS, "main")


def install_components(folder: Path) -> Path:
    """The gcloud components a workflow installs (setup-gcloud's `install_components`)."""
    return _executables(folder, COMPONENTS, "component")


def calls(log: Path) -> list[dict]:
    if not log.is_file():
        return []
    return [json.loads(line) for line in log.read_text().splitlines()]


def stop_all(state: Path) -> None:
    if state.is_file():
        for pid in json.loads(state.read_text())["servers"].values():
            stop_server(pid)
