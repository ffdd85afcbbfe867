"""Request and answer schemas built from the data contract the model was trained under.

The rules are in docs/serving.md ("The API"). The same models check the rows
of `score`, so a file and the API accept exactly the same rows.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from ..core.canvas import ColumnRule

if TYPE_CHECKING:
    import pandas as pd
    from pydantic import BaseModel

# The discriminator's tags appear in pydantic's error locations; they are
# removed from the messages the API returns (see error_details).
ROW_TAG = "row"
BATCH_TAG = "batch"
SHOWN_INPUT_CHARS = 80
# Half of a UTF-16 surrogate pair, alone: what the JSON text "\ud800" decodes to.
LONE_SURROGATE = re.compile("[\ud800-\udfff]")
REPLACEMENT_CHARACTER = "\ufffd"


@dataclass(frozen=True)
class Feature:
    """One input of the model: its column name, its role and its contract rule."""

    name: str
    kind: str  # "numeric" or "categorical"
    rule: ColumnRule

    @property
    def nullable(self) -> bool:
        return self.rule.max_missing > 0


def _one_of(allowed: list[Any]) -> Any:
    from pydantic import AfterValidator

    def check(value: Any) -> Any:
        if value is not None and value not in allowed:
            raise ValueError(f"must be one of {allowed}")
        return value

    return AfterValidator(check)


def _number_type(rule: ColumnRule, number_limit: float) -> Any:
    from typing import Annotated

    from pydantic import Field

    base: type = float if rule.type == "float" else int
    low = rule.min if rule.min is not None else -number_limit
    high = rule.max if rule.max is not None else number_limit
    if base is int:  # ints are exact: whole bounds, so that the schema says "integer"
        low, high = math.ceil(low), math.floor(high)
    constraints: dict[str, Any] = {"strict": True, "ge": low, "le": high}
    if base is float:
        constraints["allow_inf_nan"] = False
    if rule.allowed is None:
        return Annotated[base, Field(**constraints)]
    allowed = [base(value) for value in rule.allowed]
    field = Field(**constraints, json_schema_extra={"enum": allowed})
    return Annotated[base, field, _one_of(allowed)]


def _category_type(rule: ColumnRule) -> Any:
    from typing import Annotated

    from pydantic import Field

    if rule.allowed is None:
        return Annotated[str, Field(strict=True)]
    return Literal[tuple(str(value) for value in rule.allowed)]


def field_type(feature: Feature, number_limit: float) -> Any:
    """The pydantic type of one feature, nullable when the contract allows missing values."""
    rule = feature.rule
    kind = _category_type(rule) if rule.type == "category" else _number_type(rule, number_limit)
    return kind | None if feature.nullable else kind


def _describe(feature: Feature) -> str:
    rule = feature.rule
    parts = [f"{feature.kind} feature, {rule.type}"]
    if rule.min is not None:
        parts.append(f"at least {rule.min:g}")
    if rule.max is not None:
        parts.append(f"at most {rule.max:g}")
    if rule.allowed is not None:
        parts.append(f"one of {rule.allowed}")
    parts.append("may be missing (null)" if feature.nullable else "required")
    return ", ".join(parts)


def build_row_model(features: list[Feature], number_limit: float) -> type[BaseModel]:
    """The model of one row: one field per feature, named by its column."""
    from pydantic import ConfigDict, Field, create_model

    fields: dict[str, Any] = {}
    for index, feature in enumerate(features):
        # Column names need not be Python names ("mean radius", "class"): the
        # field has a safe name and the column as its alias.
        default = None if feature.nullable else ...
        info = Field(
            default, alias=feature.name, title=feature.name, description=_describe(feature)
        )
        fields[f"feature_{index}"] = (field_type(feature, number_limit), info)
    config = ConfigDict(extra="forbid", strict=True, populate_by_name=False)
    return create_model("Row", __config__=config, **fields)


def build_batch_model(row: type[BaseModel], max_rows: int) -> type[BaseModel]:
    from typing import Annotated

    from pydantic import ConfigDict, Field, create_model

    rows = Annotated[list[row], Field(min_length=1, max_length=max_rows)]  # type: ignore[valid-type]
    return create_model(
        "Batch",
        __config__=ConfigDict(extra="forbid", strict=True),
        rows=(rows, Field(..., description=f"1 to {max_rows} rows")),
    )


def build_body_type(row: type[BaseModel], batch: type[BaseModel]) -> Any:
    """One row, or {"rows": [...]}: the shape decides which, so errors name one shape only.

    An object with a `rows` key is a batch, whatever `rows` holds (`{"rows": 5}`
    is told that `rows` must be a list), unless the contract has a column
    named `rows`: then only a list makes it a batch.
    """
    from typing import Annotated

    from pydantic import Discriminator, Tag

    column_named_rows = any(field.alias == "rows" for field in row.model_fields.values())

    def body_kind(value: Any) -> str:
        if not isinstance(value, dict) or "rows" not in value:
            return ROW_TAG
        if column_named_rows and not isinstance(value["rows"], list):
            return ROW_TAG
        return BATCH_TAG

    return Annotated[
        Annotated[row, Tag(ROW_TAG)] | Annotated[batch, Tag(BATCH_TAG)],
        Discriminator(body_kind),
    ]


def build_answer_models(classes: list[Any]) -> tuple[type[BaseModel], type[BaseModel]]:
    """The answer for one row, and for a batch (a list of those)."""
    from pydantic import Field, create_model

    if classes and all(isinstance(c, int | str) and not isinstance(c, bool) for c in classes):
        label: Any = Literal[tuple(classes)]
    else:
        label = Any
    prediction = create_model(
        "Prediction",
        prediction=(label, Field(..., description="the predicted class")),
        probability=(
            float,
            Field(..., ge=0, le=1, description="probability of the positive class"),
        ),
        model_version=(str, Field(..., description="version of the model that answered")),
    )
    predictions = create_model(
        "Predictions",
        predictions=(list[prediction], ...),  # type: ignore[valid-type]  # built at run time
    )
    return prediction, predictions


def _json_safe(value: Any) -> bool:
    if isinstance(value, float):
        return value == value and abs(value) != float("inf")
    return value is None or isinstance(value, bool | int | str)


def encodable(text: str) -> str:
    """The text with each lone surrogate replaced by U+FFFD, so that it encodes as UTF-8.

    JSON may escape half of a surrogate pair ("\\ud800"): valid JSON, which
    Python decodes to a str that no UTF-8 encoder takes.
    """
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return LONE_SURROGATE.sub(REPLACEMENT_CHARACTER, text)
    return text


def error_details(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """pydantic errors as JSON-safe items: location, message, type, and the input if plain.

    The raw errors may hold NaN or infinity as input, and texts (field names,
    inputs) with lone surrogates: echoing them as they are would make the JSON
    encoder fail, turning a 422 into a 500.
    """
    details = []
    for error in errors:
        location = [encodable(p) if isinstance(p, str) else p for p in error.get("loc", ())]
        if len(location) > 1 and location[0] == "body" and location[1] in (ROW_TAG, BATCH_TAG):
            del location[1]
        item: dict[str, Any] = {
            "loc": location,
            "msg": encodable(str(error.get("msg", ""))),
            "type": str(error.get("type", "")),
        }
        value = error.get("input")
        if _json_safe(value) and not isinstance(value, dict | list):
            if isinstance(value, str):
                value = encodable(value)
                if len(value) > SHOWN_INPUT_CHARS:
                    value = value[:SHOWN_INPUT_CHARS] + "..."
            item["input"] = value
        details.append(item)
    return details


def _plain_number(value: Any, rule_type: str) -> Any:
    """A cell as JSON would carry it: whole floats of an int column become ints."""
    if value is None or value != value:
        return None
    if rule_type == "int" and isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def feature_rows(
    frame: pd.DataFrame, features: list[Feature]
) -> tuple[list[dict[str, Any]], list[tuple[int, str, str]]]:
    """The rows as the API would receive them, and the cells that are not numbers.

    A CSV reader turns a column with one bad cell into text: numbers are
    parsed here, so that the bad cell, not the whole column, is reported.
    Problems are (row position, column, message).
    """
    import pandas as pd

    columns: dict[str, list[Any]] = {}
    problems: list[tuple[int, str, str]] = []
    for feature in features:
        series = frame[feature.name].reset_index(drop=True)
        if feature.rule.type == "category":
            columns[feature.name] = [
                None if value is None or value != value else str(value)
                for value in series.astype(object).tolist()
            ]
            continue
        numbers = pd.to_numeric(series, errors="coerce")
        for position in (series.notna() & numbers.isna()).to_numpy().nonzero()[0]:
            shown = repr(series.iloc[position])
            problems.append((int(position), feature.name, f"not a number ({shown})"))
        values = numbers.astype(object).where(numbers.notna(), None).tolist()
        columns[feature.name] = [_plain_number(value, feature.rule.type) for value in values]
    names = list(columns)
    rows = [dict(zip(names, values, strict=True)) for values in zip(*columns.values(), strict=True)]
    return rows, problems


def contract_problems(
    rows: list[dict[str, Any]], features: list[Feature], number_limit: float
) -> list[tuple[int, str, str]]:
    """Every cell that breaks the contract, as (row position, column, message)."""
    from pydantic import TypeAdapter, ValidationError

    row_model: Any = build_row_model(features, number_limit)  # a class built at run time
    checker: TypeAdapter[list[Any]] = TypeAdapter(list[row_model])
    try:
        checker.validate_python(rows)
    except ValidationError as error:
        problems = []
        for item in error.errors():
            position, *field = item["loc"]
            message = item["msg"]
            if item.get("input", "") is None:
                message = "missing, and the contract allows no missing value here"
            problems.append((int(position), ".".join(map(str, field)), message))
        return problems
    return []


def valid_rows(
    frame: pd.DataFrame, features: list[Feature], number_limit: float
) -> list[tuple[int, dict[str, Any]]]:
    """The rows that meet the contract, with their positions, as the API takes them.

    An absent optional field reads as missing: no nulls are sent.
    """
    rows, problems = feature_rows(frame, features)
    problems += contract_problems(rows, features, number_limit)
    bad = {position for position, _, _ in problems}
    return [
        (position, {k: v for k, v in row.items() if v is not None})
        for position, row in enumerate(rows)
        if position not in bad
    ]
