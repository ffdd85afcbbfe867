"""Generated projects are green: their own CI passes on a fresh clone, on the real runners.

Each cell is generated, locked and committed with plain `git init`, cloned
fresh, and its checks CI run as its CI service runs it (tests/runners.py):
GitHub's checks workflows by act, GitLab's checks jobs by gitlab-ci-local,
or, with no CI service, `uv run poe ci` itself. The workflow files are also
validated against the official schemas, by actionlint and, for GitHub, by
zizmor.
"""

from __future__ import annotations

import re

import pytest
import yaml

from tests import cases, helpers, runners

POE_STEP = re.compile(r"^uv run poe (?P<task>[\w-]+)$")
# Steps of a checks workflow that are not poe tasks: the shared setup, and
# installing a system tool the level's checks use (promtool at level 4).
SETUP_STEPS = {"uv sync --locked", *helpers.SYSTEM_TOOL_STEPS}


@pytest.mark.slow
@pytest.mark.parametrize("case", cases.params(end_to_end=True))
def test_generated_ci_passes_on_fresh_clone(committed_clone, case, tmp_path):
    clone = committed_clone(case)
    folders = runners.run_checks(clone, tmp_path)
    notebook = folders.get("notebook", folders.get("ci"))
    assert (notebook / "models" / "baseline.joblib").is_file()  # the notebook ran
    if case.level >= 2:
        pipeline = folders.get("pipeline", folders.get("ci"))
        assert (pipeline / "reports" / "metrics.json").is_file()
        assert (pipeline / "reports" / "ci-report.md").is_file()
    # No hook or step may modify a committed file (new files such as dvc.lock are fine).
    for job, folder in folders.items():
        assert helpers.git(folder, "diff", "HEAD", "--name-only", "--diff-filter=M") == "", job


def checks_steps(project, state) -> list[str]:
    """The checks jobs' commands: GitHub's `run:` steps, GitLab's merged job scripts."""
    if (project / ".github").is_dir():
        return [step.command for step in helpers.github_steps(project)]
    config = runners.gitlab_preview(project, state)  # includes and defaults applied
    return [
        line
        for part in helpers.level_parts(project)
        for line in [*config[part].get("before_script", []), *config[part]["script"]]
    ]


@pytest.mark.parametrize("case", [case.param() for case in cases.CASES if case.ci != "none"])
def test_checks_workflows_run_exactly_poe_ci(generate, case, tmp_path):
    """The promise "the CI runs what you run locally", checked task by task."""
    project = generate(case)
    expected = helpers.expand_task(helpers.poe_tasks(project), "ci")
    commands = checks_steps(project, tmp_path)
    setup = [command for command in commands if command in SETUP_STEPS]
    tasks = [POE_STEP.match(command)["task"] for command in commands if POE_STEP.match(command)]
    assert tasks == expected
    assert len(setup) + len(tasks) == len(commands), f"unexpected steps in {commands}"


def schema_check(project, provider: str) -> list[tuple[str, list[str]]]:
    """(schema, files) pairs for check-jsonschema."""
    if provider == "gitlab":
        gitlab = [str(project / ".gitlab-ci.yml"), *map(str, (project / ".gitlab").rglob("*.yml"))]
        return [
            ("vendor.gitlab-ci", ["--data-transform", "gitlab-ci", *gitlab]),
            ("vendor.renovate", [str(project / "renovate.json")]),
        ]
    workflows = sorted(map(str, (project / ".github" / "workflows").glob("*.yml")))
    return [
        ("vendor.github-workflows", workflows),
        ("vendor.github-actions", [str(project / ".github" / "actions" / "setup" / "action.yml")]),
        ("vendor.dependabot", [str(project / ".github" / "dependabot.yml")]),
    ]


@pytest.mark.parametrize("case", [case.param() for case in cases.CASES if case.ci != "none"])
def test_ci_files_match_official_schemas(generate, case):
    project = generate(case)
    for schema, arguments in schema_check(project, case.ci):
        result = helpers.run_tool("check-jsonschema", "--builtin-schema", schema, *arguments)
        assert result.returncode == 0, f"{schema}: {result.stdout}{result.stderr}"


