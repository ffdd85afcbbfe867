"""simulate: rows of a CSV to a running API, feedback for a share of the answers, drift.

The API here is a tiny fake (http.server in a thread) that answers as the
contract of docs/monitoring.md says: an X-Request-ID header on /predict,
201 for feedback, 404 for an unknown request id, 401 without the token.
"""

from __future__ import annotations

import argparse
import json
import re
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from ..conftest import make_frame
from ..package import PipelineError, load

cli = load("cli")
simulate = load("monitoring.simulate")
canvas_file = load("core.canvas")
params_file = load("core.params")
model_folder = load("serving.model_folder")
serving_settings = load("serving.settings")

TOKEN = "secret-for-tests"
FEATURES = ["radius", "texture", "area", "smoothness", "clinic"]


@dataclass
class FakeApi:
    """What the fake API saw and how it behaves; `url` once started."""

    metadata: dict[str, Any]
    token: str | None = TOKEN
    request_ids: bool = True  # False: a level-3 API, without X-Request-ID
    unknown_first: bool = False  # the first feedback of each id is 404 (log not written yet)
    failing: bool = False  # /predict answers 500
    url: str = ""
    predicts: list[dict[str, Any]] = field(default_factory=list)
    feedback: list[dict[str, Any]] = field(default_factory=list)
    feedback_tries: int = 0
    tried: set[tuple[str, int]] = field(default_factory=set)
    sent_rows: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


def handler_for(api: FakeApi) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as uvicorn
        disable_nagle_algorithm = True  # headers and body go out at once, as uvicorn sends them

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: the tests read what the API recorded instead."""

        def answer(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)

        def do_GET(self) -> None:
            if self.path == "/ready":
                self.answer(200, {"status": "ready"})
            elif self.path == "/version":
                self.answer(200, api.metadata)
            else:
                self.answer(404, {"detail": "Not Found"})

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            if self.path == "/predict":
                with api.lock:
                    api.predicts.append(
                        {"body": body, "authorization": self.headers["Authorization"]}
                    )
            if api.token and self.headers.get("Authorization") != f"Bearer {api.token}":
                self.answer(401, {"detail": "missing or wrong token"})
            elif self.path == "/predict":
                self.predict(body)
            elif self.path == "/feedback":
                self.take_feedback(body)
            else:
                self.answer(404, {"detail": "Not Found"})

        def predict(self, body: Any) -> None:
            batch = "rows" in body
            rows = body["rows"] if batch else [body]
            request_id = uuid.uuid4().hex
            with api.lock:
                api.sent_rows[request_id] = rows
            if api.failing:
                self.answer(500, {"detail": "boom"})
                return
            headers = {"X-Request-ID": request_id} if api.request_ids else {}
            if any(row["radius"] > 40 for row in rows):  # the contract's max
                self.answer(422, {"detail": [{"msg": "radius too large"}]}, headers)
                return
            answers = [{"prediction": 1, "probability": 0.9, "model_version": "3"} for _ in rows]
            self.answer(200, {"predictions": answers} if batch else answers[0], headers)

        def take_feedback(self, body: Any) -> None:
            key = (body["request_id"], body["row"])
            with api.lock:
                api.feedback_tries += 1
                known = 0 <= body["row"] < len(api.sent_rows.get(body["request_id"], []))
                first_try = key not in api.tried
                api.tried.add(key)
                recorded = known and not (api.unknown_first and first_try)
                if recorded:
                    api.feedback.append(body)
            if recorded:
                self.answer(201, {"status": "recorded"})
            else:
                self.answer(404, {"detail": "unknown request id"})

    return Handler


@pytest.fixture
def test_rows(project) -> pd.DataFrame:
    """data/processed/test.csv: the 80 rows of the tiny frame, with their target."""
    frame = make_frame()
    project.write_data(frame, "data/processed/test.csv")
    return frame


@pytest.fixture
def fake_api(project, monkeypatch) -> Iterator[FakeApi]:
    """The fake API on a free port, serving the test project's model metadata."""
    metadata = model_folder.describe_model(
        params_file.load_params(Path("params.yaml")),
        canvas_file.load_canvas(Path("canvas.yaml")),
        version="3",
        run_id="run-1",
        git_commit="0123abc",
        data_version="d41d8cd9",
    )
    api = FakeApi(metadata)
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler_for(api))
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    api.url = f"http://127.0.0.1:{server.server_address[1]}"
    monkeypatch.setenv("MODEL_API_TOKEN", TOKEN)
    try:
        yield api
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def sent_rows(api: FakeApi) -> list[dict[str, Any]]:
    return [row for rows in api.sent_rows.values() for row in rows]


