"""Shared fixtures: a committed snapshot of the template, and generated projects.

Generating a project takes about a second and running its CI tens of seconds,
so every generated case is built once per session and shared by the tests that
only read it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests import helpers

# Projects that tests run must find uv's cache, and never phone home.
os.environ.setdefault("DVC_NO_ANALYTICS", "1")
os.environ.setdefault("UV_PYTHON_DOWNLOADS", "never")
for name, value in helpers.GIT_IDENTITY.items():
    os.environ.setdefault(name, value)


@pytest.fixture(scope="session")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The template as it is in the working tree, committed to a throwaway git repo.

    Copier needs a git repo to update; a snapshot keeps the tests independent of
    the developer's uncommitted changes and of the real repo's tags.
    """
    snapshot = tmp_path_factory.mktemp("template")
    for relative in helpers.template_files(helpers.REPO_ROOT):
        target = snapshot / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(helpers.REPO_ROOT / relative, target)
    helpers.git(snapshot, "init", "-q", "-b", "main")
    helpers.commit_all(snapshot, "template snapshot")
    helpers.git(snapshot, "tag", "v1.0.0")
    return snapshot


@pytest.fixture(scope="session")
def generate(
    template: Path, tmp_path_factory: pytest.TempPathFactory
) -> Callable[[str, dict], Path]:
    """Generate (once per session) the project named `case_id` from `answers`."""
    cache: dict[str, Path] = {}

    def _generate(case_id: str, answers: dict) -> Path:
        if case_id not in cache:
            destination = tmp_path_factory.mktemp(case_id) / "project"
            helpers.copy_template(template, destination, answers)
            cache[case_id] = destination
        return cache[case_id]

    return _generate


@pytest.fixture(scope="session")
def committed_clone(
    generate: Callable[[str, dict], Path], tmp_path_factory: pytest.TempPathFactory
) -> Callable[[str, dict], Path]:
    """Generate a case, commit it on `main`, and return a fresh clone of it."""
    cache: dict[str, Path] = {}

    def _clone(case_id: str, answers: dict) -> Path:
        if case_id not in cache:
            project = generate(case_id, answers)
            if not (project / ".git").exists():
                helpers.git(project, "init", "-q", "-b", "main")
                helpers.commit_all(project, "Start from mlops-ladder")
            clone = tmp_path_factory.mktemp(f"{case_id}-clone") / "project"
            subprocess.run(
                ["git", "clone", "-q", str(project), str(clone)], check=True, capture_output=True
            )
            cache[case_id] = clone
        return cache[case_id]

    return _clone