@pytest.mark.parametrize("case", [case.param() for case in cases.CASES if case.ci == "github"])
def test_github_workflows_pass_zizmor(generate, case):
    project = generate(case)
    result = helpers.run_tool(
        "zizmor", "--offline", "--no-progress", "--persona", "pedantic", str(project / ".github")
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No findings" in result.stdout + result.stderr


def assert_actionlint_passes(project) -> None:
    result = runners.actionlint(project)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "All workflow files passed" in result.stdout, result.stdout


@pytest.mark.parametrize("case", [case.param() for case in cases.CASES if case.ci == "github"])
def test_github_workflows_pass_actionlint(generate, case):
    assert_actionlint_passes(generate(case))


ACTION_PIN = re.compile(
    r"uses:\s*(?P<action>[\w.-]+/[\w./-]+)@(?P<sha>[0-9a-f]{40})\s*#\s*(?P<tag>\S+)"
)


def test_action_pins_agree_everywhere():
    """Each action is pinned to one commit, with one version comment, in every file."""
    files = [
        *helpers.REPO_ROOT.joinpath(".github").rglob("*.yml"),
        *helpers.REPO_ROOT.joinpath("template", ".github").rglob("*.yml"),
    ]
    pins: dict[str, set[tuple[str, str]]] = {}
    for path in files:
        for match in ACTION_PIN.finditer(path.read_text(encoding="utf-8")):
            pins.setdefault(match["action"], set()).add((match["sha"], match["tag"]))
    assert pins, "no pinned action found"
    disagreeing = {action: found for action, found in pins.items() if len(found) > 1}
    assert not disagreeing


def test_every_uses_is_pinned_or_local():
    for path in helpers.REPO_ROOT.joinpath("template", ".github").rglob("*.yml"):
        for line in path.read_text(encoding="utf-8").splitlines():
            if "uses:" in line and "./" not in line:
                assert ACTION_PIN.search(line), f"{path.name}: unpinned `{line.strip()}`"


def run_in(project, *command: str) -> str:
    """Run a project command as a developer would; fail with its output."""
    return helpers.run_step(project, helpers.Step("developer", " ".join(command)))


@pytest.mark.slow
def test_experiment_variant_is_tracked_and_ranked(committed_clone):
    """`dvc exp run -S` trains another architecture; `runs` ranks both tracked runs."""
    clone = committed_clone(cases.BY_ID["l2-github-py311-proprietary-local"])
    run_in(clone, "uv run poe sample-data")
    run_in(clone, "uv run dvc repro")
    run_in(clone, "uv run dvc exp run -S model.architecture=random_forest")
    ranking = run_in(clone, "uv run poe runs")
    assert "random_forest" in ranking
    assert "logistic_regression" in ranking


def test_workflow_files_are_plain_but_for_the_deploy_target(generate):
    """GitHub files are copied as they are; the train workflow names the deploy one.

    Level 4's monitor workflow fetches the window from the deploy target's
    sink: it chooses its steps with tags, and names no variable.
    """
    template_github = helpers.REPO_ROOT / "template" / ".github"
    templated = {path.name for path in template_github.rglob("*.jinja")}
    assert templated == {"train.yml.jinja", "monitor.yml.jinja"}
    monitor = (template_github / "workflows" / "monitor.yml.jinja").read_text(encoding="utf-8")
    monitor_outside_raw = re.sub(r"\{% raw %\}.*?\{% endraw %\}|\{#.*?#\}", "", monitor, flags=re.S)
    assert re.findall(r"\{\{.*?\}\}", monitor_outside_raw) == []
    text = (template_github / "workflows" / "train.yml.jinja").read_text(encoding="utf-8")
    outside_raw = re.sub(r"\{% raw %\}.*?\{% endraw %\}|\{#.*?#\}", "", text, flags=re.S)
    assert re.findall(r"\{\{.*?\}\}", outside_raw) == ["{{ deploy_target }}"]
    project = generate(cases.CASES[0])
    for path in (project / ".github").rglob("*.yml"):
        yaml.safe_load(path.read_text(encoding="utf-8"))


@pytest.mark.parametrize("target", cases.DEPLOY_TARGETS)
@pytest.mark.parametrize("provider", ["github", "gitlab"])
def test_every_deploy_target_s_ci_files_pass_the_schemas_zizmor_and_actionlint(
    template, tmp_path, target, provider
):
    project = tmp_path / "project"
    answers = {"level": 3, "deploy_target": target, "ci": provider}
    helpers.copy_template(template, project, answers)
    for schema, arguments in schema_check(project, provider):
        result = helpers.run_tool("check-jsonschema", "--builtin-schema", schema, *arguments)
        assert result.returncode == 0, f"{schema}: {result.stdout}{result.stderr}"
    if provider == "github":
        result = helpers.run_tool(
            "zizmor", "--offline", "--no-progress", "--persona", "pedantic",
            str(project / ".github"),
        )  # fmt: skip
        assert result.returncode == 0, result.stdout + result.stderr
        assert_actionlint_passes(project)
