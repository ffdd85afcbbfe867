"""The records of the prediction log: one per row of POST /predict, and one per feedback.

Built from the bodies as they passed, so the log holds exactly what was
answered or refused (fields: docs/monitoring.md, "The prediction log").
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, NamedTuple, cast

from ..serving.schema import encodable

# The statuses whose rows are logged: answered, or refused for what the caller
# sent (docs/monitoring.md); never 401, 503 (the caller retries) nor 5xx.
ANSWERED = 200
REFUSED = frozenset({400, 413, 415, 422})
LOGGED_STATUSES = frozenset({ANSWERED, *REFUSED})
# Refused before the body was read as rows: one record, its input not logged.
UNREAD_BODY = frozenset({413, 415})
# The rule of a row that met the contract in a request refused for other rows.
NOT_SCORED = "not scored: another row of the request was refused"
# input, prediction, probability of a record whose body was not read.
UNREAD = (None, None, None)


class JsonText(str):
    """The body of an answered one-row request (the commonest), logged as sent: neither
    parsed nor encoded again on the way to the log."""


class PredictionRecord(NamedTuple):
    """One row of one POST /predict request (a NamedTuple: cheap to build on every request)."""

    request_id: str
    row: int
    time: str
    model_version: str | None
    status: int
    latency_ms: float
    input: dict[str, Any] | JsonText | None
    prediction: Any
    probability: float | None
    refused_rule: str | None

    def as_json(self) -> dict[str, Any]:
        """The stdout line of this record (its fields, `type` first)."""
        fields = self._asdict()
        if isinstance(self.input, JsonText):
            fields["input"] = loads(self.input)
        return {"type": "prediction", **fields}


class FeedbackRecord(NamedTuple):
    """The true outcome of one logged row."""

    request_id: str
    row: int
    outcome: Any
    time: str

    def as_json(self) -> dict[str, Any]:
        return {"type": "feedback", **self._asdict()}


def utc_now() -> str:
    """Now, in the log's time format: ISO 8601 in UTC, to the millisecond (sorts as text)."""
    return format_time(datetime.now(UTC))


def format_time(moment: datetime) -> str:
    utc = moment if moment.tzinfo is UTC else moment.astimezone(UTC)
    return utc.isoformat(timespec="milliseconds")


def loads(text: str | bytes) -> Any:
    """JSON text decoded, a lone surrogate escaped in it ("\\ud800") made U+FFFD so that
    the log, the reports and the data files can write it; ValueError when not JSON."""
    try:
        value = json.loads(text)
    except RecursionError:
        raise ValueError("JSON nested too deeply to decode") from None
    escaped = b"\\" in text if isinstance(text, bytes) else "\\" in text
    return encodable_json(value) if escaped else value


def encodable_json(value: Any) -> Any:
    """A decoded JSON value with each text made encodable, changed in place, walked with a
    stack: a value as deep as the parser takes must not exhaust the recursion limit."""
    pending: list[Any] = []
    value = _encodable_item(value, pending)
    while pending:
        container = pending.pop()
        if isinstance(container, list):
            for index, item in enumerate(container):
                container[index] = _encodable_item(item, pending)
            continue
        items = list(container.items())
        container.clear()
        for key, item in items:
            container[encodable(key)] = _encodable_item(item, pending)
    return value


def _encodable_item(item: Any, pending: list[Any]) -> Any:
    """A text made encodable; a list or object queued to be walked; anything else as it is."""
    if isinstance(item, str):
        return encodable(item)
    if isinstance(item, dict | list):
        pending.append(item)
    return item


def _decode(body: bytes) -> Any:
    """A JSON body, or None when it is not JSON (the contract refused it: 400 or 422)."""
    try:
        return loads(body) if body else None
    except ValueError:  # UnicodeDecodeError included
        return None


def sent_rows(request: Any) -> tuple[list[Any], bool]:
    """The rows of a request body as sent, and whether it was a batch {"rows": [...]}; any
    other body is one row, logged with input null (its refusal still on record)."""
    if isinstance(request, dict):
        rows = request.get("rows")
        if isinstance(rows, list) and rows:
            return rows, True
        return [request], False
    return [None], False


def _location_text(location: list[Any]) -> str:
    return ".".join(str(part) for part in location) or "body"


def refused_rules(detail: Any, rows: int, batch: bool) -> list[str]:
    """The rule each row broke, from a 422 body in FastAPI's shape: an error located at
    `body.rows.<i>...` is row i's, any other error every row's."""
    own: list[list[str]] = [[] for _ in range(rows)]
    shared: list[str] = []
    errors = detail if isinstance(detail, list) else [{"loc": [], "msg": str(detail)}]
    for error in errors:
        if not isinstance(error, dict):
            continue
        location = list(error.get("loc") or [])
        if location[:1] == ["body"]:
            location = location[1:]
        message = str(error.get("msg", "refused"))
        if error.get("type") == "json_invalid":  # its location is a character position
            location = []
        row = location[1] if batch and len(location) >= 2 and location[0] == "rows" else None
        if isinstance(row, int) and 0 <= row < rows:
            field = _location_text(location[2:]) if len(location) > 2 else "row"
            own[row].append(f"{field}: {message}")
        else:
            shared.append(f"{_location_text(location)}: {message}")
    return ["; ".join(mine + shared) or NOT_SCORED for mine in own]


def without(row: Any, never_log: frozenset[str]) -> dict[str, Any] | None:
    """A row as sent, minus the columns that must never be logged; None when not an object."""
    if not isinstance(row, dict):
        return None
    if not never_log:
        return row
    return {name: value for name, value in row.items() if name not in never_log}


def prediction_records(
    request_id: str,
    time: str,
    status: int,
    latency_ms: float,
    request_body: bytes,
    response_body: bytes,
    never_log: frozenset[str] = frozenset(),
) -> list[PredictionRecord]:
    """The records of one POST /predict exchange; none for a status that is not about rows."""
    if status not in LOGGED_STATUSES:
        return []
    response = _decode(response_body)
    one = isinstance(response, dict) and "predictions" not in response
    if status == ANSWERED and one and not never_log:  # the commonest: one row, logged as sent
        try:
            sent = JsonText(request_body.decode("utf-8"))
        except UnicodeDecodeError:
            sent = None
        if sent is not None:
            got = cast(dict[str, Any], response).get
            return [
                PredictionRecord(
                    request_id, 0, time, got("model_version"), status, latency_ms, sent,
                    got("prediction"), got("probability"), None,
                )
            ]  # fmt: skip
    detail = response.get("detail") if isinstance(response, dict) else response
    if status in UNREAD_BODY:
        rule = refused_rules(detail, 1, batch=False)[0]
        return [PredictionRecord(request_id, 0, time, None, status, latency_ms, *UNREAD, rule)]
    rows, batch = sent_rows(_decode(request_body))
    inputs = [without(row, never_log) for row in rows]
    if status != ANSWERED:
        rules = refused_rules(detail, len(inputs), batch)
        return [
            PredictionRecord(request_id, n, time, None, status, latency_ms, sent, None, None, rule)
            for n, (sent, rule) in enumerate(zip(inputs, rules, strict=True))
        ]
    answers = response.get("predictions") if batch and isinstance(response, dict) else None
    answers = [response] if not batch else answers if isinstance(answers, list) else []
    return [
        PredictionRecord(
            request_id, row, time, got.get("model_version"), status, latency_ms, sent,
            got.get("prediction"), got.get("probability"), None,
        )
        for row, (sent, answer) in enumerate(zip(inputs, answers, strict=False))
        for got in [answer if isinstance(answer, dict) else {}]
    ]  # fmt: skip
