"""Run a generated GitLab pipeline's jobs here, as a runner would, up to the cloud boundary.

The configuration is merged from its includes as GitLab merges it
(helpers.gitlab_config). For a pipeline of a given source (a schedule, a run
by hand) and its variables, each job's `rules:` decide whether it runs and
with which variables; a job gets the artifacts and the dotenv report of the
jobs it `needs` (copied from their folders), then its `before_script` and
`script` run as one bash script, as the runner runs them. Each job may run in
a fresh clone (`checkout`), so jobs share only what GitLab passes along.
Steps that install a system tool are checked, not run (helpers.SYSTEM_TOOL_STEPS).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tests import helpers

CLAUSE = re.compile(r"^\$(\w+)\s*(==|!=|=~)\s*(.+)$")


@dataclass
class GitlabJob:
    result: str  # success, failure, skipped (no rule matched)
    folder: Path | None = None
    output: str = ""
    dotenv: dict[str, str] = field(default_factory=dict)


def _value(token: str, variables: dict[str, str]) -> str:
    token = token.strip()
    if token.startswith("$"):
        return variables.get(token[1:], "")
    return token.strip("\"'")


def clause_holds(clause: str, variables: dict[str, str]) -> bool:
    """`$A == "x"`, `$A != $B`, `$A =~ /regex/`: the forms the generated files use."""
    match = CLAUSE.match(clause.strip())
    if match is None:
        raise ValueError(f"rule clause not understood here: {clause!r}")
    name, operator, right = match.groups()
    left = variables.get(name, "")
    if operator == "=~":
        return re.search(right.strip().strip("/"), left) is not None
    equal = left == _value(right, variables)
    return equal if operator == "==" else not equal


def expression_holds(expression: str, variables: dict[str, str]) -> bool:
    return any(
        all(clause_holds(clause, variables) for clause in alternative.split("&&"))
        for alternative in expression.split("||")
    )


def matching_rule(job: dict, variables: dict[str, str]) -> dict | None:
    """The first rule that matches (`changes:` holds in a pipeline with no push), or None."""
    rules = job.get("rules")
    if rules is None:
        return {}
    for rule in rules:
        if "if" not in rule or expression_holds(rule["if"], variables):
            return None if rule.get("when") == "never" else rule
    return None


def read_dotenv(path: Path) -> dict[str, str]:
    if not path.is_file():
        return {}
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
    return {name.strip(): value.strip() for name, value in pairs}


def _needed(job: dict) -> list[str]:
    return [need if isinstance(need, str) else need["job"] for need in job.get("needs", [])]


def copy_artifacts(source: Path, job: dict, target: Path) -> None:
    for pattern in job.get("artifacts", {}).get("paths", []):
        for path in source.glob(pattern.rstrip("/")):
            destination = target / path.relative_to(source)
            if path.is_dir():
                shutil.copytree(path, destination, dirs_exist_ok=True)
            else:
                destination.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, destination)


def script_of(config: dict, job: dict) -> str:
    default_before = config.get("default", {}).get("before_script", [])
    lines = []
    for line in [*job.get("before_script", default_before), *job["script"]]:
        if line in helpers.SYSTEM_TOOL_STEPS:
            tool = helpers.SYSTEM_TOOL_STEPS[line]
            line = f"command -v {tool} >/dev/null"  # provided by the test machine
        lines.append(line)
    return "\n".join(lines)


def run_pipeline(
    project: Path,
    jobs: list[str],
    pipeline_variables: dict[str, str],
    extra_env: dict[str, str] | None = None,
    checkout: Callable[[str], Path] | None = None,
) -> dict[str, GitlabJob]:
    """Run the named jobs, in the order given, in a pipeline with these variables."""
    config = helpers.gitlab_config(project)
    results: dict[str, GitlabJob] = {}
    for name in jobs:
        job = config[name]
        variables = {**{k: str(v) for k, v in config.get("variables", {}).items()},
                     **{k: str(v) for k, v in job.get("variables", {}).items()}}  # fmt: skip
        scope = {**variables, **pipeline_variables}
        rule = matching_rule(job, scope)
        if rule is None:
            results[name] = GitlabJob("skipped")
            continue
        folder = checkout(name) if checkout else project
        for needed in _needed(job):
            if needed in results and results[needed].folder is not None:
                copy_artifacts(results[needed].folder, config[needed], folder)
                variables.update(results[needed].dotenv)
        variables.update({k: str(v) for k, v in rule.get("variables", {}).items()})
        variables = {k: v for k, v in variables.items() if k not in helpers.GITLAB_CACHE_VARIABLES}
        env = {**helpers.user_environment(), "CI": "true", "GITLAB_CI": "true",
               **(extra_env or {}), **variables, **pipeline_variables}  # fmt: skip
        completed = subprocess.run(
            ["bash", "-e", "-o", "pipefail", "-c", script_of(config, job)],
            cwd=folder, env=env, capture_output=True, text=True,
            timeout=helpers.STEP_TIMEOUT_SECONDS,
        )  # fmt: skip
        dotenv_name = job.get("artifacts", {}).get("reports", {}).get("dotenv")
        results[name] = GitlabJob(
            "success" if completed.returncode == 0 else "failure",
            folder,
            (completed.stdout + completed.stderr)[-6000:],
            read_dotenv(folder / dotenv_name) if dotenv_name else {},
        )
    return results
