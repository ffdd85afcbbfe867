from pathlib import Path

from ..package import load

cli = load("cli")
report = load("tracking.report")
canvas_file = load("core.canvas")

GOAL = canvas_file.SuccessMetric(name="roc_auc", threshold=0.9, higher_is_better=True)
METRICS = {"roc_auc": 0.95, "accuracy": 0.9}


def test_base_comes_from_the_ci_target_branch():
    def never(ref):
        return False

    assert report.default_base({"GITHUB_BASE_REF": "develop"}, never) == "origin/develop"
    gitlab = {"CI_MERGE_REQUEST_TARGET_BRANCH_NAME": "release", "CI_DEFAULT_BRANCH": "main"}
    assert report.default_base(gitlab, never) == "origin/release"
    assert report.default_base({"CI_DEFAULT_BRANCH": "trunk"}, never) == "origin/trunk"
    assert report.default_base({"GITHUB_BASE_REF": ""}, never) == "main"
    assert report.default_base({}, lambda ref: ref == "origin/main") == "origin/main"


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
