"""Run a generated GitHub workflow's jobs here, as a runner would, up to the cloud boundary.

Jobs run in order of their `needs`, with their `if:` conditions, `env`,
step outputs ($GITHUB_OUTPUT) and job outputs; a reusable workflow called by
a job (`uses: ./.github/workflows/x.yml`) runs in its place. `run:` steps run
in bash; the local setup action is expanded; the artifact actions and
Google's auth are played here (below); other `uses:` steps (checkout,
setup-uv, setup-gcloud) are what the harness provides. Expressions are
evaluated from a context the test gives (`github`, `secrets`, `vars`,
`inputs`); a called workflow gets its `with:` as `inputs` and its `secrets:`
as `secrets`, as on GitHub.

A workflow is checked before any job runs: a workflow, job or step key, an
action or an action input the player does not play is refused with a
NotPlayed error naming it (check_workflow), unless it is listed below as
accepted with the reason it changes nothing here.

By default every job runs in the project's folder. With a `Runner` whose
`checkout` gives each job a fresh clone, jobs share nothing but what a
runner shares: job outputs, artifacts (upload-artifact copies files into the
run's store, download-artifact copies them back) and outside services.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests import helpers

EXPRESSION = re.compile(r"\$\{\{\s*(.+?)\s*\}\}")
NAME = re.compile(r"(?<![\w'.])([A-Za-z_][\w-]*(?:\.[\w-]+)+|[a-z]+\(\)|true|false)")


@dataclass
class JobResult:
    result: str  # success, failure, skipped
    outputs: dict[str, str] = field(default_factory=dict)
    steps: list[str] = field(default_factory=list)  # the commands that ran
    log: str = ""  # the failed command's output
    step_outputs: dict[str, Any] = field(default_factory=dict)
    folder: Path | None = None  # where the job ran


@dataclass
class Runner:
    """Where jobs run (`checkout(job id)`: a fresh clone; None: the project) and the artifacts."""

    artifacts: Path
    checkout: Callable[[str], Path] | None = None

    def folder(self, project: Path, job_id: str) -> Path:
        return self.checkout(job_id) if self.checkout else project


def lookup(context: dict, dotted: str) -> Any:
    node: Any = context
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return ""
        node = node[part]
    return node


def evaluate(expression: str, context: dict, status: str = "success") -> Any:
    """A GitHub expression: names, literals, == != && || !, success()/failure()/always()."""
    functions = {"success()": status == "success", "failure()": status == "failure",
                 "always()": True, "true": True, "false": False}  # fmt: skip
    values: list[Any] = []

    def name(match: re.Match) -> str:
        token = match.group(1)
        values.append(functions[token] if token in functions else lookup(context, token))
        return f"_v[{len(values) - 1}]"

    python = NAME.sub(name, expression).replace("&&", " and ").replace("||", " or ")
    python = re.sub(r"!(?!=)", " not ", python)
    return eval(python, {"__builtins__": {}}, {"_v": values})


def substitute(text: str, context: dict) -> str:
    return EXPRESSION.sub(lambda m: str(evaluate(m.group(1), context)), text)


def condition(raw: Any, context: dict, status: str) -> bool:
    if raw is None:
        return status == "success"
    text = str(raw)
    match = EXPRESSION.fullmatch(text.strip())
    return bool(evaluate(match.group(1) if match else text, context, status))


def read_outputs(path: Path) -> dict[str, str]:
    if not path.is_file():
        return {}
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)


# --- What the player plays, and what it accepts without playing ------------------------


class NotPlayed(ValueError):
    """A workflow asks for something this player does not do: refused, not ignored."""


WORKFLOW_KEYS = {"name", "on", "env", "jobs"}
JOB_KEYS = {"name", "needs", "if", "env", "steps", "outputs", "uses", "with", "secrets"}
STEP_KEYS = {"name", "id", "if", "run", "uses", "with", "env", "shell"}
COMPOSITE_STEP_KEYS = {"name", "run", "shell", "uses"}  # the local setup action's
# Keys accepted without being played, and why that changes nothing here.
ACCEPTED = {
    "permissions": "the token's scopes: no step here calls GitHub's API with it",
    "concurrency": "runs here never overlap",
    "runs-on": "every job runs on this machine",
    "timeout-minutes": "every command has the harness's timeout (helpers.STEP_TIMEOUT_SECONDS)",
    "environment": "approvals and protection rules are GitHub settings: nothing waits here",
}
WORKFLOW_ACCEPTED = {"permissions", "concurrency"}
JOB_ACCEPTED = {"permissions", "concurrency", "runs-on", "timeout-minutes", "environment"}
STEP_ACCEPTED = {"timeout-minutes"}
# Actions played here (play_action), with the inputs they play or accept.
PLAYED_ACTIONS = {
    "actions/upload-artifact": {"name", "path", "if-no-files-found",
                                "retention-days"},  # retention: GitHub's storage only
    "actions/download-artifact": {"name", "path"},
    "google-github-actions/auth": {"workload_identity_provider", "service_account"},
}  # fmt: skip
# Actions whose effect the harness provides, with the inputs that change nothing here.
PROVIDED_ACTIONS = {
    # The runner's fresh clone (Runner.checkout) has the whole history and no credentials.
    "actions/checkout": {"persist-credentials", "fetch-depth"},
    "astral-sh/setup-uv": set(),  # uv on the test machine's PATH, with its shared cache
    # The stand-ins first on PATH, and those of the `install_components` the
    # workflow names (tests/cloud.py's setup_gcloud_components).
    "google-github-actions/setup-gcloud": {"install_components"},
}
SHELLS = {"bash"}  # run: steps run in bash -e -o pipefail, as GitHub's `bash` shell


def _refuse(where: str, key: object) -> NotPlayed:
    return NotPlayed(f"{where}: `{key}` is not played by tests/workflows.py")


def _check_keys(where: str, mapping: dict, played: set[str], accepted: set[str]) -> None:
    for key in mapping:
        name = "on" if key is True else key  # YAML 1.1 reads `on:` as true
        if name not in played and name not in accepted:
            raise _refuse(where, name)


def _check_uses(where: str, uses: str, inputs: dict) -> None:
    action = uses.split("@")[0]
    known = {**PLAYED_ACTIONS, **PROVIDED_ACTIONS}
    if uses.startswith("./.github/actions/"):
        return
    if action not in known:
        raise _refuse(where, f"uses: {uses}")
    for name in inputs:
        if name not in known[action]:
            raise _refuse(f"{where} ({action})", f"with: {name}")


def _check_step(where: str, step: dict, played: set[str]) -> None:
    _check_keys(where, step, played, STEP_ACCEPTED)
    if step.get("shell", "bash") not in SHELLS:
        raise _refuse(where, f"shell: {step['shell']}")
    if "uses" in step:
        _check_uses(where, step["uses"], step.get("with", {}) or {})


def check_workflow(project: Path, workflow: str) -> dict:
    """The workflow's spec, once every key, action and input in it is one the player plays."""
    spec = yaml.safe_load((project / ".github" / "workflows" / workflow).read_text())
    _check_keys(workflow, spec, WORKFLOW_KEYS, WORKFLOW_ACCEPTED)
    for job_id, job in spec["jobs"].items():
        where = f"{workflow}: job {job_id}"
        _check_keys(where, job, JOB_KEYS, JOB_ACCEPTED)
        if "uses" in job:
            check_workflow(project, Path(job["uses"]).name)
            continue
        for index, step in enumerate(job["steps"]):
            step_where = f"{where}, step {step.get('name', index)}"
            _check_step(step_where, step, STEP_KEYS)
            uses = step.get("uses", "")
            if uses.startswith("./.github/actions/"):
                action = yaml.safe_load((project / uses / "action.yml").read_text())
                if action["runs"].get("using") != "composite":
                    raise _refuse(f"{step_where} ({uses})", f"using: {action['runs'].get('using')}")
                for inner in action["runs"]["steps"]:
                    _check_step(f"{step_where} ({uses})", inner, COMPOSITE_STEP_KEYS)
    return spec