def run(api: FakeApi, *options: str) -> Any:
    """simulate against the fake API, feedback at once (no delay)."""
    return simulate.run(**vars(parse(["--url", api.url, "--feedback-delay", "0", *options])))


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    simulate.add_arguments(parser)
    return parser.parse_args(argv)


# --- Shifts ------------------------------------------------------------------------------------


def test_a_numeric_shift_adds_that_many_deviations_of_the_file_to_that_column_only():
    frame = make_frame()
    rng = np.random.default_rng(0)

    shifted = simulate.apply_shifts(frame, [simulate.parse_shift("radius=+0.25")], frame, rng)

    moved = shifted["radius"] - frame["radius"]
    assert np.allclose(moved, 0.25 * frame["radius"].std())
    pd.testing.assert_frame_equal(shifted.drop(columns="radius"), frame.drop(columns="radius"))


def test_a_negative_shift_moves_values_down_and_whole_number_columns_stay_whole():
    frame = make_frame().assign(visits=[n % 5 for n in range(80)])
    rng = np.random.default_rng(0)
    shifts = [simulate.parse_shift("texture=-1"), simulate.parse_shift("visits=+0.6")]

    shifted = simulate.apply_shifts(frame, shifts, frame, rng, frozenset({"visits"}))

    moved = (shifted["texture"] - frame["texture"]).dropna()  # one texture is missing
    assert len(moved) == 79 and np.allclose(moved, -frame["texture"].std())
    assert (shifted["visits"] == (frame["visits"] + 0.6 * frame["visits"].std()).round()).all()


def test_a_category_shift_moves_that_share_of_the_rows_to_the_value():
    frame = make_frame()  # 20 rows of each clinic
    rng = np.random.default_rng(0)

    shifted = simulate.apply_shifts(frame, [simulate.parse_shift("clinic=west:0.10")], frame, rng)

    changed = shifted["clinic"] != frame["clinic"]
    assert changed.sum() == 8  # 10 % of 80 rows, all taken from the other clinics
    assert (shifted.loc[changed, "clinic"] == "west").all()
    assert (shifted["clinic"] == "west").sum() == 28
    pd.testing.assert_frame_equal(shifted.drop(columns="clinic"), frame.drop(columns="clinic"))


def test_a_category_shift_is_the_same_for_the_same_seed():
    frame = make_frame()
    shift = [simulate.parse_shift("clinic=north:0.3")]

    first = simulate.apply_shifts(frame, shift, frame, np.random.default_rng(7))
    again = simulate.apply_shifts(frame, shift, frame, np.random.default_rng(7))
    other = simulate.apply_shifts(frame, shift, frame, np.random.default_rng(8))

    pd.testing.assert_frame_equal(first, again)
    assert not first.equals(other)


