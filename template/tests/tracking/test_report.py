import subprocess
from pathlib import Path

from ..package import load

cli = load("cli")
report = load("tracking.report")
canvas_file = load("core.canvas")

GOAL = canvas_file.SuccessMetric(name="roc_auc", threshold=0.9, higher_is_better=True)
METRICS = {"roc_auc": 0.95, "accuracy": 0.9}


def test_report_shows_the_diffs_and_the_canvas_verdict():
    text = report.build_report(
        METRICS, GOAL, "origin/main", True, (True, "| metric table |"), (True, "")
    )

    assert "**Canvas goal: PASS.** roc_auc = 0.9500" in text
    assert "### Metrics compared with `origin/main`" in text
    assert "| metric table |" in text
    assert "No parameter changed." in text
    assert "| roc_auc | 0.9500 |" in text


def test_report_says_when_the_base_is_missing_or_dvc_fails():
    missing = report.build_report(METRICS, GOAL, "origin/main", False, (False, ""), (False, ""))
    failed = report.build_report(
        {"roc_auc": 0.5}, GOAL, "main", True, (False, "ERROR: boom"), (True, "")
    )

    assert "Base `origin/main` not found" in missing
    assert "| roc_auc | 0.9500 |" in missing
    assert "Not compared: ERROR: boom" in failed
    assert "**Canvas goal: BELOW GOAL.**" in failed


def test_report_command_outside_git_still_writes_the_report(project, monkeypatch, capsys):
    summary = project.root / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    Path("reports").mkdir()
    Path("reports/metrics.json").write_text('{"roc_auc": 0.97, "accuracy": 0.9}\n')

    assert cli.main(["report", "--base", "no-such-ref"]) == 0

    text = Path("reports/ci-report.md").read_text()
    assert "Base `no-such-ref` not found" in text
    assert "**Canvas goal: PASS.**" in text
    assert summary.read_text().startswith(text)


def test_in_ci_a_target_branch_the_checkout_lacks_is_fetched(project, monkeypatch, tmp_path):
    """GitLab branch pipelines fetch only their own branch: the report fetches the base."""
    for name, value in {
        "GIT_AUTHOR_NAME": "tests",
        "GIT_AUTHOR_EMAIL": "tests@example.com",
        "GIT_COMMITTER_NAME": "tests",
        "GIT_COMMITTER_EMAIL": "tests@example.com",
    }.items():
        monkeypatch.setenv(name, value)
    Path("reports").mkdir()
    Path("reports/metrics.json").write_text('{"roc_auc": 0.97}\n')
    for command in (
        ["git", "init", "-q", "-b", "master"],
        ["git", "add", "-A"],
        ["git", "commit", "-q", "-m", "start"],
        ["git", "switch", "-q", "-c", "feature"],
    ):
        subprocess.run(command, check=True, capture_output=True)
    clone = tmp_path / "pipeline-checkout"
    subprocess.run(
        ["git", "clone", "-q", "--single-branch", "-b", "feature", ".", str(clone)],
        check=True,
        capture_output=True,
    )
    monkeypatch.chdir(clone)
    monkeypatch.setenv("CI", "true")
    monkeypatch.setenv("CI_DEFAULT_BRANCH", "master")

    assert cli.main(["report"]) == 0

    text = Path("reports/ci-report.md").read_text()
    assert "### Metrics compared with `origin/master`" in text