# --- The actions played here --------------------------------------------------------


def _paths(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def upload_artifact(folder: Path, inputs: dict, runner: Runner) -> str | None:
    """Copy the files into the run's store, below their least common folder (as the action)."""
    found = [folder / name for name in _paths(inputs["path"]) if (folder / name).is_file()]
    if not found:
        missing = inputs.get("if-no-files-found", "warn")
        return f"upload-artifact {inputs['name']}: no files found" if missing == "error" else None
    root = Path(os.path.commonpath([path.parent for path in found]))
    store = runner.artifacts / inputs["name"]
    for path in found:
        target = store / path.relative_to(root)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)
    return None


def download_artifact(folder: Path, inputs: dict, runner: Runner) -> str | None:
    store = runner.artifacts / inputs["name"]
    if not store.is_dir():
        return f"download-artifact: Unable to download artifact(s): {inputs['name']} not found"
    shutil.copytree(store, folder / inputs.get("path", "."), dirs_exist_ok=True)
    return None


def google_auth(folder: Path, inputs: dict, job_env: dict) -> None:
    """What google-github-actions/auth leaves: a credentials file, named in the job's env."""
    path = folder / "gha-creds-harness.json"
    provider, account = inputs.get("workload_identity_provider"), inputs.get("service_account")
    credentials = {"type": "external_account", "audience": provider, "service_account": account}
    path.write_text(json.dumps(credentials))
    for name in ("GOOGLE_APPLICATION_CREDENTIALS", "CLOUDSDK_AUTH_CREDENTIAL_FILE_OVERRIDE",
                 "GOOGLE_GHA_CREDS_PATH"):  # fmt: skip
        job_env[name] = str(path)