def test_a_shift_of_an_unknown_or_wrong_kind_of_column_is_a_pipeline_error():
    frame = make_frame()
    rng = np.random.default_rng(0)

    with pytest.raises(PipelineError, match="the data has no column weight"):
        simulate.apply_shifts(frame, [simulate.parse_shift("weight=+1")], frame, rng)
    with pytest.raises(PipelineError, match=r"clinic is not numeric.*clinic=VALUE:0.10"):
        simulate.apply_shifts(frame, [simulate.parse_shift("clinic=+1")], frame, rng)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("radius=+0.25", simulate.Shift("radius", deviations=0.25)),
        ("radius=-1", simulate.Shift("radius", deviations=-1.0)),
        ("clinic=west:0.10", simulate.Shift("clinic", value="west", share=0.1)),
        ("code=a:b:1", simulate.Shift("code", value="a:b", share=1.0)),
    ],
)
def test_shift_options_are_read_as_deviations_or_a_value_and_a_share(text, expected):
    assert simulate.parse_shift(text) == expected


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--shift", "radius"], "use column=+0.25"),
        (["--shift", "radius=big"], "use column=+0.25"),
        (["--shift", "clinic=west:2"], "the share must be above 0 and at most 1"),
        (["--shift", "clinic=west:0"], "the share must be above 0 and at most 1"),
        (["--feedback-share", "1.5"], "must be between 0 and 1"),
        (["--rows", "0"], "must be at least 1"),
        (["--concurrency", "two"], "is not a whole number"),
        (["--batch", "-3"], "must be at least 1"),
        (["--feedback-delay", "-1"], "must be 0 or more"),
        (["--url", "http://x", "--start"], "not allowed with argument"),
    ],
)
def test_bad_options_are_usage_errors(capsys, argv, message):
    with pytest.raises(SystemExit) as stopped:
        cli.main(["simulate", *argv])

    assert stopped.value.code == 2
    assert message in capsys.readouterr().err


def test_the_default_url_is_deploy_yamls_address_reached_locally():
    settings = serving_settings.ServingSettings(host="0.0.0.0", port=9001)

    assert simulate.default_url(settings) == "http://127.0.0.1:9001"
    assert simulate.default_url(serving_settings.ServingSettings()) == "http://127.0.0.1:8000"


# --- Against the fake API ----------------------------------------------------------------------


def test_every_row_is_sent_in_batches_with_the_token(fake_api, test_rows):
    summary = run(fake_api, "--rows", "50", "--batch", "4", "--concurrency", "3")

    assert (summary.sent, summary.requests, summary.answered) == (50, 13, 50)
    assert (summary.refused, summary.errors) == (0, 0)
    sizes = sorted(len(p["body"]["rows"]) for p in fake_api.predicts)
    assert sizes == [2] + [4] * 12
    assert {p["authorization"] for p in fake_api.predicts} == {f"Bearer {TOKEN}"}
    sent = sorted(row["radius"] for row in sent_rows(fake_api))
    assert sent == sorted(test_rows["radius"].head(50))
    assert set(sent_rows(fake_api)[0]) <= set(FEATURES)  # the features only, not the target


def test_rows_cycle_through_the_file_and_single_rows_are_sent_as_one_object(fake_api, test_rows):
    summary = run(fake_api, "--rows", "100", "--feedback-share", "0")

    assert (summary.sent, summary.requests) == (100, 100)
    assert all("rows" not in p["body"] for p in fake_api.predicts)
    counts = pd.Series([row["radius"] for row in sent_rows(fake_api)]).value_counts()
    assert counts.max() == 2 and len(counts) == 80


def test_feedback_goes_to_that_share_of_the_answered_rows_with_their_true_outcome(
    fake_api, test_rows
):
    summary = run(fake_api, "--rows", "60", "--batch", "3", "--feedback-share", "0.3")

    assert (summary.feedback_sent, summary.feedback_recorded) == (18, 18)
    truth = dict(zip(test_rows["radius"], test_rows["malignant"], strict=True))
    for feedback in fake_api.feedback:
        row = fake_api.sent_rows[feedback["request_id"]][feedback["row"]]
        assert feedback["outcome"] == truth[row["radius"]]
    rows_with_feedback = {(f["request_id"], f["row"]) for f in fake_api.feedback}
    assert len(rows_with_feedback) == 18
    assert any(row > 0 for _, row in rows_with_feedback)  # rows inside batches too


def test_feedback_refused_as_unknown_is_sent_again_later(fake_api, test_rows):
    fake_api.unknown_first = True  # the log had not written the prediction yet

    summary = run(fake_api, "--rows", "10", "--feedback-share", "0.5")

    assert (summary.feedback_sent, summary.feedback_recorded) == (5, 5)
    assert fake_api.feedback_tries == 10


