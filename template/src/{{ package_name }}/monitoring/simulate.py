"""Command `simulate`: traffic for demos and tests, with feedback and drift on demand.

    uv run <package> simulate                                # 1000 rows to deploy.yaml's API
    uv run <package> simulate --start --rows 5000            # a local server, started and stopped
    uv run <package> simulate --shift radius=+0.5 --shift clinic=west:0.2

Sends rows of a labelled CSV or Parquet file (default: the test split) to
POST /predict, in turn and cycling, from --concurrency clients over
keep-alive connections, --batch rows a request. For --feedback-share of the
answered rows it then sends the true outcome (the file's target column) to
POST /feedback with the request id of the `X-Request-ID` answer header,
--feedback-delay seconds later: outcomes come after the prediction, and the
prediction log writes its rows in batches (`prediction_log.flush_seconds`).

--shift changes the rows before they are sent, to make drift to detect:
`column=+0.25` adds 0.25 standard deviations of the column (of the file) to
every value; `column=value:0.10` gives `value` to 10 % of the rows sent,
chosen at random (--seed) among the rows with another value. Rows that leave
the data contract are refused by the API, as real drifted rows would be.

Standard library HTTP (http.client), so it runs wherever the package does.
"""

from __future__ import annotations

import argparse
import heapq
import http.client
import json
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core import files, paths
from ..core.commands import positive_int
from ..core.errors import PipelineError
from ..serving.client import LocalServer, add_target_arguments, join, parse_url, request, wait_ready
from ..serving.settings import ServingSettings, load_serving_settings

if TYPE_CHECKING:
    import urllib.parse

    import numpy as np
    import pandas as pd

    from ..serving.schema import Feature

REQUEST_ID_HEADER = "x-request-id"
# A 404 to feedback may mean the log has not written the prediction yet: retry.
FEEDBACK_ATTEMPTS = 4
REQUEST_TIMEOUT = 30.0
DATA_HINT = "write the test split with the pipeline (`uv run poe pipeline`) or pass --data"


# --- Options -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Shift:
    """One --shift: `column=+0.25` (standard deviations) or `column=value:0.10` (share)."""

    column: str
    deviations: float | None = None
    value: str | None = None
    share: float | None = None

    @property
    def numeric(self) -> bool:
        return self.deviations is not None


