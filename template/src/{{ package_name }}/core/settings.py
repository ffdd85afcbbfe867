"""Read YAML settings files with type checks and precise messages.

Every settings file of the project (params.yaml, canvas.yaml, and the files
later levels add whole) is read through `read_yaml` and a `Reader`. Any
problem (a missing file, a YAML syntax error, a missing key, a value of the
wrong type) raises a PipelineError naming the file, the key and the fix.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from .errors import PipelineError

# Marks "no default given": the key is required.
REQUIRED: Any = object()


def read_yaml(path: Path) -> dict[str, Any]:
    """Read a YAML mapping; a missing file or a syntax error becomes a PipelineError."""
    if not path.is_file():
        raise PipelineError(f"{path} is missing: run the command from the project root.")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise PipelineError(f"{path} is not valid YAML{where}: {problem}.") from None
    if not isinstance(data, dict):
        raise PipelineError(f"{path} must hold a YAML mapping (key: value lines).")
    return data


class Reader:
    """Fetch dotted keys (`model.architecture`) from a mapping, checking their types."""

    def __init__(self, data: dict[str, Any], source: Path) -> None:
        self.data = data
        self.source = source

    @classmethod
    def of_file(cls, path: Path) -> Reader:
        return cls(read_yaml(path), path)

    def fail(self, key: str, problem: str) -> PipelineError:
        return PipelineError(f"{self.source}: `{key}` {problem}.")

    def get(self, key: str, default: Any = REQUIRED) -> Any:
        node: Any = self.data
        for part in key.split("."):
            if not isinstance(node, dict) or part not in node:
                if default is not REQUIRED:
                    return default
                raise self.fail(key, "is missing")
            node = node[part]
        return node

    def text(self, key: str, default: Any = REQUIRED) -> str:
        value = self.get(key, default)
        if not isinstance(value, str) or not value.strip():
            raise self.fail(key, f"must be a non-empty text (got {value!r})")
        return value

    def number(self, key: str, default: Any = REQUIRED) -> float:
        value = self.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(key, f"must be a number (got {value!r})")
        return float(value)

    def fraction(self, key: str, default: Any = REQUIRED) -> float:
        value = self.number(key, default)
        if not 0 <= value <= 1:
            raise self.fail(key, f"must be a fraction between 0 and 1 (got {value})")
        return value

    def integer(self, key: str, default: Any = REQUIRED) -> int:
        value = self.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(key, f"must be a whole number (got {value!r})")
        return value

    def boolean(self, key: str, default: Any = REQUIRED) -> bool:
        value = self.get(key, default)
        if not isinstance(value, bool):
            raise self.fail(key, f"must be true or false (got {value!r})")
        return value

    def names(self, key: str) -> list[str]:
        value = self.get(key, [])
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.fail(key, f"must be a list of column names (got {value!r})")
        return list(value)

    def mapping(self, key: str, default: Any = REQUIRED) -> dict[str, Any]:
        value = self.get(key, default)
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self.fail(key, f"must be a mapping (got {value!r})")
        return value
