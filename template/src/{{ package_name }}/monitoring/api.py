"""Level 4 in the API process: `install` adds the prediction log, /feedback and /metrics.

serving/app.py calls `install(app, state, settings)` when this folder exists;
what each part does and guarantees: docs/monitoring.md. No `from __future__
import annotations`: FastAPI reads the endpoint annotations, and the feedback
type is built at run time.
"""

import hmac
import logging
import os
from pathlib import Path
from time import perf_counter, time
from typing import Annotated, Any

from ..core.canvas import Canvas, ColumnRule, load_canvas
from ..core.errors import PipelineError
from ..serving.model_folder import METADATA_FILE, ModelFolder
from ..serving.schema import Feature, encodable, field_type
from ..serving.settings import ServingSettings
from .intake import Exchange, Intake
from .log import PredictionLog, describe
from .settings import MonitoringSettings, load_monitoring_settings
from .sinks import DuplicateFeedback, Sink, UnknownPrediction, open_sink

LOGGER = logging.getLogger("uvicorn.error")
PREDICT_PATH = "/predict"
FEEDBACK_PATH = "/feedback"
METRICS_PATH = "/metrics"
OTHER_HANDLER = "other"  # any path the API does not serve (kept out of the labels)
REQUEST_ID_HEADER = b"x-request-id"
REQUEST_ID_PATTERN = "^[0-9a-f]{32}$"
CANVAS_FILE = Path("canvas.yaml")


def canvas_of(folder: ModelFolder) -> Canvas | None:
    """The canvas the model was exported under: its metadata.json (the image has no
    canvas.yaml), else canvas.yaml, else None."""
    try:
        return _canvas_of_metadata(folder.metadata, folder.path / METADATA_FILE)
    except (PipelineError, KeyError, TypeError, ValueError):
        pass
    try:
        return load_canvas(CANVAS_FILE)
    except PipelineError:
        return None


def _canvas_of_metadata(metadata: dict[str, Any], source: Path) -> Canvas:
    recorded = {key: metadata.get(key) for key in Canvas.model_fields}
    return Canvas.validated({**recorded, "prediction_target": metadata.get("target")}, source)


class Monitoring:
    """The intake, the prediction log and the metrics of one API process, from `start`
    (the lifespan start-up: uvicorn's parent process builds the app only to check it)."""

    def __init__(
        self,
        settings: MonitoringSettings,
        folder: ModelFolder,
        sink: Sink,
        app: Any,
        token: str | None = None,
    ) -> None:
        self.settings = settings
        self.folder = folder
        self.token = None if token is None else token.encode()
        self.log = PredictionLog(sink, settings.prediction_log)
        self.intake = Intake(self.log, frozenset(settings.prediction_log.never_log))
        self.metrics: Any = None  # an ApiMetrics once started
        self.canvas = canvas_of(folder)
        self.started = False
        self._app = app
        self.handlers: frozenset[str] = frozenset()

    def start(self) -> None:
        """At lifespan start-up, in the serving process: metrics, then the threads."""
        from .metrics import ApiMetrics

        self.handlers = frozenset(getattr(route, "path", "") for route in self._app.routes)
        self.metrics = ApiMetrics(
            model_name=str(self.folder.metadata["name"]),
            model_version=self.folder.version,
            canvas=self.canvas,
            settings=self.settings.metrics,
            live_rows=self.log.live_rows,
            log_health=self.log.health,
        )
        self.log.metrics = self.intake.metrics = self.metrics
        self.log.start()
        self.intake.start()
        self.started = True

    def stop(self) -> None:
        """At lifespan shutdown: record what is queued, then write every buffered row."""
        self.started = False
        self.intake.close()
        self.log.close()

    def flush(self, timeout: float) -> bool:
        """Record what is queued and write it; True when written within timeout."""
        self.intake.drain()
        return self.log.flush(timeout)

    def add_feedback(self, request_id: str, row: int, outcome: Any) -> None:
        self.intake.drain()  # an answer just sent is a record first
        self.log.add_feedback(request_id, row, outcome)

    def probe_details(self) -> dict[str, Any]:
        return {"prediction_log": self.log.health()}

    def authorized(self, headers: list[tuple[bytes, bytes]]) -> bool:
        """Whether a request carries the API's bearer token, as serving/app.py checks it
        (always true without a token): a request without it is counted, never logged."""
        if self.token is None:
            return True
        for name, value in headers:
            if name == b"authorization":
                scheme, _, credentials = value.decode("latin-1").partition(" ")
                given = credentials.encode()
                return scheme.lower() == "bearer" and hmac.compare_digest(given, self.token)
        return False

    def handler(self, path: str) -> str:
        return path if path in self.handlers else OTHER_HANDLER

    def observe_request(self, path: str, method: str, status: int, seconds: float) -> None:
        if self.metrics is None or path == METRICS_PATH:
            return
        try:
            self.metrics.observe_request(self.handler(path), method, status, seconds)
        except Exception:  # the metrics must never fail a request
            LOGGER.exception("metrics: observing a request failed")


