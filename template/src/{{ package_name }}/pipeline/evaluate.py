"""Stage `evaluate`: score the model on the test split and record the run.

Writes reports/metrics.json (the metrics, the canvas goal and whether it is met) and the data
of two `dvc plots`: reports/plots/roc.csv (fpr, tpr) and reports/plots/confusion.csv (actual,
predicted: one line per test row). A model below the canvas threshold is reported, not
refused: every experiment is recorded and can be compared, with the files `--with-model`
names (they travel with the model: `export` copies them).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..core import files, paths
from ..core.canvas import Canvas, load_canvas
from ..core.errors import PipelineError
from ..core.params import Features, Params, load_params

PIPELINE_HINT = "run the earlier stages first (`uv run poe pipeline`)"


def compute_metrics(actual: Any, scores: Any, predicted: Any) -> dict[str, float]:
    """The five metrics a canvas can name, rounded to 6 decimals for stable diffs."""
    from sklearn import metrics

    values = {
        "roc_auc": metrics.roc_auc_score(actual, scores),
        "accuracy": metrics.accuracy_score(actual, predicted),
        "f1": metrics.f1_score(actual, predicted, zero_division=0),
        "precision": metrics.precision_score(actual, predicted, zero_division=0),
        "recall": metrics.recall_score(actual, predicted, zero_division=0),
    }
    return {name: round(float(value), 6) for name, value in values.items()}


def evaluate(model: Any, test: Any, features: Features) -> dict[str, Any]:
    """Return metrics and plot tables for a fitted model on a test frame."""
    import pandas as pd
    from sklearn.metrics import roc_curve

    missing = [c for c in [*features.columns, features.target] if c not in test.columns]
    if missing:
        raise PipelineError(f"the test data lacks {', '.join(missing)}: rerun `dvc repro`.")
    actual = test[features.target]
    if actual.nunique() < 2:
        raise PipelineError("the test split holds a single class: ROC AUC is undefined.")
    inputs = test[features.columns]
    try:
        scores = model.predict_proba(inputs)[:, 1]
        predicted = model.predict(inputs)
    except (ValueError, KeyError) as error:
        raise PipelineError(
            f"the model cannot score the test data ({error}): rerun `dvc repro`."
        ) from None
    fpr, tpr, _ = roc_curve(actual, scores)
    return {
        "metrics": compute_metrics(actual, scores, predicted),
        "roc": pd.DataFrame({"fpr": fpr.round(6), "tpr": tpr.round(6)}),
        "confusion": pd.DataFrame({"actual": actual.to_numpy(), "predicted": predicted}),
    }


def track(
    params: Params,
    canvas: Canvas,
    report: dict[str, Any],
    model_path: Path,
    raw_path: Path,
    with_model: Sequence[Path],
) -> None:
    from ..tracking import record

    data_md5 = files.md5_of(raw_path) if raw_path.is_file() else "missing"
    run_id, new = record.log_run(params, canvas, report, model_path, data_md5, with_model)
    where = f"{params.tracking.effective_uri} (experiment '{params.tracking.experiment}')"
    if new:
        print(f"evaluate: run {run_id} tracked in {where}")
    else:
        print(f"evaluate: identical to run {run_id} in {where} (same code, params, data): kept")


def run(
    model_path: Path = paths.MODEL,
    test_path: Path = paths.TEST_DATA,
    params_path: Path = paths.PARAMS,
    canvas_path: Path = paths.CANVAS,
    raw_path: Path = paths.RAW_DATA,
    metrics_path: Path = paths.METRICS,
    roc_path: Path = paths.ROC_PLOT,
    confusion_path: Path = paths.CONFUSION_PLOT,
    with_model: Sequence[Path] = (),
) -> dict[str, Any]:
    import joblib

    params = load_params(params_path)
    canvas = load_canvas(canvas_path)
    for path in [model_path, *with_model]:
        files.require_file(path, PIPELINE_HINT)
    test = files.read_csv(test_path, PIPELINE_HINT)
    model = joblib.load(model_path)
    result = evaluate(model, test, params.features)

    metrics, goal = result["metrics"], canvas.success_metric
    value = metrics[goal.name]
    verdict = {"metric": goal.name, "threshold": goal.threshold, "met": goal.is_met(value)}
    report = {**metrics, "test_rows": len(test), "canvas_goal": verdict}
    shown = ", ".join(f"{name} {number:.4f}" for name, number in metrics.items())
    print(f"evaluate: {shown} on {len(test)} test rows")
    print(f"evaluate: {goal.verdict(value)}")
    # Track (in MLflow, tracking/record.py) before writing: if recording fails, the stage
    # fails having written nothing, so DVC never takes half a result for a finished one.
    if params.tracking.enabled:
        track(params, canvas, report, model_path, raw_path, with_model)
    else:
        print("evaluate: tracking disabled (tracking.enabled: false in params.yaml)")
    files.write_csv(roc_path, result["roc"])
    files.write_csv(confusion_path, result["confusion"])
    files.write_json(metrics_path, report)
    print(f"evaluate: metrics -> {metrics_path}, plots -> {roc_path.parent}")
    return report


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--with-model",
        type=Path,
        action="append",
        default=[],
        metavar="FILE",
        help="a file logged with the run, to travel with the model: `export` copies it "
        "into the model folder (repeatable)",
    )
