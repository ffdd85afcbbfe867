import json
from pathlib import Path

import pandas as pd

from ..package import load

evaluate = load("pipeline.evaluate")
preprocess = load("pipeline.preprocess")
read = load("pipeline.read")
train = load("pipeline.train")


def _train(project):
    read.run()
    preprocess.run()
    train.run()


def test_metrics_plots_and_canvas_goal_are_written(project, capsys):
    _train(project)

    report = evaluate.run()

    metrics = json.loads(Path("reports/metrics.json").read_text())
    assert metrics == report
    for name in ("roc_auc", "accuracy", "f1", "precision", "recall"):
        assert 0.0 <= metrics[name] <= 1.0
    assert metrics["canvas_goal"] == {"metric": "roc_auc", "threshold": 0.5, "met": True}
    roc = pd.read_csv("reports/plots/roc.csv")
    assert list(roc.columns) == ["fpr", "tpr"]
    confusion = pd.read_csv("reports/plots/confusion.csv")
    assert list(confusion.columns) == ["actual", "predicted"]
    assert len(confusion) == metrics["test_rows"] == len(pd.read_csv("data/processed/test.csv"))
    assert "meets the canvas goal" in capsys.readouterr().out


def test_below_threshold_is_reported_not_blocking(project, capsys):
    project.set("canvas", "success_metric.threshold", 1.5)
    _train(project)

    report = evaluate.run()

    assert report["canvas_goal"]["met"] is False
    assert "below the canvas goal" in capsys.readouterr().out


def test_lower_is_better_metrics_are_judged_the_other_way(project):
    project.set("canvas", "success_metric.higher_is_better", False)
    project.set("canvas", "success_metric.threshold", 0.01)
    _train(project)

    assert evaluate.run()["canvas_goal"]["met"] is False
