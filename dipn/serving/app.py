"""The FastAPI application: its routers, middlewares, error answers and lifespan.

Device routes (``routes.devices``): ``POST /devices`` (register a device's public key), ``POST
/scores`` (a signed batch of scores), ``GET /coupons/{id}`` (signed: the device's own user's
coupon). Operator routes (``routes.operators``; ``Authorization: Bearer`` admin token when one is
configured): ``GET|POST /campaigns``, ``GET|PATCH /campaigns/{id}``, ``POST
/campaigns/{id}/decisions``, ``POST /campaigns/{id}/orders``, ``GET /metrics/campaign/{id}``,
``GET /campaigns/{id}/report``, and the dashboard's HTML pages (``routes.dashboard``).
Every refusal is a 4xx with ``{"error": code, "detail": reason}`` and writes nothing (``refusals``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from dipn import wire
from dipn.errors import DipnValidationError
from dipn.serving import auth, openapi, store
from dipn.serving.config import (
    OPEN_ENROLLMENT_REFUSED,
    OPEN_ENROLLMENT_WARNING,
    OPEN_OPERATOR_ROUTES_REFUSED,
    ServerConfig,
)
from dipn.serving.db import make_engine
from dipn.serving.ingest import ScoreWriter
from dipn.serving.migrations import migrate, require_current
from dipn.serving.ratelimit import RateLimit
from dipn.serving.refusals import (
    HTTP_ERROR_CODES,
    REFUSALS,
    ApiError,
    describe_validation_error,
    error_response,
    refusal,
)
from dipn.serving.routes import dashboard, devices, operators

log = logging.getLogger(__name__)


class BodyLimit:
    """Pure ASGI middleware: 413 for a body over ``max_bytes``, declared or streamed; 408 for a body
    that has not fully arrived ``timeout_s`` after its request's head (a slow client)."""

    class TooLarge(Exception):
        pass

    class TimedOut(Exception):
        pass

    def __init__(self, app, config: ServerConfig) -> None:  # noqa: ANN001 (an ASGI app)
        self.app, self.config = app, config
        self.max_bytes, self.timeout_s = config.max_body_bytes, config.body_timeout_ms / 1000

    async def __call__(self, scope, receive, send) -> None:  # noqa: ANN001
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        for name, value in scope["headers"]:
            if name == b"content-length" and (not value.isdigit() or int(value) > self.max_bytes):
                return await self.refusal(BodyLimit.TooLarge(), self.config)(scope, receive, send)
        seen = 0
        started = False
        complete = False
        deadline = asyncio.get_running_loop().time() + self.timeout_s

        async def counting_receive():  # noqa: ANN202
            nonlocal seen, complete
            if complete:  # the body is in; the app waits for a disconnect: no deadline on that
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), max(0.0, deadline - asyncio.get_running_loop().time()))
            except TimeoutError:
                raise BodyLimit.TimedOut from None
            seen += len(message.get("body", b""))
            complete = message["type"] != "http.request" or not message.get("more_body", False)
            if seen > self.max_bytes:
                raise BodyLimit.TooLarge
            return message

        async def tracking_send(message) -> None:  # noqa: ANN001
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except (BodyLimit.TooLarge, BodyLimit.TimedOut) as exc:
            if not started:
                await self.refusal(exc, self.config)(scope, receive, send)

    @staticmethod
    def refusal(exc: Exception, config: ServerConfig) -> JSONResponse:
        """413 or 408, and close: the unread rest of the body would otherwise be taken for the next
        request, and a client reusing the connection would meet a reset instead of an answer."""
        if isinstance(exc, BodyLimit.TooLarge):
            response = error_response(413, "body_too_large", f"request body over {config.max_body_bytes} bytes")
        else:
            response = error_response(408, "request_timeout",
                                      f"the request body did not arrive within {config.body_timeout_ms / 1000:g} s")
        response.headers["connection"] = "close"
        return response


class HeaderLimit:
    """Pure ASGI middleware: the request line and headers together at most ``max_bytes`` (414 for
    a request line alone over it, 431 otherwise), at most ``max_headers`` headers. Under ``dipn
    serve`` the HTTP layer already refuses a head over ``max_bytes`` before buffering more
    (``protocol``); this holds the limits under any ASGI server, and counts the headers."""

    def __init__(self, app, max_headers: int, max_bytes: int) -> None:  # noqa: ANN001 (an ASGI app)
        self.app, self.max_headers, self.max_bytes = app, max_headers, max_bytes

    async def __call__(self, scope, receive, send) -> None:  # noqa: ANN001
        if scope["type"] == "http":
            headers = scope["headers"]
            # "METHOD TARGET HTTP/1.1\r\n": the target is the raw path and the query string
            line = len(scope["method"]) + len(scope.get("raw_path") or scope["path"].encode()) + len(
                scope["query_string"]) + 13  # fmt: skip
            size = line + sum(len(name) + len(value) + 4 for name, value in headers)
            if line > self.max_bytes:
                detail = f"the request line is {line} bytes; at most {self.max_bytes}"
                return await error_response(414, "uri_too_long", detail)(scope, receive, send)
            if len(headers) > self.max_headers or size > self.max_bytes:
                detail = f"at most {self.max_headers} headers and {self.max_bytes} bytes of request line and headers"
                return await error_response(431, "headers_too_large", detail)(scope, receive, send)
        return await self.app(scope, receive, send)


