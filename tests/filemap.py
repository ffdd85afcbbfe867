"""The file map as copier.yml states it, read by the tests instead of repeated.

copier.yml's `_exclude` block holds one entry per level or option: a Jinja
`{% if <condition> %}` around the paths it removes. The internal variables
(`when: false`) are computed from the answers. From these and the template
tree, `expected_files` computes which files a project with given answers has.
"""

from __future__ import annotations

import fnmatch
import json
import re
from functools import cache
from pathlib import Path

import jinja2
import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = REPO_ROOT / "template"
CONDITION = re.compile(r"\{%\s*if\s+(?P<condition>.+?)\s*%\}(?P<paths>.*?)\{%\s*endif\s*%\}", re.S)


@cache
def copier_config() -> dict:
    return yaml.safe_load((REPO_ROOT / "copier.yml").read_text(encoding="utf-8"))


def questions() -> dict[str, dict]:
    """The questions a user answers (not settings, not internal variables)."""
    return {
        key: value
        for key, value in copier_config().items()
        if not key.startswith("_") and isinstance(value, dict) and value.get("when") is not False
    }


def internal_variables() -> dict[str, dict]:
    """Values computed from the answers (`when: false`): never asked, never stored."""
    return {
        key: value
        for key, value in copier_config().items()
        if isinstance(value, dict) and value.get("when") is False
    }


def _jinja() -> jinja2.Environment:
    return jinja2.Environment(
        undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True
    )


def context(answers: dict) -> dict:
    """The recorded answers plus every internal variable computed from them.

    A question skipped at this level (`when` false) is not recorded: Copier
    renders with its default, and so does this.
    """
    values = dict(answers)
    for key, spec in questions().items():
        default = spec.get("default")
        if key not in values and "{" not in str(default):
            values[key] = default
    for key, spec in internal_variables().items():
        rendered = _jinja().from_string(str(spec["default"])).render(values)
        if spec.get("type") == "bool":
            values[key] = rendered.strip() == "True"
        elif spec.get("type") == "json":
            values[key] = json.loads(rendered)
        else:
            values[key] = rendered
    return values


def conditional_excludes() -> list[tuple[str, list[str]]]:
    """(condition, paths) for each `{% if %}` entry of `_exclude`."""
    entries = []
    for entry in copier_config()["_exclude"]:
        match = CONDITION.search(entry)
        if match:
            paths = [line.strip() for line in match["paths"].splitlines() if line.strip()]
            entries.append((match["condition"], paths))
    return entries


def render_path(pattern: str, values: dict) -> str:
    """A pattern may name the package: `/src/{{ package_name }}/release`."""
    return _jinja().from_string(pattern).render(values)


def excluded_paths(answers: dict) -> list[str]:
    values = context(answers)
    excluded = []
    for condition, paths in conditional_excludes():
        if _jinja().from_string(f"{{{{ {condition} }}}}").render(values) == "True":
            excluded.extend(render_path(path, values) for path in paths)
    return excluded


def rendered_template_files(package: str) -> set[str]:
    """Every file of template/ under its name in a project, before any exclusion."""
    files = set()
    for path in TEMPLATE.rglob("*"):
        if not path.is_file() or "__pycache__" in path.parts:
            continue
        relative = path.relative_to(TEMPLATE).as_posix()
        relative = relative.replace("{{ package_name }}", package)
        relative = relative.replace("{{_copier_conf.answers_file}}", ".copier-answers.yml")
        files.add(relative.removesuffix(".jinja"))
    return files


def matches(path: str, pattern: str) -> bool:
    """Copier's anchored exclude patterns: `/dir` is the folder and all it holds."""
    anchored = pattern.lstrip("/")
    return fnmatch.fnmatch(path, anchored) or path.startswith(anchored.rstrip("/") + "/")


def expected_files(answers: dict) -> set[str]:
    """The files a project generated with these (complete, recorded) answers holds."""
    excluded = excluded_paths(answers)
    return {
        path
        for path in rendered_template_files(answers["package_name"])
        if not any(matches(path, pattern) for pattern in excluded)
    }
