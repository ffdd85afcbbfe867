"""The GitHub job player (tests/workflows.py) refuses what it does not play.

The delivery and monitor tests run level 3 and 4's workflows with this
player, against the cloud stand-ins. A key, an action or an input it would
silently skip could hide a broken workflow: it names it instead, before any
job runs. Every workflow the template generates passes the check.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests import cases, helpers, workflows

CHECKS = {
    "name": "Checks",
    "on": {"push": None},
    "jobs": {
        "checks": {
            "runs-on": "ubuntu-latest",
            "steps": [
                {"uses": "actions/checkout@08c6903cd8c0fde910a37f88322edcfb5dd907a8"},
                {"run": "uv run poe ci"},
            ],
        }
    },
}


def write_workflow(project: Path, spec: dict) -> str:
    folder = project / ".github" / "workflows"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "checks.yml").write_text(yaml.safe_dump(spec, sort_keys=False))
    return "checks.yml"


def with_job_key(key: str, value: object) -> dict:
    return {**CHECKS, "jobs": {"checks": {**CHECKS["jobs"]["checks"], key: value}}}


def with_step(step: dict) -> dict:
    job = CHECKS["jobs"]["checks"]
    return {**CHECKS, "jobs": {"checks": {**job, "steps": [*job["steps"], step]}}}


def test_a_plain_workflow_is_accepted(tmp_path):
    workflows.check_workflow(tmp_path, write_workflow(tmp_path, CHECKS))


@pytest.mark.parametrize(
    ("key", "value"),
    [("strategy", {"matrix": {"python": ["3.12"]}}), ("services", {"db": {"image": "postgres"}}),
     ("container", "python:3.12"), ("continue-on-error", True)],
)  # fmt: skip
def test_a_job_key_it_does_not_play_is_refused_by_name(tmp_path, key, value):
    workflow = write_workflow(tmp_path, with_job_key(key, value))
    with pytest.raises(workflows.NotPlayed, match=f"job checks: `{key}`"):
        workflows.run_workflow(tmp_path, workflow, workflows.environment_context(tmp_path))


def test_a_step_key_it_does_not_play_is_refused_by_name(tmp_path):
    workflow = write_workflow(tmp_path, with_step({"run": "pytest", "working-directory": "src"}))
    with pytest.raises(workflows.NotPlayed, match="`working-directory`"):
        workflows.check_workflow(tmp_path, workflow)


def test_another_shell_is_refused(tmp_path):
    workflow = write_workflow(tmp_path, with_step({"run": "Get-Date", "shell": "pwsh"}))
    with pytest.raises(workflows.NotPlayed, match="`shell: pwsh`"):
        workflows.check_workflow(tmp_path, workflow)


def test_an_action_it_does_not_play_is_refused_by_name(tmp_path):
    workflow = write_workflow(tmp_path, with_step({"uses": "actions/cache@v4"}))
    with pytest.raises(workflows.NotPlayed, match="`uses: actions/cache@v4`"):
        workflows.check_workflow(tmp_path, workflow)


def test_an_input_it_does_not_play_is_refused_by_name(tmp_path):
    step = {"uses": "actions/download-artifact@v4", "with": {"name": "x", "pattern": "*"}}
    workflow = write_workflow(tmp_path, with_step(step))
    with pytest.raises(workflows.NotPlayed, match="`with: pattern`"):
        workflows.check_workflow(tmp_path, workflow)


@pytest.mark.parametrize("target", cases.DEPLOY_TARGETS)
@pytest.mark.parametrize("orchestrator", ["local", "vertex"])
def test_every_generated_workflow_is_one_the_player_plays(template, tmp_path, target, orchestrator):
    project = tmp_path / "project"
    answers = {"level": 4, "deploy_target": target, "orchestrator": orchestrator}
    helpers.copy_template(template, project, answers)
    for path in sorted((project / ".github" / "workflows").glob("*.yml")):
        workflows.check_workflow(project, path.name)
