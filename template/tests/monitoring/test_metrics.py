"""GET /metrics: the names of the contract, the counts, the live metric, several workers."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from ..package import NAME, load

metrics = load("monitoring.metrics")
monitoring_settings = load("monitoring.settings")
canvas_file = load("core.canvas")

PROJECT_ROOT = Path(__file__).resolve().parents[2]
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def make_canvas(
    metric: str = "roc_auc",
    threshold: float = 0.9,
    latency_budget_ms: float | None = 200,
    higher_is_better: bool = True,
) -> Any:
    goal = {"name": metric, "threshold": threshold, "higher_is_better": higher_is_better}
    return canvas_file.Canvas.model_validate(
        {
            "prediction_target": "malignant",
            "success_metric": goal,
            "data_contract": {"columns": {"radius": {"type": "float"}}},
            "latency_budget_ms": latency_budget_ms,
        }
    )


def make_metrics(
    rows: Sequence[Any] | Callable[[int], list[Any]] = (),
    canvas: Any = None,
    min_feedback_rows: int = 10,
    feedback_window: int = 50,
    log_health: Callable[[], dict[str, Any]] | None = None,
) -> Any:
    settings = monitoring_settings.MonitoringSettings(
        metrics=monitoring_settings.MetricsSettings(
            feedback_window=feedback_window, min_feedback_rows=min_feedback_rows
        )
    )
    live_rows = rows if callable(rows) else (lambda window: list(rows)[-window:])
    return metrics.ApiMetrics(
        model_name="biopsy",
        model_version="3",
        canvas=canvas or make_canvas(),
        settings=settings,
        live_rows=live_rows,
        log_health=log_health or (lambda: {}),
    )


def parse(body: bytes) -> Samples:
    """{(sample name, labels): value} of a scrape body."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(body.decode("utf-8"))
        for sample in family.samples
    }


def scrape(api_metrics: Any) -> Samples:
    body, content_type = api_metrics.render()
    assert content_type.startswith("text/plain; version=0.0.4")
    return parse(body)


def value(samples: Samples, series: str, /, **labels: str) -> float | None:
    return samples.get((series, frozenset(labels.items())))


def names(samples: Samples) -> set[str]:
    return {name for name, _ in samples}


def good_rows(count: int = 20) -> list[tuple[int, float, int]]:
    """Predictions that match their outcomes: ROC AUC 1."""
    return [(row % 2, 0.9 if row % 2 else 0.1, row % 2) for row in range(count)]


# ---------------------------------------------------------------------------
# Names and counts


def test_the_scrape_has_every_metric_of_the_contract():
    api_metrics = make_metrics(good_rows())
    api_metrics.observe_request("/predict", "POST", 200, 0.01)
    api_metrics.observe_rows([1], refused=0)

    exported = names(scrape(api_metrics))

    assert metrics.series_names() <= exported
    assert {name for name in exported if name.startswith("model_api_")} <= metrics.series_names()


def test_the_contract_lists_each_metric_once_with_the_prefix():
    assert len(set(metrics.METRIC_NAMES)) == len(metrics.METRIC_NAMES) == 16
    assert all(name.startswith("model_api_") for name in metrics.METRIC_NAMES)


def test_requests_errors_and_latency_are_counted_by_handler_method_and_status():
    api_metrics = make_metrics()
    api_metrics.observe_request("/predict", "POST", 200, 0.05)
    api_metrics.observe_request("/predict", "POST", 200, 0.15)
    api_metrics.observe_request("/predict", "POST", 503, 0.3)
    api_metrics.observe_request("/feedback", "POST", 404, 0.01)

    samples = scrape(api_metrics)

    requests = "model_api_requests_total"
    assert value(samples, requests, handler="/predict", method="POST", status="200") == 2
    assert value(samples, requests, handler="/predict", method="POST", status="503") == 1
    assert value(samples, requests, handler="/feedback", method="POST", status="404") == 1
    assert value(samples, "model_api_errors_total", handler="/predict") == 1
    assert value(samples, "model_api_errors_total", handler="/feedback") == 0
    duration = "model_api_request_duration_seconds"
    assert value(samples, f"{duration}_count", handler="/predict", method="POST") == 3
    assert value(samples, f"{duration}_sum", handler="/predict", method="POST") == pytest.approx(
        0.5
    )
    bucket = f"{duration}_bucket"
    assert value(samples, bucket, handler="/predict", method="POST", le="0.2") == 2


