"""Stage `validate`: check the data against canvas.yaml's data contract.

A broken rule stops the pipeline, naming the column, the rule and a few offending rows by
their CSV line (the header is line 1). reports/validation.json is written only when the data
passes: preprocess depends on it, so invalid data never reaches training.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core import files, paths
from ..core.canvas import ColumnRule, DataContract, load_canvas
from ..core.errors import PipelineError

if TYPE_CHECKING:
    import pandas as pd

SHOWN = 3  # offending rows shown per broken rule, and broken rules per message


def _show(value: Any) -> str:
    if value is None or value != value:  # None or NaN
        return "missing"
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return str(value)


def _check_column(series: pd.Series, rule: ColumnRule, name: str) -> list[str]:
    import pandas as pd

    found: list[str] = []

    def check(rule_text: str, mask: pd.Series, note: str = "") -> None:
        if count := int(mask.sum()):
            rows = mask.to_numpy().nonzero()[0][:SHOWN]
            shown = ", ".join(f"line {row + 2} = {_show(series.iat[row])}" for row in rows)
            note = f" ({note})" if note else ""
            found.append(
                f"column '{name}' breaks `{rule_text}`{note}: "
                f"{count} of {len(series)} rows, e.g. {shown}"
            )

    missing = series.isna()
    if len(series) and missing.mean() > rule.max_missing:
        check(f"max_missing: {rule.max_missing:g}", missing, f"{missing.mean():.1%} missing")
    if rule.type in ("float", "int"):
        numbers = pd.to_numeric(series, errors="coerce")
        check(f"type: {rule.type}", ~missing & numbers.isna())
        if rule.type == "int":
            check("type: int", ~missing & numbers.notna() & (numbers % 1 != 0))
        if rule.min is not None:
            check(f"min: {rule.min:g}", numbers < rule.min)
        if rule.max is not None:
            check(f"max: {rule.max:g}", numbers > rule.max)
        if rule.allowed is not None:
            allowed = pd.to_numeric(pd.Series(rule.allowed), errors="coerce").tolist()
            check(f"allowed: {rule.allowed}", numbers.notna() & ~numbers.isin(allowed))
    elif rule.allowed is not None:
        labels = series.astype("string").isin([str(value) for value in rule.allowed])
        check(f"allowed: {rule.allowed}", ~missing & ~labels)
    return found


def check_frame(frame: pd.DataFrame, contract: DataContract) -> list[str]:
    """One line per broken rule of the contract (an empty list when the data passes)."""
    frame = frame.reset_index(drop=True)
    found = []
    if len(frame) < contract.min_rows:
        rows = len(frame)
        found.append(f"the data set breaks `min_rows: {contract.min_rows}` (only {rows} rows)")
    for name, rule in contract.columns.items():
        if name in frame.columns:
            found += _check_column(frame[name], rule, name)
        else:
            present = ", ".join(map(str, frame.columns))
            found.append(f"column '{name}' breaks `present` (not in the data; found: {present})")
    return found


def run(
    data_path: Path = paths.INTERIM_DATA,
    canvas_path: Path = paths.CANVAS,
    out_path: Path = paths.VALIDATION_REPORT,
) -> dict[str, Any]:
    canvas = load_canvas(canvas_path)
    frame = files.read_csv(data_path, paths.READ_STAGE_HINT)
    broken = check_frame(frame, canvas.data_contract)
    if broken:
        out_path.unlink(missing_ok=True)  # a stale report must not open the gate to preprocess
        count = f"{len(broken)} violation{'s' if len(broken) > 1 else ''}"
        more = f"; and {len(broken) - SHOWN} more" if len(broken) > SHOWN else ""
        raise PipelineError(
            f"{data_path} breaks the data contract in {canvas_path} ({count}): "
            f"{'; '.join(broken[:SHOWN])}{more}. "
            "Fix the data or, if the contract is wrong, canvas.yaml."
        )
    columns = list(canvas.data_contract.columns)
    report = {
        "passed": True,
        "rows": len(frame),
        "min_rows": canvas.data_contract.min_rows,
        "columns_checked": columns,
        "columns_not_in_contract": [str(c) for c in frame.columns if c not in columns],
        "missing_fraction": {name: round(float(frame[name].isna().mean()), 6) for name in columns},
    }
    files.write_json(out_path, report)
    print(
        f"validate: {len(frame)} rows pass the data contract "
        f"({len(columns)} columns checked) -> {out_path}"
    )
    return report
