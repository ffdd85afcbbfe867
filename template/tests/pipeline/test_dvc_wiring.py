"""dvc.yaml lists, for every stage, the package code the stage runs.

If a module a stage imports were missing from its `deps`, editing it would
leave `dvc status` saying "up to date" and the results would go stale.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml

from ..package import NAME, SRC, load

ROOT = SRC.parent
cli = load("cli")
STAGES = yaml.safe_load((ROOT / "dvc.yaml").read_text(encoding="utf-8"))["stages"]


def module_file(dotted: str) -> Path | None:
    """The file of a module of the package (a package's __init__.py), if it is one."""
    parts = dotted.split(".")
    if parts[0] != NAME:
        return None
    base = SRC.joinpath(*parts)
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def imported_modules(path: Path) -> set[str]:
    """Modules an import statement anywhere in the file names (lazy imports too)."""
    package = ".".join(path.relative_to(SRC).with_suffix("").parts[:-1])
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def package_files_used(start: Path) -> set[Path]:
    """Every file of the package that `start` imports, directly or not."""
    seen: set[Path] = set()
    todo = [start]
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        todo.extend(
            found for name in imported_modules(path) if (found := module_file(name)) is not None
        )
    # __init__.py files hold docstrings and a version, no code a stage runs.
    return {path for path in seen if path.name != "__init__.py"}


def covered(path: Path, deps: list[str]) -> bool:
    relative = path.relative_to(ROOT).as_posix()
    return any(relative == dep or relative.startswith(dep.rstrip("/") + "/") for dep in deps)


@pytest.mark.parametrize("stage", list(STAGES))
def test_every_module_a_stage_imports_is_a_dependency(stage):
    deps = [str(dep) for dep in STAGES[stage].get("deps", [])]
    command = cli.registered_commands()[stage]
    start = module_file(command.run.__module__)
    assert start is not None

    missing = sorted(
        path.relative_to(ROOT).as_posix()
        for path in package_files_used(start)
        if not covered(path, deps)
    )

    assert not missing, f"dvc.yaml stage {stage!r} lacks deps: {missing}"
