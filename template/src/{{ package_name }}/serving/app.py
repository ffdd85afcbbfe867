"""The model API (FastAPI): create_app() builds it from a model folder.

- GET /health: the process is alive (always 200);
- GET /ready: 200 once the model is loaded and has answered its examples,
  503 before (loading) or if loading failed;
- GET /version: the model folder's metadata.json;
- POST /predict: one row, or {"rows": [...]} with up to
  `serving.max_batch_rows` rows; each answer carries the prediction, the
  probability of the positive class and the model version;
- /docs and /openapi.json: the request schema, built from the data contract
  in the model folder (see schema.py).

The folder is checked (metadata, libraries, checksums) when the app is
created, so a bad folder stops the server at start with a one-line error; the
model itself loads in a background thread, so /health answers at once and
/ready tells when predictions can be served.

When the environment variable named by `serving.token_env` (default
MODEL_API_TOKEN) is set, /predict needs `Authorization: Bearer <token>`;
/health, /ready and /version stay open (probes and deploy checks need them).
Bodies over `serving.max_body_bytes` get 413 before they are parsed.

When the package has a `monitoring` sub-package (level 4), create_app ends
by calling its `api.install(app, state, settings)`: it adds its routes and
middleware, its start and stop steps to `app.state.startup` and
`app.state.shutdown` (run by the lifespan), and callables to
`app.state.probe_details` whose dicts /health and /ready show under
`details`. Without it, the API is level 3's, unchanged.

This module deliberately has no `from __future__ import annotations`: FastAPI
reads the endpoint annotations, and the request types are built at run time.
"""

import hmac
import importlib
import importlib.util
import logging
import threading
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

from .model_folder import ModelFolder, ServingModel, open_model_folder
from .settings import ServingSettings, load_serving_settings

LOGGER = logging.getLogger("uvicorn.error")
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
PACKAGE = __name__.split(".")[0]
# Each API process logs this line once its model is loaded: a local server with
# several workers is ready when every worker has (one /ready 200 is one worker).
MODEL_LOADED = "model loaded:"


class ModelState:
    """The model of one API process: loaded once, in a background thread."""

    def __init__(self, folder: ModelFolder) -> None:
        self.folder = folder
        self.model: ServingModel | None = None
        self.error: str | None = None
        self.loaded = threading.Event()
        self._thread = threading.Thread(target=self._load, name="model-loader", daemon=True)

    def start_loading(self) -> None:
        if self._thread.ident is None:  # not started yet
            self._thread.start()

    def _load(self) -> None:
        try:
            self.model = self.folder.load()
            LOGGER.info(
                "%s version %s, from %s", MODEL_LOADED, self.model.version, self.folder.path
            )
        except Exception as error:  # reported by /ready and the log, with its traceback
            self.error = " ".join(str(error).split()) or type(error).__name__
            LOGGER.exception("loading the model from %s failed", self.folder.path)
        finally:
            self.loaded.set()

    def wait(self, timeout: float) -> bool:
        """Wait for loading to end; True when the model is ready."""
        self.start_loading()
        self.loaded.wait(timeout)
        return self.model is not None


class BodyLimit:
    """Answer 413 to a request body over max_bytes, before anything parses it.

    The declared Content-Length is checked first; a body sent without one
    (chunked) is counted as it arrives. Nothing larger is ever buffered.
    """

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] not in BODY_METHODS:
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        too_large = declared is not None and (
            not declared.isdigit() or int(declared) > self.max_bytes
        )
        body, more = b"", not too_large
        while more:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            body += message.get("body", b"")
            too_large = len(body) > self.max_bytes
            more = message.get("more_body", False) and not too_large
        if too_large:
            from fastapi.responses import JSONResponse

            detail = f"request body larger than {self.max_bytes} bytes: send fewer rows a request"
            await JSONResponse({"detail": detail}, status_code=413)(scope, receive, send)
            return
        replayed = False

        async def replay() -> Any:
            nonlocal replayed
            if replayed:
                return await receive()  # after the body: wait for the disconnect
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


def _message_model() -> Any:
    from pydantic import create_model

    return create_model("Message", detail=(str, ...))


def _status_model(with_details: bool) -> Any:
    from pydantic import create_model

    fields: dict[str, Any] = {
        "status": (str, ...),
        "model_version": (str | None, None),
        "fast_path": (bool | None, None),
        "detail": (str | None, None),
    }
    if with_details:  # what installed parts report (level 4: the prediction log)
        fields["details"] = (dict[str, Any] | None, None)
    return create_model("Status", **fields)


def create_app(model_dir: Path | None = None, settings: ServingSettings | None = None) -> Any:
    """The API for the model folder `model_dir` (default: deploy.yaml / MODEL_DIR)."""
    from fastapi import FastAPI

    settings = settings or load_serving_settings()
    folder = open_model_folder(Path(model_dir) if model_dir else settings.model_dir)
    state = ModelState(folder)
    monitoring = _monitoring_api()

    @asynccontextmanager
    async def lifespan(app: Any) -> Any:
        state.start_loading()
        for start in app.state.startup:
            start()
        try:
            yield
        finally:
            for stop in reversed(app.state.shutdown):
                stop()

    app = FastAPI(
        title=f"{folder.metadata['name']} model API",
        version=folder.version,
        description=(
            f"Predicts `{folder.metadata['target']}` with model version {folder.version}. "
            "The request schema is the data contract the model was trained under."
        ),
        lifespan=lifespan,
        redoc_url=None,
    )
    app.state.model = state
    app.state.startup, app.state.shutdown, app.state.probe_details = [], [], []
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    _add_validation_handler(app)
    _add_probes(app, state, with_details=monitoring is not None)
    _add_predict(app, state, settings)
    if monitoring is not None:
        monitoring.install(app, state, settings)
    return app


