"""The package under test, found at run time, so that test files never name it.

`load("pipeline.read")` imports `<package>.pipeline.read` whatever the package
is called: the tests stay plain Python files that linters and type checkers
read as they are.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType

SRC = Path(__file__).resolve().parents[1] / "src"
NAME = next(init.parent.name for init in sorted(SRC.glob("*/__init__.py")))


def load(module: str) -> ModuleType:
    """Import a module of the package by its dotted path inside it."""
    return importlib.import_module(f"{NAME}.{module}")


PipelineError = load("core.errors").PipelineError
