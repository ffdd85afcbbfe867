"""Cheap facts every generated project must satisfy, for every answer case."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import pytest
import yaml

from tests import helpers

LEFTOVER_JINJA = re.compile(r"\{\{|\{%")
# GitHub expressions are ${{ ... }}: not Jinja leftovers.
GITHUB_EXPRESSION = re.compile(r"\$\{\{.*?\}\}")

LEVEL1_FILES = {
    ".copier-answers.yml",
    ".dvc/.gitignore",
    ".dvc/config",
    ".dvcignore",
    ".gitignore",
    ".pre-commit-config.yaml",
    ".python-version",
    "LICENSE",
    "README.md",
    "canvas.yaml",
    "docs/canvas.md",
    "docs/data.md",
    "docs/deploy-by-hand.md",
    "notebooks/01-baseline.ipynb",
    "pyproject.toml",
    "scripts/make_sample_data.py",
}
LEVEL2_FILES = {
    "dvc.yaml",
    "params.yaml",
    "docs/experiments.md",
    "notebooks/02-explore-with-the-package.ipynb",
}
CI_FILES = {
    ("github", 1): {".github/workflows/ci.yml"},
    ("github", 2): {".github/workflows/ci.yml", ".github/workflows/pipeline.yml"},
    ("gitlab", 1): {".gitlab-ci.yml"},
    ("gitlab", 2): {".gitlab-ci.yml", ".gitlab/ci/pipeline.yml"},
    ("none", 1): set(),
    ("none", 2): set(),
}


def package_files(package: str) -> set[str]:
    """The level-2 package and its tests, as the template ships them."""
    template = helpers.REPO_ROOT / "template"
    shipped = set()
    for folder in ("src", "tests"):
        for path in (template / folder).rglob("*"):
            if path.is_file() and "__pycache__" not in path.parts:
                relative = path.relative_to(template).as_posix()
                relative = relative.replace("{{ package_name }}", package)
                shipped.add(relative.removesuffix(".jinja"))
    return shipped


def expected_files(answers: dict, package: str) -> set[str]:
    level = answers.get("level", 1)
    files = LEVEL1_FILES | CI_FILES[(answers.get("ci", "github"), level)]
    if level >= 2:
        files |= LEVEL2_FILES | package_files(package)
    return files


@pytest.fixture(params=sorted(helpers.CASES), scope="module")
def case(request: pytest.FixtureRequest, generate) -> tuple[dict, Path]:
    answers = helpers.CASES[request.param]
    return answers, generate(request.param, answers)


def recorded_answers(project: Path) -> dict:
    return yaml.safe_load((project / ".copier-answers.yml").read_text(encoding="utf-8"))


def test_exact_file_set(case):
    answers, project = case
    package = recorded_answers(project)["package_name"]
    assert helpers.project_files(project) == expected_files(answers, package)


def test_no_leftover_jinja(case):
    _, project = case
    for relative in helpers.project_files(project):
        text = GITHUB_EXPRESSION.sub("", (project / relative).read_text(encoding="utf-8"))
        assert not LEFTOVER_JINJA.search(text), f"Jinja left in {relative}"


def test_structured_files_parse(case):
    _, project = case
    for relative in helpers.project_files(project):
        text = (project / relative).read_text(encoding="utf-8")
        if relative.endswith((".yml", ".yaml")):
            yaml.safe_load(text)
        elif relative.endswith(".toml"):
            tomllib.loads(text)
        elif relative.endswith((".json", ".ipynb")):
            json.loads(text)


def test_answers_recorded(case):
    answers, project = case
    recorded = recorded_answers(project)
    for key, value in answers.items():
        assert recorded[key] == value
    assert recorded["level"] == answers.get("level", 1)
    assert not {"has_pipeline", "has_tracking", "python_keywords"} & set(recorded)


def test_python_version_consistent(case):
    _, project = case
    version = recorded_answers(project)["python_version"]
    pyproject = tomllib.loads((project / "pyproject.toml").read_text(encoding="utf-8"))
    assert (project / ".python-version").read_text(encoding="utf-8").strip() == version
    assert pyproject["project"]["requires-python"] == f">={version}"
    assert pyproject["tool"]["ruff"]["target-version"] == "py" + version.replace(".", "")
    gitlab = project / ".gitlab-ci.yml"
    if gitlab.exists():
        assert yaml.safe_load(gitlab.read_text(encoding="utf-8"))["image"].endswith(
            f"python{version}-bookworm"
        )


def test_generated_code_is_ruff_clean(case):
    """Formatting after generation is a no-op, and lint finds nothing."""
    _, project = case
    formatted = helpers.run_tool("ruff", "format", "--check", "--diff", ".", cwd=project)
    assert formatted.returncode == 0, formatted.stdout + formatted.stderr
    linted = helpers.run_tool("ruff", "check", ".", cwd=project)
    assert linted.returncode == 0, linted.stdout + linted.stderr


def test_dvc_remote_matches_answer(case):
    answers, project = case
    config = (project / ".dvc" / "config").read_text(encoding="utf-8")
    url = recorded_answers(project)["data_remote_url"]
    assert f"url = {url}" in config
    remote = answers.get("data_remote", "local")
    prefix = {"s3": "s3://", "gcs": "gs://", "local": "../../"}[remote]
    assert url.startswith(prefix)
    pyproject = (project / "pyproject.toml").read_text(encoding="utf-8")
    extra = {"s3": '"dvc[s3]', "gcs": '"dvc[gs]', "local": '"dvc>='}[remote]
    assert extra in pyproject


def test_defaults_name_the_project_after_its_folder(generate):
    project = generate("level1-defaults", helpers.CASES["level1-defaults"])
    assert project.name == "project"
    answers = recorded_answers(project)
    assert (answers["project_name"], answers["package_name"]) == ("Project", "project")


def test_package_name_derived_from_project_name(generate):
    answers = helpers.CASES["level1-gcs-remote-unicode-name"]
    project = generate("level1-gcs-remote-unicode-name", answers)
    assert recorded_answers(project)["package_name"] == "prevision_des_ventes_ete"
    assert "# Prévision des Ventes Été" in (project / "README.md").read_text(encoding="utf-8")


def test_docs_show_the_ranking_sql_the_code_runs(generate):
    """docs/experiments.md shows the exact query `<package> runs` executes."""
    project = generate("level2-defaults", helpers.CASES["level2-defaults"])
    package = recorded_answers(project)["package_name"]
    source = (project / "src" / package / "runs.py").read_text(encoding="utf-8")
    query = source.split('RANKING_SQL = """', 1)[1].split('"""', 1)[0].strip()
    docs = (project / "docs" / "experiments.md").read_text(encoding="utf-8")
    assert f"```sql\n{query}\n```" in docs