def parse_shift(text: str) -> Shift:
    """argparse type of --shift; a malformed one is a usage error naming both forms."""
    usage = "use column=+0.25 (standard deviations) or column=value:0.10 (a share of the rows)"
    column, equals, change = text.partition("=")
    if not equals or not column.strip() or not change.strip():
        raise argparse.ArgumentTypeError(f"{text!r}: {usage}")
    column, change = column.strip(), change.strip()
    if ":" not in change:
        try:
            return Shift(column, deviations=float(change))
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r}: {usage}") from None
    value, _, share_text = change.rpartition(":")
    try:
        share_value = float(share_text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: {usage}") from None
    if not value or not 0 < share_value <= 1:
        raise argparse.ArgumentTypeError(f"{text!r}: the share must be above 0 and at most 1")
    return Shift(column, value=value, share=share_value)


def seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more (got {text})")
    return value


def share(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1 (got {value:g})")
    return value


@dataclass(frozen=True)
class Traffic:
    """What to send and how: the command's options but the API and the data."""

    rows: int = 1000
    concurrency: int = 4
    batch: int = 1
    feedback_share: float = 0.3
    feedback_delay: float = 1.0
    shifts: tuple[Shift, ...] = ()
    seed: int = 0


def default_url(settings: ServingSettings) -> str:
    """deploy.yaml's serving address; a server listening on all addresses is reached locally."""
    host = {"0.0.0.0": "127.0.0.1", "::": "[::1]", "": "127.0.0.1"}.get(
        settings.host, settings.host
    )
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{settings.port}"


# --- Rows --------------------------------------------------------------------------------------


def cycled(frame: pd.DataFrame, rows: int) -> pd.DataFrame:
    """`rows` rows of the frame, in order, starting over at its end."""
    import numpy as np

    return frame.iloc[np.arange(rows) % len(frame)].reset_index(drop=True)


def apply_shifts(
    frame: pd.DataFrame,
    shifts: list[Shift] | tuple[Shift, ...],
    reference: pd.DataFrame,
    rng: np.random.Generator,
    whole_columns: frozenset[str] = frozenset(),
) -> pd.DataFrame:
    """The rows with each shift applied; deviations are those of `reference` (the whole file).

    Columns in `whole_columns` (int in the data contract) are rounded after a
    numeric shift, so that the API still reads them as whole numbers.
    """
    shifted = frame.copy()
    for shift in shifts:
        if shift.column not in shifted.columns:
            raise PipelineError(f"--shift {shift.column}: the data has no column {shift.column}.")
        if shift.numeric:
            shifted[shift.column] = _numeric_shift(shift, shifted, reference, whole_columns)
        else:
            shifted[shift.column] = _category_shift(shift, shifted, rng)
    return shifted


def _numeric_shift(
    shift: Shift, frame: pd.DataFrame, reference: pd.DataFrame, whole_columns: frozenset[str]
) -> pd.Series:
    import pandas as pd

    column = shift.column
    if not pd.api.types.is_numeric_dtype(reference[column]):
        raise PipelineError(
            f"--shift {column}=...: {column} is not numeric; move a share of its rows to a "
            f"value instead: --shift {column}=VALUE:0.10"
        )
    spread = float(reference[column].std())
    if not spread > 0:
        raise PipelineError(f"--shift {column}: the column does not vary: it has no deviation.")
    assert shift.deviations is not None
    values = frame[column] + shift.deviations * spread
    return values.round() if column in whole_columns else values


def _category_shift(shift: Shift, frame: pd.DataFrame, rng: np.random.Generator) -> pd.Series:
    import pandas as pd

    column, values = shift.column, frame[shift.column].copy()
    target: Any = shift.value
    if pd.api.types.is_numeric_dtype(values):  # a category coded as numbers
        try:
            target = float(shift.value or "")
        except ValueError:
            raise PipelineError(
                f"--shift {column}={shift.value}:...: {column} holds numbers, not {shift.value!r}"
            ) from None
    assert shift.share is not None
    others = (values != target).to_numpy().nonzero()[0]
    count = min(len(others), round(shift.share * len(values)))
    chosen = rng.choice(others, size=count, replace=False)
    values = values.astype(object)
    values.iloc[chosen] = target
    return values


def plain(value: Any) -> Any:
    """A cell as JSON carries it: whole floats become ints (a CSV with gaps reads ints so)."""
    if value is None or value != value:
        return None
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def request_rows(frame: pd.DataFrame, features: list[Feature]) -> list[dict[str, Any]]:
    """The rows as the API takes them: its features only, typed, no nulls (an absent field)."""
    from ..serving.score import feature_rows

    rows, _ = feature_rows(frame, features)
    return [{name: value for name, value in row.items() if value is not None} for row in rows]


# --- HTTP --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    status: int
    request_id: str | None
    body: Any


class Connection:
    """One keep-alive HTTP/1.1 connection to the API, reopened when the server closed it."""

    def __init__(self, url: str, token: str | None) -> None:
        self.parts: urllib.parse.SplitResult = parse_url(url)
        self.headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if token:
            self.headers["Authorization"] = f"Bearer {token}"
        self._http: http.client.HTTPConnection | None = None
        self._used = False

    def _open(self) -> http.client.HTTPConnection:
        host, port = self.parts.hostname or "127.0.0.1", self.parts.port
        if self.parts.scheme == "https":
            return http.client.HTTPSConnection(host, port, timeout=REQUEST_TIMEOUT)
        return http.client.HTTPConnection(host, port, timeout=REQUEST_TIMEOUT)

    def post(self, route: str, body: Any) -> Reply:
        """POST a JSON body; a connection the server closed between requests is retried once."""
        payload = json.dumps(body).encode()
        path = join(self.parts.path, route)
        for attempt in (1, 2):
            reused = self._used
            try:
                return self._post(path, payload)
            except (OSError, http.client.HTTPException):
                self.close()
                if not reused or attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _post(self, path: str, payload: bytes) -> Reply:
        if self._http is None:
            self._http = self._open()
            self._used = False
        self._http.request("POST", path, body=payload, headers=self.headers)
        response = self._http.getresponse()
        raw = response.read()
        self._used = True
        if response.will_close:
            self.close()
        text = raw.decode("utf-8", errors="replace")
        try:
            decoded: Any = json.loads(text)
        except json.JSONDecodeError:
            decoded = text
        return Reply(response.status, response.getheader(REQUEST_ID_HEADER), decoded)

    def close(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None
        self._used = False


# --- The simulation ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Batch:
    first: int  # position of its first row in the rows sent
    rows: list[dict[str, Any]]
    single: bool  # sent as one row object, not {"rows": [...]}

    @property
    def body(self) -> Any:
        return self.rows[0] if self.single else {"rows": self.rows}


@dataclass(order=True)
class Feedback:
    due: float
    request_id: str = field(compare=False)
    row: int = field(compare=False)
    outcome: Any = field(compare=False)
    attempts: int = field(default=0, compare=False)

    @property
    def body(self) -> dict[str, Any]:
        return {"request_id": self.request_id, "row": self.row, "outcome": self.outcome}


@dataclass
class Summary:
    url: str
    concurrency: int
    batch: int
    sent: int = 0
    requests: int = 0
    answered: int = 0
    refused: int = 0
    errors: int = 0
    failed_requests: int = 0
    feedback_sent: int = 0
    feedback_recorded: int = 0
    seconds: float = 0.0  # until the last answer to /predict
    total_seconds: float = 0.0  # until the last feedback
    first_error: str | None = None

    @property
    def rows_per_second(self) -> float:
        return self.sent / self.seconds if self.seconds else 0.0

    def lines(self) -> list[str]:
        return [
            f"simulate: sent {self.sent:,} rows in {self.requests:,} requests to {self.url} "
            f"(concurrency {self.concurrency}, batch {self.batch})",
            f"simulate: answered {self.answered:,}, refused {self.refused:,}, "
            f"errors {self.errors:,}",
            f"simulate: feedback sent {self.feedback_sent:,}, recorded {self.feedback_recorded:,}",
            f"simulate: {self.rows_per_second:,.1f} rows/s ({self.seconds:.2f} s; "
            f"{self.total_seconds:.2f} s with the last feedback)",
        ]


class Simulation:
    """Batches sent by worker threads; feedback queued for later, as outcomes arrive later.

    Feedback goes to exactly floor(share x answered rows) rows: every answered
    row adds `share` to a running quota, and a row gets feedback when the
    quota passes the next whole number.
    """

    def __init__(
        self,
        url: str,
        settings: ServingSettings,
        batches: list[Batch],
        outcomes: list[Any],
        traffic: Traffic,
        summary: Summary,
    ) -> None:
        self.url = url
        self.token = settings.token
        self.token_env = settings.token_env
        self.batches = batches
        self.outcomes = outcomes
        self.feedback_share = traffic.feedback_share
        self.feedback_delay = traffic.feedback_delay
        self.summary = summary
        self._next_batch = 0
        self._answered_rows = 0
        self._feedback_chosen = 0
        self._feedback: list[Feedback] = []
        self._lock = threading.Lock()
        self.started = time.perf_counter()

    def probe(self, connection: Connection) -> None:
        """Send the first batch alone: a wrong token or a level-3 API fails here, clearly."""
        batch = self._take_batch()
        if batch is None:
            return
        try:
            reply = connection.post("/predict", batch.body)
        except (OSError, http.client.HTTPException) as error:
            raise PipelineError(f"cannot reach {self.url}: {error}") from None
        if reply.status == 401:
            raise PipelineError(_token_problem(self.token, self.token_env))
        if reply.status == 404:
            raise PipelineError(f"{self.url} has no POST /predict: it is not a model API.")
        if reply.status == 200 and self.feedback_share > 0 and not reply.request_id:
            raise PipelineError(
                f"{self.url} answers without an X-Request-ID header, so no feedback can be "
                "sent: it is not a level-4 API (monitoring); pass --feedback-share 0."
            )
        self._record(batch, reply)

    def work(self) -> None:
        """One client: send batches until none is left, sending due feedback in between."""
        connection = Connection(self.url, self.token)
        try:
            while (batch := self._take_batch()) is not None:
                self._send(connection, batch)
                self._send_feedback(connection, wait=False)
            self._send_feedback(connection, wait=True)
        finally:
            connection.close()

    def _take_batch(self) -> Batch | None:
        with self._lock:
            if self._next_batch >= len(self.batches):
                return None
            self._next_batch += 1
            return self.batches[self._next_batch - 1]

    def _send(self, connection: Connection, batch: Batch) -> None:
        try:
            reply = connection.post("/predict", batch.body)
        except (OSError, http.client.HTTPException) as error:
            reply = Reply(0, None, f"no answer: {error}")
        self._record(batch, reply)

    def _record(self, batch: Batch, reply: Reply) -> None:
        count = len(batch.rows)
        with self._lock:
            summary = self.summary
            summary.seconds = time.perf_counter() - self.started
            summary.sent += count
            summary.requests += 1
            if reply.status == 200:
                summary.answered += count
                self._choose_feedback(batch, reply.request_id)
            elif reply.status == 422:
                summary.refused += count
            else:
                summary.errors += count
                summary.failed_requests += 1
                if summary.first_error is None:
                    summary.first_error = f"{reply.status or 'no answer'}: {str(reply.body)[:200]}"

    def _choose_feedback(self, batch: Batch, request_id: str | None) -> None:
        """Under the lock: queue feedback for the answered rows the quota selects."""
        due = time.monotonic() + self.feedback_delay
        for row in range(len(batch.rows)):
            self._answered_rows += 1
            quota = int(self._answered_rows * self.feedback_share + 1e-9)
            outcome = self.outcomes[batch.first + row]
            if quota > self._feedback_chosen and request_id and outcome is not None:
                self._feedback_chosen += 1
                heapq.heappush(self._feedback, Feedback(due, request_id, row, outcome))

    def _due_feedback(self, wait: bool) -> Feedback | None:
        """The next feedback due now; with wait, sleep until one is due (None when none is left)."""
        while True:
            with self._lock:
                if not self._feedback:
                    return None
                delay = self._feedback[0].due - time.monotonic()
                if delay <= 0:
                    return heapq.heappop(self._feedback)
            if not wait:
                return None
            time.sleep(min(delay, 0.1))

    def _send_feedback(self, connection: Connection, wait: bool) -> None:
        while (item := self._due_feedback(wait)) is not None:
            try:
                reply = connection.post("/feedback", item.body)
            except (OSError, http.client.HTTPException) as error:
                reply = Reply(0, None, f"no answer: {error}")
            item.attempts += 1
            with self._lock:
                if item.attempts == 1:
                    self.summary.feedback_sent += 1
                if reply.status == 201:
                    self.summary.feedback_recorded += 1
                elif reply.status == 404 and item.attempts < FEEDBACK_ATTEMPTS:
                    item.due = time.monotonic() + max(self.feedback_delay, 0.2)
                    heapq.heappush(self._feedback, item)
                elif self.summary.first_error is None:
                    self.summary.first_error = (
                        f"feedback {reply.status or 'no answer'}: {str(reply.body)[:200]}"
                    )


def _token_problem(token: str | None, variable: str) -> str:
    if token is None:
        return f"the API wants a token (401): set {variable} to the API's token."
    return f"the API refused the token in {variable} (401): set it to the API's token."


def simulate(
    url: str,
    settings: ServingSettings,
    batches: list[Batch],
    outcomes: list[Any],
    traffic: Traffic,
) -> Summary:
    """Send every batch (the first alone, as a probe), then the feedback still due."""
    summary = Summary(url, traffic.concurrency, traffic.batch)
    simulation = Simulation(url, settings, batches, outcomes, traffic, summary)
    probe = Connection(url, settings.token)
    try:
        simulation.probe(probe)
    finally:
        probe.close()
    workers = [
        threading.Thread(target=simulation.work, name=f"simulate-{n}", daemon=True)
        for n in range(traffic.concurrency)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    summary.total_seconds = time.perf_counter() - simulation.started
    return summary


# --- The command -------------------------------------------------------------------------------


def reach(url: str, timeout: float) -> None:
    """Fail at once when nothing listens at url; wait up to `timeout` while it starts."""
    try:
        request(join(url, "/ready"))
    except PipelineError as error:
        raise PipelineError(
            f"{error}: start the API (`uv run poe serve`), pass --url, or use --start."
        ) from None
    wait_ready(url, timeout)


def api_features(url: str) -> tuple[list[Feature], str]:
    """The model's features and target, from the API's own /version (any deployed API)."""
    from ..serving.model_folder import read_features

    answer = request(join(url, "/version"))
    if answer.status != 200 or not isinstance(answer.body, dict):
        raise PipelineError(f"{url}/version answered {answer.status}: it is not a model API.")
    return read_features(answer.body, Path("/version")), str(answer.body.get("target"))


def prepare(
    data: Path, features: list[Feature], target: str, traffic: Traffic
) -> tuple[list[Batch], list[Any]]:
    """The batches to send and the true outcome of each row sent (None when unknown)."""
    import numpy as np

    from ..serving.score import read_table

    files.require_file(data, DATA_HINT)
    frame = read_table(data)
    if frame.empty:
        raise PipelineError(f"{data} has no rows: {DATA_HINT}.")
    missing = [feature.name for feature in features if feature.name not in frame.columns]
    if missing:
        raise PipelineError(f"{data} lacks the model's features {', '.join(missing)}.")
    if traffic.feedback_share > 0 and target not in frame.columns:
        raise PipelineError(
            f"{data} has no column {target} (the target): feedback needs the true outcomes; "
            "pass a labelled file, or --feedback-share 0."
        )
    whole = frozenset(f.name for f in features if f.rule.type == "int")
    rng = np.random.default_rng(traffic.seed)
    sent = apply_shifts(cycled(frame, traffic.rows), traffic.shifts, frame, rng, whole)
    payloads = request_rows(sent, features)
    outcomes = [plain(v) for v in sent[target].tolist()] if target in sent else [None] * len(sent)
    size = traffic.batch
    batches = [
        Batch(first, payloads[first : first + size], single=size == 1)
        for first in range(0, len(payloads), size)
    ]
    return batches, outcomes


def run(
    url: str | None = None,
    start: bool = False,
    model_dir: Path | None = None,
    data: Path = paths.TEST_DATA,
    timeout: float = 30.0,
    rows: int = 1000,
    concurrency: int = 4,
    batch: int = 1,
    feedback_share: float = 0.3,
    feedback_delay: float = 1.0,
    shift: list[Shift] | None = None,
    seed: int = 0,
) -> Summary:
    settings = load_serving_settings()
    traffic = Traffic(
        rows, concurrency, batch, feedback_share, feedback_delay, tuple(shift or ()), seed
    )
    if start:
        with LocalServer(model_dir or settings.model_dir, timeout=timeout) as server:
            print(f"simulate: local server ready in {server.start_seconds:.2f} s at {server.url}")
            return send_traffic(server.url, settings, data, timeout, traffic)
    return send_traffic(url or default_url(settings), settings, data, timeout, traffic)


def send_traffic(
    url: str, settings: ServingSettings, data: Path, timeout: float, traffic: Traffic
) -> Summary:
    """Check the API, send the traffic, print the summary; fail when a request failed."""
    parse_url(url)
    reach(url, timeout)
    features, target = api_features(url)
    batches, outcomes = prepare(data, features, target, traffic)
    summary = simulate(url, settings, batches, outcomes, traffic)
    for line in summary.lines():
        print(line)
    if summary.errors:
        raise PipelineError(
            f"simulate: {summary.failed_requests} of {summary.requests} requests failed "
            f"(first: {summary.first_error}): check the server's log."
        )
    return summary


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_target_arguments(parser)
    parser.add_argument("--rows", type=positive_int, default=1000, help="rows to send (1000)")
    parser.add_argument("--concurrency", type=positive_int, default=4, help="clients (4)")
    parser.add_argument("--batch", type=positive_int, default=1, help="rows a request (1)")
    parser.add_argument(
        "--feedback-share", type=share, default=0.3,
        help="share of the answered rows given their true outcome by POST /feedback (0.3)",
    )  # fmt: skip
    parser.add_argument(
        "--feedback-delay", type=seconds, default=1.0,
        help="seconds between an answer and its feedback (1)",
    )  # fmt: skip
    parser.add_argument(
        "--shift", type=parse_shift, action="append", metavar="COLUMN=CHANGE",
        help="drift: column=+0.25 (standard deviations) or column=value:0.10 (share); repeatable",
    )  # fmt: skip
    parser.add_argument("--seed", type=int, default=0, help="seed of the shifts' choices (0)")