def create_app(config: ServerConfig | None = None, *, run_migrations: bool = False, announce: bool = True) -> FastAPI:
    """The app; it refuses to start (lifespan) without an admin token unless ``open_operator_routes``
    and without an enrollment token unless ``open_enrollment``; ``announce``: log the warnings of
    such a start (one worker of several says it once)."""
    config = config or ServerConfig()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if config.admin_token is None and not config.open_operator_routes:
            raise DipnValidationError(OPEN_OPERATOR_ROUTES_REFUSED)
        if config.enroll_token is None and not config.open_enrollment:
            raise DipnValidationError(OPEN_ENROLLMENT_REFUSED)
        engine = make_engine(config.db_url)
        if run_migrations:
            migrate(engine)
        require_current(engine)
        limit = RateLimit(config.rate_limit, config.rate_window_ms)
        writer = ScoreWriter(engine, max_batch=config.max_write_batch, nonce_ttl_ms=config.signature_window_ms,
                             rate_limit=limit)
        writer.start()
        app.state.engine, app.state.writer, app.state.devices = engine, writer, devices.DeviceCache(engine)
        app.state.rate_limit = limit
        if announce and config.admin_token is None:
            log.warning("no admin token (open_operator_routes): campaign, decision, order and metrics routes are open")
        if announce and config.enroll_token is None:
            log.warning(OPEN_ENROLLMENT_WARNING)
        try:
            yield
        finally:
            await run_in_threadpool(writer.stop)
            engine.dispose()

    # Operation ids are the handlers' names (create_campaign, post_scores): a generated client's
    # functions are named after them.
    app = FastAPI(title="dipn coupon endpoint", version="1", lifespan=lifespan, description=openapi.DESCRIPTION,
                  docs_url=None, redoc_url=None, generate_unique_id_function=lambda route: route.name)
    app.state.config = config
    app.state.accept_scores = devices.ScoreIntake(config)
    _install_error_handlers(app)
    for router in (devices.router, operators.router, dashboard.router):
        app.include_router(router)
    openapi.install(app)
    app.add_middleware(ScorePosts)
    app.add_middleware(BodyLimit, config=config)
    app.add_middleware(HeaderLimit, max_headers=config.max_headers, max_bytes=config.max_header_bytes)
    return app


def create_app_from_env() -> FastAPI:
    """For ``uvicorn --factory`` and multi-worker ``dipn serve``: settings from DIPN_* variables."""
    return create_app(ServerConfig.from_env())


class ScorePosts:
    """Pure ASGI middleware: ``POST /scores`` answered here, by the same handler as the route, but
    without Starlette's routing and FastAPI's request machinery around it.

    Score posts are nearly all the endpoint's traffic, and the profile of the server under
    benchmarks/endpoint_load.py showed about a third of a post's CPU in those layers (routing,
    exception middlewares, the dependency machinery, the response wrapper): on two cores shared
    with the load generator, CPU per post is what sets the queueing behind the p99. The route
    stays, for the OpenAPI document and for an app mounted without this middleware."""

    def __init__(self, app) -> None:  # noqa: ANN001 (an ASGI app)
        self.app = app

    async def __call__(self, scope, receive, send) -> None:  # noqa: ANN001
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] != wire.SCORES_PATH:
            return await self.app(scope, receive, send)
        chunks, more = [], True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        request = Request(scope, receive)
        try:
            response = await request.app.state.accept_scores(request, b"".join(chunks))
        except REFUSALS as exc:
            response = refusal(request, exc)
        await response(scope, receive, send)


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    @app.exception_handler(auth.AuthError)
    @app.exception_handler(store.StoreError)
    async def _refusal(request: Request, exc: ApiError) -> JSONResponse:
        return refusal(request, exc)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(422, "invalid_request", describe_validation_error(exc.errors()))

    @app.exception_handler(StarletteHTTPException)
    async def _routing(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        """Unknown paths, methods (CORS preflights included): the documented body, Allow kept. A body
        that broke a limit while FastAPI read it for a route's model comes here as a 400 "error
        parsing the body" caused by the limit: it gets the limit's own answer."""
        if isinstance(exc.__cause__, (BodyLimit.TooLarge, BodyLimit.TimedOut)):
            return BodyLimit.refusal(exc.__cause__, request.app.state.config)
        response = error_response(exc.status_code, HTTP_ERROR_CODES.get(exc.status_code, "http_error"), str(exc.detail))
        response.headers.update(exc.headers or {})
        return response
