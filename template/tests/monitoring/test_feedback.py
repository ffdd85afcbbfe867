"""POST /feedback: the true outcome joined to its logged row, and every way to get it wrong."""

import pytest

from .conftest import GOOD, TOKEN, logged, metric_samples, write_monitoring, written

TOO_BIG = {**GOOD, "radius": 99.0}


def _predicted(api, body=GOOD):
    answer = api.post("/predict", json=body)
    written(api)
    return answer.headers["X-Request-ID"]


def _feedback(api, request_id, outcome=1, **fields):
    return api.post("/feedback", json={"request_id": request_id, "outcome": outcome, **fields})


def test_feedback_is_recorded_against_its_row(api):
    request_id = _predicted(api)

    answer = _feedback(api, request_id, outcome=0)

    assert (answer.status_code, answer.json()) == (201, {"status": "recorded"})
    (record,) = logged(table="feedback")
    assert (record["request_id"], record["row"], record["outcome"]) == (request_id, 0, 0)


def test_feedback_names_a_row_of_a_batch(api):
    request_id = _predicted(api, {"rows": [GOOD, GOOD, GOOD]})

    assert _feedback(api, request_id, row=2).status_code == 201

    assert [record["row"] for record in logged(table="feedback")] == [2]


def test_feedback_right_after_the_answer_waits_for_the_log(project, start_api):
    write_monitoring(project.root, {"flush_seconds": 60, "batch_rows": 500})
    api = start_api()
    request_id = api.post("/predict", json=GOOD).headers["X-Request-ID"]  # still buffered

    assert _feedback(api, request_id).status_code == 201


def test_an_unknown_request_id_is_404(api):
    answer = _feedback(api, "0" * 32)

    assert answer.status_code == 404
    assert answer.json()["detail"] == (
        f"no prediction logged for request {'0' * 32} row 0: check the X-Request-ID"
    )


def test_an_unknown_row_is_404(api):
    request_id = _predicted(api)

    answer = _feedback(api, request_id, row=1)

    assert answer.status_code == 404
    assert f"request {request_id} row 1" in answer.json()["detail"]


def test_a_refused_row_has_no_prediction_to_give_feedback_on(api):
    request_id = _predicted(api, TOO_BIG)

    answer = _feedback(api, request_id)

    assert answer.status_code == 404
    assert "was refused (status 422): it has no prediction" in answer.json()["detail"]


def test_a_second_feedback_is_409(api):
    request_id = _predicted(api)
    _feedback(api, request_id, outcome=1)

    answer = _feedback(api, request_id, outcome=0)

    assert answer.status_code == 409
    assert "already has its feedback" in answer.json()["detail"]
    assert [record["outcome"] for record in logged(table="feedback")] == [1]


@pytest.mark.parametrize(
    ("outcome", "message"),
    [
        (2, "must be one of [0, 1]"),
        ("1", "Input should be a valid integer"),
        (None, "Input should be a valid integer"),
        (0.5, "Input should be a valid integer"),
    ],
)
def test_an_outcome_outside_the_contract_is_422(api, outcome, message):
    request_id = _predicted(api)

    answer = _feedback(api, request_id, outcome=outcome)

    assert answer.status_code == 422
    (problem,) = answer.json()["detail"]
    assert problem["loc"] == ["body", "outcome"]
    assert message in problem["msg"]
    assert logged(table="feedback") == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"request_id": "not-an-id", "outcome": 1}, "request_id"),
        ({"request_id": "a" * 32}, "outcome"),
        ({"request_id": "a" * 32, "outcome": 1, "row": -1}, "row"),
        ({"request_id": "a" * 32, "outcome": 1, "note": "x"}, "note"),
    ],
)
def test_a_malformed_body_is_422_naming_the_field(api, body, field):
    answer = api.post("/feedback", json=body)

    assert answer.status_code == 422
    assert [problem["loc"][-1] for problem in answer.json()["detail"]] == [field]


def test_feedback_needs_the_token_of_predict(project, start_api, monkeypatch):
    monkeypatch.setenv("MODEL_API_TOKEN", TOKEN)
    write_monitoring(project.root)
    api = start_api()
    headers = {"Authorization": f"Bearer {TOKEN}"}
    request_id = api.post("/predict", json=GOOD, headers=headers).headers["X-Request-ID"]
    written(api)
    body = {"request_id": request_id, "outcome": 1}

    refused = api.post("/feedback", json=body)
    accepted = api.post("/feedback", json=body, headers=headers)

    assert refused.status_code == 401
    assert refused.json()["detail"].startswith("missing or wrong token")
    assert accepted.status_code == 201


def test_the_live_metric_appears_from_min_feedback_rows(project, start_api):
    write_monitoring(project.root, metrics={"min_feedback_rows": 4, "feedback_window": 10})
    api = start_api()
    rows = [{**GOOD, "radius": radius} for radius in (8.0, 9.0, 30.0, 35.0)]
    request_id = _predicted(api, {"rows": rows})
    for row, outcome in enumerate([0, 0, 1]):
        _feedback(api, request_id, outcome=outcome, row=row)
    before = api.get("/metrics").text

    _feedback(api, request_id, outcome=1, row=3)
    after = api.get("/metrics").text

    assert metric_samples(before, "model_api_live_metric") == {}
    assert metric_samples(after, "model_api_live_metric") == {'{metric="roc_auc"}': 1.0}
    assert metric_samples(after, "model_api_feedback_total") == {"": 4}


def test_the_stdout_log_takes_feedback_for_its_own_answers(project, start_api, capsys):
    write_monitoring(project.root, {"sink": "stdout"})
    api = start_api()
    request_id = _predicted(api)

    known, unknown = _feedback(api, request_id), _feedback(api, "0" * 32)

    assert known.status_code == 201
    assert unknown.status_code == 404
    assert "not among the predictions this replica answered" in unknown.json()["detail"]
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(",")[0] for line in lines] == ['{"type":"prediction"', '{"type":"feedback"']
