"""Run a generated GitHub workflow's jobs here, as a runner would, up to the cloud boundary.

Jobs run in order of their `needs`, with their `if:` conditions, `env`,
step outputs ($GITHUB_OUTPUT) and job outputs; a reusable workflow called by
a job (`uses: ./.github/workflows/x.yml`) runs in its place. `run:` steps run
in bash; the local setup action is expanded; other `uses:` steps (checkout,
setup-uv, Google's auth) are what the harness provides. Expressions are
evaluated from a context the test gives (`github`, `secrets`, `vars`).
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
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


def run_steps(
    project: Path, steps: list[dict], context: dict, env: dict, summary: Path, extra_env: dict
) -> JobResult:
    result = JobResult("success")
    step_context: dict[str, Any] = {}
    for step in steps:
        scope = {**context, "steps": step_context, "env": env}
        if not condition(step.get("if"), scope, result.result):
            continue
        uses = step.get("uses", "")
        if uses.startswith("./.github/actions/"):
            action = yaml.safe_load((project / uses / "action.yml").read_text())
            commands = [s["run"] for s in action["runs"]["steps"] if "run" in s]
        elif "run" in step:
            commands = [step["run"]]
        else:
            continue
        step_env = {k: substitute(str(v), scope) for k, v in step.get("env", {}).items()}
        with tempfile.NamedTemporaryFile("w", suffix=".out", delete=False) as output:
            output_path = Path(output.name)
        for command in commands:
            run_env = {**helpers.user_environment(), "CI": "true", "GITHUB_ACTIONS": "true",
                       **extra_env, **env, **step_env, "GITHUB_OUTPUT": str(output_path),
                       "GITHUB_STEP_SUMMARY": str(summary)}  # fmt: skip
            completed = subprocess.run(
                ["bash", "-e", "-o", "pipefail", "-c", substitute(command, scope)],
                cwd=project, env=run_env, capture_output=True, text=True,
                timeout=helpers.STEP_TIMEOUT_SECONDS,
            )  # fmt: skip
            result.steps.append(command)
            if completed.returncode != 0:
                result.result = "failure"
                result.log = (completed.stdout + completed.stderr)[-4000:]
                break
        if "id" in step:
            step_context[step["id"]] = {"outputs": read_outputs(output_path)}
        output_path.unlink(missing_ok=True)
    result.step_outputs = step_context
    return result


def run_workflow(
    project: Path, workflow: str, context: dict, extra_env: dict | None = None
) -> dict[str, JobResult]:
    """Run every job of a workflow file; return each job's result by id."""
    spec = yaml.safe_load((project / ".github" / "workflows" / workflow).read_text())
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
            called = run_workflow(project, Path(job["uses"]).name, context, extra_env)
            failed = any(r.result == "failure" for r in called.values())
            results[job_id] = JobResult("failure" if failed else "success")
            results.update({f"{job_id}/{k}": v for k, v in called.items()})
            continue
        env = {k: substitute(str(v), scope) for k, v in {**spec.get("env", {}),
               **job.get("env", {})}.items()}  # fmt: skip
        outcome = run_steps(project, job["steps"], scope, env, summary, extra_env or {})
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
