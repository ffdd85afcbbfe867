"""Settings files as pydantic models, read and explained in one line.

Each YAML file the project reads is one `Settings` model whose fields hold the
defaults. `load` turns a problem into a PipelineError naming the file and the
key, such as "params.yaml: `split.seed` must be a whole number (got 'x')."
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Self

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    model_validator,
)

from .errors import PipelineError

# A non-empty text (surrounding spaces dropped), and a path written as text.
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
PathSetting = Annotated[Path, Field(strict=False)]

PROBLEMS = {
    "missing": "is missing",
    "extra_forbidden": "is not a known key (a typo?)",
    "int_type": "must be a whole number",
    "float_type": "must be a number",
    "bool_type": "must be true or false",
    "string_type": "must be a text",
    "list_type": "must be a list",
    "dict_type": "must be a mapping",
    "model_type": "must be a mapping",
    "literal_error": "must be one of {expected}",
    "greater_than": "must be above {gt:g}",
    "greater_than_equal": "must be at least {ge:g}",
    "less_than": "must be below {lt:g}",
    "less_than_equal": "must be at most {le:g}",
    "string_too_short": "must not be empty",
    "too_short": "must not be empty",
}


class Problem(ValueError):
    """A validator's complaint about `key`, a field of the model that raises it."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(problem)
        self.key = key


class Settings(BaseModel):
    """A settings file or a section of one: unknown keys refused, null keeps the default."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, protected_namespaces=())

    @model_validator(mode="before")
    @classmethod
    def _null_keeps_the_default(cls, data: Any) -> Any:
        if isinstance(data, dict):
            return {key: value for key, value in data.items() if value is not None}
        return data

    @classmethod
    def validated(
        cls, data: dict[str, Any], source: Path | str, variables: Mapping[str, str] | None = None
    ) -> Self:
        """Validate `data`, after the environment variables `variables` maps dotted keys to."""
        overridden = {}
        for key, variable in (variables or {}).items():
            value = os.environ.get(variable, "").strip()
            if value:
                *sections, name = key.split(".")
                node = data
                for section in sections:
                    if not isinstance(node.get(section), dict):
                        node[section] = {}
                    node = node[section]
                node[name] = value
                overridden[key] = variable
        try:
            return cls.model_validate(data)
        except ValidationError as error:
            raise PipelineError(explain(error, source, overridden)) from None

    @classmethod
    def load(
        cls, path: Path, *, optional: bool = False, variables: Mapping[str, str] | None = None
    ) -> Self:
        """Read `path`; an `optional` file may be absent (then: the defaults)."""
        data = read_yaml(path) if path.is_file() or not optional else {}
        return cls.validated(data, path, variables)


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
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise PipelineError(f"{path} must hold a YAML mapping (key: value lines).")
    return data


def explain(error: ValidationError, source: Path | str, variables: Mapping[str, str]) -> str:
    """The first unknown key (often the typo of a missing one), then the first other problem."""
    errors = error.errors(include_url=False)
    unknown = [each for each in errors if each["type"] == "extra_forbidden"]
    others = [each for each in errors if each["type"] != "extra_forbidden"]
    return f"{source}: {'; '.join(describe(each, variables) for each in unknown[:1] + others[:1])}."


def describe(error: Mapping[str, Any], variables: Mapping[str, str]) -> str:
    """One problem as "`<dotted.key>` <problem> (got <value>)"."""
    loc = [str(part) for part in error["loc"]]
    context = error.get("ctx") or {}
    cause = context.get("error")
    if isinstance(cause, ValueError):
        loc += [cause.key] if isinstance(cause, Problem) and cause.key else []
        problem = str(cause)
    elif error["type"] in PROBLEMS:
        values = {**context, "expected": str(context.get("expected", "")).replace("'", "")}
        problem = PROBLEMS[error["type"]].format(**values)
        if error["type"] not in ("missing", "extra_forbidden"):
            problem += f" (got {error['input']!r})"
    else:
        problem = f"{error['msg'][:1].lower()}{error['msg'][1:]} (got {error['input']!r})"
    key = ".".join(loc)
    if key in variables:
        problem += f" (set by the {variables[key]} environment variable)"
    return f"`{key}` {problem}"
