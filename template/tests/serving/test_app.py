"""The API in process (Starlette's TestClient): answers, the contract, limits and the token.

Inputs a schema-driven fuzzer cannot send (non-finite numbers, bodies over the
limit, chunked bodies, broken JSON, lone surrogates) are tried here, and a
property test sends any JSON and any bytes (bodies.py): never a 5xx.
test_running_api.py runs schemathesis against a real server.
"""

import copy
import json

import pytest
from fastapi.testclient import TestClient
from hypothesis import example, given

from ..conftest import TEST_CANVAS
from ..package import NAME, load
from .bodies import BODIES, CONTENT_TYPES, GOOD, PROPERTY
from .conftest import VERSION, build_folder

app_module = load("serving.app")
settings_module = load("serving.settings")
fast_path = load("serving.fast_path")


def _client(model_dir, **settings):
    app = app_module.create_app(model_dir, settings_module.ServingSettings(**settings))
    client = TestClient(app, raise_server_exceptions=False)
    client.__enter__()  # runs the lifespan: the model loads
    assert app.state.model.wait(30), app.state.model.error
    return client


@pytest.fixture
def client(model_dir):
    client = _client(model_dir, max_batch_rows=3, max_body_bytes=8000)
    yield client
    client.__exit__(None, None, None)


def _post(client, raw: bytes, **headers):
    return client.post(
        "/predict", content=raw, headers={"Content-Type": "application/json", **headers}
    )


def test_probes_and_version(client):
    health, ready = client.get("/health").json(), client.get("/ready").json()
    # Level 4 adds the prediction log's state under `details`.
    health.pop("details", None)
    ready.pop("details", None)
    assert health == {"status": "alive"}
    assert ready == {
        "status": "ready",
        "model_version": VERSION,
        "fast_path": True,
    }
    version = client.get("/version").json()
    assert (version["name"], version["version"]) == (NAME, VERSION)
    assert version["data_contract"]["columns"]["clinic"]["allowed"] == [
        "north",
        "south",
        "east",
        "west",
    ]


def test_one_row_and_a_batch(client, model_dir):
    examples = json.loads((model_dir / "examples.json").read_text())

    one = client.post("/predict", json=examples["rows"][0])
    batch = client.post("/predict", json={"rows": examples["rows"][:3]})

    assert one.status_code == batch.status_code == 200
    assert one.json() == batch.json()["predictions"][0]
    assert one.json()["model_version"] == VERSION
    for answer, expected in zip(
        batch.json()["predictions"], examples["probabilities"], strict=False
    ):
        assert answer["probability"] == pytest.approx(expected[1], abs=2e-5)
        assert answer["prediction"] == int(expected[1] > 0.5)


def test_optional_fields_may_be_null_or_absent(client):
    without = {k: v for k, v in GOOD.items() if k != "texture"}

    assert client.post("/predict", json={**GOOD, "texture": None}).status_code == 200
    assert client.post("/predict", json=without).status_code == 200
    assert client.post("/predict", json={**GOOD, "smoothness": None}).status_code == 200


