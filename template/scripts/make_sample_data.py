"""Write the sample data set to data/raw/dataset.csv, offline and deterministic.

The rows come from scikit-learn's bundled breast-cancer data (no download). A
categorical column and a few missing values are added so that the notebook and
the pipeline meet the problems of real data. Swap in your own data as
docs/data.md explains; this script never overwrites an existing file unless
asked to with --force. It then versions the file with DVC (`dvc add`), unless
the pointer file already records it: run again, it is a no-op in a second.
"""

from __future__ import annotations

import argparse
import hashlib
import re
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

DEFAULT_OUTPUT = Path("data/raw/dataset.csv")
SEED = 20240601
# Source column -> name used in the project (see canvas.yaml's data contract).
NUMERIC_COLUMNS = {
    "mean radius": "radius",
    "mean texture": "texture",
    "mean perimeter": "perimeter",
    "mean area": "area",
    "mean smoothness": "smoothness",
    "mean compactness": "compactness",
    "mean concavity": "concavity",
    "mean symmetry": "symmetry",
}
CLINICS = ["north", "south", "east", "west"]
COLUMNS_WITH_MISSING_VALUES = {"texture": 0.03, "smoothness": 0.02}


def build_sample() -> pd.DataFrame:
    """Return the sample: 569 rows, 8 numeric features, 1 categorical, 1 target."""
    # Imported here: an existing file is kept without paying for scikit-learn's import.
    import numpy as np
    from sklearn.datasets import load_breast_cancer

    source = load_breast_cancer(as_frame=True)
    frame = source.frame[list(NUMERIC_COLUMNS)].rename(columns=NUMERIC_COLUMNS).round(5)
    rng = np.random.default_rng(SEED)
    frame["clinic"] = rng.choice(CLINICS, size=len(frame), p=[0.4, 0.3, 0.2, 0.1])
    for column, fraction in COLUMNS_WITH_MISSING_VALUES.items():
        frame.loc[rng.random(len(frame)) < fraction, column] = np.nan
    # scikit-learn encodes malignant as 0; the project predicts malignant = 1.
    frame["malignant"] = (source.target == 0).astype(int)
    return frame


def tracked_by_dvc(path: Path) -> bool:
    """True when path's DVC pointer (path.dvc) records the file's current md5."""
    pointer = path.with_name(path.name + ".dvc")
    if not pointer.is_file():
        return False
    recorded = re.search(r"md5: ([0-9a-f]{32})", pointer.read_text(encoding="utf-8"))
    return recorded is not None and recorded[1] == hashlib.md5(path.read_bytes()).hexdigest()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument("--force", action="store_true", help="overwrite an existing file")
    args = parser.parse_args(argv)

    if args.output.exists() and not args.force:
        print(f"{args.output} already exists: kept as is (use --force to overwrite it).")
    else:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        frame = build_sample()
        frame.to_csv(args.output, index=False, lineterminator="\n")
        print(f"Wrote {len(frame)} rows x {frame.shape[1]} columns to {args.output}.")
    if tracked_by_dvc(args.output):
        return 0
    command = [sys.executable, "-m", "dvc", "add", str(args.output)]
    return subprocess.run(command, check=False).returncode


if __name__ == "__main__":
    sys.exit(main())
