from pathlib import Path

import pandas as pd
import pytest

from ..package import PipelineError, load

read = load("pipeline.read")


def test_read_writes_the_raw_rows_to_interim(project):
    frame = read.run()

    written = pd.read_csv("data/interim/dataset.csv")
    assert len(written) == len(frame) == 80
    assert list(written.columns) == list(frame.columns)


def test_missing_raw_file_says_how_to_get_data(project):
    Path("data/raw/dataset.csv").unlink()

    with pytest.raises(PipelineError, match="sample-data"):
        read.run()
    assert not Path("data/interim/dataset.csv").exists()


def test_empty_raw_file_is_reported(project):
    Path("data/raw/dataset.csv").write_text("")

    with pytest.raises(PipelineError, match="is empty"):
        read.run()
