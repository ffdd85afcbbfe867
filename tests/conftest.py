"""Shared fixtures: a committed snapshot of the template, and generated projects.

Generating a project takes about a second and running its CI tens of seconds,
so every generated case is built once per session and shared by the tests that
only read it.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from tests import helpers
from tests.cases import Case

# Projects that tests run must find uv's cache, and never phone home.
os.environ.setdefault("DVC_NO_ANALYTICS", "1")
os.environ.setdefault("UV_PYTHON_DOWNLOADS", "never")
for name, value in helpers.GIT_IDENTITY.items():
    os.environ.setdefault(name, value)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The full matrix runs only when asked (FULL_MATRIX=1, the scheduled workflow)."""
    if os.environ.get("FULL_MATRIX") == "1":
        return
    skip = pytest.mark.skip(reason="full matrix only: FULL_MATRIX=1 (docs/testing.md)")
    for item in items:
        if "full_matrix" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The template as a git repo: the previous release, then the working tree.

    Copier needs a git repo to update; a snapshot keeps the tests independent of
    the developer's uncommitted changes and of the real repo's tags.
    """
    return helpers.snapshot_template(tmp_path_factory.mktemp("template") / "repo")


@pytest.fixture(scope="session")
def generate(template: Path, tmp_path_factory: pytest.TempPathFactory) -> Callable[[Case], Path]:
    """Generate (once per session) the project of a case."""
    cache: dict[str, Path] = {}

    def _generate(case: Case) -> Path:
        if case.id not in cache:
            destination = tmp_path_factory.mktemp(case.id) / "project"
            helpers.copy_template(template, destination, case.answers)
            cache[case.id] = destination
        return cache[case.id]

    return _generate


@pytest.fixture(scope="session")
def committed_clone(
    generate: Callable[[Case], Path], tmp_path_factory: pytest.TempPathFactory
) -> Callable[[Case], Path]:
    """Generate a case, lock and commit it with plain `git init`, and clone it fresh."""
    cache: dict[str, Path] = {}

    def _clone(case: Case) -> Path:
        if case.id not in cache:
            # A copy: the generated project stays as Copier wrote it for other tests.
            origin = tmp_path_factory.mktemp(f"{case.id}-origin") / "project"
            shutil.copytree(generate(case), origin)
            helpers.lock_and_commit(origin)
            destination = tmp_path_factory.mktemp(f"{case.id}-clone") / "project"
            cache[case.id] = helpers.clone(origin, destination)
        return cache[case.id]

    return _clone
