"""The API with level 4 installed: request ids, one log record per row, probes, /metrics."""

import re
import sqlite3
import uuid
from datetime import UTC, datetime, timedelta

from ..package import NAME, load
from ..serving.conftest import VERSION
from .conftest import (
    GOOD,
    LOG_PATH,
    TOKEN,
    logged,
    metric_samples,
    stop,
    write_monitoring,
    written,
)

app_module = load("serving.app")
records = load("monitoring.records")

TOO_BIG = {**GOOD, "radius": 99.0}


def _predict(api, body):
    return api.post("/predict", json=body)


def test_every_answer_carries_its_own_request_id(api):
    first, second = _predict(api, GOOD), _predict(api, TOO_BIG)

    ids = [first.headers["X-Request-ID"], second.headers["X-Request-ID"]]
    assert all(re.fullmatch("[0-9a-f]{32}", request_id) for request_id in ids)
    assert [uuid.UUID(hex=request_id).version for request_id in ids] == [4, 4]
    assert ids[0] != ids[1]


def test_a_row_is_logged_with_what_the_caller_got(api):
    answer = _predict(api, GOOD)
    written(api)

    (record,) = logged()
    assert record["request_id"] == answer.headers["X-Request-ID"]
    assert record["row"] == 0
    assert record["status"] == 200
    assert record["input"] == GOOD
    assert record["prediction"] == answer.json()["prediction"]
    assert record["probability"] == answer.json()["probability"]
    assert record["model_version"] == VERSION
    assert record["refused_rule"] is None
    assert record["latency_ms"] > 0


def test_the_time_is_iso_8601_utc_when_answered(api):
    _predict(api, GOOD)
    written(api)

    moment = datetime.fromisoformat(logged()[0]["time"])
    assert moment.utcoffset() == timedelta(0)
    assert abs(datetime.now(UTC) - moment) < timedelta(minutes=1)


def test_a_batch_gives_one_record_a_row_in_order(api):
    rows = [GOOD, {**GOOD, "radius": 30.0}, {**GOOD, "clinic": "east"}]

    answer = _predict(api, {"rows": rows})
    written(api)

    found = logged()
    assert [record["row"] for record in found] == [0, 1, 2]
    assert [record["input"] for record in found] == rows
    assert [record["prediction"] for record in found] == [
        item["prediction"] for item in answer.json()["predictions"]
    ]


def test_a_refused_row_is_logged_with_the_rule_it_broke(api):
    answer = _predict(api, {"rows": [GOOD, TOO_BIG]})
    written(api)

    assert answer.status_code == 422
    good, bad = logged()
    assert bad["status"] == 422
    assert bad["input"] == TOO_BIG
    assert bad["refused_rule"] == "radius: Input should be less than or equal to 40"
    assert (bad["prediction"], bad["probability"], bad["model_version"]) == (None, None, None)
    assert good["refused_rule"] == records.NOT_SCORED


def test_a_refused_single_row_names_its_field(api):
    _predict(api, {**GOOD, "clinic": "nowhere"})
    written(api)

    (record,) = logged()
    assert record["refused_rule"].startswith("clinic: Input should be")


def test_a_body_that_is_not_json_is_one_record_without_input(api):
    api.post("/predict", content=b"{not json", headers={"Content-Type": "application/json"})
    written(api)

    (record,) = logged()
    assert (record["row"], record["status"], record["input"]) == (0, 422, None)
    assert record["refused_rule"] == "body: JSON decode error"


def test_never_log_columns_stay_out_of_the_log(project, start_api):
    write_monitoring(project.root, {"never_log": ["clinic", "area"]})
    api = start_api()

    answer = _predict(api, GOOD)
    written(api)

    assert answer.status_code == 200
    (record,) = logged()
    assert record["input"] == {"radius": 14.0, "texture": 20.5, "smoothness": 0.1}


