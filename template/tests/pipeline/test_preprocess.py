from pathlib import Path

import pandas as pd

from ..package import load

preprocess = load("pipeline.preprocess")
read = load("pipeline.read")


def test_split_is_stratified_and_keeps_the_chosen_columns(project):
    project.set("params", "features.numeric", ["radius", "area"])
    read.run()

    train, test = preprocess.run()

    assert (len(train), len(test)) == (60, 20)
    assert train["malignant"].mean() == test["malignant"].mean() == 0.5
    expected = ["radius", "area", "clinic", "malignant"]
    assert list(pd.read_csv(Path("data/processed/train.csv")).columns) == expected
    assert list(pd.read_csv(Path("data/processed/test.csv")).columns) == expected


def test_the_split_is_reproducible(project):
    read.run()
    first, _ = preprocess.run()
    second, _ = preprocess.run()

    assert first.index.tolist() == second.index.tolist()
