"""The template's generation-time scripts (hooks/), each behaviour on its own.

test_upgrade.py proves them end to end (an update from the previous release
with a team's edits in moved files); these tests pin the details.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

from tests import helpers

HOOKS = helpers.REPO_ROOT / "hooks"


def load_hook(name: str):
    spec = importlib.util.spec_from_file_location(name, HOOKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


move_files = load_hook("move_files")

OLD_READ = "def load():\n    frame = read()\n    return frame\n"
NEW_READ = "from ..core import files\n\n\ndef load():\n    frame = read()\n    return frame\n"


@pytest.fixture
def template_repo(tmp_path: Path) -> Path:
    """A template repo: `src/{{ package_name }}/read.py` at v1, moved to pipeline/ at HEAD."""
    repo = tmp_path / "template-repo"
    old = repo / "template" / "src" / "{{ package_name }}" / "read.py"
    old.parent.mkdir(parents=True)
    old.write_text(OLD_READ)
    helpers.git(repo.parent, "init", "-q", str(repo))
    helpers.commit_all(repo, "v1")
    helpers.git(repo, "tag", "v1")
    new = repo / "template" / "src" / "{{ package_name }}" / "pipeline" / "read.py"
    new.parent.mkdir(parents=True)
    old.rename(new)
    new.write_text(NEW_READ)
    helpers.commit_all(repo, "v2")
    return repo


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project generated at v1, committed."""
    project = tmp_path / "project"
    (project / "src" / "shop").mkdir(parents=True)
    (project / "src" / "shop" / "read.py").write_text(OLD_READ)
    (project / ".copier-answers.yml").write_text("_commit: v1\npackage_name: shop\n")
    helpers.git(project.parent, "init", "-q", str(project))
    helpers.commit_all(project, "start")
    return project


MOVE = [
    move_files.Move("src/{{ package_name }}/read.py", "src/{{ package_name }}/pipeline/read.py")
]


def copier_update(project: Path) -> None:
    """What Copier does between the two stages: drop the (unedited) old file, add the new."""
    (project / "src" / "shop" / "read.py").unlink()
    (project / "src" / "shop" / "pipeline").mkdir()
    (project / "src" / "shop" / "pipeline" / "read.py").write_text(NEW_READ)


def test_read_moves_skips_comments_and_refuses_bad_lines(tmp_path: Path):
    good = tmp_path / "moves.txt"
    good.write_text("# a comment\n\na/b.py -> a/c/b.py\n")
    assert move_files.read_moves(good) == [move_files.Move("a/b.py", "a/c/b.py")]
    bad = tmp_path / "bad.txt"
    bad.write_text("a/b.py => a/c/b.py\n")
    with pytest.raises(SystemExit, match=r"bad.txt:1: expected `old/path -> new/path`"):
        move_files.read_moves(bad)


def test_the_release_moves_file_names_real_template_paths():
    """Every `new` path of the 0.2.0 moves exists in the template as it is now (as
    itself, or as a `.jinja` file that renders to it), or a later release removed it."""
    removed = {move.old for move in move_files.read_moves(HOOKS / "removed.txt")}
    for move in move_files.read_moves(HOOKS / "moves-0.2.0.txt"):
        new = helpers.REPO_ROOT / "template" / move.new
        shipped = new.is_file() or new.with_name(new.name + ".jinja").is_file()
        assert shipped or move.new in removed, move.new


def test_an_edit_follows_the_moved_file(template_repo: Path, project: Path):
    edited = OLD_READ.replace(
        "    return frame\n", "    frame = frame.dropna()\n    return frame\n"
    )
    (project / "src" / "shop" / "read.py").write_text(edited)
    helpers.commit_all(project, "team edit")

    kept = move_files.before(project, template_repo, "v1", "shop", MOVE)

    assert [(item.old_path, item.new_path, item.conflicts) for item in kept] == [
        ("src/shop/read.py", "src/shop/pipeline/read.py", 0)
    ]
    # Copier must see the old file unedited, in the index too, to remove it.
    assert (project / "src" / "shop" / "read.py").read_text() == OLD_READ
    assert helpers.git(project, "show", ":src/shop/read.py") == OLD_READ
    copier_update(project)
    move_files.after(project)
    merged = (project / "src" / "shop" / "pipeline" / "read.py").read_text()
    assert merged == NEW_READ.replace(
        "    return frame\n", "    frame = frame.dropna()\n    return frame\n"
    )
    assert "src/shop/read.py" not in helpers.git(project, "diff", "--cached", "--name-only")


def test_an_unedited_file_is_left_to_copier(template_repo: Path, project: Path):
    assert move_files.before(project, template_repo, "v1", "shop", MOVE) == []
    assert move_files.after(project) == []


