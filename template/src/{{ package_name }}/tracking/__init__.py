"""Experiment tracking: record each run (record.py), rank runs (runs.py), and
report what a change does to the metrics (report.py)."""

from ..core.commands import Command

# `uv run <package> <name>`: the module runs it (see core/commands.py).
COMMANDS = [
    Command("report", ".report", "markdown report of metric and param changes against a base"),
    Command("runs", ".runs", "rank the tracked runs by the canvas metric"),
]
