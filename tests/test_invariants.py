"""Cheap facts every generated project must satisfy, for every cell of the matrix."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import pytest
import yaml

from tests import cases, filemap, helpers
from tests.cases import Case

# A leftover is a Jinja tag, or an expression naming one of copier.yml's
# variables. Other {{ }} languages are meant to stay: GitHub's ${{ }}, the
# templates of Prometheus alerts ({{ $value }}) and Grafana legends ({{status}}).
COPIER_YML = yaml.safe_load((helpers.REPO_ROOT / "copier.yml").read_text(encoding="utf-8"))
TEMPLATE_VARIABLES = [name for name in COPIER_YML if not name.startswith("_")]
LEFTOVER_JINJA = re.compile(r"\{%|\{\{-?\s*(?:" + "|".join(TEMPLATE_VARIABLES) + r"|_copier)\b")
GITHUB_EXPRESSION = re.compile(r"\$\{\{.*?\}\}")


@pytest.fixture(params=cases.params(), scope="module")
def case(request: pytest.FixtureRequest, generate) -> tuple[Case, Path]:
    return request.param, generate(request.param)


def test_exact_file_set(case):
    """The project holds exactly what copier.yml's file map says for its answers."""
    _, project = case
    expected = filemap.expected_files(helpers.recorded_answers(project))
    assert helpers.project_files(project) == expected


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


def test_answers_recorded_and_internal_values_not(case):
    answer_case, project = case
    recorded = helpers.recorded_answers(project)
    for key, value in answer_case.answers.items():
        assert recorded[key] == value
    assert recorded["level"] == answer_case.level
    assert not set(filemap.internal_variables()) & set(recorded)


def test_python_version_consistent(case):
    _, project = case
    version = helpers.recorded_answers(project)["python_version"]
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
    # --no-cache: the generated project is shared by other tests, which read its files.
    formatted = helpers.run_tool(
        "ruff", "format", "--no-cache", "--check", "--diff", ".", cwd=project
    )
    assert formatted.returncode == 0, formatted.stdout + formatted.stderr
    linted = helpers.run_tool("ruff", "check", "--no-cache", ".", cwd=project)
    assert linted.returncode == 0, linted.stdout + linted.stderr


PACKAGE_FOLDERS = sorted(
    path.name
    for path in (filemap.TEMPLATE / "src" / "{{ package_name }}").iterdir()
    if path.is_dir()
)


def folder_files(folder: str) -> list[str]:
    """The files a package folder's code reads or writes, such as Path("reports/gate.json")."""
    modules = (filemap.TEMPLATE / "src" / "{{ package_name }}" / folder).rglob("*.py")
    code = "".join(path.read_text(encoding="utf-8") for path in modules)
    return sorted(set(re.findall(r'Path\("(\w[\w.-]*/[\w./-]+\.\w+)"\)', code)))


def test_no_code_names_a_package_folder_its_level_lacks(case):
    """A level's code and tests import nothing of a higher level (by name, relatively, or
    with a module path in a string such as importorskip's), nor name its files."""
    _, project = case
    if not (project / "src").is_dir():
        return  # level 1: a notebook, no package
    (package,) = [path for path in (project / "src").iterdir() if path.is_dir()]
    for folder in [name for name in PACKAGE_FOLDERS if not (package / name).is_dir()]:
        names_it = re.compile(
            rf"\b{package.name}\.{folder}\b|from \.+{folder}\b|[\"'.]{folder}\.[a-z_]+\b"
            + "".join(f"|{re.escape(name)}" for name in folder_files(folder))
        )
        for path in sorted(project.glob("**/*.py")):
            if ".venv" in path.parts:
                continue
            text = path.read_text(encoding="utf-8")
            for match in names_it.finditer(text):
                if not match.group().endswith((".yaml", ".yml", ".md")) or "/" in match.group():
                    line = text.count("\n", 0, match.start()) + 1
                    raise AssertionError(f"{path.relative_to(project)}:{line} names {folder}")


def test_dvc_remote_matches_answer(case):
    answer_case, project = case
    config = (project / ".dvc" / "config").read_text(encoding="utf-8")
    url = helpers.recorded_answers(project)["data_remote_url"]
    assert f"url = {url}" in config
    prefix = {"s3": "s3://", "gcs": "gs://", "local": "../../"}[answer_case.data_remote]
    assert url.startswith(prefix)
    pyproject = (project / "pyproject.toml").read_text(encoding="utf-8")
    extra = {"s3": '"dvc[s3]', "gcs": '"dvc[gs]', "local": '"dvc>='}[answer_case.data_remote]
    assert extra in pyproject