def test_a_conflicting_edit_keeps_both_sides_with_markers(
    template_repo: Path, project: Path, capsys
):
    (project / "src" / "shop" / "read.py").write_text("from .own import files\n" + OLD_READ)
    helpers.commit_all(project, "team edit on the line the release changed")

    move_files.before(project, template_repo, "v1", "shop", MOVE)
    copier_update(project)
    move_files.report(move_files.after(project))

    merged = (project / "src" / "shop" / "pipeline" / "read.py").read_text()
    assert "<<<<<<< your version (before updating)" in merged
    assert "from .own import files" in merged and "from ..core import files" in merged
    assert "resolve the markers" in capsys.readouterr().err


def test_a_failure_before_changes_nothing(template_repo: Path, project: Path):
    (project / "src" / "shop" / "read.py").write_text("# edited\n" + OLD_READ)
    helpers.commit_all(project, "team edit")
    missing = [move_files.Move("src/{{ package_name }}/read.py", "src/{{ package_name }}/gone.py")]

    with pytest.raises(SystemExit, match="cannot read the new version"):
        move_files.before(project, template_repo, "v1", "shop", missing)

    assert helpers.git(project, "status", "--porcelain") == ""


def test_the_package_name_comes_from_the_answers_file(project: Path):
    assert move_files.recorded_answer(project, "package_name") == "shop"
    assert move_files.recorded_answer(project, "nothing") is None


def test_jinja_files_are_rebuilt_only_when_the_package_is_their_one_variable():
    source = b"from {{ package_name }} import cli\n"
    assert move_files.render("t.py.jinja", source, "shop") == b"from shop import cli\n"
    assert move_files.render("t.py.jinja", b"{{ project_name }}\n", "shop") is None
    assert move_files.render("ci.yml", b"${{ github.ref }}\n", "shop") == b"${{ github.ref }}\n"


def test_outside_git_the_script_says_to_commit_first(tmp_path: Path):
    with pytest.raises(SystemExit, match="not a git repository"):
        move_files.git_folder(tmp_path)


def test_kept_files_are_listed_in_the_git_folder(template_repo: Path, project: Path):
    (project / "src" / "shop" / "read.py").write_text("# edited\n" + OLD_READ)
    helpers.commit_all(project, "team edit")
    move_files.before(project, template_repo, "v1", "shop", MOVE)
    manifest = project / ".git" / move_files.STASH_FOLDER / "kept.json"
    assert json.loads(manifest.read_text())[0]["new_path"] == "src/shop/pipeline/read.py"


# --- Files a release removed: `old -> (removed)` -----------------------------------

REMOVE = [move_files.Move("src/{{ package_name }}/read.py", move_files.REMOVED)]


def remove_from_template(repo: Path) -> None:
    """A later release that ships no read.py at all."""
    helpers.git(repo, "rm", "-rq", "template/src")
    helpers.commit_all(repo, "v3: read.py removed")


def test_the_release_removals_name_files_the_template_no_longer_ships():
    removals = move_files.read_moves(HOOKS / "removed.txt")
    assert removals and all(move.new == move_files.REMOVED for move in removals)
    for move in removals:
        assert not (helpers.REPO_ROOT / "template" / move.old).exists(), move.old


def test_an_edited_removed_file_is_kept_and_said(template_repo: Path, project: Path, capsys):
    remove_from_template(template_repo)
    edited = "# our own reading\n" + OLD_READ
    (project / "src" / "shop" / "read.py").write_text(edited)
    helpers.commit_all(project, "team edit")

    kept = move_files.before(project, template_repo, "v1", "shop", REMOVE)
    assert [(item.old_path, item.new_path) for item in kept] == [
        ("src/shop/read.py", "src/shop/read.py")
    ]
    (project / "src" / "shop" / "read.py").unlink()  # what Copier does
    move_files.report(move_files.after(project))

    assert (project / "src" / "shop" / "read.py").read_text() == edited
    assert helpers.git(project, "status", "--porcelain") == ""
    assert "kept src/shop/read.py, with your edits" in capsys.readouterr().err


def test_an_unedited_removed_file_is_left_to_copier(template_repo: Path, project: Path):
    remove_from_template(template_repo)
    assert move_files.before(project, template_repo, "v1", "shop", REMOVE) == []


def test_a_file_the_new_version_still_ships_is_not_a_removal(template_repo: Path, project: Path):
    """The moved file of the fixture is at pipeline/ in v2; its old path is gone, not kept."""
    (project / "src" / "shop" / "read.py").write_text("# edited\n" + OLD_READ)
    helpers.commit_all(project, "team edit")
    still_shipped = [move_files.Move("src/{{ package_name }}/pipeline/read.py", move_files.REMOVED)]
    assert move_files.before(project, template_repo, "v1", "shop", still_shipped) == []


def test_two_migrations_of_one_update_share_the_kept_list(template_repo: Path, project: Path):
    (project / "src" / "shop" / "read.py").write_text("# edited\n" + OLD_READ)
    helpers.commit_all(project, "team edit")
    move_files.before(project, template_repo, "v1", "shop", MOVE)
    move_files.before(project, template_repo, "v1", "shop", [])  # the removals: none here
    manifest = project / ".git" / move_files.STASH_FOLDER / "kept.json"
    assert [item["new_path"] for item in json.loads(manifest.read_text())] == [
        "src/shop/pipeline/read.py"
    ]