def test_refused_rows_are_counted_and_get_no_feedback(fake_api, test_rows, capsys):
    summary = run(fake_api, "--rows", "20", "--shift", "radius=+100", "--feedback-share", "1")

    assert (summary.sent, summary.answered, summary.refused, summary.errors) == (20, 0, 20, 0)
    assert summary.feedback_sent == 0
    printed = capsys.readouterr().out
    assert "answered 0, refused 20, errors 0" in printed
    assert "feedback sent 0, recorded 0" in printed
    assert "rows/s" in printed


def test_a_category_shift_reaches_the_api(fake_api, test_rows):
    run(fake_api, "--rows", "80", "--shift", "clinic=west:0.5", "--feedback-share", "0")

    clinics = pd.Series([row["clinic"] for row in sent_rows(fake_api)])
    assert (clinics == "west").sum() == 20 + 40


def test_the_summary_is_printed(fake_api, test_rows, capsys):
    argv = ["--url", fake_api.url, "--rows", "30", "--batch", "10", "--feedback-delay", "0"]

    assert cli.main(["simulate", *argv]) == 0

    printed = capsys.readouterr().out
    assert f"sent 30 rows in 3 requests to {fake_api.url} (concurrency 4, batch 10)" in printed
    assert "answered 30, refused 0, errors 0" in printed
    assert "feedback sent 9, recorded 9" in printed
    assert " rows/s (" in printed


@pytest.mark.parametrize(
    ("token", "message"),
    [
        ("wrong", "the API refused the token in MODEL_API_TOKEN"),
        (None, "the API wants a token (401): set MODEL_API_TOKEN"),
    ],
)
def test_a_wrong_or_missing_token_fails_at_the_first_request(
    fake_api, test_rows, monkeypatch, token, message
):
    if token is None:
        monkeypatch.delenv("MODEL_API_TOKEN")
    else:
        monkeypatch.setenv("MODEL_API_TOKEN", token)

    with pytest.raises(PipelineError, match=re.escape(message)):
        run(fake_api, "--rows", "40")

    assert len(fake_api.predicts) == 1


def test_an_unreachable_api_fails_at_once(project, test_rows):
    with pytest.raises(PipelineError, match=r"cannot reach http://127.0.0.1:9/ready.*--start"):
        simulate.run(url="http://127.0.0.1:9", rows=5)


def test_an_api_without_request_ids_cannot_take_feedback(fake_api, test_rows):
    fake_api.request_ids = False

    with pytest.raises(PipelineError, match=r"without an X-Request-ID header.*--feedback-share 0"):
        run(fake_api, "--rows", "10")
    summary = run(fake_api, "--rows", "10", "--feedback-share", "0")

    assert summary.answered == 10


def test_failing_requests_are_counted_then_fail_the_command(fake_api, test_rows, capsys):
    fake_api.failing = True

    code = cli.main(["simulate", "--url", fake_api.url, "--rows", "6", "--batch", "2"])

    assert code == 1
    captured = capsys.readouterr()
    assert "answered 0, refused 0, errors 6" in captured.out
    assert "simulate: 3 of 3 requests failed (first: 500: {'detail': 'boom'})" in captured.err


def test_data_without_the_target_needs_feedback_share_zero(fake_api, project):
    project.write_data(make_frame().drop(columns="malignant"), "unlabelled.csv")

    with pytest.raises(PipelineError, match=r"no column malignant.*--feedback-share 0"):
        run(fake_api, "--data", "unlabelled.csv", "--rows", "5")
    summary = run(fake_api, "--data", "unlabelled.csv", "--rows", "5", "--feedback-share", "0")

    assert summary.answered == 5


def test_missing_data_says_how_to_make_it(fake_api):
    with pytest.raises(PipelineError, match=r"data/processed/test.csv is missing.*--data"):
        run(fake_api, "--rows", "5")
