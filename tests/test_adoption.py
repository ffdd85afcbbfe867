"""A team with an existing repository adopts the template as docs/adopting.md says."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests import helpers

OUR_README = "# Our churn study\n\nNotebooks by the data team.\n"
OUR_GITIGNORE = ".env\n*.log\n"
OUR_NOTEBOOK = {
    "cells": [
        {
            "cell_type": "code",
            "execution_count": None,
            "id": "f00d",
            "metadata": {},
            "outputs": [],
            "source": ["import tabulate\n", "\n", "print(tabulate.tabulate([[1, 2]]))\n"],
        }
    ],
    "metadata": {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}
    },
    "nbformat": 4,
    "nbformat_minor": 5,
}


def existing_repository(path: Path) -> Path:
    path.mkdir(parents=True)
    (path / "README.md").write_text(OUR_README, encoding="utf-8")
    (path / ".gitignore").write_text(OUR_GITIGNORE, encoding="utf-8")
    (path / "requirements.txt").write_text("tabulate\n", encoding="utf-8")
    (path / "analysis.ipynb").write_text(json.dumps(OUR_NOTEBOOK, indent=1) + "\n")
    helpers.git(path, "init", "-q")
    helpers.commit_all(path, "Our notebooks")
    return path


def shell(project: Path, command: str) -> None:
    result = subprocess.run(
        ["bash", "-c", command], cwd=project, env=helpers.user_environment(),
        capture_output=True, text=True, timeout=helpers.STEP_TIMEOUT_SECONDS,
    )  # fmt: skip
    assert result.returncode == 0, f"`{command}` failed:\n{result.stdout}{result.stderr}"


@pytest.fixture(scope="module")
def adopted(template: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """docs/adopting.md's commands, with the template snapshot as the source."""
    repository = existing_repository(tmp_path_factory.mktemp("adoption") / "ours")
    copier = helpers.TOOLS_BIN / "copier"
    for command in (
        f"{copier} copy --trust --defaults --overwrite --skip README.md --skip LICENSE "
        f'--vcs-ref HEAD --data project_name="Our Project" {template} .',
        "git show HEAD:.gitignore >> .gitignore",
        "git mv analysis.ipynb notebooks/",
        "uv add -r requirements.txt",
        "git rm -q requirements.txt",
        "uv run ruff format .",
        "uv run nbstripout notebooks/analysis.ipynb",
        "git add -A",
    ):
        shell(repository, command)
    return repository


def test_the_team_files_are_kept_and_the_answers_recorded(adopted: Path):
    assert (adopted / "README.md").read_text(encoding="utf-8") == OUR_README
    gitignore = (adopted / ".gitignore").read_text(encoding="utf-8")
    assert gitignore.endswith(OUR_GITIGNORE) and "/data/**" in gitignore
    assert (adopted / "notebooks" / "analysis.ipynb").is_file()
    assert '"tabulate>=' in (adopted / "pyproject.toml").read_text(encoding="utf-8")
    answers = helpers.recorded_answers(adopted)
    assert (answers["project_name"], answers["level"]) == ("Our Project", 1)


@pytest.mark.slow
def test_the_adopted_repository_is_green(adopted: Path):
    shell(adopted, "uv run poe ci")


# The climb's CI at level 2 takes minutes: the scheduled workflow runs it (a climb
# with the team's edits runs on every push in tests/test_upgrade.py).
@pytest.mark.slow
@pytest.mark.full_matrix
def test_the_adopted_repository_is_green_then_climbs_without_conflict(adopted: Path, template):
    shell(adopted, "uv run poe ci")
    shell(adopted, "git add -A")
    shell(adopted, 'git commit -q -m "Adopt mlops-ladder at level 1"')
    copier = helpers.TOOLS_BIN / "copier"
    shell(
        adopted,
        f"{copier} update --trust --defaults --skip README.md --data level=2 --vcs-ref HEAD",
    )

    status = helpers.git(adopted, "status", "--porcelain").splitlines()
    assert not [line for line in status if "U" in line[:2]]
    assert (adopted / "README.md").read_text(encoding="utf-8") == OUR_README
    assert (adopted / "dvc.yaml").is_file()
    helpers.lock_and_commit(adopted, "Climb to level 2")
    helpers.run_ci(helpers.clone(adopted, adopted.parent / "clone"))