def play_action(uses: str, folder: Path, inputs: dict, job_env: dict, runner: Runner) -> str | None:
    """Play an action the harness knows; return an error message, or None."""
    name = uses.split("@")[0]
    if name == "actions/upload-artifact":
        return upload_artifact(folder, inputs, runner)
    if name == "actions/download-artifact":
        return download_artifact(folder, inputs, runner)
    if name == "google-github-actions/auth":
        google_auth(folder, inputs, job_env)
    return None


# --- Jobs and workflows ----------------------------------------------------------------


def read_environment_file(path: Path, job_env: dict) -> None:
    """NAME=value lines a step appended to $GITHUB_ENV: the next steps' environment."""
    for name, value in read_outputs(path).items():
        job_env[name] = value


def run_steps(
    folder: Path, steps: list[dict], context: dict, env: dict, summary: Path, extra_env: dict,
    runner: Runner,
) -> JobResult:  # fmt: skip
    result = JobResult("success", folder=folder)
    step_context: dict[str, Any] = {}
    job_env = dict(env)
    environment_file = folder.parent / f"{folder.name}.github-env"
    for step in steps:
        scope = {**context, "steps": step_context, "env": job_env}
        if not condition(step.get("if"), scope, result.result):
            continue
        uses = step.get("uses", "")
        if uses.startswith("./.github/actions/"):
            action = yaml.safe_load((folder / uses / "action.yml").read_text())
            commands = [s["run"] for s in action["runs"]["steps"] if "run" in s]
        elif "run" in step:
            commands = [step["run"]]
        else:
            inputs = {k: substitute(str(v), scope) for k, v in step.get("with", {}).items()}
            error = play_action(uses, folder, inputs, job_env, runner)
            if error is not None:
                result.result, result.log = "failure", error
            continue
        step_env = {k: substitute(str(v), scope) for k, v in step.get("env", {}).items()}
        with tempfile.NamedTemporaryFile("w", suffix=".out", delete=False) as output:
            output_path = Path(output.name)
        for command in commands:
            run_env = {**helpers.user_environment(), "CI": "true", "GITHUB_ACTIONS": "true",
                       **extra_env, **job_env, **step_env, "GITHUB_OUTPUT": str(output_path),
                       "GITHUB_ENV": str(environment_file),
                       "GITHUB_STEP_SUMMARY": str(summary)}  # fmt: skip
            completed = subprocess.run(
                ["bash", "-e", "-o", "pipefail", "-c", substitute(command, scope)],
                cwd=folder, env=run_env, capture_output=True, text=True,
                timeout=helpers.STEP_TIMEOUT_SECONDS,
            )  # fmt: skip
            result.steps.append(command)
            read_environment_file(environment_file, job_env)
            if completed.returncode != 0:
                result.result = "failure"
                result.log = (completed.stdout + completed.stderr)[-4000:]
                break
        if "id" in step:
            step_context[step["id"]] = {"outputs": read_outputs(output_path)}
        output_path.unlink(missing_ok=True)
    environment_file.unlink(missing_ok=True)
    result.step_outputs = step_context
    return result