@pytest.mark.parametrize(
    ("row", "location", "words"),
    [
        ({**GOOD, "radius": 99}, ["body", "radius"], "less than or equal to 40"),
        ({**GOOD, "radius": 4.99}, ["body", "radius"], "greater than or equal to 5"),
        ({**GOOD, "clinic": "mars"}, ["body", "clinic"], "'north', 'south', 'east' or 'west'"),
        ({**GOOD, "clinic": "nörth 🏥"}, ["body", "clinic"], "'north', 'south'"),
        ({**GOOD, "clinic": 1}, ["body", "clinic"], "'north', 'south'"),
        ({**GOOD, "radius": False}, ["body", "radius"], "valid number"),
        ({**GOOD, "radius": "12.5"}, ["body", "radius"], "valid number"),
        ({**GOOD, "radius": [12.5]}, ["body", "radius"], "valid number"),
        ({**GOOD, "radius": None}, ["body", "radius"], "valid number"),
        ({**GOOD, "radius": 1e308}, ["body", "radius"], "less than or equal to 40"),
        ({**GOOD, "colour": "red"}, ["body", "colour"], "Extra inputs are not permitted"),
        ({**GOOD, "rádius": 12}, ["body", "rádius"], "Extra inputs are not permitted"),
        ({k: v for k, v in GOOD.items() if k != "area"}, ["body", "area"], "Field required"),
        ({"rows": []}, ["body", "rows"], "at least 1 item"),
        ({"rows": [GOOD] * 4}, ["body", "rows"], "at most 3 items"),
        ({"rows": [GOOD, {**GOOD, "area": 5000}]}, ["body", "rows", 1, "area"], "less than"),
        ([GOOD], ["body"], "valid dictionary"),
    ],
)
def test_a_row_that_breaks_the_contract_gets_422_naming_the_field(client, row, location, words):
    answer = client.post("/predict", json=row)

    assert answer.status_code == 422
    details = answer.json()["detail"]
    assert any(d["loc"] == location and words in d["msg"] for d in details), details


def test_rows_that_are_not_a_list_are_told_so(client):
    answer = client.post("/predict", json={"rows": 5})

    assert answer.status_code == 422
    assert answer.json()["detail"] == [
        {"loc": ["body", "rows"], "msg": "Input should be a valid list", "type": "list_type",
         "input": 5},
    ]  # fmt: skip


@pytest.mark.parametrize(
    "row",
    [
        {**GOOD, "clinic": "\ud800"},  # a value
        {**GOOD, "x\udc00": 1},  # a key
        {"rows": [GOOD, {**GOOD, "\ud800": "\udfff"}]},  # both, in a batch
    ],
)
def test_a_lone_surrogate_is_refused_with_422_shown_as_a_replacement_character(client, row):
    """Valid JSON ("\\ud800" is half of a surrogate pair) that UTF-8 cannot encode."""
    answer = _post(client, json.dumps(row).encode())  # ensure_ascii: the escapes as sent

    assert answer.status_code == 422
    details = answer.json()["detail"]
    shown = [json.dumps([d["loc"], d.get("input")], ensure_ascii=False) for d in details]
    assert any("\ufffd" in text for text in shown), details


@PROPERTY
@given(body=BODIES, content_type=CONTENT_TYPES)
@example(body=b"[" * 5000 + b"]" * 5000, content_type="application/json")
@example(body=b'{"radius": 1' + b"0" * 400 + b"}", content_type="application/json")
def test_no_body_gets_a_server_error(client, body, content_type):
    answer = client.post("/predict", content=body, headers={"Content-Type": content_type})

    assert 200 <= answer.status_code < 500, (body, answer.status_code, answer.text[:300])


@pytest.mark.parametrize("number", [b"NaN", b"Infinity", b"-Infinity", b"1e400", b"-1e999"])
def test_non_finite_numbers_get_422(client, number):
    raw = json.dumps({**GOOD, "radius": "X"}).encode().replace(b'"X"', number)

    answer = _post(client, raw)

    assert answer.status_code == 422
    assert answer.json()["detail"][0]["loc"] == ["body", "radius"]
    assert answer.json()["detail"][0]["type"] == "finite_number"


@pytest.mark.parametrize(
    ("raw", "statuses"),
    [
        (b'{"radius": ', {422}),  # broken JSON
        (b"", {422}),
        (b"\xff\xfe", {422}),  # not UTF-8
        (b'{"radius": 1' + b"0" * 5000 + b"}", {400}),  # more digits than Python parses
        # Deep nesting: a RecursionError in the parser (400) up to Python 3.12, parsed then
        # refused by the schema (422) from 3.13 on.
        (b"[" * 3000 + b"]" * 3000, {400, 422}),
    ],
)
def test_unreadable_bodies_get_4xx(client, raw, statuses):
    assert _post(client, raw).status_code in statuses


