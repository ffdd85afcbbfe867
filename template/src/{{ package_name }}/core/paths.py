"""Where each stage reads and writes, relative to the project root.

DVC runs every stage from the project root (where dvc.yaml lives), so these
relative paths resolve there. Functions take paths as arguments: tests and
notebooks pass their own.
"""

from pathlib import Path

PARAMS = Path("params.yaml")
CANVAS = Path("canvas.yaml")

RAW_DATA = Path("data/raw/dataset.csv")
INTERIM_DATA = Path("data/interim/dataset.csv")
TRAIN_DATA = Path("data/processed/train.csv")
TEST_DATA = Path("data/processed/test.csv")

MODEL = Path("models/model.joblib")

REPORTS = Path("reports")
METADATA_REPORT = REPORTS / "metadata.json"
VALIDATION_REPORT = REPORTS / "validation.json"
METRICS = REPORTS / "metrics.json"
ROC_PLOT = REPORTS / "plots" / "roc.csv"
CONFUSION_PLOT = REPORTS / "plots" / "confusion.csv"
CI_REPORT = REPORTS / "ci-report.md"

SAMPLE_DATA_HINT = (
    "run `uv run poe sample-data` (sample data) or `uv run poe pull` (your tracked data)"
)
READ_STAGE_HINT = "run the `read` stage first (`uv run poe pipeline`)"