def new_request_id() -> str:
    """A random UUID (version 4) in hex, made without uuid.UUID's checks: one a request."""
    raw = bytearray(os.urandom(16))
    raw[6] = raw[6] & 0x0F | 0x40  # version 4
    raw[8] = raw[8] & 0x3F | 0x80  # RFC 4122 variant
    return raw.hex()


class ObservedRequests:
    """Time and count every request; queue every POST /predict, its bodies as they passed,
    for the intake (pure ASGI: it runs on every request, without a task of its own)."""

    def __init__(self, app: Any, monitoring: Monitoring) -> None:
        self.app = app
        self.monitoring = monitoring

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
        elif scope["method"] == "POST" and scope["path"] == PREDICT_PATH:
            await self._predict(scope, receive, send)
        else:
            await self._timed(scope, receive, send)

    async def _timed(self, scope: Any, receive: Any, send: Any) -> None:
        start = perf_counter()
        status = 500  # unless an answer starts: an exception becomes a 500

        async def send_seen(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_seen)
        finally:
            self.monitoring.observe_request(
                scope["path"], scope["method"], status, perf_counter() - start
            )

    async def _predict(self, scope: Any, receive: Any, send: Any) -> None:
        if not self.monitoring.started:
            await self.app(scope, receive, send)
            return
        start = perf_counter()
        request_id = new_request_id()
        header = (REQUEST_ID_HEADER, request_id.encode())
        sent: list[bytes] = []
        answered: list[bytes] = []
        status = 500
        finished = 0.0

        async def receive_kept() -> Any:
            message = await receive()
            if message["type"] == "http.request":
                sent.append(message.get("body", b""))
            return message

        async def send_kept(message: Any) -> None:
            nonlocal status, finished
            if message["type"] == "http.response.start":
                status = message["status"]
                message = {**message, "headers": [*message.get("headers", ()), header]}
            elif message["type"] == "http.response.body":
                answered.append(message.get("body", b""))
                if not message.get("more_body", False):
                    finished = perf_counter()
            await send(message)

        try:
            await self.app(scope, receive_kept, send_kept)
        finally:
            seconds = (finished or perf_counter()) - start
            if self.monitoring.authorized(scope["headers"]):
                exchange = Exchange(request_id, time(), status, seconds, sent, answered)
                self.monitoring.intake.add(exchange)
            else:  # counted, never logged
                self.monitoring.observe_request(PREDICT_PATH, "POST", status, seconds)


# --- POST /feedback ----------------------------------------------------------------------


def target_feature(folder: ModelFolder) -> Feature:
    """The target's contract rule, required (no null outcome); the classes when it has none."""
    target = str(folder.metadata["target"])
    raw = (folder.metadata.get("data_contract") or {}).get("columns", {}).get(target)
    if isinstance(raw, dict):
        source = f"{folder.path / METADATA_FILE} (data_contract.columns.{target})"
        rule = ColumnRule.validated(raw, source)
    else:
        words = all(isinstance(c, str) for c in folder.classes)
        rule = ColumnRule(type="category" if words else "int", allowed=folder.classes)
    return Feature(target, "target", rule.model_copy(update={"max_missing": 0.0}))


