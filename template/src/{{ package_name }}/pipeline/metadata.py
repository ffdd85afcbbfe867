"""Stage `metadata`: describe the data set in reports/metadata.json.

Counts, types, missing values and the target's distribution, plus the md5 of
the raw file: the same hash DVC 3 records for data/raw/dataset.csv, so a
metadata report, a DVC data version and an MLflow run can be matched.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core import files, paths
from ..core.canvas import load_canvas

if TYPE_CHECKING:
    import pandas as pd


def describe(frame: pd.DataFrame, raw_path: Path, target: str) -> dict[str, Any]:
    """Return the metadata of a data set as a JSON-ready dictionary."""
    missing = frame.isna().sum()
    distribution: dict[str, int] | None = None
    if target in frame.columns:
        counts = frame[target].value_counts(dropna=False).sort_index()
        distribution = {str(value): int(count) for value, count in counts.items()}
    return {
        "source": raw_path.as_posix(),
        "data_md5": files.md5_of(raw_path) if raw_path.is_file() else None,
        "rows": len(frame),
        "columns": int(frame.shape[1]),
        "dtypes": {str(column): str(dtype) for column, dtype in frame.dtypes.items()},
        "missing_values": {str(column): int(count) for column, count in missing.items()},
        "target": {"name": target, "distribution": distribution},
    }


def run(
    data_path: Path = paths.INTERIM_DATA,
    raw_path: Path = paths.RAW_DATA,
    canvas_path: Path = paths.CANVAS,
    out_path: Path = paths.METADATA_REPORT,
) -> dict[str, Any]:
    canvas = load_canvas(canvas_path)
    files.require_file(raw_path, paths.SAMPLE_DATA_HINT)
    frame = files.read_csv(data_path, paths.READ_STAGE_HINT)
    report = describe(frame, raw_path, canvas.prediction_target)
    files.write_json(out_path, report)
    missing = sum(report["missing_values"].values())
    print(
        f"metadata: {report['rows']} rows, {report['columns']} columns, {missing} missing values, "
        f"data md5 {report['data_md5']} -> {out_path}"
    )
    return report
