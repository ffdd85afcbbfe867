"""Recording stand-ins for docker, gcloud, kubectl and bq: the cloud boundary, and only it.

Installed on PATH under the tools' names (`install`), each call is checked
against the flags the real command accepts for that subcommand, appended to
a log (JSON lines), and given the effect that matters to the project's code:
what runs is the project's own API (`<package> serve` on the exported model
folder), started where the real tool would start a container, a revision or
a pod. STANDIN_SCENARIO=broken makes what is deployed answer 500 to
everything; STANDIN_SCENARIO=rollout-fails makes `kubectl rollout status` fail.
`bq query` answers from STANDIN_BIGQUERY, a JSON-lines file of Cloud Logging
entries (`{"timestamp": ..., "jsonPayload": <a line the API printed>}`), as
the logging sink would have written them to the table: the query's own
SELECT list, `jsonPayload.type` and time window decide what comes back, every
value as text, as `bq --format=json` gives it.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

TOOLS = ("docker", "gcloud", "kubectl", "bq")
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

# Flags each (tool, subcommand) accepts: a name with "=" takes a value.
FLAGS = {
    ("docker", "build"): {"--build-arg=", "--tag=", "--file=", "--platform=", "--target="},
    ("docker", "push"): set(),
    ("docker", "tag"): set(),
    ("docker", "login"): {"--username=", "--password-stdin"},
    ("docker", "run"): {"--detach", "--rm", "--name=", "--read-only", "--tmpfs=", "--env=",
                        "--publish="},
    ("docker", "stop"): set(),
    ("gcloud", "run deploy"): {"--image=", "--tag=", "--no-traffic", "--set-secrets=", "--quiet",
                               "--region=", "--project="},
    ("gcloud", "run services describe"): {"--format=", "--region=", "--project="},
    ("gcloud", "run services update-traffic"): {"--to-tags=", "--to-latest", "--to-revisions=",
                                                "--region=", "--project="},
    ("gcloud", "auth configure-docker"): {"--quiet"},
    ("gcloud", "container clusters get-credentials"): {"--region=", "--project="},
    ("kubectl", "apply"): {"--filename="},
    ("kubectl", "rollout status"): {"--timeout="},
    ("kubectl", "rollout undo"): set(),
    ("kubectl", "port-forward"): set(),
    ("bq", "query"): {"--quiet", "--use_legacy_sql=", "--format=", "--max_rows="},
}  # fmt: skip
CREDENTIAL_VARIABLES = ("CLOUDSDK_AUTH_CREDENTIAL_FILE_OVERRIDE", "GOOGLE_APPLICATION_CREDENTIALS")


def fail(message: str, code: int = 2) -> None:
    print(message, file=sys.stderr)
    sys.exit(code)


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
        fail(f"unknown command {' '.join(leading)!r}")
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
            fail(f"unknown flag: {item}")
    return subcommand, positional, options


def state_path() -> Path:
    return Path(os.environ["STANDIN_STATE"])


def load_state() -> dict:
    path = state_path()
    return json.loads(path.read_text()) if path.is_file() else {"servers": {}, "services": {}}


def save_state(state: dict) -> None:
    state_path().write_text(json.dumps(state, indent=1))


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


def docker(subcommand: str, positional: list[str], options: dict) -> None:
    state = load_state()
    if subcommand == "login":
        sys.stdin.read()
    elif subcommand == "run":
        port = int(options["--publish"][0].split(":")[1])
        state["servers"][options["--name"][0]] = start_server(port)
    elif subcommand == "stop":
        stop_server(state["servers"].pop(positional[0]))
    save_state(state)


def describe(service: dict, name: str) -> dict:
    serving = [entry for entry in service["traffic"] if entry.get("percent")]
    url = serving[0]["url"] if serving else ""
    return {"metadata": {"name": name}, "status": {"url": url, "traffic": service["traffic"]}}


def gcloud(subcommand: str, positional: list[str], options: dict) -> None:
    if not subcommand.startswith("run "):
        return
    state = load_state()
    name = positional[0]
    service = state["services"].get(name)
    if subcommand == "run services describe":
        if service is None:
            fail(f"ERROR: (gcloud.run.services.describe) Service [{name}] could not be found.", 1)
        print(json.dumps(describe(service, name)))
        return
    if subcommand == "run deploy":
        port = free_port()
        revision = f"{name}-{len(state['servers']) + 1:05d}"
        state["servers"][revision] = start_server(port)
        new = {"revisionName": revision, "url": f"http://127.0.0.1:{port}", "tag": "candidate"}
        if service is None:
            state["services"][name] = {"traffic": [{**new, "percent": 100}]}
        else:
            for entry in service["traffic"]:
                entry.pop("tag", None)
            service["traffic"].append({**new, "percent": 0})
    elif subcommand == "run services update-traffic":
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
    save_state(state)


def kubectl(subcommand: str, positional: list[str], options: dict) -> None:
    if subcommand == "apply":
        folder = Path(options["--filename"][0])
        images = [line.split("image:")[1].split("#")[0].strip()
                  for manifest in sorted(folder.glob("*.yaml"))
                  for line in manifest.read_text().splitlines() if "image:" in line]  # fmt: skip
        record({"tool": "kubectl", "subcommand": "applied images", "argv": images})
    elif subcommand == "rollout status" and os.environ.get("STANDIN_SCENARIO") == "rollout-fails":
        fail("error: deployment exceeded its progress deadline", 1)
    elif subcommand == "port-forward":
        port = int(positional[1].split(":")[0])
        pid = start_server(port)
        signal.signal(signal.SIGTERM, lambda *_: (stop_server(pid), sys.exit(0)))
        while True:
            time.sleep(0.2)


def selected_fields(sql: str) -> list[tuple[str, str, bool]]:
    """(alias, jsonPayload field, as JSON text) for each item of the SELECT list."""
    select = sql.split("SELECT", 1)[1].rsplit(" FROM ", 1)[0]
    items = re.findall(r"(.+?) AS `(\w+)`(?:, |$)", select.strip())
    fields = []
    for expression, alias in items:
        found = re.search(r"jsonPayload\.`?(\w+)`?", expression)
        if found is None:
            fail(f"Unrecognized name in the SELECT list: {expression}")
        fields.append((alias, found.group(1), "TO_JSON_STRING" in expression))
    return fields


def as_text(value: object, as_json: bool) -> str | None:
    if value is None:
        return None
    if as_json:
        return json.dumps(value, separators=(",", ":"))
    return value if isinstance(value, str) else json.dumps(value)


def bq(subcommand: str, positional: list[str], options: dict) -> None:
    if not any(Path(os.environ.get(name, "")).is_file() for name in CREDENTIAL_VARIABLES):
        fail("You do not currently have an active account selected.", 1)
    if options.get("--use_legacy_sql") != ["false"] or options.get("--format") != ["json"]:
        fail("the stand-in answers standard SQL in JSON only")
    (sql,) = positional
    kind = re.search(r"jsonPayload\.type = '(\w+)'", sql)
    days = re.search(r"INTERVAL (\d+) DAY", sql)
    if kind is None or days is None:
        fail(f"the stand-in reads one kind of record over a window of days: {sql}")
    since = datetime.now(UTC) - timedelta(days=int(days.group(1)))
    fields = selected_fields(sql)
    rows = []
    for line in Path(os.environ["STANDIN_BIGQUERY"]).read_text().splitlines():
        entry = json.loads(line)
        payload = entry["jsonPayload"]
        if payload.get("type") != kind.group(1):
            continue
        if datetime.fromisoformat(entry["timestamp"]) < since:
            continue
        rows.append({alias: as_text(payload.get(name), as_json) for alias, name, as_json in fields})
    print(json.dumps(rows))


def record(entry: dict) -> None:
    with Path(os.environ["STANDIN_LOG"]).open("a") as log:
        log.write(json.dumps(entry) + "\n")


def main(tool: str) -> None:
    subcommand, positional, options = split(tool, sys.argv[1:])
    record({"tool": tool, "subcommand": subcommand, "argv": sys.argv[1:]})
    tools = {"docker": docker, "gcloud": gcloud, "kubectl": kubectl, "bq": bq}
    tools[tool](subcommand, positional, options)


def install(folder: Path) -> Path:
    """Executables named after the tools, running this file with this Python."""
    folder.mkdir(parents=True, exist_ok=True)
    for tool in TOOLS:
        script = folder / tool
        script.write_text(
            f"#!{sys.executable}\nimport sys\nsys.path.insert(0, {str(REPO_ROOT)!r})\n"
            f"from tests.standins import main\nmain({tool!r})\n"
        )
        script.chmod(0o755)
    return folder


def calls(log: Path) -> list[dict]:
    if not log.is_file():
        return []
    return [json.loads(line) for line in log.read_text().splitlines()]


def stop_all(state: Path) -> None:
    if state.is_file():
        for pid in json.loads(state.read_text())["servers"].values():
            stop_server(pid)