def test_predictions_refused_rows_feedback_and_the_log_are_counted():
    api_metrics = make_metrics()
    api_metrics.observe_rows([1, 0, 1], refused=0)
    api_metrics.observe_rows([], refused=2)
    api_metrics.observe_feedback()
    api_metrics.observe_feedback()
    api_metrics.log_written(5)
    api_metrics.log_written(3)
    api_metrics.log_dropped(4)
    api_metrics.set_log_state(buffered=7, healthy=False)

    samples = scrape(api_metrics)

    assert value(samples, "model_api_predictions_total", prediction="1") == 2
    assert value(samples, "model_api_predictions_total", prediction="0") == 1
    assert value(samples, "model_api_refused_rows_total") == 2
    assert value(samples, "model_api_feedback_total") == 2
    assert value(samples, "model_api_prediction_log_written_total") == 8
    assert value(samples, "model_api_prediction_log_dropped_total") == 4
    assert value(samples, "model_api_prediction_log_buffered_rows") == 7
    assert value(samples, "model_api_prediction_log_healthy") == 0


def test_the_log_is_healthy_and_empty_until_told_otherwise():
    samples = scrape(make_metrics())

    assert value(samples, "model_api_prediction_log_healthy") == 1
    assert value(samples, "model_api_prediction_log_buffered_rows") == 0
    assert value(samples, "model_api_prediction_log_dropped_total") == 0


def test_each_scrape_reads_the_log_state_the_log_reports_now():
    state = {"healthy": True, "buffered": 0}
    api_metrics = make_metrics(log_health=lambda: dict(state))
    state.update(healthy=False, buffered=12)

    samples = scrape(api_metrics)

    assert value(samples, "model_api_prediction_log_healthy") == 0
    assert value(samples, "model_api_prediction_log_buffered_rows") == 12


def test_the_model_and_the_canvas_budget_are_exported():
    samples = scrape(make_metrics(canvas=make_canvas(latency_budget_ms=150)))

    assert value(samples, "model_api_model_info", name="biopsy", version="3") == 1
    assert value(samples, "model_api_latency_budget_seconds") == pytest.approx(0.15)


def test_without_a_canvas_the_budget_is_the_default_and_there_is_no_live_metric():
    api_metrics = metrics.ApiMetrics(
        model_name="biopsy",
        model_version="3",
        canvas=None,
        settings=monitoring_settings.MetricsSettings(min_feedback_rows=1),
        live_rows=lambda window: good_rows(),
        log_health=lambda: {},
    )

    samples = scrape(api_metrics)

    assert value(samples, "model_api_latency_budget_seconds") == 0.2
    assert not {name for name in names(samples) if name.startswith("model_api_live_metric")}


@pytest.mark.parametrize(("budget_ms", "bucket"), [(150, "0.15"), (200, "0.2"), (None, "0.2")])
def test_the_latency_histogram_has_a_bucket_at_the_budget(budget_ms, bucket):
    """p95 against the budget is then exact, not interpolated across it."""
    api_metrics = make_metrics(canvas=make_canvas(latency_budget_ms=budget_ms))
    api_metrics.observe_request("/predict", "POST", 200, 0.01)

    samples = scrape(api_metrics)

    labels = {"handler": "/predict", "method": "POST", "le": bucket}
    assert value(samples, "model_api_request_duration_seconds_bucket", **labels) == 1
    assert value(samples, "model_api_latency_budget_seconds") == float(bucket)


def test_two_instances_in_one_process_keep_their_own_counts():
    first, second = make_metrics(), make_metrics()
    first.observe_feedback()

    assert value(scrape(first), "model_api_feedback_total") == 1
    assert value(scrape(second), "model_api_feedback_total") == 0


# ---------------------------------------------------------------------------
# The live metric


def live(samples: Samples, name: str = "roc_auc") -> dict[str, float | None]:
    return {
        "value": value(samples, "model_api_live_metric", metric=name),
        "goal": value(samples, "model_api_live_metric_goal", metric=name),
        "meets_goal": value(samples, "model_api_live_metric_meets_goal", metric=name),
        "rows": value(samples, "model_api_live_metric_rows", metric=name),
    }


def test_the_live_metric_meets_the_goal_on_good_feedback():
    samples = scrape(make_metrics(good_rows(20)))

    assert live(samples) == {"value": 1.0, "goal": 0.9, "meets_goal": 1.0, "rows": 20.0}


def test_the_live_metric_misses_the_goal_on_wrong_predictions():
    # Every probability points the wrong way: ROC AUC 0.
    rows = [(1 - outcome, 0.9 if outcome == 0 else 0.1, outcome) for *_, outcome in good_rows()]

    samples = scrape(make_metrics(rows))

    assert live(samples) == {"value": 0.0, "goal": 0.9, "meets_goal": 0.0, "rows": 20.0}


def test_the_live_metric_is_absent_below_min_feedback_rows():
    samples = scrape(make_metrics(good_rows(9), min_feedback_rows=10))

    assert live(samples) == {"value": None, "goal": 0.9, "meets_goal": None, "rows": 9.0}


