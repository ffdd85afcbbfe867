"""Copier migration: carry a team's edits across files that a release moved.

`copier update` compares the project with the old template version and
re-applies the team's changes on the new version. When a release moves a
file, Copier sees an old file to delete and a new file to add: a team's edits
to the old file would be deleted with it. This script runs around the update
(Copier `_migrations`, see copier.yml):

- before: for each moved file the team edited, merge the team's edits into the
  new version of the file (a three-way merge: old template version, team's
  version, new template version), keep the result inside the git folder, and
  put the old file back to the old template version so that Copier removes it
  cleanly;
- after: write each kept result at the file's new path. A merge that
  conflicts leaves the usual conflict markers there, to resolve as in any
  git merge; nothing is lost (the team's version also stays in git history).

A file a release removed (`old -> (removed)`) is a move to nowhere: Copier
deletes it, edits included; the team's edited version is kept at its path, and
said so (an unedited one is left to Copier, which deletes it).

Plain Python (standard library and git), so it runs wherever Copier runs.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

PACKAGE_PLACEHOLDER = "{{ package_name }}"
STASH_FOLDER = "mlops-ladder-moves"
REMOVED = "(removed)"  # the `new` side of a file a release removed
MERGE_LABELS = ("your version (before updating)", "last update", "after updating")


@dataclass(frozen=True)
class Move:
    old: str  # template path before the release
    new: str  # template path after it, or REMOVED


@dataclass
class Kept:
    old_path: str  # project path before the move
    new_path: str  # project path after it
    stash: str  # file holding the merged content, inside the git folder
    conflicts: int


def read_moves(path: Path) -> list[Move]:
    """`old -> new` lines; blank lines and `#` comments are skipped."""
    moves = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        old, arrow, new = line.partition(" -> ")
        if not arrow or not old.strip() or not new.strip():
            raise SystemExit(f"{path}:{number}: expected `old/path -> new/path`, got {line!r}")
        moves.append(Move(old.strip(), new.strip()))
    return moves


def project_path(template_path: str, package: str) -> str:
    """Where a template file lands in the project."""
    return template_path.replace(PACKAGE_PLACEHOLDER, package).removesuffix(".jinja")


def render(template_path: str, content: bytes | None, package: str) -> bytes | None:
    """A template file as it lands in the project; None when it cannot be rebuilt here.

    Copier copies files without the `.jinja` suffix verbatim. A `.jinja` file is
    rebuilt only when the package name is its one variable.
    """
    if content is None or not template_path.endswith(".jinja"):
        return content
    rendered = content.replace(PACKAGE_PLACEHOLDER.encode(), package.encode())
    if b"{{" in rendered or b"{%" in rendered:
        return None
    return rendered


def recorded_answer(project: Path, key: str) -> str | None:
    """An answer from the project's .copier-answers.yml (Copier writes `key: value` lines)."""
    answers = project / ".copier-answers.yml"
    if not answers.is_file():
        return None
    match = re.search(rf"^{key}: *(.+)$", answers.read_text(encoding="utf-8"), re.MULTILINE)
    return match.group(1).strip().strip("'\"") if match else None


def git(*args: str, cwd: Path, input_bytes: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=cwd, input=input_bytes, capture_output=True)


def old_template_file(template: Path, ref: str, path: str) -> bytes | None:
    """A file of the template at an older version, from the template's git history."""
    shown = git("show", f"{ref}:template/{path}", cwd=template)
    return shown.stdout if shown.returncode == 0 else None


def merge(ours: bytes, base: bytes, theirs: bytes) -> tuple[bytes, int]:
    """Three-way merge with git merge-file; returns (content, number of conflicts)."""
    with tempfile.TemporaryDirectory() as folder:
        paths = []
        for name, content in (("ours", ours), ("base", base), ("theirs", theirs)):
            path = Path(folder, name)
            path.write_bytes(content)
            paths.append(str(path))
        labels = [arg for label in MERGE_LABELS for arg in ("-L", label)]
        result = subprocess.run(
            ["git", "merge-file", "-p", *labels, *paths], capture_output=True, check=False
        )
    if result.returncode < 0:
        raise SystemExit(f"git merge-file failed: {result.stderr.decode(errors='replace')}")
    return result.stdout, result.returncode


def git_folder(project: Path) -> Path:
    found = git("rev-parse", "--absolute-git-dir", cwd=project)
    if found.returncode != 0:
        raise SystemExit("the project is not a git repository: commit it before updating")
    return Path(found.stdout.decode().strip())