def test_every_level_part_is_wired(case):
    """Each level's tasks file exists and `poe ci` runs its part, in level order."""
    _, project = case
    parts = helpers.level_parts(project)
    pyproject = tomllib.loads((project / "pyproject.toml").read_text(encoding="utf-8"))
    assert pyproject["tool"]["poe"]["include"] == [f"tasks/{part}.toml" for part in parts]
    assert pyproject["tool"]["poe"]["tasks"]["ci"]["sequence"] == [f"_ci-{p}" for p in parts]
    tasks = helpers.poe_tasks(project)
    for part in parts:
        assert f"_ci-{part}" in tasks


def test_the_matrix_covers_every_value():
    """Every level, provider, Python version, licence and remote appears in some cell."""
    for attribute, values in [
        ("level", cases.LEVELS),
        ("ci", cases.PROVIDERS),
        ("python_version", cases.PYTHONS),
        ("license", cases.LICENSES),
        ("data_remote", cases.REMOTES),
        ("deploy_target", (None, *cases.DEPLOY_TARGETS)),
        ("orchestrator", (None, *cases.ORCHESTRATORS)),
    ]:
        assert {getattr(case, attribute) for case in cases.CASES} == set(values), attribute
    assert cases.CASES[0].answers == {}  # the README's main command: defaults only


def test_representative_cells_cover_every_provider_python_and_level():
    chosen = [cases.BY_ID[case_id] for case_id in cases.REPRESENTATIVE]
    assert {case.ci for case in chosen} == set(cases.PROVIDERS)
    assert {case.python_version for case in chosen} == set(cases.PYTHONS)
    assert {case.level for case in chosen} == set(cases.LEVELS)
    assert cases.CASES[0] in chosen
    # Level 4 on a cluster orchestrator: its pipeline has the profile step (issue 16).
    assert any(case.level == 4 and case.orchestrator != "local" for case in chosen)


def test_every_conditional_path_exists_in_the_template():
    """A typo in the file map would silently keep a file: each path must exist."""
    shipped = filemap.rendered_template_files("package")
    for condition, paths in filemap.conditional_excludes():
        for raw in paths:
            pattern = filemap.render_path(raw, {"package_name": "package"})
            assert any(filemap.matches(path, pattern) for path in shipped), (
                f"{pattern} (excluded when {condition}) matches no file under template/"
            )


def test_defaults_name_the_project_after_its_folder(generate):
    project = generate(cases.CASES[0])
    assert project.name == "project"
    answers = helpers.recorded_answers(project)
    assert (answers["project_name"], answers["package_name"]) == ("Project", "project")


def test_package_name_derived_from_a_non_ascii_project_name(generate):
    case = next(case for case in cases.CASES if case.project_name == "Prévision des Ventes Été")
    project = generate(case)
    assert helpers.recorded_answers(project)["package_name"] == "prevision_des_ventes_ete"
    assert "# Prévision des Ventes Été" in (project / "README.md").read_text(encoding="utf-8")


def test_runs_are_read_through_mlflows_api_and_the_docs_keep_the_sql_recipe(generate):
    """`<package> runs` reads the store through MLflow's public API, not its tables (which
    MLflow's migrations may change); docs/experiments.md keeps the SQL as a recipe."""
    case = next(case for case in cases.CASES if case.level >= 2)
    project = generate(case)
    package = helpers.recorded_answers(project)["package_name"]
    tracking = project / "src" / package / "tracking"
    source = "".join(path.read_text(encoding="utf-8") for path in tracking.glob("*.py"))
    assert "search_runs" in source
    assert "sqlite3" not in source and "SELECT" not in source
    docs = (project / "docs" / "experiments.md").read_text(encoding="utf-8")
    assert "```sql\nSELECT" in docs and "MLflow's own tables" in docs


PACKAGE_IMPORT = re.compile(r" *(from|import) \{\{ package_name \}\}[.\w]*( import [\w ,()]+)?")


def test_python_files_of_the_template_carry_no_jinja_but_the_package_name_in_imports():
    """Generated Python never branches on the answers: a `.py.jinja` file's only Jinja is
    `{{ package_name }}` in its import lines (tests that import the package by name, also
    in the code a test hands to a subprocess)."""
    for path in filemap.TEMPLATE.rglob("*.py.jinja"):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if re.search(r"\{[{%#]", line):
                assert PACKAGE_IMPORT.fullmatch(line), f"{path}:{number}: {line}"


@pytest.mark.parametrize(
    "combination",
    [pytest.param(case, id=case.id) for case in cases.DELIVERY_COMBINATIONS],
)  # fmt: skip
def test_every_delivery_combination_has_its_files(generate, combination):
    project = generate(combination)
    expected = filemap.expected_files(helpers.recorded_answers(project))
    assert helpers.project_files(project) == expected
    linted = helpers.run_tool("ruff", "check", "--no-cache", ".", cwd=project)
    assert linted.returncode == 0, linted.stdout