def _whole_number(value: Any) -> Any:
    """1.0 as 1: JSON Schema counts it as an integer, and the schema says integer."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def build_feedback_model(folder: ModelFolder, settings: ServingSettings) -> Any:
    from pydantic import BeforeValidator, ConfigDict, Field, create_model

    target = target_feature(folder)
    return create_model(
        "Feedback",
        __config__=ConfigDict(extra="forbid", strict=True),
        request_id=(
            Annotated[str, Field(pattern=REQUEST_ID_PATTERN)],
            Field(..., description="the X-Request-ID header of the /predict answer"),
        ),
        row=(
            Annotated[
                int, Field(ge=0, le=settings.max_batch_rows - 1), BeforeValidator(_whole_number)
            ],
            Field(0, description="the row's index in its request (0 for a single row)"),
        ),
        outcome=(
            field_type(target, settings.number_limit),
            Field(..., description=f"the true `{target.name}`, as the data contract has it"),
        ),
    )


def _shown(part: Any) -> Any:
    return encodable(part) if isinstance(part, str) else part


def _problems(errors: Any) -> list[dict[str, Any]]:
    """pydantic's errors as a 422 body, texts made encodable (a lone surrogate sent in a
    field name must not turn the 422 into a 500)."""
    return [
        {
            "loc": [_shown(part) for part in error.get("loc", ())],
            "msg": encodable(str(error.get("msg"))),
            "type": error.get("type"),
        }
        for error in errors
    ]


def _feedback_route_class() -> Any:
    """A route whose 422 keeps pydantic's locations: the app's handler drops a part named
    `row` (the tag of /predict's one-row body), a field of the feedback body."""
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse
    from fastapi.routing import APIRoute

    class FeedbackRoute(APIRoute):
        def get_route_handler(self) -> Any:
            handler = super().get_route_handler()

            async def handle(request: Any) -> Any:
                try:
                    return await handler(request)
                except RequestValidationError as error:
                    if "json" not in request.headers.get("content-type", "").lower():
                        raise  # the app's handler answers 415
                    return JSONResponse({"detail": _problems(error.errors())}, status_code=422)

            return handle

    return FeedbackRoute


def _add_feedback(app: Any, monitoring: Monitoring, settings: ServingSettings) -> None:
    from fastapi import Body
    from fastapi.responses import JSONResponse
    from pydantic import create_model

    from ..serving.app import _message_model, _token_check

    feedback_model = build_feedback_model(monitoring.folder, settings)
    recorded = create_model("Recorded", status=(str, ...))
    message = _message_model()
    responses: dict[int | str, Any] = {
        400: {"model": message, "description": "the body is not readable JSON"},
        404: {"model": message, "description": "no prediction logged for this id and row"},
        409: {"model": message, "description": "this row already has its feedback"},
        413: {"model": message, "description": "the body is over the size limit"},
        415: {"model": message, "description": "the body is not sent as JSON"},
        503: {"model": message, "description": "the prediction log cannot be written now"},
    }
    if settings.token:
        responses[401] = {"model": message, "description": "missing or wrong bearer token"}

    def feedback(body: Annotated[feedback_model, Body()]) -> Any:  # type: ignore[valid-type]
        received: Any = body  # a class built from the contract at start-up
        try:
            monitoring.add_feedback(received.request_id, received.row, received.outcome)
        except UnknownPrediction as error:
            return JSONResponse({"detail": str(error)}, status_code=404)
        except DuplicateFeedback as error:
            return JSONResponse({"detail": str(error)}, status_code=409)
        except Exception as error:  # the sink is down: say so, the caller retries
            detail = f"the prediction log cannot record feedback now ({describe(error)})"
            LOGGER.warning("feedback: %s", detail)
            return JSONResponse(
                {"detail": f"{detail}: retry later"}, status_code=503, headers={"Retry-After": "5"}
            )
        if monitoring.metrics is not None:
            monitoring.metrics.observe_feedback()
        return {"status": "recorded"}

    app.router.add_api_route(
        FEEDBACK_PATH,
        feedback,
        methods=["POST"],
        status_code=201,
        response_model=recorded,
        summary="Record the true outcome of a logged prediction",
        responses=responses,
        dependencies=_token_check(settings),
        route_class_override=_feedback_route_class(),
    )


# --- GET /metrics ------------------------------------------------------------------------


def _add_metrics(app: Any, monitoring: Monitoring) -> None:
    from fastapi.responses import PlainTextResponse, Response

    def metrics() -> Any:  # a thread: the live metric reads the log
        if monitoring.metrics is None:
            return PlainTextResponse("", status_code=503)
        monitoring.intake.drain()  # this process's answers so far are all counted
        body, content_type = monitoring.metrics.render()
        return Response(content=body, media_type=content_type)

    app.get(
        METRICS_PATH,
        response_class=PlainTextResponse,
        summary="Prometheus metrics (text format)",
        responses={503: {"description": "the server is starting"}},
    )(metrics)


# --- the hook ----------------------------------------------------------------------------


def install(app: Any, state: Any, settings: ServingSettings) -> Monitoring:
    """Add level 4 to the API `create_app` built (state: its ModelState)."""
    monitoring_settings = load_monitoring_settings()
    sink = open_sink(monitoring_settings.prediction_log)  # a bad `module:factory` fails here
    monitoring = Monitoring(monitoring_settings, state.folder, sink, app, settings.token)
    if monitoring.canvas is None:
        raise PipelineError(
            f"{state.folder.path / METADATA_FILE} records no success metric and "
            f"{CANVAS_FILE} is missing: the metrics need one; export the model again."
        )
    _add_feedback(app, monitoring, settings)
    _add_metrics(app, monitoring)
    app.add_middleware(ObservedRequests, monitoring=monitoring)
    app.state.monitoring = monitoring
    app.state.probe_details.append(monitoring.probe_details)
    app.state.startup.append(monitoring.start)
    app.state.shutdown.append(monitoring.stop)
    return monitoring
