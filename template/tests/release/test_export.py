"""`export` on a machine without the data: a fresh CI runner's deploy or monitor job."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from ..package import load
from .test_gate import trained

cli = load("cli")
canvas_file = load("core.canvas")
export = load("release.export")


def test_rows_drawn_within_the_contract_keep_to_it(project):
    canvas = canvas_file.load_canvas(Path("canvas.yaml"))

    rows = export.contract_rows(canvas, count=300)

    assert len(rows) == 300
    for name, rule in canvas.data_contract.columns.items():
        values = rows[name]
        assert values.notna().all(), name
        if rule.allowed:
            assert set(values) <= set(rule.allowed), name
        if rule.min is not None:
            assert values.min() >= rule.min, name
        if rule.max is not None:
            assert values.max() <= rule.max, name
    assert rows.equals(export.contract_rows(canvas, count=300))  # seeded


def test_the_champion_exports_without_the_data(project, tmp_path, capsys):
    trained(project, tmp_path)
    for command in ("gate", "register", "promote"):
        assert cli.main([command]) == 0, capsys.readouterr().err
    shutil.rmtree("data")  # a fresh runner: the code and the registry only
    capsys.readouterr()

    assert cli.main(["export", "--out", "served"]) == 0, capsys.readouterr().err

    said = capsys.readouterr().out
    assert "rows drawn within the data contract" in said
    metadata = json.loads(Path("served/metadata.json").read_text())
    assert metadata["version"] == "1"
    examples = json.loads(Path("served/examples.json").read_text())
    assert examples["rows"]  # what the smoke test sends
