"""serve, score, smoke and load from the command line: results, and one-line errors."""

import json
import socket
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from ..package import NAME, PipelineError, load
from .conftest import VERSION

cli = load("cli")
settings_module = load("serving.settings")

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def _one_line_error(capsys, argv):
    code = cli.main(argv)
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert code == 1, captured
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("error: ")
    assert "Traceback" not in captured.err
    return lines[0]


def test_serve_refuses_a_port_in_use(model_dir, capsys):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]

        line = _one_line_error(capsys, ["serve", "--port", str(port)])

    assert f"cannot listen on 127.0.0.1:{port}" in line
    assert "another --port" in line


@pytest.mark.parametrize(
    ("folder", "message"),
    [
        ("nowhere", "nowhere is missing: export a model first"),
        ("data", "is not a model folder"),
    ],
)
def test_serve_refuses_a_missing_or_foreign_folder(model_dir, capsys, folder, message):
    line = _one_line_error(capsys, ["serve", "--model-dir", folder])

    assert message in line


def test_serve_refuses_another_projects_folder(model_dir, capsys):
    metadata = json.loads((model_dir / "metadata.json").read_text())
    (model_dir / "metadata.json").write_text(json.dumps({**metadata, "name": "other"}))

    line = _one_line_error(capsys, ["serve"])

    assert f"holds a model of project 'other', not '{NAME}'" in line


def test_score_writes_the_predictions_with_the_model_version(model_dir, capsys):
    assert cli.main(["score", "data/processed/test.csv"]) == 0

    scored = pd.read_csv("data/processed/test.predictions.csv")
    source = pd.read_csv("data/processed/test.csv")
    assert list(scored.columns) == [*source.columns, "prediction", "probability", "model_version"]
    assert len(scored) == len(source)
    assert set(scored["model_version"].astype(str)) == {VERSION}
    assert scored["probability"].between(0, 1).all()
    assert f"{len(source)} rows scored" in capsys.readouterr().out


def test_score_reads_and_writes_parquet(model_dir):
    pytest.importorskip("pyarrow")
    pd.read_csv("data/processed/test.csv").to_parquet("rows.parquet")

    assert cli.main(["score", "rows.parquet", "--output", "out/scored.parquet"]) == 0

    assert len(pd.read_parquet("out/scored.parquet")) == len(pd.read_parquet("rows.parquet"))


def test_score_refuses_rows_that_break_the_contract_and_writes_nothing(model_dir, capsys):
    frame = pd.read_csv("data/processed/test.csv")
    frame["area"] = frame["area"].astype(object)
    frame.loc[3, "radius"] = 99.0
    frame.loc[5, "area"] = "unknown"
    frame.loc[7, "clinic"] = None
    frame.to_csv("rows.csv", index=False)

    line = _one_line_error(capsys, ["score", "rows.csv"])

    assert "rows.csv breaks the model's data contract in 3 row(s)" in line
    assert "line 5: radius: Input should be less than or equal to 40" in line
    assert "line 7: area: not a number ('unknown')" in line
    assert "line 9: clinic: missing" in line
    assert not Path("rows.predictions.csv").exists()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda f: f.drop(columns=["area"]), "lacks the model's features area"),
        (lambda f: f.head(0), "has no rows to score"),
        (lambda f: f.assign(prediction=1), "already has the column(s) prediction"),
    ],
)
def test_score_refuses_unusable_files(model_dir, capsys, change, message):
    change(pd.read_csv("data/processed/test.csv")).to_csv("rows.csv", index=False)

    assert message in _one_line_error(capsys, ["score", "rows.csv"])


def test_score_needs_a_known_format(model_dir, capsys):
    line = _one_line_error(capsys, ["score", "data/processed/test.csv", "--output", "out.xlsx"])

    assert "must end in .csv or .parquet" in line


def test_smoke_starts_and_stops_a_local_server(model_dir, capsys, monkeypatch):
    monkeypatch.delenv("PREDICTION_LOG_PATH", raising=False)  # no log chosen by the caller
    assert cli.main(["smoke", "--start"]) == 0, capsys.readouterr().err

    output = capsys.readouterr().out
    assert "local server ready in" in output
    assert "7 checks passed (MODEL_API_TOKEN not set: no token checked)" in output
    # Level 4: the check's traffic went to a log of its own, not into the project's.
    assert not Path("logs").exists()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["smoke"], "needs either --url URL (a running API) or --start"),
        (["smoke", "--url", "ftp://host"], "must be an http:// or https:// address"),
        (["smoke", "--start", "--model-dir", "nowhere"], "nowhere is missing"),
        (["load", "--concurrency", "0", "--start"], "must be at least 1"),
        (
            ["load", "--url", "http://127.0.0.1:9", "--timeout", "0.3"],
            "not ready after 0.3 s (cannot reach http://127.0.0.1:9/ready",
        ),
    ],
)
def test_smoke_and_load_explain_bad_options(model_dir, capsys, argv, message):
    assert message in _one_line_error(capsys, argv)


def test_the_project_deploy_settings_load():
    settings = settings_module.load_serving_settings(PROJECT_ROOT / "deploy.yaml")

    assert settings.number_limit == 1e15  # written 1.0e+15: YAML 1.1 needs the sign
    assert settings.model_dir == Path("models/serving")


def test_settings_defaults_overrides_and_errors(project, monkeypatch):
    defaults = settings_module.load_serving_settings(Path("deploy.yaml"))  # no such file
    Path("deploy.yaml").write_text("serving:\n  port: 9000\n  max_batch_rows: 0\n")
    monkeypatch.setenv("MODEL_DIR", "elsewhere")

    assert defaults == settings_module.ServingSettings()
    with pytest.raises(PipelineError, match=r"`serving\.max_batch_rows` must"):
        settings_module.load_serving_settings(Path("deploy.yaml"))
    Path("deploy.yaml").write_text("serving:\n  port: 9000\n  prot: 1\n")
    with pytest.raises(PipelineError, match=r"deploy\.yaml: `serving\.prot` is not a known key"):
        settings_module.load_serving_settings(Path("deploy.yaml"))
    Path("deploy.yaml").write_text("serving:\n  port: 9000\n")
    settings = settings_module.load_serving_settings(Path("deploy.yaml"))
    assert (settings.port, settings.model_dir) == (9000, Path("elsewhere"))


def test_serving_needs_no_training_library(model_dir):
    """The API process loads the ONNX model without scikit-learn, pandas or MLflow."""
    code = (
        "import sys\n"
        f"from {NAME}.serving.app import create_app\n"
        "app = create_app('models/serving')\n"
        "assert app.state.model.wait(30), app.state.model.error\n"
        "heavy = ('sklearn', 'pandas', 'scipy', 'mlflow', 'skl2onnx', 'joblib')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_listing_the_commands_imports_no_serving_library():
    # pydantic is not on the list: it reads every settings file (core/settings.py).
    code = (
        "import sys\n"
        f"from {NAME} import cli\n"
        "cli.build_parser(cli.registered_commands())\n"
        "heavy = ('fastapi', 'uvicorn', 'onnxruntime', 'numpy', 'skl2onnx')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
