"""Command `fetch-window`: a copy of the production prediction log, for `monitor` to judge.

    uv run <package> fetch-window                       # from where deploy.yaml's target logs
    uv run <package> fetch-window --from url --source https://example.com/predictions.db
    uv run <package> fetch-window --from bigquery --table my-project.predictions.stdout

Either source becomes a SQLite file in the log's own schema at
`prediction_log.path` (or --out); where the copy comes from, and why the
BigQuery query reads each line whole: docs/retraining.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..core import files
from ..core.errors import PipelineError
from .report import open_log
from .settings import MONITORING_SETTINGS, FetchSettings, load_monitoring_settings
from .sinks import COLUMNS, INSERT_PREDICTION, SCHEMA, compact

URL_VARIABLE = "PREDICTION_LOG_URL"
TABLE_VARIABLE = "BIGQUERY_TABLE"
SOURCES = ("auto", "url", "bigquery")
DOWNLOAD_TIMEOUT_SECONDS = 300
# Where gcloud (and so bq) finds credentials: google-github-actions/auth sets
# the first ones in CI; `gcloud auth login` writes the file on a machine.
CREDENTIAL_VARIABLES = (
    "CLOUDSDK_AUTH_CREDENTIAL_FILE_OVERRIDE",
    "CLOUDSDK_AUTH_ACCESS_TOKEN_FILE",
    "GOOGLE_APPLICATION_CREDENTIALS",
)
MAX_ROWS = 50_000_000
# The entry's timestamp in the log's time format (records.format_time).
TIME_FORMAT = "%Y-%m-%dT%H:%M:%E3S+00:00"
FEEDBACK_COLUMNS = ("request_id", "row", "outcome", "time")
JSON_COLUMNS = ("input", "prediction", "outcome")  # kept as JSON text in the log

Query = Callable[[str], list[dict[str, Any]]]


def chosen_source(source: str) -> str:
    """`auto`: url for the container target, bigquery for Cloud Run and Kubernetes."""
    if source != "auto":
        return source
    from ..release.settings import load_delivery_settings

    return "url" if load_delivery_settings().target == "container" else "bigquery"


def replace_log(out: Path, write: Callable[[Path], object]) -> None:
    """Write the new copy beside `out`, then put it in its place, the old WAL files removed
    first (SQLite would read them as the new file's). Never --out a running API's log."""

    def staged(target: Path) -> None:
        write(target)
        for suffix in ("-wal", "-shm"):
            out.with_name(out.name + suffix).unlink(missing_ok=True)

    files.write_atomically(out, staged)


def download(location: str, target: Path) -> None:
    """Copy the file at `location` (an http(s) or file:// URL, or a path) to `target`."""
    import httpx2

    parts = urllib.parse.urlsplit(location)
    if parts.scheme in ("http", "https"):
        shown = parts._replace(query="", fragment="").geturl()  # no signature in errors
        try:
            with (
                httpx2.stream(
                    "GET", location, timeout=DOWNLOAD_TIMEOUT_SECONDS, follow_redirects=True
                ) as response,
                target.open("wb") as stream,
            ):
                if response.is_error:
                    raise PipelineError(
                        f"{shown} answered {response.status_code}: check {URL_VARIABLE}."
                    )
                for chunk in response.iter_bytes():
                    stream.write(chunk)
        except (httpx2.HTTPError, OSError) as error:
            raise PipelineError(f"cannot download {shown}: {error}") from None
        return
    if len(parts.scheme) > 1 and parts.scheme != "file":  # one letter: a Windows drive
        raise PipelineError(
            f"{URL_VARIABLE}: {parts.scheme}:// is not read here: give an https URL (e.g. a "
            "pre-signed one), a file:// URL or a path."
        )
    local = Path(urllib.request.url2pathname(parts.path)) if parts.scheme else Path(location)
    if not local.is_file():
        raise PipelineError(f"{URL_VARIABLE}: {local} is not a file.")
    shutil.copyfile(local, target)


def fetch_copy(location: str | None, out: Path) -> None:
    location = location or os.environ.get(URL_VARIABLE)
    if not location:
        raise PipelineError(
            f"{URL_VARIABLE} is not set: the container target's log lives on the API's host; "
            "publish a copy and give its URL (a CI secret), or pass --source "
            "(docs/retraining.md)."
        )

    def write(target: Path) -> None:
        download(location, target)
        open_log(target).close()  # a prediction log, or a one-line error

    replace_log(out, write)


def bigquery_sql(table: str, kind: str, days: int) -> str:
    """The lines of one kind (`prediction` or `feedback`) of the last `days` days.

    Each line whole, as JSON text: a field no line has carried yet is no column
    of the sink's table, and naming it would fail. `time` is the entry's
    timestamp, into which Cloud Logging's agent lifts a line's `time` field.
    """
    return (
        f"SELECT TO_JSON_STRING(jsonPayload) AS `payload`, "
        f"FORMAT_TIMESTAMP('{TIME_FORMAT}', timestamp) AS `time` FROM `{table}` "
        f"WHERE jsonPayload.type = '{kind}' "
        f"AND timestamp >= TIMESTAMP_SUB(CURRENT_TIMESTAMP(), INTERVAL {int(days)} DAY)"
    )


def line_fields(row: dict[str, Any], columns: tuple[str, ...]) -> dict[str, Any]:
    """The fields of one line the query returned; `time` is the entry's when it was lifted."""
    try:
        payload = json.loads(row.get("payload") or "{}")
    except ValueError:
        raise PipelineError(f"BigQuery returned a line that is not JSON: {row!r:.200}") from None
    fields = {name: payload.get(name) for name in columns}
    if fields.get("time") is None:
        fields["time"] = row.get("time")
    return fields


def has_google_credentials() -> bool:
    if any(os.environ.get(name) for name in CREDENTIAL_VARIABLES):
        return True
    config = Path(os.environ.get("CLOUDSDK_CONFIG") or Path.home() / ".config" / "gcloud")
    return (config / "credentials.db").is_file()


def bq_query(sql: str) -> list[dict[str, Any]]:
    """Rows of a standard-SQL query, through `bq` (values come back as text)."""
    from ..release import external

    if shutil.which("bq") is None:
        raise PipelineError(
            "`bq` is not installed: the BigQuery window needs the Google Cloud CLI "
            "(google-github-actions/setup-gcloud in CI, https://cloud.google.com/sdk elsewhere)."
        )
    if not has_google_credentials():
        raise PipelineError(
            "no Google Cloud credentials: in CI the monitor workflow's keyless step "
            "(google-github-actions/auth) comes first; on a machine, `gcloud auth login`."
        )
    command = ["bq", "query", "--quiet", "--use_legacy_sql=false", "--format=json"]
    output = external.run(
        [*command, f"--max_rows={MAX_ROWS}", sql], "read the prediction log from BigQuery"
    )
    rows = json.loads(output or "[]")
    return rows if isinstance(rows, list) else []


def _typed(name: str, value: Any) -> Any:
    if value is None:
        return None
    if name in JSON_COLUMNS:
        return compact(value)
    if name in ("row", "status"):
        return int(value)
    if name in ("latency_ms", "probability"):
        return float(value)
    return str(value)


def write_sqlite(
    target: Path, predictions: list[dict[str, Any]], feedback: list[dict[str, Any]]
) -> None:
    """A SQLite prediction log (the sinks' schema) holding the given records."""
    connection = sqlite3.connect(target)
    try:
        for statement in SCHEMA:
            connection.execute(statement)
        connection.executemany(
            INSERT_PREDICTION,
            [tuple(_typed(name, row.get(name)) for name in COLUMNS) for row in predictions],
        )
        connection.executemany(
            "INSERT OR IGNORE INTO feedback (request_id, row, outcome, time) VALUES (?, ?, ?, ?)",
            [tuple(_typed(name, row.get(name)) for name in FEEDBACK_COLUMNS) for row in feedback],
        )
        connection.commit()
    finally:
        connection.close()


def bigquery_table(given: str | None, settings: FetchSettings) -> str:
    table = given or os.environ.get(TABLE_VARIABLE) or settings.bigquery_table
    if not table:
        raise PipelineError(
            f"no BigQuery table: set monitoring.yaml fetch_window.bigquery_table (or "
            f"{TABLE_VARIABLE}, or --table) to the one the Cloud Logging sink fills, "
            "project.dataset.table (docs/retraining.md)."
        )
    if table.count(".") != 2 or "`" in table:
        raise PipelineError(f"BigQuery table {table!r}: write it as project.dataset.table.")
    return table


def fetch_bigquery(table: str, days: int, out: Path, query: Query = bq_query) -> None:
    """The records of the last `days` days, written as a SQLite log."""
    predictions, feedback = (
        [line_fields(row, columns) for row in query(bigquery_sql(table, kind, days))]
        for kind, columns in (("prediction", COLUMNS), ("feedback", FEEDBACK_COLUMNS))
    )
    replace_log(out, lambda target: write_sqlite(target, predictions, feedback))


def count(out: Path, table: str) -> int:
    connection = sqlite3.connect(f"{out.resolve().as_uri()}?mode=ro", uri=True)
    try:
        return int(connection.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])
    except sqlite3.OperationalError:
        return 0
    finally:
        connection.close()


def run(
    source: str = "auto",
    location: str | None = None,
    table: str | None = None,
    days: int | None = None,
    out: Path | None = None,
    settings_path: Path = MONITORING_SETTINGS,
) -> Path:
    settings = load_monitoring_settings(settings_path)
    out = out or settings.prediction_log.path
    if chosen_source(source) == "url":
        fetch_copy(location, out)
        where = "the published copy"
    else:
        name = bigquery_table(table, settings.fetch_window)
        fetch_bigquery(name, days or settings.fetch_window.days, out)
        where = f"BigQuery {name}"
    print(
        f"fetch-window: {count(out, 'predictions'):,} predictions and "
        f"{count(out, 'feedback'):,} feedback from {where} -> {out}"
    )
    return out


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--from", dest="source", choices=SOURCES, default="auto",
        help="url (the container target's copy) or bigquery (Cloud Run, Kubernetes); auto: "
        "by deploy.yaml's delivery.target",
    )  # fmt: skip
    parser.add_argument(
        "--source", dest="location", help=f"the copy's URL or path (default: ${URL_VARIABLE})"
    )
    parser.add_argument("--table", help="project.dataset.table (fetch_window.bigquery_table)")
    parser.add_argument("--days", type=int, help="days back from now (fetch_window.days)")
    parser.add_argument("--out", type=Path, help="the SQLite file (prediction_log.path)")
