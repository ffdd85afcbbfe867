"""Stage `validate`: check the data against canvas.yaml's data contract.

Each column of the contract must be present, of its type, within min/max, in
its allowed values, with no more missing values than max_missing allows, and
the data must have at least min_rows rows. Any violation stops the pipeline
with a message naming the column, the rule and a few offending rows (by their
line in the CSV file, the header being line 1). reports/validation.json is
written only when the data passes; the preprocess stage depends on it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core import files, paths
from ..core.canvas import ColumnRule, DataContract, load_canvas
from ..core.errors import PipelineError

if TYPE_CHECKING:
    import pandas as pd

EXAMPLES_SHOWN = 3
VIOLATIONS_SHOWN = 3


@dataclass(frozen=True)
class Violation:
    """One broken rule. Rows are 0-based positions in the data frame."""

    column: str | None
    rule: str
    count: int
    total: int
    examples: list[tuple[int, Any]] = field(default_factory=list)
    note: str = ""

    def describe(self) -> str:
        """One-line description; rows are shown as CSV lines (position + 2)."""
        subject = f"column '{self.column}'" if self.column else "the data set"
        text = f"{subject} breaks `{self.rule}`"
        if self.note:
            text += f" ({self.note})"
        if self.examples:
            shown = ", ".join(f"line {row + 2} = {_show(value)}" for row, value in self.examples)
            text += f": {self.count} of {self.total} rows, e.g. {shown}"
        return text

    def as_dict(self) -> dict[str, Any]:
        return {
            "column": self.column,
            "rule": self.rule,
            "rows": self.count,
            "examples": [{"line": row + 2, "value": _show(value)} for row, value in self.examples],
            "note": self.note,
        }


def _show(value: Any) -> str:
    if value is None or value != value:  # None or NaN
        return "missing"
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value)) if abs(value) < 1e15 else str(value)
    return str(value)


def _examples(series: pd.Series, mask: pd.Series) -> list[tuple[int, Any]]:
    rows = [int(position) for position in mask.to_numpy().nonzero()[0][:EXAMPLES_SHOWN]]
    values = series.to_numpy()
    return [(row, _plain(values[row])) for row in rows]


def _plain(value: Any) -> Any:
    """A numpy scalar as a plain Python value (for messages and JSON)."""
    return value.item() if hasattr(value, "item") else value


def _check_column(series: pd.Series, rule: ColumnRule, name: str) -> list[Violation]:
    import pandas as pd

    total = len(series)
    found: list[Violation] = []

    def add(rule_text: str, mask: pd.Series, note: str = "") -> None:
        count = int(mask.sum())
        if count:
            found.append(Violation(name, rule_text, count, total, _examples(series, mask), note))

    missing = series.isna()
    if total and missing.mean() > rule.max_missing:
        add(
            f"max_missing: {rule.max_missing:g}",
            missing,
            f"{missing.mean():.1%} missing",
        )

    if rule.type in ("float", "int"):
        numbers = pd.to_numeric(series, errors="coerce")
        not_numeric = ~missing & numbers.isna()
        add(f"type: {rule.type}", not_numeric)
        if rule.type == "int":
            add("type: int", ~missing & numbers.notna() & (numbers % 1 != 0))
        if rule.min is not None:
            add(f"min: {rule.min:g}", numbers < rule.min)
        if rule.max is not None:
            add(f"max: {rule.max:g}", numbers > rule.max)
        if rule.allowed is not None:
            allowed = pd.to_numeric(pd.Series(rule.allowed), errors="coerce").tolist()
            add(f"allowed: {rule.allowed}", numbers.notna() & ~numbers.isin(allowed))
    elif rule.allowed is not None:
        labels = series.astype("string")
        add(
            f"allowed: {rule.allowed}",
            ~missing & ~labels.isin([str(value) for value in rule.allowed]),
        )
    return found


def check_frame(frame: pd.DataFrame, contract: DataContract) -> list[Violation]:
    """Return every violation of the contract (an empty list when the data passes)."""
    violations: list[Violation] = []
    frame = frame.reset_index(drop=True)
    if len(frame) < contract.min_rows:
        violations.append(
            Violation(
                None,
                f"min_rows: {contract.min_rows}",
                len(frame),
                len(frame),
                note=f"only {len(frame)} rows",
            )
        )
    for name, rule in contract.columns.items():
        if name not in frame.columns:
            present = ", ".join(map(str, frame.columns))
            violations.append(
                Violation(name, "present", 0, len(frame), note=f"not in the data; found: {present}")
            )
            continue
        violations.extend(_check_column(frame[name], rule, name))
    return violations


def failure_message(source: Path, canvas_path: Path, violations: list[Violation]) -> str:
    shown = "; ".join(v.describe() for v in violations[:VIOLATIONS_SHOWN])
    more = len(violations) - VIOLATIONS_SHOWN
    extra = f"; and {more} more violation{'s' if more > 1 else ''}" if more > 0 else ""
    return (
        f"{source} breaks the data contract in {canvas_path} "
        f"({len(violations)} violation{'s' if len(violations) > 1 else ''}): {shown}{extra}. "
        "Fix the data or, if the contract is wrong, canvas.yaml."
    )


def run(
    data_path: Path = paths.INTERIM_DATA,
    canvas_path: Path = paths.CANVAS,
    out_path: Path = paths.VALIDATION_REPORT,
) -> dict[str, Any]:
    canvas = load_canvas(canvas_path)
    frame = files.read_csv(data_path, paths.READ_STAGE_HINT)
    violations = check_frame(frame, canvas.data_contract)
    if violations:
        # A stale report from an earlier pass must not open the gate to preprocess.
        out_path.unlink(missing_ok=True)
        raise PipelineError(failure_message(data_path, canvas_path, violations))
    contract_columns = list(canvas.data_contract.columns)
    report = {
        "passed": True,
        "rows": len(frame),
        "min_rows": canvas.data_contract.min_rows,
        "columns_checked": contract_columns,
        "columns_not_in_contract": [str(c) for c in frame.columns if c not in contract_columns],
        "missing_fraction": {
            name: round(float(frame[name].isna().mean()), 6) for name in contract_columns
        },
    }
    files.write_json(out_path, report)
    print(
        f"validate: {len(frame)} rows pass the data contract "
        f"({len(contract_columns)} columns checked) -> {out_path}"
    )
    return report
