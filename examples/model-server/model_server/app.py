"""The reference model server: FastAPI app served by uvicorn (one worker).

    /health   200 as soon as the process serves HTTP (liveness)
    /ready    503 until the model is loaded, then 200 (readiness)
    /predict  POST {"instances": [[sepal_len, sepal_wid, petal_len, petal_wid], ...]}
    /metrics  Prometheus text format (names in model_server.metrics)

Run: uvicorn model_server.app:app --host 127.0.0.1 --port 8080   (or python -m model_server)
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from . import metrics
from .config import FaultInjector, Settings
from .model import EXAMPLE_ROW, FEATURE_NAMES, Model

log = logging.getLogger("uvicorn.error")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

MAX_INSTANCES = 1000


#: One instance: the model's features, in the data set's order.
Row = Annotated[
    list[float],
    Field(
        min_length=len(FEATURE_NAMES),
        max_length=len(FEATURE_NAMES),
        description="the features, in this order: " + ", ".join(FEATURE_NAMES),
    ),
]


class PredictRequest(BaseModel):
    """The body of /predict; its OpenAPI schema carries the row width and a valid example, so
    a client generated from /openapi.json sends rows the model takes."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"instances": [list(EXAMPLE_ROW)]}]})

    instances: list[Row] = Field(min_length=1, max_length=MAX_INSTANCES)


@dataclass
class State:
    settings: Settings
    faults: FaultInjector
    model: Model | None = None
    load_error: str | None = None
    loader: asyncio.Task[None] | None = field(default=None, repr=False)


class MetricsMiddleware:
    """Times every HTTP request and counts it by route and final status code.

    Plain ASGI (no BaseHTTPMiddleware), so it adds little to each request. The time runs from
    the app receiving the request until the response body has been handed to the server.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        route = metrics.route_label(scope["path"])
        is_predict = route == metrics.PREDICT_ROUTE
        status = 500  # if the app raises before answering, the error handler answers 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        start = time.perf_counter()
        if is_predict:
            metrics.inflight.inc()
        try:
            await self.app(scope, receive, send_status)
        finally:
            elapsed = time.perf_counter() - start
            if is_predict:
                metrics.inflight.dec()
            metrics.request_duration.labels(route, str(status)).observe(elapsed)
            metrics.requests.labels(route, str(status)).inc()


async def _load(state: State) -> None:
    s = state.settings
    if s.load_gate:
        log.info("model: waiting for gate file %s", s.load_gate)
        while not os.path.exists(s.load_gate):
            await asyncio.sleep(0.05)
    if s.load_delay_s > 0:
        await asyncio.sleep(s.load_delay_s)
    t0 = time.perf_counter()
    try:
        # Loading the data and fitting: off the event loop, so /health answers meanwhile.
        model = await asyncio.to_thread(Model)
    except Exception as exc:
        state.load_error = f"{type(exc).__name__}: {exc}"
        log.exception("model: loading failed")
        return
    state.model = model
    metrics.loaded.set(1)
    log.info(
        "model: %s %s loaded in %.2fs (held-out accuracy %.3f)",
        s.model_id,
        s.model_version,
        time.perf_counter() - t0,
        model.test_accuracy,
    )


def create_app(settings: Settings | None = None) -> FastAPI:
    s = settings or Settings.from_env()
    state = State(settings=s, faults=FaultInjector(s))
    metrics.info.info({"model_id": s.model_id, "model_version": s.model_version})
    metrics.loaded.set(0)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        state.loader = asyncio.create_task(_load(state))
        try:
            yield
        finally:
            state.loader.cancel()

    app = FastAPI(title="servestack reference model server", lifespan=lifespan)
    app.state.model_server = state

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/ready")
    async def ready() -> JSONResponse:
        if state.model is not None:
            body: dict[str, Any] = {
                "status": "ready",
                "model_id": s.model_id,
                "model_version": s.model_version,
                "test_accuracy": state.model.test_accuracy,
            }
            return JSONResponse(body)
        if state.load_error is not None:
            return JSONResponse({"status": "failed", "error": state.load_error}, 503)
        return JSONResponse({"status": "loading"}, 503)

    @app.post("/predict")
    async def predict(req: PredictRequest) -> JSONResponse:
        model = state.model
        if model is None:
            return JSONResponse({"error": "model not loaded"}, 503)
        bad = [i for i, row in enumerate(req.instances) if len(row) != model.n_features]
        if bad:
            return JSONResponse(
                {"error": f"instances {bad[:10]} do not have {model.n_features} features"}, 422
            )
        fail, delay = state.faults.next()
        if delay > 0:
            await asyncio.sleep(delay)
        if fail:
            return JSONResponse({"error": "injected fault (MODEL_SERVER_ERROR_RATE)"}, 500)
        classes, proba = model.predict(req.instances)
        return JSONResponse(
            {
                "predictions": classes,
                "labels": [model.class_names[c] for c in classes],
                "probabilities": proba,
                "model_id": s.model_id,
                "model_version": s.model_version,
            }
        )

    @app.get("/metrics")
    async def metrics_endpoint() -> Response:
        return Response(metrics.exposition(), media_type=metrics.CONTENT_TYPE)

    app.add_middleware(MetricsMiddleware)
    return app


app = create_app()
