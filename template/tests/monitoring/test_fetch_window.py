"""fetch-window: the production log copied here, from a published SQLite copy or BigQuery.

BigQuery itself is past the cloud boundary: these tests stop there (no `bq`,
no credentials: a clear error) and check the rest with a stand-in for the
query, fed rows shaped as `bq --format=json` gives them (every value a text).
"""

from __future__ import annotations

import functools
import http.server
import json
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from ..package import PipelineError, load
from .log_files import Row, scored, write_log

fetch = load("monitoring.fetch_window")
joined = load("monitoring.joined")
drift = load("monitoring.drift")

LOG = Path("logs/predictions.db")
TABLE = "my-project.predictions.run_googleapis_com_stdout"


@pytest.fixture
def published(tmp_path: Path) -> Path:
    """The team's published copy of the production log: 100 rows with feedback."""
    return write_log(tmp_path / "published" / "predictions.db", scored([0, 1] * 50, right=True))


def test_a_published_copy_becomes_the_local_log(project, published, monkeypatch, capsys):
    monkeypatch.setenv(fetch.URL_VARIABLE, published.as_uri())

    assert fetch.run(source="url") == LOG

    assert len(joined.read_feedback(LOG)) == 100
    assert "100 predictions and 100 feedback from the published copy" in capsys.readouterr().out


def test_a_path_works_as_well_as_a_file_url(project, published):
    fetch.run(source="url", location=str(published))

    assert len(joined.read_feedback(LOG)) == 100


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """No access log in the tests' output."""


@pytest.fixture
def web(tmp_path: Path) -> Iterator[str]:
    """An HTTP server on a free port serving tmp_path/published."""
    handler = functools.partial(QuietHandler, directory=str(tmp_path / "published"))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join()


def test_an_https_or_http_url_is_downloaded(project, published, web):
    fetch.run(source="url", location=f"{web}/predictions.db")

    assert len(joined.read_feedback(LOG)) == 100


def test_a_url_that_answers_an_error_is_said_and_the_old_copy_kept(project, published, web):
    write_log(LOG, [Row({"radius": 12.0}, outcome=1)])

    with pytest.raises(PipelineError, match=r"predictions-old.db answered 404"):
        fetch.run(source="url", location=f"{web}/predictions-old.db?signature=secret")

    assert len(joined.read_feedback(LOG)) == 1


def test_a_file_that_is_not_a_prediction_log_is_refused(project, tmp_path):
    other = tmp_path / "notes.db"
    other.write_text("not SQLite")

    with pytest.raises(PipelineError, match="is not a prediction log"):
        fetch.run(source="url", location=str(other))

    assert not LOG.exists() and not list(Path("logs").glob(".*"))


def test_without_a_url_it_says_what_to_set(project, monkeypatch):
    monkeypatch.delenv(fetch.URL_VARIABLE, raising=False)

    with pytest.raises(PipelineError, match="PREDICTION_LOG_URL is not set"):
        fetch.run(source="url")


def test_a_bucket_url_is_refused_with_what_works(project):
    with pytest.raises(PipelineError, match=r"s3:// is not read here: give an https URL"):
        fetch.run(source="url", location="s3://bucket/predictions.db")


def test_auto_reads_bigquery_for_the_cloud_targets(project, monkeypatch):
    Path("deploy.yaml").write_text(yaml.safe_dump({"delivery": {"target": "cloud-run"}}))
    monkeypatch.delenv(fetch.TABLE_VARIABLE, raising=False)

    with pytest.raises(PipelineError, match=r"no BigQuery table: set monitoring\.yaml"):
        fetch.run()


def test_bigquery_needs_the_bq_tool(project, monkeypatch):
    monkeypatch.setattr(fetch.shutil, "which", lambda name: None)

    with pytest.raises(PipelineError, match=r"`bq` is not installed"):
        fetch.run(source="bigquery", table=TABLE)


