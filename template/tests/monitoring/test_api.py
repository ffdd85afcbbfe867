"""The API with level 4 installed: request ids, one log record per row, probes, /metrics."""

import json
import re
import sqlite3
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from ..package import NAME, load
from ..serving.bodies import BODIES, CONTENT_TYPES, PROPERTY, feedback_bodies
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


def test_a_body_over_the_limit_is_one_record_without_input(project, start_api):
    write_monitoring(project.root)
    api = start_api(max_body_bytes=100)

    answer = _predict(api, {"rows": [GOOD] * 5})
    written(api)

    (record,) = logged()
    assert (answer.status_code, record["status"], record["input"]) == (413, 413, None)
    assert record["request_id"] == answer.headers["X-Request-ID"]
    assert record["refused_rule"] == (
        "body: request body larger than 100 bytes: send fewer rows a request"
    )


def test_a_body_not_sent_as_json_is_one_record_without_input(api):
    answer = api.post("/predict", content=json.dumps(GOOD), headers={"Content-Type": "text/plain"})
    written(api)

    (record,) = logged()
    assert (answer.status_code, record["status"], record["input"]) == (415, 415, None)
    assert record["refused_rule"].startswith("body: send the rows as JSON")


def test_a_body_nested_too_deep_to_parse_is_one_record_without_input(api):
    answer = api.post(
        "/predict", content=b"[" * 5000 + b"]" * 5000, headers={"Content-Type": "application/json"}
    )
    written(api)

    (record,) = logged()
    assert 400 <= answer.status_code < 500
    assert (record["status"], record["input"]) == (answer.status_code, None)


def test_a_lone_surrogate_is_logged_as_a_replacement_character(api):
    body = json.dumps({"rows": [GOOD, {**GOOD, "clinic": "\ud800", "x\udc00": 1}]})

    answer = api.post("/predict", content=body, headers={"Content-Type": "application/json"})
    written(api)

    good, bad = logged()
    assert (answer.status_code, good["status"], bad["status"]) == (422, 422, 422)
    assert bad["input"] == {**GOOD, "clinic": "\ufffd", "x\ufffd": 1}
    assert bad["refused_rule"] == (
        "row: Input should be a valid string, unable to parse raw data as a unicode string"
    )


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


def test_nothing_from_a_caller_without_the_token_is_logged(project, start_api, monkeypatch):
    """The body's size and its JSON are checked before the token: still not logged."""
    monkeypatch.setenv("MODEL_API_TOKEN", TOKEN)
    write_monitoring(project.root)
    api = start_api(max_body_bytes=100)
    json_header = {"Content-Type": "application/json"}

    answers = [
        api.post("/predict", content=b"{not json", headers=json_header),
        api.post("/predict", json={"rows": [GOOD] * 5}),
        api.post("/predict", json=GOOD, headers={"Authorization": "Bearer wrong"}),
    ]
    written(api)

    assert [answer.status_code for answer in answers] == [422, 413, 401]
    assert logged() == []
    requests = metric_samples(api.get("/metrics").text, "model_api_requests_total")
    assert sum(n for labels, n in requests.items() if 'handler="/predict"' in labels) == 3


def rows_of(request_id: str) -> list[tuple[int, int]]:
    """(row, status) of a request's records in the log, in order."""
    connection = sqlite3.connect(LOG_PATH)
    try:
        found = connection.execute(
            "SELECT row, status FROM predictions WHERE request_id = ? ORDER BY row", (request_id,)
        )
        return [(int(row), int(status)) for row, status in found]
    finally:
        connection.close()


@pytest.fixture
def small_api(project, start_api):
    """One API for every example of a property test: small limits, so that some bodies
    are over them."""
    write_monitoring(project.root)
    return start_api(max_body_bytes=2000, max_batch_rows=5)


@PROPERTY
@given(body=BODIES, content_type=CONTENT_TYPES)
@example(body=b"[" * 5000 + b"]" * 5000, content_type="application/json")
@example(body=json.dumps({"rows": [GOOD] * 40}).encode(), content_type="application/json")
def test_every_answer_has_a_request_id_and_its_rows_in_the_log(small_api, body, content_type):
    """Any body: a 2xx or 4xx, an id, one record a row answered, records for a refusal."""
    answer = small_api.post("/predict", content=body, headers={"Content-Type": content_type})
    written(small_api)

    assert 200 <= answer.status_code < 500, (body, answer.status_code, answer.text[:300])
    records = rows_of(answer.headers["X-Request-ID"])
    if answer.status_code == 200:
        rows = answer.json().get("predictions", [answer.json()])
        assert records == [(row, 200) for row in range(len(rows))]
    else:
        assert records and {status for _, status in records} == {answer.status_code}, records


@PROPERTY
@given(data=st.data())
def test_every_feedback_answer_is_a_2xx_or_4xx(small_api, data):
    known = small_api.post("/predict", json=GOOD).headers["X-Request-ID"]
    body = data.draw(feedback_bodies([known]))

    answer = small_api.post(
        "/feedback", content=body, headers={"Content-Type": data.draw(CONTENT_TYPES)}
    )

    assert 200 <= answer.status_code < 500, (body, answer.status_code, answer.text[:300])


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
