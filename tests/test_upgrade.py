"""Climbing a level keeps the team's work; going down is refused.

A level-1 project gets the edits a team makes in its first weeks, then climbs
with `copier update --data level=2`. The result must keep every edit, contain
no conflict, match a fresh level-2 copy carrying the same edits, and pass its
own CI on a fresh clone.
"""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pytest

from tests import helpers

ANSWERS = {"project_name": "Churn Prediction"}
OWN_FILES = {"docs/team-notes.md", "uv.lock"}
EDITED_FILES = {
    "README.md",
    "notebooks/01-baseline.ipynb",
    "docs/canvas.md",
    "canvas.yaml",
    "pyproject.toml",
}
ADDED_DEPENDENCY = "tabulate"


def replace_once(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, f"{old!r} not found once in {path}"
    path.write_text(text.replace(old, new), encoding="utf-8")


def apply_team_edits(project: Path) -> None:
    """What a team does to a level-1 project before climbing (pyproject aside)."""
    replace_once(project / "notebooks" / "01-baseline.ipynb", '\\"C\\": 1.0', '\\"C\\": 0.5')
    with (project / "README.md").open("a", encoding="utf-8") as readme:
        readme.write("\n## Team notes\n\nAsk Ana before changing the canvas threshold.\n")
    replace_once(
        project / "docs" / "canvas.md",
        "Who owns the source data, who to ask about a column?",
        "Pathology data team (Ana Lima).",
    )
    replace_once(project / "canvas.yaml", "threshold: 0.95", "threshold: 0.96")


def add_dependency(project: Path) -> None:
    subprocess.run(
        ["uv", "add", "--no-sync", ADDED_DEPENDENCY],
        cwd=project,
        check=True,
        capture_output=True,
    )


def tree_digest(project: Path) -> dict[str, str]:
    return {
        relative: hashlib.sha256((project / relative).read_bytes()).hexdigest()
        for relative in helpers.project_files(project)
    }


@pytest.fixture(scope="module")
def upgraded(template: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    project = tmp_path_factory.mktemp("upgrade") / "project"
    helpers.copy_template(template, project, {**ANSWERS, "level": 1})
    helpers.git(project, "init", "-q", "-b", "main")
    helpers.commit_all(project, "Start at level 1")
    apply_team_edits(project)
    add_dependency(project)
    (project / "docs" / "team-notes.md").write_text("# Notes\n\nOur own file.\n", encoding="utf-8")
    helpers.commit_all(project, "Team work at level 1")

    helpers.update_project(project, {"level": 2})
    return project


@pytest.fixture(scope="module")
def fresh_level2(template: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    project = tmp_path_factory.mktemp("fresh-level2") / "project"
    helpers.copy_template(template, project, {**ANSWERS, "level": 2})
    apply_team_edits(project)
    return project


def test_upgrade_records_level_2(upgraded):
    answers = (upgraded / ".copier-answers.yml").read_text(encoding="utf-8")
    assert "level: 2\n" in answers


def test_upgrade_leaves_no_conflict(upgraded):
    status = helpers.git(upgraded, "status", "--porcelain").splitlines()
    unmerged = [line for line in status if "U" in line[:2] or line[:2] in {"AA", "DD"}]
    assert unmerged == []
    for relative in helpers.project_files(upgraded):
        text = (upgraded / relative).read_text(encoding="utf-8", errors="replace")
        assert "<<<<<<<" not in text and ">>>>>>>" not in text, f"conflict markers in {relative}"
    assert not list(upgraded.rglob("*.rej"))


def test_upgrade_keeps_team_edits(upgraded):
    assert '\\"C\\": 0.5' in (upgraded / "notebooks" / "01-baseline.ipynb").read_text()
    assert "## Team notes" in (upgraded / "README.md").read_text(encoding="utf-8")
    assert "Pathology data team (Ana Lima)." in (upgraded / "docs" / "canvas.md").read_text(
        encoding="utf-8"
    )
    assert "threshold: 0.96" in (upgraded / "canvas.yaml").read_text(encoding="utf-8")
    assert (upgraded / "docs" / "team-notes.md").read_text(encoding="utf-8").startswith("# Notes")
    assert f'"{ADDED_DEPENDENCY}>=' in (upgraded / "pyproject.toml").read_text(encoding="utf-8")


def test_upgrade_matches_fresh_level2_copy(upgraded, fresh_level2):
    upgraded_files = helpers.project_files(upgraded)
    fresh_files = helpers.project_files(fresh_level2)
    assert upgraded_files - OWN_FILES == fresh_files
    for relative in sorted(fresh_files - {"pyproject.toml"}):
        upgraded_text = (upgraded / relative).read_text(encoding="utf-8")
        fresh_text = (fresh_level2 / relative).read_text(encoding="utf-8")
        assert upgraded_text == fresh_text, f"{relative} differs from a fresh level-2 copy"


def test_upgraded_pyproject_is_fresh_plus_added_dependency(upgraded, fresh_level2):
    def without_added(path: Path) -> list[str]:
        lines = path.read_text(encoding="utf-8").splitlines()
        return [line for line in lines if ADDED_DEPENDENCY not in line]

    assert without_added(upgraded / "pyproject.toml") == without_added(
        fresh_level2 / "pyproject.toml"
    )


@pytest.mark.slow
def test_upgraded_project_ci_passes_on_fresh_clone(upgraded, tmp_path: Path):
    # What the update message tells the user to do next.
    subprocess.run(["uv", "lock"], cwd=upgraded, check=True, capture_output=True)
    helpers.commit_all(upgraded, "Climb to level 2")
    clone = tmp_path / "clone"
    helpers.git(tmp_path, "clone", "-q", str(upgraded), str(clone))
    helpers.run_ci(clone)
    assert (clone / "reports" / "metrics.json").is_file()


def test_downgrade_is_refused_and_changes_nothing(template: Path, tmp_path: Path):
    project = tmp_path / "project"
    helpers.copy_template(template, project, {**ANSWERS, "level": 2})
    helpers.git(project, "init", "-q", "-b", "main")
    helpers.commit_all(project, "Start at level 2")
    before = tree_digest(project)

    with pytest.raises(ValueError) as refused:
        helpers.update_project(project, {"level": 1})

    assert "Refusing to lower the level from 2 to 1" in str(refused.value)
    assert tree_digest(project) == before
    assert helpers.git(project, "status", "--porcelain") == ""
