"""What the tests do to a template and to generated projects, as plain functions."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import copier
import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent
# Tools installed in the template repo's own environment (zizmor, check-jsonschema).
TOOLS_BIN = Path(sys.executable).parent
GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "mlops-ladder tests",
    "GIT_AUTHOR_EMAIL": "tests@example.com",
    "GIT_COMMITTER_NAME": "mlops-ladder tests",
    "GIT_COMMITTER_EMAIL": "tests@example.com",
}
STEP_TIMEOUT_SECONDS = 900

# Answer combinations, by readable id. Each runs its own generated CI in
# test_generated_ci.py; the cheap checks in test_invariants.py cover them all.
CASES: dict[str, dict] = {
    "level1-defaults": {},  # no answer at all: the README's main command
    "level1-gitlab": {"project_name": "Churn Prediction", "ci": "gitlab"},
    "level1-no-ci": {"project_name": "Churn Prediction", "ci": "none"},
    "level1-s3-remote": {"project_name": "Churn Prediction", "data_remote": "s3"},
    "level1-gcs-remote-unicode-name": {
        "project_name": "Prévision des Ventes Été",
        "data_remote": "gcs",
        "license": "Apache-2.0",
        "python_version": "3.11",
    },
    "level2-defaults": {"project_name": "Churn Prediction", "level": 2},
    "level2-gitlab": {"project_name": "Churn Prediction", "level": 2, "ci": "gitlab"},
    "level2-no-ci-proprietary": {
        "project_name": "Churn Prediction",
        "level": 2,
        "ci": "none",
        "license": "Proprietary",
        "python_version": "3.13",
    },
}


def git(path: Path, *args: str) -> str:
    result = subprocess.run(["git", *args], cwd=path, check=True, capture_output=True, text=True)
    return result.stdout


def commit_all(path: Path, message: str) -> None:
    git(path, "add", "-A")
    git(path, "commit", "-q", "--no-verify", "-m", message)


def template_files(repo: Path) -> list[str]:
    """Files of the template repo: tracked or new, not ignored."""
    listed = git(repo, "ls-files", "--cached", "--others", "--exclude-standard", "-z")
    return [name for name in listed.split("\0") if name and (repo / name).is_file()]


def copy_template(template: Path, destination: Path, answers: dict) -> None:
    copier.run_copy(
        str(template),
        destination,
        data=answers,
        defaults=True,
        vcs_ref="HEAD",
        unsafe=True,
        quiet=True,
    )


def update_project(project: Path, answers: dict) -> None:
    copier.run_update(
        project,
        data=answers,
        defaults=True,
        overwrite=True,
        unsafe=True,
        vcs_ref="HEAD",
        quiet=True,
    )


def project_files(project: Path) -> set[str]:
    """Every file of a generated project, as posix paths relative to it."""
    return {
        path.relative_to(project).as_posix()
        for path in project.rglob("*")
        if path.is_file() and ".git" not in path.relative_to(project).parts
    }


def tracked_files(project: Path) -> set[str]:
    return set(git(project, "ls-files").split())


# --- The generated CI, executed here --------------------------------------------


@dataclass
class Step:
    """One shell step of a generated CI file, with the environment it declares."""

    origin: str
    command: str
    env: dict[str, str] = field(default_factory=dict)


def github_steps(project: Path) -> list[Step]:
    steps = []
    for workflow_path in sorted((project / ".github" / "workflows").glob("*.yml")):
        workflow = yaml.safe_load(workflow_path.read_text(encoding="utf-8"))
        for job_id, job in workflow["jobs"].items():
            for index, step in enumerate(job["steps"]):
                if "run" not in step:
                    continue  # `uses:` steps (checkout, setup-uv): the harness provides them
                env = {**workflow.get("env", {}), **job.get("env", {}), **step.get("env", {})}
                origin = f"{workflow_path.name}:{job_id}:{step.get('name', index)}"
                steps.append(Step(origin, step["run"], {k: str(v) for k, v in env.items()}))
    return steps


# GitLab's `cache:` keeps these folders between jobs; here the harness's own
# uv cache plays that part, so the cache location variables are not applied.
GITLAB_CACHE_VARIABLES = {"UV_CACHE_DIR", "PRE_COMMIT_HOME"}
GITLAB_RESERVED_KEYS = {
    "image", "variables", "stages", "include", "cache", "default", "workflow",
    "before_script", "after_script", "services",
}  # fmt: skip


def gitlab_config(project: Path) -> dict:
    """.gitlab-ci.yml with its `include: local:` files merged in."""
    config = yaml.safe_load((project / ".gitlab-ci.yml").read_text(encoding="utf-8"))
    for include in config.get("include", []):
        included = yaml.safe_load((project / include["local"]).read_text(encoding="utf-8"))
        config.update(included)
    return config


def gitlab_steps(project: Path) -> list[Step]:
    config = gitlab_config(project)
    stages = config.get("stages", ["test"])
    jobs = {
        name: job
        for name, job in config.items()
        if name not in GITLAB_RESERVED_KEYS and isinstance(job, dict) and "script" in job
    }
    ordered = sorted(jobs.items(), key=lambda item: stages.index(item[1].get("stage", "test")))
    steps = []
    for name, job in ordered:
        variables = {**config.get("variables", {}), **job.get("variables", {})}
        env = {k: str(v) for k, v in variables.items() if k not in GITLAB_CACHE_VARIABLES}
        lines = config.get("before_script", []) + job.get("before_script", []) + job["script"]
        steps.extend(Step(f".gitlab-ci.yml:{name}", line, env) for line in lines)
    return steps


def ci_steps(project: Path) -> list[Step]:
    if (project / ".github" / "workflows").is_dir():
        return github_steps(project)
    if (project / ".gitlab-ci.yml").is_file():
        return gitlab_steps(project)
    raise AssertionError(f"{project} has no CI configuration")


def run_step(project: Path, step: Step, extra_env: dict[str, str] | None = None) -> str:
    """Run one CI step the way the runner would (bash, stop at the first error)."""
    env = {**os.environ, "CI": "true", **step.env, **(extra_env or {})}
    # CI runners write bytecode; without it every step recompiles pandas and co.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    result = subprocess.run(
        ["bash", "-e", "-o", "pipefail", "-c", step.command],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=STEP_TIMEOUT_SECONDS,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, (
        f"CI step failed ({step.origin}): {step.command}\n--- last output ---\n{output[-6000:]}"
    )
    return output


def run_ci(project: Path) -> dict[str, str]:
    """Run every shell step of the project's CI; return each step's output by origin."""
    summary = project.parent / "github-step-summary.md"
    outputs = {}
    for step in ci_steps(project):
        outputs[f"{step.origin}: {step.command}"] = run_step(
            project, step, {"GITHUB_STEP_SUMMARY": str(summary)}
        )
    return outputs


def run_tool(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run a tool of the template repo's own environment."""
    return subprocess.run(
        [str(TOOLS_BIN / args[0]), *args[1:]], cwd=cwd, capture_output=True, text=True
    )
