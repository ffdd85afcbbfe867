"""The generated README and docs work as written, on the paths users take.

Every command of a `console` block (and every command of the README's
tables, once: a table row already run above is not run again) runs in order on
a freshly generated project, as a new user would
type it. Then the data path of docs/data.md (push, clone in another folder,
pull, reproduce), a Windows-style checkout, and a cloud remote without
credentials.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests import cases, helpers

DOC_ORDER = (
    "README.md",
    "docs/data.md",
    "docs/experiments.md",
    "docs/deploy-by-hand.md",
    "docs/delivery.md",
    "docs/serving.md",
    "docs/monitoring.md",
    "docs/canvas.md",
)
# Commands a test here cannot run as written, and where they are proven instead.
NOT_RUN_HERE = {
    "uvx copier update": "updates need the template source: tests/test_upgrade.py",
    "uv run poe serve": "serves until stopped: `poe smoke` and `poe load-test` start it here",
    "uv run poe e2e": "the scheduled slow tests: `poe load-test` runs here, the loop below",
    "uv run poe simulate": "needs a running API: `poe monitoring-smoke` starts one and runs it",
    "uv run poe drift": "needs drift.min_rows logged rows: test_drift.py and the loop",
    "uv run poe retrain-loop": "changes the data and the registry: tests/monitoring/test_loop.py",
}
# Rows of the README's command table that change the registry: a reference list,
# not a walkthrough (a model promoted here would make docs/delivery.md's first
# gate refuse the same model again). docs/delivery.md runs them in order, from a
# project with no champion yet.
README_REGISTRY_ROWS = {
    "uv run poe register", "uv run poe promote", "uv run poe rollback", "uv run poe export"
}  # fmt: skip
DATA_CASE = "l2-github-py311-proprietary-local"  # level 2, GitHub, the default local remote
DELIVERY_CASE = "l3-github-py313-apache-local-container-local"  # level 3 with its defaults
MONITORING_CASE = "l4-github-py312-mit-local-container-local"  # level 4 with its defaults
CONSOLE_BLOCK = re.compile(r"^ *```console\n(?P<body>.*?)^ *```", re.MULTILINE | re.DOTALL)
TABLE_COMMAND = re.compile(r"^\| `(?P<command>uv run [^`]+)` \|", re.MULTILINE)


def documented_commands(project: Path) -> list[tuple[str, str, bool]]:
    """(file, command, from a table) for every runnable command of the docs, in reading order."""
    found = []
    for name in DOC_ORDER:
        path = project / name
        if not path.is_file():
            continue
        text = path.read_text(encoding="utf-8")
        spans = [(m.start(), m["body"].splitlines(), False) for m in CONSOLE_BLOCK.finditer(text)]
        spans += [(m.start(), [m["command"]], True) for m in TABLE_COMMAND.finditer(text)]
        for _, lines, from_table in sorted(spans):
            found += [(name, line.strip(), from_table) for line in lines if line.strip()]
    return found


def skip_reason(
    command: str, source: str = "", from_table: bool = False, already_run: frozenset = frozenset()
) -> str | None:
    if "<" in command and ">" in command:
        return "a placeholder for the reader's own value"
    if from_table and command in already_run:
        return "a reference row the walk already ran as written (e.g. `uv run poe ci`)"
    if from_table and source == "README.md" and command in README_REGISTRY_ROWS:
        return "changes the registry: docs/delivery.md runs it in order"
    return next((why for start, why in NOT_RUN_HERE.items() if command.startswith(start)), None)


def run_as_user(project: Path, command: str) -> subprocess.CompletedProcess:
    env = helpers.user_environment()
    return subprocess.run(
        ["bash", "-c", command], cwd=project, env=env, capture_output=True, text=True,
        timeout=helpers.STEP_TIMEOUT_SECONDS,
    )  # fmt: skip


def fresh_copy(generate, case, tmp_path: Path) -> Path:
    project = tmp_path / "work" / "project"
    shutil.copytree(generate(case), project)
    return project


@pytest.mark.slow
@pytest.mark.parametrize(
    "case",
    [
        cases.BY_ID["l1-github-py312-mit-local"].param(),
        cases.BY_ID[DATA_CASE].param(),
        # About ten minutes on 2 cores: the scheduled workflow runs it.
        *[
            pytest.param(
                cases.BY_ID[case_id],
                id=case_id,
                marks=[*cases.BY_ID[case_id].marks, pytest.mark.full_matrix],
            )
            for case_id in (DELIVERY_CASE, MONITORING_CASE)
        ],
    ],
)
def test_every_documented_command_runs_as_written(generate, case, tmp_path):
    project = fresh_copy(generate, case, tmp_path)
    commands = documented_commands(project)
    assert len(commands) > 10, commands
    set_up = len(readme_set_up(project))
    ran: list[str] = []
    for index, (source, command, from_table) in enumerate(commands):
        if index == set_up:
            assert_doctor_after_set_up(project, case.level)
        if skip_reason(command, source, from_table, frozenset(ran)):
            continue
        ran.append(command)
        result = run_as_user(project, command)
        output = result.stdout + result.stderr
        # git's two ways of saying that nothing is staged (the pointer was committed before).
        nothing_to_commit = command.startswith("git commit") and (
            "nothing to commit" in output or "no changes added to commit" in output
        )
        assert result.returncode == 0 or nothing_to_commit, (
            f"{source}: `{command}` failed\n{output[-4000:]}"
        )
    # Every file the commands wrote is either committed or ignored.
    untracked = helpers.git(project, "status", "--porcelain", "--untracked-files=all")
    assert not [line for line in untracked.splitlines() if line.startswith("??")]


def readme_set_up(project: Path) -> list[str]:
    """The commands of the README's first console block: the set-up."""
    readme = (project / "README.md").read_text(encoding="utf-8")
    block = CONSOLE_BLOCK.search(readme)
    assert block is not None, "the README has no set-up block"
    return [line.strip() for line in block["body"].splitlines() if line.strip()]