def test_a_body_not_sent_as_json_gets_415(client):
    answer = client.post(
        "/predict", content=json.dumps(GOOD), headers={"Content-Type": "text/plain"}
    )

    assert answer.status_code == 415
    assert "Content-Type: application/json" in answer.json()["detail"]


def test_bodies_over_the_limit_get_413_before_parsing(client):
    big = json.dumps({"rows": [GOOD] * 200}).encode()

    declared = _post(client, big)
    streamed = client.post(
        "/predict",
        content=(big[i : i + 1000] for i in range(0, len(big), 1000)),  # chunked: no length
        headers={"Content-Type": "application/json"},
    )

    assert declared.status_code == streamed.status_code == 413
    assert "larger than 8000 bytes" in declared.json()["detail"]


def test_the_contract_bounds_numbers_it_leaves_open(project, tmp_path):
    canvas = copy.deepcopy(TEST_CANVAS)
    canvas["data_contract"]["columns"]["area"] = {"type": "float", "max_missing": 0.0}
    client = _client(build_folder(tmp_path, canvas=canvas), number_limit=1e6)

    assert client.post("/predict", json={**GOOD, "area": 1e308}).status_code == 422
    assert client.post("/predict", json={**GOOD, "area": -2e6}).status_code == 422
    assert client.post("/predict", json={**GOOD, "area": 9e5}).status_code == 200
    client.__exit__(None, None, None)


def test_the_schema_is_the_contract(client):
    schema = client.get("/openapi.json").json()["components"]["schemas"]["Row"]

    assert schema["additionalProperties"] is False
    assert sorted(schema["required"]) == ["area", "clinic", "radius"]
    assert (
        schema["properties"]["radius"]["minimum"],
        schema["properties"]["radius"]["maximum"],
    ) == (
        5.0,
        40.0,
    )
    assert schema["properties"]["clinic"]["enum"] == ["north", "south", "east", "west"]
    assert {"type": "null"} in schema["properties"]["texture"]["anyOf"]
    assert client.get("/docs").status_code == 200


def test_the_token_guards_predict_only(model_dir, monkeypatch):
    monkeypatch.setenv("MODEL_API_TOKEN", "s3cret")
    client = _client(model_dir)

    assert client.post("/predict", json=GOOD).status_code == 401
    wrong = {"Authorization": "Bearer nope"}
    assert client.post("/predict", json=GOOD, headers=wrong).status_code == 401
    right = {"Authorization": "Bearer s3cret"}
    assert client.post("/predict", json=GOOD, headers=right).status_code == 200
    for path in ("/health", "/ready", "/version"):
        assert client.get(path).status_code == 200
    schemes = client.get("/openapi.json").json()["components"]["securitySchemes"]
    assert schemes["HTTPBearer"]["scheme"] == "bearer"
    client.__exit__(None, None, None)


def test_predict_waits_for_the_model(model_dir):
    app = app_module.create_app(model_dir, settings_module.ServingSettings())
    client = TestClient(app)  # no `with`: no lifespan, so the model never loads

    assert client.get("/health").status_code == 200
    assert client.get("/ready").status_code == 503
    answer = client.post("/predict", json=GOOD)
    assert answer.status_code == 503
    assert answer.headers["Retry-After"] == "1"


def test_rows_the_model_cannot_score_get_422(client, monkeypatch):
    model = client.app.state.model.model

    def overflow(rows):
        raise fast_path.RowsRejected("area", [1], "number too large for the model")

    monkeypatch.setattr(model, "answers", overflow)
    answer = client.post("/predict", json={"rows": [GOOD, GOOD]})

    assert answer.status_code == 422
    assert answer.json()["detail"] == [
        {
            "loc": ["body", "rows", 1, "area"],
            "msg": "number too large for the model",
            "type": "value_error",
        }
    ]


def test_a_bug_is_still_a_500(client, monkeypatch):
    """No blanket handler turns errors into 4xx: a bug must show as one."""
    model = client.app.state.model.model

    def bug(rows):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(model, "answers", bug)

    assert client.post("/predict", json=GOOD).status_code == 500