def test_a_request_without_the_token_is_not_logged(project, start_api, monkeypatch):
    monkeypatch.setenv("MODEL_API_TOKEN", TOKEN)
    write_monitoring(project.root)
    api = start_api()

    refused = _predict(api, GOOD)
    accepted = api.post("/predict", json=GOOD, headers={"Authorization": f"Bearer {TOKEN}"})
    written(api)

    assert (refused.status_code, accepted.status_code) == (401, 200)
    assert [record["request_id"] for record in logged()] == [accepted.headers["X-Request-ID"]]


def test_shutdown_writes_the_rows_still_buffered(project, start_api):
    write_monitoring(project.root, {"flush_seconds": 60, "batch_rows": 500})
    api = start_api()
    for _ in range(5):
        _predict(api, GOOD)

    stop(api)

    assert len(logged()) == 5


def test_the_log_is_pruned_at_start(project, start_api):
    write_monitoring(project.root, {"retention_days": 30})
    first = start_api()
    _predict(first, GOOD)
    stop(first)
    old = (datetime.now(UTC) - timedelta(days=31)).isoformat(timespec="milliseconds")
    connection = sqlite3.connect(LOG_PATH)
    connection.execute("UPDATE predictions SET time = ?", (old,))
    connection.commit()
    connection.close()

    second = start_api()
    _predict(second, GOOD)
    written(second)

    assert [record["time"] > old for record in logged()] == [True]


def test_health_and_ready_report_the_log(api):
    _predict(api, GOOD)
    written(api)

    health, ready = api.get("/health"), api.get("/ready")

    expected = {
        "sink": "sqlite",
        "healthy": True,
        "buffered": 0,
        "dropped": 0,
        "written": 1,
        "error": None,
    }
    assert health.json() == {"status": "alive", "details": {"prediction_log": expected}}
    assert ready.status_code == 200
    assert ready.json()["details"] == {"prediction_log": expected}


def test_metrics_count_requests_rows_and_the_log(api):
    _predict(api, {"rows": [GOOD, GOOD]})
    _predict(api, {"rows": [GOOD, TOO_BIG]})
    api.get("/health")
    written(api)

    text = api.get("/metrics").text

    requests = metric_samples(text, "model_api_requests_total")
    assert requests['{handler="/predict",method="POST",status="200"}'] == 1
    assert requests['{handler="/predict",method="POST",status="422"}'] == 1
    assert requests['{handler="/health",method="GET",status="200"}'] == 1
    assert sum(metric_samples(text, "model_api_predictions_total").values()) == 2
    assert metric_samples(text, "model_api_refused_rows_total") == {"": 2}
    assert metric_samples(text, "model_api_prediction_log_written_total") == {"": 4}
    assert metric_samples(text, "model_api_model_info") == {
        f'{{name="{NAME}",version="{VERSION}"}}': 1
    }


def test_metrics_do_not_count_their_own_scrapes(api):
    api.get("/metrics")

    text = api.get("/metrics").text

    assert 'handler="/metrics"' not in text


def test_paths_the_api_does_not_serve_share_one_label(api):
    api.get("/wp-admin")
    api.get("/.env")

    requests = metric_samples(api.get("/metrics").text, "model_api_requests_total")

    assert requests['{handler="other",method="GET",status="404"}'] == 2


def test_without_the_monitoring_package_the_api_is_level_3s(model_dir, monkeypatch):
    real_find_spec = app_module.importlib.util.find_spec

    def find_spec(name, *args):
        return None if name.endswith(".monitoring") else real_find_spec(name, *args)

    monkeypatch.setattr(app_module.importlib.util, "find_spec", find_spec)
    app = app_module.create_app(model_dir)

    paths = {route.path for route in app.routes}
    assert {"/predict", "/health", "/ready"} <= paths
    assert not {"/feedback", "/metrics"} & paths
    assert app.state.probe_details == []
    assert "details" not in app.openapi()["components"]["schemas"]["Status"]["properties"]
