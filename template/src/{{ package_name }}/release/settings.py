"""deploy.yaml: the settings level 3 adds, in a file of its own.

canvas.yaml says what success means; deploy.yaml says how strict the gate is
and how the registry names the model. Every key has a default in code, so a
missing key (or a missing file) means "the default".
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..core.settings import Reader

DEPLOY_SETTINGS = Path("deploy.yaml")
GATE_REPORT = Path("reports/gate.json")
GATE_SUMMARY = Path("reports/gate.md")
PACKAGE = __name__.split(".")[0]


@dataclass(frozen=True)
class GateSettings:
    margin: float = 0.005  # the champion must be beaten by at least this much
    latency_rows: int = 200  # single-row predictions timed for the latency check
    slice_column: str | None = None  # a column whose categories must not regress
    max_slice_drop: float = 0.05  # how much worse than the champion a slice may be
    min_slice_rows: int = 20  # smaller slices are reported, not judged


@dataclass(frozen=True)
class RegistrySettings:
    model_name: str = PACKAGE


def _reader(path: Path) -> Reader | None:
    return Reader.of_file(path) if path.is_file() else None


def load_gate_settings(path: Path = DEPLOY_SETTINGS) -> GateSettings:
    reader = _reader(path)
    if reader is None:
        return GateSettings()
    defaults = GateSettings()
    slice_column = reader.get("gate.slice_column", None)
    if slice_column is not None:
        slice_column = reader.text("gate.slice_column")
    rows = reader.integer("gate.latency_rows", defaults.latency_rows)
    if rows < 1:
        raise reader.fail("gate.latency_rows", f"must be at least 1 (got {rows})")
    return GateSettings(
        margin=reader.fraction("gate.margin", defaults.margin),
        latency_rows=rows,
        slice_column=slice_column,
        max_slice_drop=reader.fraction("gate.max_slice_drop", defaults.max_slice_drop),
        min_slice_rows=reader.integer("gate.min_slice_rows", defaults.min_slice_rows),
    )


def load_registry_settings(path: Path = DEPLOY_SETTINGS) -> RegistrySettings:
    reader = _reader(path)
    if reader is None:
        return RegistrySettings()
    if reader.get("registry.model_name", None) is None:
        return RegistrySettings()
    return RegistrySettings(model_name=reader.text("registry.model_name"))
