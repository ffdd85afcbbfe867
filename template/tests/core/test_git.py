import subprocess
from pathlib import Path

import pytest

from ..package import load

git = load("core.git")


def run(*args: str, cwd: Path) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture
def repository(project, monkeypatch):
    """The tmp project as a git repo on `master`, as plain `git init` makes it on many machines."""
    monkeypatch.setenv("GIT_AUTHOR_NAME", "tests")
    monkeypatch.setenv("GIT_AUTHOR_EMAIL", "tests@example.com")
    monkeypatch.setenv("GIT_COMMITTER_NAME", "tests")
    monkeypatch.setenv("GIT_COMMITTER_EMAIL", "tests@example.com")
    run("init", "-q", "-b", "master", cwd=project.root)
    return project


def test_the_ci_target_branch_comes_first():
    assert git.comparison_base({"GITHUB_BASE_REF": "develop"}) == "origin/develop"
    gitlab = {"CI_MERGE_REQUEST_TARGET_BRANCH_NAME": "release", "CI_DEFAULT_BRANCH": "main"}
    assert git.comparison_base(gitlab) == "origin/release"
    assert git.comparison_base({"DEFAULT_BRANCH": "trunk"}) == "origin/trunk"
    assert git.comparison_base({"CI_DEFAULT_BRANCH": "trunk"}) == "origin/trunk"


def test_outside_ci_the_default_branch_is_found_whatever_its_name(repository):
    run("add", "-A", cwd=repository.root)
    run("commit", "-q", "-m", "start", cwd=repository.root)

    assert git.default_branch() == "master"
    assert git.comparison_base({}) == "master"


def test_a_clone_compares_with_its_origin_default_branch(repository, tmp_path, monkeypatch):
    run("add", "-A", cwd=repository.root)
    run("commit", "-q", "-m", "start", cwd=repository.root)
    clone = tmp_path / "clone"
    run("clone", "-q", str(repository.root), str(clone), cwd=tmp_path)
    monkeypatch.chdir(clone)

    assert git.default_branch() == "master"
    assert git.comparison_base({}) == "origin/master"


def test_commit_and_local_changes(repository):
    assert git.commit() == git.NO_COMMIT  # no commit yet
    assert git.has_local_changes()
    run("add", "-A", cwd=repository.root)
    run("commit", "-q", "-m", "start", cwd=repository.root)
    assert len(git.commit()) == 40
    assert not git.has_local_changes()
    Path("params.yaml").write_text("changed: true\n")
    assert git.has_local_changes()


def test_outside_git_nothing_fails(project):
    assert git.commit() == git.NO_COMMIT
    assert git.default_branch() is None
    assert git.comparison_base({}) == "main"