def test_the_live_metric_is_computed_on_the_last_window_of_feedback():
    asked = []

    def live_rows(window: int) -> list[Any]:
        asked.append(window)
        return good_rows(window)

    samples = scrape(make_metrics(live_rows, feedback_window=40))

    assert asked == [40]
    assert live(samples)["rows"] == 40


def test_refused_rows_do_not_count_as_feedback_rows():
    rows = [*good_rows(10), (None, None, 1), (None, None, 0)]

    samples = scrape(make_metrics(rows))

    assert live(samples)["rows"] == 10


def test_roc_auc_on_a_single_class_is_absent_not_an_error():
    rows = [(1, 0.8, 1)] * 20

    samples = scrape(make_metrics(rows))

    assert live(samples) == {"value": None, "goal": 0.9, "meets_goal": None, "rows": 20.0}


def test_accuracy_on_a_single_class_is_still_reported():
    rows = [(1, 0.8, 1)] * 15 + [(0, 0.3, 1)] * 5
    canvas = make_canvas(metric="accuracy", threshold=0.8)

    samples = scrape(make_metrics(rows, canvas=canvas))

    assert live(samples, "accuracy") == {"value": 0.75, "goal": 0.8, "meets_goal": 0, "rows": 20}


@pytest.mark.parametrize(
    ("metric", "expected"),
    [("accuracy", 0.75), ("precision", 2 / 3), ("recall", 0.8), ("f1", 0.727273)],
)
def test_each_canvas_metric_is_computed_as_evaluate_does(metric, expected):
    # 4 true positives, 2 false positives, 1 false negative, 5 true negatives.
    rows = [(1, 0.9, 1)] * 4 + [(1, 0.7, 0)] * 2 + [(0, 0.4, 1)] + [(0, 0.1, 0)] * 5
    evaluate = load("pipeline.evaluate")
    actual = [outcome for *_, outcome in rows]
    scores = [probability for _, probability, _ in rows]
    predicted = [prediction for prediction, *_ in rows]

    found = metrics.live_metric_value(metric, rows)

    assert found == pytest.approx(expected, abs=1e-6)
    assert found == evaluate.compute_metrics(actual, scores, predicted)[metric]


def test_string_classes_take_the_greater_label_as_positive():
    rows = [("yes", 0.9, "yes")] * 3 + [("no", 0.2, "no")] * 3 + [("no", 0.4, "yes")]

    assert metrics.live_metric_value("recall", rows) == 0.75
    assert metrics.live_metric_value("roc_auc", rows) == 1.0


def test_a_lower_is_better_goal_is_met_below_its_threshold():
    canvas = make_canvas(metric="accuracy", threshold=0.5, higher_is_better=False)

    samples = scrape(make_metrics([(0, 0.2, 1)] * 12, canvas=canvas))

    assert live(samples, "accuracy")["meets_goal"] == 1


def test_a_log_that_cannot_be_read_leaves_the_live_metric_out_not_the_scrape(caplog):
    def broken(window: int) -> list[Any]:
        raise OSError("database is locked")

    metrics.LOGGER.addHandler(caplog.handler)  # whatever uvicorn did to its loggers
    try:
        samples = scrape(make_metrics(broken))
    finally:
        metrics.LOGGER.removeHandler(caplog.handler)

    assert live(samples) == {"value": None, "goal": 0.9, "meets_goal": None, "rows": None}
    assert "database is locked" in caplog.text
    assert value(samples, "model_api_model_info", name="biopsy", version="3") == 1


# ---------------------------------------------------------------------------
# Several worker processes