def called_context(caller: dict, job: dict, workflow: dict) -> dict:
    """A called workflow's context: the caller's `with:` as inputs, its `secrets:` only."""
    triggers = workflow.get("on", workflow.get(True, {})) or {}
    declared = (triggers.get("workflow_call") or {}).get("inputs", {}) or {}
    inputs = {name: spec.get("default", "") for name, spec in declared.items()}
    inputs.update({k: substitute(str(v), caller) for k, v in job.get("with", {}).items()})
    given = job.get("secrets", {})
    secrets = caller["secrets"] if given == "inherit" else {
        k: substitute(str(v), caller) for k, v in (given or {}).items()}  # fmt: skip
    return {**caller, "inputs": inputs, "secrets": secrets}


def run_workflow(
    project: Path, workflow: str, context: dict, extra_env: dict | None = None,
    runner: Runner | None = None,
) -> dict[str, JobResult]:  # fmt: skip
    """Run every job of a workflow file; return each job's result by id."""
    spec = check_workflow(project, workflow)
    runner = runner or Runner(project.parent / "artifacts")
    context = {"inputs": {}, **context}
    results: dict[str, JobResult] = {}
    summary = project.parent / "job-summary.md"
    for job_id, job in spec["jobs"].items():
        needs = job.get("needs", [])
        needs = [needs] if isinstance(needs, str) else needs
        needs_context = {n: {"outputs": results[n].outputs, "result": results[n].result}
                         for n in needs}  # fmt: skip
        scope = {**context, "needs": needs_context}
        status = "failure" if any(results[n].result == "failure" for n in needs) else "success"
        if any(results[n].result == "skipped" for n in needs) and job.get("if") is None:
            status = "skipped"
        if status == "skipped" or not condition(job.get("if"), scope, status):
            results[job_id] = JobResult("skipped")
            continue
        if "uses" in job:
            name = Path(job["uses"]).name
            called_spec = yaml.safe_load((project / ".github" / "workflows" / name).read_text())
            called = run_workflow(project, name, called_context(scope, job, called_spec),
                                  extra_env, runner)  # fmt: skip
            failed = any(r.result == "failure" for r in called.values())
            results[job_id] = JobResult("failure" if failed else "success")
            results.update({f"{job_id}/{k}": v for k, v in called.items()})
            continue
        env = {k: substitute(str(v), scope) for k, v in {**spec.get("env", {}),
               **job.get("env", {})}.items()}  # fmt: skip
        folder = runner.folder(project, job_id)
        outcome = run_steps(folder, job["steps"], scope, env, summary, extra_env or {}, runner)
        step_scope = {**scope, "steps": outcome.step_outputs}
        outcome.outputs = {k: substitute(str(v), step_scope) for k, v in
                           job.get("outputs", {}).items()}  # fmt: skip
        results[job_id] = outcome
    return results


def environment_context(project: Path, **secrets: str) -> dict:
    """A push to the default branch, by a user, with the given secrets."""
    return {
        "github": {
            "ref_name": "main",
            "event": {"repository": {"default_branch": "main"}},
            "token": "github-token",
            "repository": "team/project",
            "actor": "ana",
        },
        "secrets": secrets,
        "vars": {"GCP_WORKLOAD_IDENTITY_PROVIDER": "pool", "GCP_SERVICE_ACCOUNT": "sa@example"},
        "env": dict(os.environ),
    }
