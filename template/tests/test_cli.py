import subprocess
import sys
from pathlib import Path

import pytest

from .package import NAME, load

cli = load("cli")


def _one_line_error(capsys, argv):
    code = cli.main(argv)
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert code == 1
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("error: ")
    assert "Traceback" not in captured.err
    return lines[0]


def test_missing_data(project, capsys):
    Path("data/raw/dataset.csv").unlink()

    line = _one_line_error(capsys, ["read"])

    assert "data/raw/dataset.csv is missing" in line
    assert "uv run poe sample-data" in line


def test_malformed_params(project, capsys):
    assert cli.main(["read"]) == 0
    Path("params.yaml").write_text("features: {numeric: [radius]\nsplit: 1\n")

    line = _one_line_error(capsys, ["preprocess"])

    assert "params.yaml is not valid YAML at line" in line
    assert not Path("data/processed").exists()


def test_unknown_feature(project, capsys):
    project.set("params", "features.categorical", ["clinik"])
    assert cli.main(["read"]) == 0

    line = _one_line_error(capsys, ["preprocess"])

    assert "'clinik'" in line
    assert "valid columns:" in line


def test_unknown_architecture_writes_no_model(project, capsys):
    for stage in ("read", "preprocess"):
        assert cli.main([stage]) == 0
    project.set("params", "model.architecture", "transformer")

    line = _one_line_error(capsys, ["train"])

    assert "'transformer'" in line
    assert "logistic_regression" in line
    assert not Path("models/model.joblib").exists()


def test_validation_failure_is_one_line(project, tiny_frame, capsys):
    tiny_frame.loc[4, "clinic"] = "nowhere"
    project.write_data(tiny_frame)
    assert cli.main(["read"]) == 0

    line = _one_line_error(capsys, ["validate"])

    assert "column 'clinic'" in line
    assert "line 6 = 'nowhere'" in line


def test_runs_before_any_tracked_run(project, capsys):
    assert cli.main(["runs"]) == 0

    assert "No tracked runs yet" in capsys.readouterr().out


def test_unknown_command_is_an_argparse_error(capsys):
    with pytest.raises(SystemExit) as caught:
        cli.main(["fly"])

    assert caught.value.code == 2


def test_each_command_module_registers_its_command():
    commands = cli.registered_commands()

    stages = {"read", "metadata", "validate", "preprocess", "train", "evaluate"}
    assert stages | {"runs", "report"} <= set(commands)
    for name, command in commands.items():
        assert command.name == name
        assert command.help, f"{name} has no help text"


def test_listing_the_commands_imports_no_heavy_library():
    """`<package> --help` stays instant: command modules import heavy libraries lazily."""
    code = (
        "import sys\n"
        f"from {NAME} import cli\n"
        "cli.build_parser(cli.registered_commands())\n"
        "print(sorted(m for m in ('pandas', 'sklearn', 'mlflow', 'scipy') if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
