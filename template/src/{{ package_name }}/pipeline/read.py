"""Stage `read`: bring the raw data into the pipeline.

This is the ingestion point to adapt to your source (a database query, an
export, several files): whatever it reads, it writes one CSV file with one row
per example to data/interim/dataset.csv. The sample reads data/raw/dataset.csv
as is, apart from trimming stray spaces around column names.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..core import files, paths


def load(raw_path: Path = paths.RAW_DATA) -> pd.DataFrame:
    """Read the raw data set as a DataFrame."""
    frame = files.read_csv(raw_path, paths.SAMPLE_DATA_HINT)
    frame.columns = [str(column).strip() for column in frame.columns]
    return frame


def run(raw_path: Path = paths.RAW_DATA, out_path: Path = paths.INTERIM_DATA) -> pd.DataFrame:
    frame = load(raw_path)
    files.write_csv(out_path, frame)
    print(f"read: {len(frame)} rows x {frame.shape[1]} columns from {raw_path} -> {out_path}")
    return frame