@pytest.fixture
def no_multiprocess_variable(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """PROMETHEUS_MULTIPROC_DIR unset, and unset again after the test whatever it set."""
    monkeypatch.setenv(metrics.MULTIPROCESS_VARIABLE, "placeholder")
    monkeypatch.delenv(metrics.MULTIPROCESS_VARIABLE)
    yield


def test_one_worker_keeps_its_metrics_in_memory(no_multiprocess_variable):
    metrics.prepare_multiprocess(1)

    assert metrics.MULTIPROCESS_VARIABLE not in os.environ


def test_several_workers_get_a_fresh_folder(no_multiprocess_variable):
    metrics.prepare_multiprocess(3)

    folder = Path(os.environ[metrics.MULTIPROCESS_VARIABLE])
    assert folder.is_dir()
    assert list(folder.iterdir()) == []
    folder.rmdir()


def test_a_folder_the_user_chose_is_created_or_wiped(
    no_multiprocess_variable, monkeypatch, tmp_path
):
    chosen = tmp_path / "multiproc"
    monkeypatch.setenv(metrics.MULTIPROCESS_VARIABLE, str(chosen))
    metrics.prepare_multiprocess(1)
    assert chosen.is_dir()
    (chosen / "counter_123.db").write_bytes(b"stale")
    (chosen / "notes.txt").write_text("kept")

    metrics.prepare_multiprocess(2)

    assert sorted(path.name for path in chosen.iterdir()) == ["notes.txt"]
    assert os.environ[metrics.MULTIPROCESS_VARIABLE] == str(chosen)


def test_a_variable_set_after_the_import_leaves_this_process_in_memory(monkeypatch, tmp_path):
    """prometheus_client chose when imported: the server's parent process is such a case."""
    monkeypatch.setenv(metrics.MULTIPROCESS_VARIABLE, str(tmp_path))

    api_metrics = make_metrics()
    api_metrics.observe_feedback()

    assert metrics.multiprocess_folder() is None
    assert value(scrape(api_metrics), "model_api_feedback_total") == 1
    assert list(tmp_path.iterdir()) == []


WORKER = textwrap.dedent(
    """
    import sys
    from {package}.core.canvas import Canvas
    from {package}.monitoring.metrics import ApiMetrics
    from {package}.monitoring.settings import MonitoringSettings

    canvas = Canvas.model_validate({{
        "prediction_target": "malignant",
        "success_metric": {{"name": "roc_auc", "threshold": 0.9}},
        "data_contract": {{"columns": {{"radius": {{"type": "float"}}}}}},
        "latency_budget_ms": 200,
    }})
    api_metrics = ApiMetrics(
        model_name="biopsy", model_version="3", canvas=canvas,
        settings=MonitoringSettings(), live_rows=lambda window: [], log_health=lambda: {{}},
    )
    role, requests, buffered, healthy = sys.argv[1:]
    for _ in range(int(requests)):
        api_metrics.observe_request("/predict", "POST", 200, 0.05)
        api_metrics.observe_rows([1], refused=1)
    api_metrics.set_log_state(int(buffered), healthy == "1")
    if role == "render":
        sys.stdout.buffer.write(api_metrics.render()[0])
    else:
        print("ready", flush=True)
        sys.stdin.read()  # alive until the test closes stdin
    """
).format(package=NAME)


def start_worker(folder: Path, *arguments: str) -> subprocess.Popen[str]:
    worker = subprocess.Popen(
        [sys.executable, "-c", WORKER, "write", *arguments],
        env={**os.environ, metrics.MULTIPROCESS_VARIABLE: str(folder)},
        cwd=PROJECT_ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert worker.stdout is not None
    assert worker.stdout.readline().strip() == "ready"
    return worker


def render_in_another_process(folder: Path) -> Samples:
    result = subprocess.run(
        [sys.executable, "-c", WORKER, "render", "0", "0", "1"],
        env={**os.environ, metrics.MULTIPROCESS_VARIABLE: str(folder)},
        cwd=PROJECT_ROOT,
        capture_output=True,
        timeout=60,
        check=True,
    )
    return parse(result.stdout)


def stop(worker: subprocess.Popen[str]) -> None:
    """Close its stdin: the worker exits."""
    assert worker.stdin is not None and worker.stdout is not None
    worker.stdin.close()
    code = worker.wait(timeout=30)
    worker.stdout.close()
    assert code == 0


def test_several_workers_are_added_up_by_whichever_answers_the_scrape(tmp_path):
    first = start_worker(tmp_path, "3", "4", "1")
    second = start_worker(tmp_path, "2", "5", "0")
    try:
        samples = render_in_another_process(tmp_path)
    finally:
        stop(first)
        stop(second)

    labels = {"handler": "/predict", "method": "POST"}
    assert value(samples, "model_api_requests_total", status="200", **labels) == 5
    assert value(samples, "model_api_request_duration_seconds_count", **labels) == 5
    assert value(samples, "model_api_request_duration_seconds_bucket", le="0.2", **labels) == 5
    assert value(samples, "model_api_predictions_total", prediction="1") == 5
    assert value(samples, "model_api_refused_rows_total") == 5
    # Buffered rows add up; the log is healthy only if every worker's is.
    assert value(samples, "model_api_prediction_log_buffered_rows") == 9
    assert value(samples, "model_api_prediction_log_healthy") == 0
    # Computed at scrape: once, not once per worker.
    assert value(samples, "model_api_model_info", name="biopsy", version="3") == 1
    assert value(samples, "model_api_latency_budget_seconds") == 0.2


@pytest.mark.skipif(os.name != "posix", reason="dead workers are found with POSIX signal 0")
def test_a_dead_workers_counts_stay_and_its_buffered_rows_go(tmp_path):
    stop(start_worker(tmp_path, "3", "4", "0"))

    samples = render_in_another_process(tmp_path)

    labels = {"handler": "/predict", "method": "POST", "status": "200"}
    assert value(samples, "model_api_requests_total", **labels) == 3
    assert value(samples, "model_api_prediction_log_buffered_rows") == 0
    assert value(samples, "model_api_prediction_log_healthy") == 1
