"""A real server (`serve` in a child process, with a token) under schemathesis, smoke and load.

schemathesis generates requests from /openapi.json (valid and invalid ones)
and runs every check: no 500, every status and body as documented, valid data
accepted, invalid data refused. It runs offline.
"""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ..package import load

cli = load("cli")
client = load("serving.client")

TOKEN = "token-for-tests"
EXAMPLES = 30
# Level 4's POST /feedback needs the id of an earlier prediction: generated ids
# get 404, which schemathesis reports as a warning (not a failure).
EXPECTED_WARNINGS = ["Missing test data: 1 operation repeatedly returned 404 responses"]


def warnings_of(output: str) -> list[str]:
    """The lines of schemathesis's `Warnings:` section, without their sign."""
    lines = output.splitlines()
    if "Warnings:" not in lines:
        return []
    section = lines[lines.index("Warnings:") + 1 :]
    found = []
    for line in section:
        if not line.strip():
            continue
        if not line.startswith("  "):
            break
        found.append(line.strip().lstrip("⚠️").strip())
    return found


@pytest.fixture(scope="module")
def server(built_folder, tmp_path_factory):
    # Level 4 logs every prediction: to a file of the test's, not the project's logs/.
    log = tmp_path_factory.mktemp("prediction-log") / "predictions.db"
    environment = {"MODEL_API_TOKEN": TOKEN, "PREDICTION_LOG_PATH": str(log)}
    with client.LocalServer(built_folder, environment=environment) as running:
        yield running


def test_schemathesis_finds_no_failure(server, tmp_path):
    found = shutil.which("schemathesis", path=str(Path(sys.executable).parent))
    assert found, "schemathesis is not installed in this environment"
    command = [
        found, "run", f"{server.url}/openapi.json", "--checks", "all",
        "--max-examples", str(EXAMPLES), "--seed", "1",
        "-H", f"Authorization: Bearer {TOKEN}", "--no-color",
    ]  # fmt: skip

    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300)

    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "No issues found" in result.stdout or warnings_of(result.stdout) == EXPECTED_WARNINGS


def test_smoke_checks_the_running_api(server, model_dir, monkeypatch, capsys):
    monkeypatch.setenv("MODEL_API_TOKEN", TOKEN)

    assert cli.main(["smoke", "--url", server.url]) == 0, capsys.readouterr().err

    output = capsys.readouterr().out
    assert "POST /predict 5 recorded examples" in output
    assert "rows of data/processed/test.csv" in output
    assert "without the token is refused" in output
    assert "8 checks passed" in output


def test_smoke_fails_on_another_model_version(server, model_dir, monkeypatch, capsys):
    monkeypatch.setenv("MODEL_API_TOKEN", TOKEN)

    assert cli.main(["smoke", "--url", server.url, "--expect-version", "99"]) == 1

    error = capsys.readouterr().err.strip()
    assert error == "error: smoke: GET /version: the API serves model version '3', expected '99'"


def test_load_reports_latency_and_meets_the_budget(server, model_dir, monkeypatch, capsys):
    """Bounded generously: the tests' canvas allows 10 s (test_load_fails_over_the_budget
    checks a budget the API cannot meet)."""
    monkeypatch.setenv("MODEL_API_TOKEN", TOKEN)
    argv = ["load", "--url", server.url, "--duration", "0.5", "--concurrency", "4"]

    assert cli.main([*argv, "--report", "reports/load.json"]) == 0, capsys.readouterr().err

    report = json.loads(Path("reports/load.json").read_text())
    assert report["budget_ms"] == 10_000  # the canvas's latency_budget_ms, from /version
    assert [level["concurrency"] for level in report["levels"]] == [1, 4]
    assert all(level["requests"] > 0 and level["errors"] == 0 for level in report["levels"])
    assert "| concurrency | requests | errors | req/s | p50 ms | p95 ms | p99 ms |" in (
        capsys.readouterr().out
    )


def test_load_fails_over_the_budget(server, model_dir, monkeypatch, capsys):
    monkeypatch.setenv("MODEL_API_TOKEN", TOKEN)
    argv = ["load", "--url", server.url, "--duration", "0.2", "--concurrency", "2"]

    assert cli.main([*argv, "--budget-ms", "0.001"]) == 1

    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1
    assert "exceeds the latency budget of 0.001 ms" in error[0]


def test_load_counts_refused_requests_as_failures(server, model_dir, monkeypatch, capsys):
    monkeypatch.delenv("MODEL_API_TOKEN", raising=False)
    argv = ["load", "--url", server.url, "--duration", "0.2", "--concurrency", "2"]

    assert cli.main(argv) == 1  # no token in this test's environment: every request gets 401

    assert "requests failed at concurrency 1" in capsys.readouterr().err
