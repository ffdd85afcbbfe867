"""What the tests do to a template and to generated projects, as plain functions."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import copier
import yaml

from tests import filemap

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
# Earlier releases, oldest first, by commit: tags may not travel with a clone.
RELEASES = (
    ("0.1.0", "2e09fc2c13cc8f4464da402fcaf4f66f01d96094"),
    ("0.2.0", "a658e6464d1b1fa1ff56cd710124b8c1b6017e1a"),
    ("0.3.0", "17e0eae3469b7d35466395a0ae4913afb2bbc236"),
    ("0.4.0", "07c13239a683fdbeb67ecbf9841a6b9d6b32035f"),
    ("0.5.0", "f9a4c3844d520d96ca0c164494ac0c5e04c7f9b0"),
    ("0.5.1", "400c3c48f0f8a762cfc6994ad5470bd3e4aa1012"),
    ("0.6.0", "66cb9ad82b891ed9eb6057804fe81f4bcb4817d7"),
    ("0.6.1", "c4b0f81031a6313228788f5f8246836e911421b4"),
    ("0.7.0", "2c338308969ae072112e507e0100e926c4486fa2"),
)
PREVIOUS_RELEASE = RELEASES[-1]


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


def current_version() -> str:
    return tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"][
        "version"
    ]


def snapshot_template(destination: Path) -> Path:
    """A git repo holding each earlier release, then the working tree, each tagged.

    Copier updates between tags, as users do; the working tree (uncommitted
    changes included) is the newest version.
    """
    destination.mkdir(parents=True)
    git(destination, "init", "-q", "-b", "main")
    for version, commit in RELEASES:
        archive = subprocess.run(
            ["git", "archive", commit], cwd=REPO_ROOT, check=True, capture_output=True
        ).stdout
        git(destination, "rm", "-rq", "--ignore-unmatch", ".")
        subprocess.run(["tar", "-x"], cwd=destination, input=archive, check=True)
        commit_all(destination, f"release {version}")
        git(destination, "tag", f"v{version}")
    git(destination, "rm", "-rq", ".")
    for relative in template_files(REPO_ROOT):
        target = destination / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO_ROOT / relative, target)
    commit_all(destination, "working tree")
    git(destination, "tag", f"v{current_version()}")
    return destination


def lock_and_commit(project: Path, message: str = "Start from mlops-ladder") -> None:
    """What the README tells a user: lock the dependencies, commit everything."""
    subprocess.run(["uv", "lock", "--quiet"], cwd=project, check=True, capture_output=True)
    if not (project / ".git").exists():
        git(project, "init", "-q")  # plain `git init`: the branch name is the machine's
    commit_all(project, message)


def clone(project: Path, destination: Path) -> Path:
    subprocess.run(
        ["git", "clone", "-q", str(project), str(destination)], check=True, capture_output=True
    )
    return destination


def copy_template(template: Path, destination: Path, answers: dict, vcs_ref: str = "HEAD") -> None:
    copier.run_copy(
        str(template),
        destination,
        data=answers,
        defaults=True,
        vcs_ref=vcs_ref,
        unsafe=True,
        quiet=True,
    )


def update_project(project: Path, answers: dict, vcs_ref: str = "HEAD") -> None:
    copier.run_update(
        project,
        data=answers,
        defaults=True,
        overwrite=True,
        unsafe=True,
        vcs_ref=vcs_ref,
        quiet=True,
    )


def recorded_answers(project: Path) -> dict:
    return yaml.safe_load((project / ".copier-answers.yml").read_text(encoding="utf-8"))


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


def _composite_steps(project: Path, uses: str, origin: str, env: dict) -> list[Step]:
    """The `run:` steps of a local composite action (`uses: ./.github/actions/x`)."""
    action = yaml.safe_load((project / uses / "action.yml").read_text(encoding="utf-8"))
    steps = []
    for index, step in enumerate(action["runs"]["steps"]):
        if "run" in step:
            step_env = {**env, **step.get("env", {})}
            name = f"{origin}>{uses}:{step.get('name', index)}"
            steps.append(Step(name, step["run"], {k: str(v) for k, v in step_env.items()}))
    return steps


def level_parts(project: Path) -> list[str]:
    """The parts each level added to this project, in level order (copier.yml)."""
    return filemap.context(recorded_answers(project))["level_parts"]


def checks_workflows(project: Path) -> list[Path]:
    """The checks workflows (every push and pull request), in level order."""
    return [
        project / ".github" / "workflows" / f"checks-{part}.yml" for part in level_parts(project)
    ]


def github_steps(project: Path, workflows: list[Path] | None = None) -> list[Step]:
    steps = []
    for workflow_path in workflows or checks_workflows(project):
        workflow = yaml.safe_load(workflow_path.read_text(encoding="utf-8"))
        for job_id, job in workflow["jobs"].items():
            for index, step in enumerate(job["steps"]):
                env = {**workflow.get("env", {}), **job.get("env", {}), **step.get("env", {})}
                origin = f"{workflow_path.name}:{job_id}:{step.get('name', index)}"
                uses = step.get("uses", "")
                if uses.startswith("./"):
                    steps.extend(_composite_steps(project, uses, origin, env))
                elif "run" in step:
                    steps.append(Step(origin, step["run"], {k: str(v) for k, v in env.items()}))
                # Other `uses:` steps (checkout, setup-uv): the harness provides them.
    return steps


def ci_steps(project: Path) -> list[Step]:
    """The shell steps of the project's GitHub checks; with no CI service, the local command.

    The step player of the upgrade and adoption tests: every `run:` step in
    order, in one folder (tests/runners.py runs the same workflows with act).
    """
    if (project / ".github" / "workflows").is_dir():
        return github_steps(project)
    if (project / ".gitlab-ci.yml").is_file():
        raise ValueError("GitLab pipelines run with gitlab-ci-local: tests/runners.run_checks")
    return [Step("README: the whole local CI", "uv run poe ci")]


def user_environment(**overrides: str) -> dict[str, str]:
    """The environment of a developer's shell: not CI, bytecode written, the same caches.

    HOME may be overridden (e.g. to hide credentials): uv's cache and pyenv's
    root stay where they are, so nothing is downloaded again.
    """
    env = {k: v for k, v in os.environ.items() if k not in {"CI", "PYTHONDONTWRITEBYTECODE"}}
    env.setdefault("UV_CACHE_DIR", uv_cache_dir())
    env.setdefault("PYENV_ROOT", str(Path.home() / ".pyenv"))
    env.update(overrides)
    return env


def uv_cache_dir() -> str:
    result = subprocess.run(["uv", "cache", "dir"], capture_output=True, text=True, check=True)
    return result.stdout.strip()


# Steps that install a system tool on the runner (root there). Here the tool
# comes with the template's own CI (.ci/run installs promtool), so they are
# checked to be present, not run.
PROMETHEUS_INSTALL = "apt-get install -y -q --no-install-recommends prometheus"
SYSTEM_TOOL_STEPS = {
    f"sudo apt-get update -q && sudo {PROMETHEUS_INSTALL}": "promtool",  # GitHub runner
    f"apt-get update -q && {PROMETHEUS_INSTALL}": "promtool",  # GitLab job (root)
}


def run_step(project: Path, step: Step, extra_env: dict[str, str] | None = None) -> str:
    """Run one CI step the way the runner would (bash, stop at the first error)."""
    if step.command in SYSTEM_TOOL_STEPS:
        tool = SYSTEM_TOOL_STEPS[step.command]
        assert shutil.which(tool), f"{tool} is missing here: .ci/run installs it ({step.origin})"
        return f"{tool}: provided by the test machine"
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


def poe_tasks(project: Path) -> dict[str, object]:
    """Every poe task of the project: pyproject.toml's and those of its included files."""
    pyproject = tomllib.loads((project / "pyproject.toml").read_text(encoding="utf-8"))
    poe = pyproject["tool"]["poe"]
    tasks: dict[str, object] = {}
    for include in poe.get("include", []):
        included = tomllib.loads((project / include).read_text(encoding="utf-8"))
        tasks.update(included["tool"]["poe"]["tasks"])
    tasks.update(poe.get("tasks", {}))
    return tasks


def expand_task(tasks: dict[str, object], name: str) -> list[str]:
    """The named tasks a task runs, in order: sequences of task names are flattened.

    A sequence of inline commands (e.g. `pull`) is one task, as the
    workflows call it by its name.
    """
    task = tasks[name]
    sequence = task if isinstance(task, list) else None
    if isinstance(task, dict) and "sequence" in task:
        sequence = task["sequence"]
    if sequence is None or not all(isinstance(item, str) for item in sequence):
        return [name]
    return [leaf for item in sequence for leaf in expand_task(tasks, item)]