def before(project: Path, template: Path, ref: str, package: str, moves: list[Move]) -> list[Kept]:
    # Work everything out first: a failure must leave the project untouched.
    planned = []
    for move in moves:
        old_path = project_path(move.old, package)
        project_file = project / old_path
        if not project_file.is_file():
            continue  # not at this level, or removed by the team
        ours = project_file.read_bytes()
        base = render(move.old, old_template_file(template, ref, move.old), package)
        if base == ours:
            continue  # unedited: Copier moves it by itself
        if move.new == REMOVED:
            if base is None or (template / "template" / move.old).is_file():
                continue  # the team's own file, or the new version still ships it
            planned.append((old_path, old_path, base, ours, 0))
            continue
        new_file = template / "template" / move.new
        theirs = render(move.new, new_file.read_bytes() if new_file.is_file() else None, package)
        if theirs is None:
            raise SystemExit(f"cannot read the new version of {move.new} in {template}")
        merged, conflicts = merge(ours, base or b"", theirs)
        planned.append((old_path, project_path(move.new, package), base, merged, conflicts))

    stash_root = git_folder(project) / STASH_FOLDER
    stash_root.mkdir(parents=True, exist_ok=True)
    manifest = stash_root / "kept.json"
    # Another migration of the same update may have kept files already.
    earlier = json.loads(manifest.read_text(encoding="utf-8")) if manifest.is_file() else []
    kept = []
    for old_path, new_path, base, merged, conflicts in planned:
        stash = stash_root / new_path
        stash.parent.mkdir(parents=True, exist_ok=True)
        stash.write_bytes(merged)
        kept.append(Kept(old_path, new_path, str(stash), conflicts))
        # Copier removes an old file only when it is unedited: show it unedited.
        (project / old_path).write_bytes(base or b"")
        git("add", "--", old_path, cwd=project)
    manifest.write_text(
        json.dumps(earlier + [asdict(item) for item in kept], indent=2), encoding="utf-8"
    )
    return kept


def after(project: Path) -> list[Kept]:
    stash_root = git_folder(project) / STASH_FOLDER
    manifest = stash_root / "kept.json"
    if not manifest.is_file():
        return []
    kept = [Kept(**item) for item in json.loads(manifest.read_text(encoding="utf-8"))]
    for item in kept:
        target = project / item.new_path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(Path(item.stash).read_bytes())
        git("reset", "-q", "--", item.old_path, cwd=project)  # index back to HEAD
    for item in kept:
        Path(item.stash).unlink(missing_ok=True)
    manifest.unlink()
    return kept


def report(kept: list[Kept]) -> None:
    for item in kept:
        if item.old_path == item.new_path:
            print(
                f"kept {item.old_path}, with your edits: the template no longer ships it "
                "(docs/upgrading.md says what replaces it); delete it if you do not need it.",
                file=sys.stderr,
            )
        elif item.conflicts:
            print(
                f"moved {item.old_path} -> {item.new_path}: your edits conflict with the "
                f"template's ({item.conflicts} place(s)); resolve the markers, then `git add` it.",
                file=sys.stderr,
            )
        else:
            print(f"moved {item.old_path} -> {item.new_path}, with your edits.", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stage", choices=["before", "after"])
    parser.add_argument("--moves", type=Path, help="the release's moves file (before)")
    parser.add_argument("--template", type=Path, help="the template's git checkout (before)")
    parser.add_argument("--from-ref", help="the project's template version (before)")
    parser.add_argument(
        "--package", help="the project's package name (before; default: from the answers file)"
    )
    parser.add_argument("--project", type=Path, default=Path.cwd())
    args = parser.parse_args(argv)

    if args.stage == "before":
        args.package = args.package or recorded_answer(args.project, "package_name")
        needed = ("moves", "template", "from_ref", "package")
        missing = [name for name in needed if not getattr(args, name)]
        if missing:
            parser.error("before needs --" + ", --".join(m.replace("_", "-") for m in missing))
        moves = read_moves(args.moves)
        kept = before(args.project, args.template, args.from_ref, args.package, moves)
        print(f"move_files: {len(kept)} edited file(s) to carry over.", file=sys.stderr)
    else:
        report(after(args.project))
    return 0


if __name__ == "__main__":
    sys.exit(main())