def _monitoring_api() -> Any:
    """Level 4's `monitoring.api` when the package has it, else None (level 3).

    See docs/monitoring.md.
    """
    name = f"{PACKAGE}.monitoring"
    if importlib.util.find_spec(name) is None:
        return None
    return importlib.import_module(f"{name}.api")


def _probe_details(app: Any) -> dict[str, Any] | None:
    """What the installed parts report in /health and /ready (None: nothing installed)."""
    details: dict[str, Any] = {}
    for part in app.state.probe_details:
        details.update(part())
    return details or None


def _add_validation_handler(app: Any) -> None:
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse

    from .schema import error_details

    async def invalid_request(request: Any, error: RequestValidationError) -> Any:
        content_type = request.headers.get("content-type", "")
        if request.method in BODY_METHODS and "json" not in content_type.lower():
            # FastAPI does not parse such a body as JSON, then reports a puzzling type error.
            detail = "send the rows as JSON, with the header `Content-Type: application/json`"
            return JSONResponse({"detail": detail}, status_code=415)
        return JSONResponse({"detail": error_details(list(error.errors()))}, status_code=422)

    app.add_exception_handler(RequestValidationError, invalid_request)


def _add_probes(app: Any, state: ModelState, with_details: bool) -> None:
    from fastapi.responses import JSONResponse

    status_model = _status_model(with_details)

    @app.get(
        "/health",
        response_model=status_model,
        response_model_exclude_none=True,
        summary="The process is alive",
    )
    async def health() -> Any:
        return {"status": "alive", "details": _probe_details(app)}

    @app.get(
        "/ready",
        response_model=status_model,
        response_model_exclude_none=True,
        summary="The model is loaded and answers",
        responses={503: {"model": status_model, "description": "loading, or loading failed"}},
    )
    async def ready() -> Any:
        details = _probe_details(app)  # a failing part is reported, never "not ready"
        if state.model is not None:
            return {
                "status": "ready",
                "model_version": state.model.version,
                "fast_path": state.folder.fast,
                "details": details,
            }
        status = "failed" if state.error else "loading"
        answer = {"status": status, "detail": state.error}
        return JSONResponse(answer | ({"details": details} if details else {}), status_code=503)

    @app.get("/version", response_model=dict[str, Any], summary="The model's metadata.json")
    async def version() -> Any:
        return state.folder.metadata


def _token_check(settings: ServingSettings) -> list[Any]:
    """The dependency that demands the bearer token, when one is configured."""
    from fastapi import Depends, HTTPException
    from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

    token = settings.token
    if token is None:
        return []
    bearer = HTTPBearer(
        auto_error=False, description=f"the value of the {settings.token_env} variable"
    )
    expected = token.encode()

    def require_token(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> None:
        given = credentials.credentials.encode() if credentials else b""
        if not hmac.compare_digest(given, expected):
            raise HTTPException(
                status_code=401,
                detail="missing or wrong token: send `Authorization: Bearer <token>`",
                headers={"WWW-Authenticate": "Bearer"},
            )

    return [Depends(require_token)]


def _add_predict(app: Any, state: ModelState, settings: ServingSettings) -> None:
    from fastapi import Body
    from fastapi.concurrency import run_in_threadpool
    from fastapi.responses import JSONResponse

    from .fast_path import RowsRejected
    from .schema import (
        build_answer_models,
        build_batch_model,
        build_body_type,
        build_row_model,
    )

    folder = state.folder
    row_model = build_row_model(folder.features, settings.number_limit)
    batch_model = build_batch_model(row_model, settings.max_batch_rows)
    body_type = build_body_type(row_model, batch_model)
    prediction, predictions = build_answer_models(folder.classes)
    message = _message_model()
    responses: dict[int | str, Any] = {
        400: {"model": message, "description": "the body is not readable JSON"},
        413: {"model": message, "description": "the body is over the size limit"},
        415: {"model": message, "description": "the body is not sent as JSON"},
        503: {"model": message, "description": "the model is not loaded yet"},
    }
    if settings.token:
        responses[401] = {"model": message, "description": "missing or wrong bearer token"}

    async def predict(body: Annotated[body_type, Body()]) -> Any:  # type: ignore[valid-type]
        model = state.model
        if model is None:
            return JSONResponse(
                {"detail": "the model is not loaded yet: retry when /ready answers 200"},
                status_code=503,
                headers={"Retry-After": "1"},
            )
        batch = isinstance(body, batch_model)
        received: Any = body  # a class built from the contract at start-up
        rows = [row.model_dump(by_alias=True) for row in (received.rows if batch else [body])]
        try:
            if state.folder.fast:  # microseconds: not worth a thread hop
                answers = model.answers(rows)
            else:
                answers = await run_in_threadpool(model.answers, rows)
        except RowsRejected as rejected:
            return JSONResponse(_rejection(rejected, batch), status_code=422)
        return {"predictions": answers} if batch else answers[0]

    app.post(
        "/predict",
        response_model=prediction | predictions,
        summary="Predict one row, or a batch {'rows': [...]}",
        responses=responses,
        dependencies=_token_check(settings),
    )(predict)


def _rejection(rejected: Any, batch: bool) -> dict[str, Any]:
    """A 422 body in FastAPI's shape for rows the model itself cannot score."""
    field = [] if rejected.field == "row" else [rejected.field]
    locations = (
        [["body", "rows", row, *field] for row in rejected.rows] if batch else [["body", *field]]
    )
    return {
        "detail": [
            {"loc": location, "msg": rejected.problem, "type": "value_error"}
            for location in locations
        ]
    }
