import hashlib
import json
from pathlib import Path

from ..package import load

metadata = load("pipeline.metadata")
read = load("pipeline.read")


def test_metadata_counts_missing_values_target_and_fingerprint(project):
    read.run()

    report = metadata.run()

    assert report["rows"] == 80
    assert report["columns"] == 6
    assert report["missing_values"]["texture"] == 1
    assert report["target"] == {"name": "malignant", "distribution": {"0": 40, "1": 40}}
    raw_bytes = Path("data/raw/dataset.csv").read_bytes()
    assert report["data_md5"] == hashlib.md5(raw_bytes).hexdigest()  # DVC 3's hash
    assert json.loads(Path("reports/metadata.json").read_text()) == report
