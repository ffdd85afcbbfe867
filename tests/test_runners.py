"""The real runners' harness (tests/runners.py), on tiny repositories.

act runs the workflows with local substitutes for the downloaded actions
(tests/actions/): each plays the inputs it claims, refuses the others, and
answers with the real action's words. gitlab-ci-local's results are read per
job: a failure, a dotenv report handed to the job that needs it.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from tests import helpers, runners

CHECKOUT = "actions/checkout@08c6903cd8c0fde910a37f88322edcfb5dd907a8"
SETUP_UV = "astral-sh/setup-uv@eb1897b8dc4b5d5bfe39a428a8f2304605e0983c"
UPLOAD = "actions/upload-artifact@ea165f8d65b6e75b540449e92b4886f43607fa02"


def repository(path: Path, files: dict[str, object]) -> Path:
    """A committed repository with these files (mappings written as YAML)."""
    for name, content in files.items():
        target = path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        text = content if isinstance(content, str) else yaml.safe_dump(content, sort_keys=False)
        target.write_text(text, encoding="utf-8")
    helpers.git(path, "init", "-q")
    helpers.commit_all(path, "start")
    return path


def workflow(*steps: dict, checkout: dict | None = None) -> dict:
    first = {"uses": CHECKOUT, "with": checkout} if checkout else {"uses": CHECKOUT}
    return {
        "name": "Checks",
        "on": {"push": None},
        "jobs": {"checks": {"runs-on": "ubuntu-latest", "steps": [first, *steps]}},
    }


def act(tmp_path: Path, spec: dict, files: dict[str, object] | None = None) -> runners.ActRun:
    project = repository(
        tmp_path / "project", {".github/workflows/checks.yml": spec, **(files or {})}
    )
    return runners.run_act(project, project / ".github/workflows/checks.yml", tmp_path / "act")


def test_the_checkout_fetches_the_pushed_commit_and_keeps_the_workspace(tmp_path):
    run = act(tmp_path, workflow({"run": "git log --format=%s > subjects.txt"}))
    assert run.returncode == 0, run.output
    workspace = run.workspaces["checks"]
    assert (workspace / "subjects.txt").read_text() == "start\n"
    assert helpers.git(workspace, "rev-parse", "--is-shallow-repository").strip() == "true"


def test_fetch_depth_0_fetches_the_whole_history(tmp_path):
    run = act(tmp_path, workflow({"run": "true"}, checkout={"fetch-depth": 0}))
    assert run.returncode == 0, run.output
    workspace = run.workspaces["checks"]
    assert helpers.git(workspace, "rev-parse", "--is-shallow-repository").strip() == "false"


def test_the_checkout_substitute_refuses_an_input_it_does_not_play(tmp_path):
    run = act(tmp_path, workflow({"run": "true"}, checkout={"path": "sub"}))
    assert run.returncode != 0
    assert "checkout stand-in: input 'path' is not played by the tests" in run.output


def test_the_setup_uv_substitute_refuses_an_input_it_does_not_play(tmp_path):
    step = {"uses": SETUP_UV, "with": {"activate-environment": "true"}}
    run = act(tmp_path, workflow(step))
    assert run.returncode != 0
    assert "setup-uv stand-in: input 'activate-environment' is not played" in run.output


def test_upload_artifact_keeps_the_files_below_their_common_folder(tmp_path):
    step = {"uses": UPLOAD, "with": {"name": "report", "path": "reports/a.html"}}
    run = act(tmp_path, workflow(step), {"reports/a.html": "<p>a</p>\n"})
    assert run.returncode == 0, run.output
    assert (tmp_path / "act" / "artifacts" / "report" / "a.html").read_text() == "<p>a</p>\n"


def test_upload_artifact_without_files_says_what_the_real_action_says(tmp_path):
    step = {"uses": UPLOAD, "with": {"name": "r", "path": "nothing/", "if-no-files-found": "error"}}
    run = act(tmp_path, workflow(step))
    assert run.returncode != 0
    expected = (
        "No files were found with the provided path: nothing/. No artifacts will be uploaded."
    )
    assert expected in run.output


PIPELINE = {
    "stages": ["check", "use"],
    "verdict": {
        "stage": "check",
        "script": ["echo VERDICT=$PIPELINE_SAYS > verdict.env"],
        "artifacts": {"reports": {"dotenv": "verdict.env"}},
    },
    "use": {"stage": "use", "needs": ["verdict"], "script": ['test "$VERDICT" = yes']},
    "broken": {"stage": "use", "needs": [], "script": ["exit 3"]},
}


def test_gitlab_jobs_get_the_dotenv_of_the_jobs_they_need(tmp_path):
    project = repository(tmp_path / "project", {".gitlab-ci.yml": PIPELINE})
    variables = runners.gitlab_variables(PIPELINE_SAYS="yes")
    run = runners.run_gitlab(
        project, ["verdict", "use"], variables, tmp_path / "state", isolate=True
    )
    assert run.returncode == 0, run.output
    assert run.jobs["verdict"].dotenv == {"VERDICT": "yes"}
    assert run.jobs["use"].result == "success"
    assert run.jobs["use"].folder == tmp_path / "state" / "builds" / "use"


def test_a_failed_gitlab_job_is_a_failure(tmp_path):
    project = repository(tmp_path / "project", {".gitlab-ci.yml": PIPELINE})
    run = runners.run_gitlab(project, ["broken"], runners.gitlab_variables(), tmp_path / "state")
    assert run.returncode != 0
    assert run.jobs["broken"].result == "failure"
    assert "exit 3" in run.jobs["broken"].output
