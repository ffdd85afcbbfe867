"""Generated projects are green: their own CI steps pass on a fresh clone.

Each case is generated, committed on `main`, cloned fresh, and then every
`run:` step of its GitHub workflows (or every `script:` line of its GitLab CI)
is executed here, in order. The workflow files are also validated against the
official schemas and, for GitHub, by the zizmor security linter.
"""

from __future__ import annotations

import hashlib

import pytest
import yaml

from tests import helpers

CI_CASES = [
    "level1-defaults",
    "level1-gitlab",
    "level1-s3-remote",
    "level1-gcs-remote-unicode-name",
    "level2-defaults",
    "level2-gitlab",
]
WORKFLOW_CASES = [case for case in helpers.CASES if helpers.CASES[case].get("ci") != "none"]


@pytest.mark.slow
@pytest.mark.parametrize("case_id", CI_CASES)
def test_generated_ci_passes_on_fresh_clone(committed_clone, case_id):
    clone = committed_clone(case_id, helpers.CASES[case_id])
    outputs = helpers.run_ci(clone)
    assert outputs, "the generated CI has no shell step"
    assert any("poe lint" in step for step in outputs)
    assert any("poe notebook" in step for step in outputs)
    assert (clone / "models" / "baseline.joblib").is_file()
    if helpers.CASES[case_id].get("level", 1) >= 2:
        assert any("poe pipeline" in step for step in outputs)
        assert (clone / "reports" / "metrics.json").is_file()
        assert (clone / "reports" / "ci-report.md").is_file()
    # No hook or step may modify a committed file (new files such as dvc.lock are fine).
    assert helpers.git(clone, "diff", "HEAD", "--name-only", "--diff-filter=M") == ""


@pytest.mark.parametrize("case_id", WORKFLOW_CASES)
def test_workflows_match_official_schema(generate, case_id):
    project = generate(case_id, helpers.CASES[case_id])
    if helpers.CASES[case_id].get("ci") == "gitlab":
        files = [str(project / ".gitlab-ci.yml"), *map(str, (project / ".gitlab").rglob("*.yml"))]
        result = helpers.run_tool(
            "check-jsonschema",
            "--builtin-schema",
            "vendor.gitlab-ci",
            "--data-transform",
            "gitlab-ci",
            *files,
        )
    else:
        files = sorted(map(str, (project / ".github" / "workflows").glob("*.yml")))
        result = helpers.run_tool(
            "check-jsonschema", "--builtin-schema", "vendor.github-workflows", *files
        )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    "case_id", [case for case in WORKFLOW_CASES if helpers.CASES[case].get("ci") != "gitlab"]
)
def test_github_workflows_pass_zizmor(generate, case_id):
    project = generate(case_id, helpers.CASES[case_id])
    result = helpers.run_tool(
        "zizmor", "--offline", "--no-progress", str(project / ".github" / "workflows")
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No findings" in result.stdout + result.stderr


def run_in(project, *command: str) -> str:
    """Run a project command as a developer would; fail with its output."""
    return helpers.run_step(project, helpers.Step("developer", " ".join(command)))


@pytest.mark.slow
def test_raw_data_is_tracked_and_pushed_with_dvc(committed_clone):
    """The documented data workflow: sample, `poe track-data`, `dvc push` to the local remote."""
    clone = committed_clone("level1-defaults", helpers.CASES["level1-defaults"])
    run_in(clone, "uv run poe sample-data")
    run_in(clone, "uv run poe track-data")
    pointer = yaml.safe_load((clone / "data" / "raw" / "dataset.csv.dvc").read_text())
    raw_md5 = hashlib.md5((clone / "data" / "raw" / "dataset.csv").read_bytes()).hexdigest()
    assert pointer["outs"][0]["md5"] == raw_md5  # the data version the notebook records
    run_in(clone, "uv run dvc push")
    remote = clone.parent / "project-dvc-storage"  # ../../ from .dvc/: beside it
    assert any(path.is_file() for path in remote.rglob("*"))


@pytest.mark.slow
def test_experiment_variant_is_tracked_and_ranked(committed_clone):
    """`dvc exp run -S` trains another architecture; `runs` ranks both tracked runs."""
    clone = committed_clone("level2-defaults", helpers.CASES["level2-defaults"])
    run_in(clone, "uv run poe sample-data")
    run_in(clone, "uv run dvc repro")
    run_in(clone, "uv run dvc exp run -S model.architecture=random_forest")
    ranking = run_in(clone, "uv run poe runs")
    assert "random_forest" in ranking
    assert "logistic_regression" in ranking