def assert_doctor_after_set_up(project: Path, level: int) -> None:
    """After the README's set-up the doctor finds the claimed level, or names the one
    command that gets there (a first champion, from level 3).

    `poe doctor` is the template's tool: uvx installs it from the source and commit
    in .copier-answers.yml, here the tests' snapshot of the template (a local clone,
    offline once uv's cache holds pyyaml)."""
    report = run_as_user(project, "uv run poe doctor")
    text = report.stdout + report.stderr
    assert report.returncode == 0, text
    if level < 3:
        assert f"claimed level {level} (from .copier-answers.yml); meets level {level}" in text
    else:
        assert f"To meet level {level}, run: uv run poe release --promote\n" in text, text


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def pushed_origin(generate, tmp_path_factory) -> Path:
    """A level-2 project set up as the README says, its data pushed to the default remote."""
    case = cases.BY_ID[DATA_CASE]
    project = tmp_path_factory.mktemp("origin") / "project"
    shutil.copytree(generate(case), project)
    for command in (
        "git init",
        "uv run poe ci",
        "git add -A",
        "git commit -q -m start",
        "uv run poe push",
    ):
        result = run_as_user(project, command)
        assert result.returncode == 0, f"{command}: {result.stdout}{result.stderr}"
    return project


@pytest.mark.slow
def test_the_data_reaches_a_clone_in_another_folder(pushed_origin, tmp_path):
    remote = pushed_origin.parent / "project-dvc-storage"
    assert remote.is_dir()  # ../../ from .dvc/: beside the project
    clone = helpers.clone(pushed_origin, tmp_path / "elsewhere" / "project")

    missing = run_as_user(clone, "uv run poe pull")
    assert missing.returncode != 0
    assert f"the folder {tmp_path / 'elsewhere' / 'project-dvc-storage'}" in missing.stderr
    assert "does not exist" in missing.stderr and "remote modify --local" in missing.stderr

    for command in (
        f"uv run dvc remote modify --local storage url {remote}",
        "uv run poe pull",
        "uv run poe pipeline",
    ):
        result = run_as_user(clone, command)
        assert result.returncode == 0, f"{command}: {result.stdout}{result.stderr}"
    raw = "data/raw/dataset.csv"
    assert md5(clone / raw) == md5(pushed_origin / raw)
    assert "Data and pipelines are up to date" in run_as_user(clone, "uv run dvc status").stdout


@pytest.mark.slow
def test_a_windows_checkout_keeps_the_pipeline_up_to_date(pushed_origin, tmp_path):
    """core.autocrlf=true (Git for Windows' default) must not change what DVC hashes."""
    clone = tmp_path / "windows"
    subprocess.run(
        ["git", "-c", "core.autocrlf=true", "clone", "-q", str(pushed_origin), str(clone)],
        check=True,
        capture_output=True,
    )
    helpers.git(clone, "config", "core.autocrlf", "true")
    assert "w/crlf" not in helpers.git(clone, "ls-files", "--eol")
    remote = pushed_origin.parent / "project-dvc-storage"
    for command in (f"uv run dvc remote modify --local storage url {remote}", "uv run poe pull"):
        result = run_as_user(clone, command)
        assert result.returncode == 0, f"{command}: {result.stdout}{result.stderr}"
    assert "Data and pipelines are up to date" in run_as_user(clone, "uv run dvc status").stdout


@pytest.mark.slow
def test_a_cloud_remote_without_credentials_fails_fast_with_the_fix(generate, tmp_path):
    case = cases.BY_ID["l1-gitlab-py311-apache-s3"]
    project = fresh_copy(generate, case, tmp_path)
    home = tmp_path / "empty-home"
    home.mkdir()
    env = helpers.user_environment(HOME=str(home))
    for variable in [name for name in env if name.startswith("AWS_")]:
        del env[variable]
    for command in ("git init -q", "uv run poe sample-data", "git add -A", "git commit -q -m s"):
        subprocess.run(
            ["bash", "-c", command], cwd=project, env=env, check=True, capture_output=True
        )

    # What `git push` runs through the pre-push hook (a guard timeout, not a speed target).
    result = subprocess.run(
        ["uv", "run", "poe", "push"], cwd=project, env=env, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip

    assert result.returncode == 1
    assert "no credentials for the DVC remote 'storage' (s3://my-bucket/" in result.stderr
    assert "SKIP=dvc-pre-push git push" in result.stderr