def test_bigquery_stops_clearly_without_credentials(project, monkeypatch, tmp_path):
    monkeypatch.setattr(fetch.shutil, "which", lambda name: f"/usr/bin/{name}")
    for name in fetch.CREDENTIAL_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "gcloud"))

    with pytest.raises(PipelineError, match="no Google Cloud credentials"):
        fetch.run(source="bigquery", table=TABLE)


def test_the_query_reads_the_days_of_one_kind_of_record():
    sql = fetch.bigquery_sql(TABLE, "prediction", 7)

    assert f"FROM `{TABLE}`" in sql
    assert "jsonPayload.type = 'prediction'" in sql and "INTERVAL 7 DAY" in sql
    assert "TO_JSON_STRING(jsonPayload) AS `payload`" in sql
    assert "jsonPayload.type = 'feedback'" in fetch.bigquery_sql(TABLE, "feedback", 7)


def test_the_query_names_no_field_a_line_may_not_have_carried_yet():
    """The sink's table has a column per field seen so far: no `outcome` before any feedback."""
    for kind in ("prediction", "feedback"):
        sql = fetch.bigquery_sql(TABLE, kind, 7)

        named = re.findall(r"jsonPayload\.`?(\w+)", sql)
        assert named == ["type"], sql


def test_the_time_is_the_entry_timestamp_the_logging_agent_lifted_it_into():
    sql = fetch.bigquery_sql(TABLE, "feedback", 7)
    assert "FORMAT_TIMESTAMP('%Y-%m-%dT%H:%M:%E3S+00:00', timestamp) AS `time`" in sql
    lifted = {"payload": '{"type":"feedback","request_id":"a","row":0,"outcome":1}',
              "time": "2025-06-01T00:01:02.345+00:00"}  # fmt: skip

    fields = fetch.line_fields(lifted, fetch.FEEDBACK_COLUMNS)

    assert fields == {"request_id": "a", "row": 0, "outcome": 1,
                      "time": "2025-06-01T00:01:02.345+00:00"}  # fmt: skip


def as_bq_rows(kind: str) -> list[dict[str, Any]]:
    """Lines as `bq --format=json` returns the query's: the payload as JSON text, the time.

    Every column of the table is in each payload, null where the line had no
    such field, as TO_JSON_STRING gives a record; `time` was lifted.
    """
    if kind == "prediction":
        lines = [
            {
                "type": "prediction", "request_id": f"{n:032x}", "row": 0, "model_version": "3",
                "status": 200, "latency_ms": 4.5, "input": {"radius": 12.5, "clinic": "north"},
                "prediction": 1, "probability": 0.8 if n % 2 else 0.2, "refused_rule": None,
                "outcome": None,
            }
            for n in range(40)
        ]  # fmt: skip
        times = [f"2025-06-01T00:00:{n:02d}.000+00:00" for n in range(40)]
    else:
        lines = [
            {"type": "feedback", "request_id": f"{n:032x}", "row": 0, "outcome": n % 2,
             "model_version": None, "status": None, "latency_ms": None, "input": None,
             "prediction": None, "probability": None, "refused_rule": None}
            for n in range(40)
        ]  # fmt: skip
        times = [f"2025-06-01T00:01:{n:02d}.000+00:00" for n in range(40)]
    pairs = zip(lines, times, strict=True)
    return [{"payload": json.dumps(line), "time": time} for line, time in pairs]


def test_bigquery_records_become_a_log_the_checks_read(project):
    def query(sql: str) -> list[dict[str, Any]]:
        return as_bq_rows("feedback" if "'feedback'" in sql else "prediction")

    fetch.fetch_bigquery(TABLE, 7, LOG, query=query)

    rows = joined.read_feedback(LOG, inputs=True)
    assert len(rows) == 40
    first = rows[0]
    assert (first.model_version, first.prediction, first.probability) == ("3", 1, 0.2)
    assert first.outcome == 0 and first.input == {"radius": 12.5, "clinic": "north"}
    assert drift.read_window(LOG, None, None).rows == 40
