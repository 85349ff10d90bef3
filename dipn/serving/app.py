"""The FastAPI application: routes, request checks and error answers.

Device routes: ``POST /devices`` (register a device's public key), ``POST /scores`` (a signed
batch of scores), ``GET /coupons/{id}`` (signed: the device's own user's coupon). Operator routes (``Authorization: Bearer`` admin token when one
is configured): ``GET|POST /campaigns``, ``GET|PATCH /campaigns/{id}``, ``POST
/campaigns/{id}/decisions``, ``POST /campaigns/{id}/orders``, ``GET /metrics/campaign/{id}``,
``GET /campaigns/{id}/report``, and the dashboard's HTML pages (``dashboard``).
Every refusal is a 4xx with ``{"error": code, "detail": reason}`` and writes nothing.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict
from typing import Annotated

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from fastapi import Depends, FastAPI, Path, Request, Security
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import TypeAdapter, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from dipn import wire
from dipn.errors import DipnValidationError
from dipn.serving import auth, dashboard, openapi, ratelimit, report, store
from dipn.serving.config import (
    OPEN_ENROLLMENT_REFUSED,
    OPEN_ENROLLMENT_WARNING,
    OPEN_OPERATOR_ROUTES_REFUSED,
    ServerConfig,
)
from dipn.serving.db import make_engine
from dipn.serving.ingest import ScorePost, ScoreWriter
from dipn.serving.metrics import campaign_report
from dipn.serving.migrations import LATEST, migrate, require_current
from dipn.serving.ratelimit import RateLimit
from dipn.serving.schemas import (
    CampaignIn,
    CampaignList,
    CampaignOut,
    CampaignPatch,
    CouponOut,
    DecisionOut,
    DecisionRequest,
    DeviceRegistered,
    MetricsOut,
    OrderIn,
    OrderRecorded,
    RegisterDevice,
    ReportOut,
    ScoreBatch,
    ScoresAccepted,
)

log = logging.getLogger(__name__)
_score_batch = TypeAdapter(ScoreBatch)
# Ids are 64-bit in the database; a larger one in a URL is a 422, not a driver overflow (a 500).
CampaignId = Annotated[int, Path(ge=1, le=2**63 - 1)]


def _inline_refs(schema: dict) -> dict:
    """A JSON schema with its ``$defs`` written in place (for an OpenAPI request body)."""
    defs = schema.pop("$defs", {})

    def resolve(node):  # noqa: ANN001, ANN202 (any JSON value)
        if isinstance(node, dict):
            if "$ref" in node:
                return resolve(defs[node["$ref"].rsplit("/", 1)[-1]])
            return {k: resolve(v) for k, v in node.items()}
        return [resolve(v) for v in node] if isinstance(node, list) else node

    return resolve(schema)


# The signed routes read their headers themselves (auth.parse_signed_headers); the document
# declares them as one security requirement of four headers (``openapi``).
SIGNED_OPENAPI = {"security": openapi.SIGNED_SECURITY}
# /scores reads its raw body (the signature covers the exact bytes), so FastAPI cannot derive the
# body's schema; it is declared here for the OpenAPI document (and the schema-driven fuzzer).
SCORES_OPENAPI = SIGNED_OPENAPI | {"requestBody": {"required": True, "content": {"application/json": {
    "schema": _inline_refs(_score_batch.json_schema())}}}}


HTTP_ERROR_CODES = {404: "not_found", 405: "method_not_allowed"}


class ApiError(Exception):
    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail = status, code, detail


def error_response(status: int, code: str, detail: str) -> JSONResponse:
    return JSONResponse({"error": code, "detail": detail}, status_code=status)


def describe_validation_error(errors: list[dict]) -> str:
    """'scores.3.p_realtime: Input should be less than or equal to 1' for each error."""
    parts = []
    for error in errors[:10]:
        location = ".".join(str(part) for part in error["loc"] if part != "body")
        parts.append(f"{location or 'body'}: {error['msg']}")
    return "; ".join(parts)


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


class DeviceCache:
    """device_id -> (device, its parsed public key); devices never change, so entries never go stale.
    The key is parsed once: parsing it on every request cost as much as a tenth of the verification."""

    def __init__(self, engine, capacity: int = 200_000) -> None:  # noqa: ANN001
        self.engine, self.capacity = engine, capacity
        self._entries: OrderedDict[str, tuple[store.DeviceAuth, Ed25519PublicKey]] = OrderedDict()

    async def get(self, device_id: str) -> tuple[store.DeviceAuth, Ed25519PublicKey] | None:
        """The registered device with a key (None: unknown, or registered before devices had keys)."""
        entry = self._entries.get(device_id)
        if entry is not None:
            self._entries.move_to_end(device_id)
            return entry
        device = await run_in_threadpool(store.find_device, self.engine, device_id)
        if device is None or device.public_key is None:
            return None
        entry = self._entries[device_id] = (device, auth.parse_public_key(device.public_key))
        if len(self._entries) > self.capacity:
            self._entries.popitem(last=False)
        return entry


def signed_target(scope: dict) -> str:
    """The request target a device signed: the path as sent and, if any, "?" and the query."""
    path = (scope.get("raw_path") or scope["path"].encode()).decode("latin-1")
    return wire.request_target(path, scope["query_string"].decode("latin-1"))


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
        app.state.engine, app.state.writer, app.state.devices = engine, writer, DeviceCache(engine)
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
    _install_error_handlers(app)
    _add_device_routes(app, config)
    _add_operator_routes(app, config)
    openapi.install(app)
    app.add_middleware(ScorePosts)
    app.add_middleware(BodyLimit, config=config)
    app.add_middleware(HeaderLimit, max_headers=config.max_headers, max_bytes=config.max_header_bytes)
    return app


def create_app_from_env() -> FastAPI:
    """For ``uvicorn --factory`` and multi-worker ``dipn serve``: settings from DIPN_* variables."""
    return create_app(ServerConfig.from_env())


REFUSALS = (ApiError, auth.AuthError, store.StoreError)


def refusal(request: Request, exc: ApiError | auth.AuthError | store.StoreError) -> JSONResponse:
    """The answer to a refused request: its status and error body (``Retry-After`` with a 429)."""
    response = error_response(exc.status, exc.code, exc.detail)
    if exc.status == 429:
        response.headers["retry-after"] = str(request.app.state.rate_limit.retry_after_s(wire.now_ms()))
    return response


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


def _add_device_routes(app: FastAPI, config: ServerConfig) -> None:
    @app.get("/healthz")
    def healthz() -> dict:
        return {"status": "ok", "schema_version": LATEST}

    @app.post(wire.DEVICES_PATH, status_code=201, response_model=DeviceRegistered,
              dependencies=[Security(openapi.enrollment_token)],
              responses=openapi.errors({401: "`missing_token`: no `Authorization: Bearer <enrollment token>`",
                                        403: "`bad_token`: not the enrollment token",
                                        422: "`invalid_request`: user_id, platform or public_key"}))
    def register(body: RegisterDevice, request: Request) -> dict:
        """Register a device's Ed25519 public key for a user: only the enrollment token's holder
        (the app backend, which has logged the user in) may say which user a device acts for."""
        auth.check_bearer(request.headers.get("authorization"), config.enroll_token, "enrollment")
        try:
            auth.parse_public_key(body.public_key)
        except ValueError as exc:
            raise ApiError(422, "invalid_request", f"public_key: {exc}") from exc
        device = store.register_device(request.app.state.engine, body.user_id, body.platform, body.public_key,
                                       wire.now_ms())  # fmt: skip
        return {"device_id": device.device_id, "user_id": device.user_id}

    async def authenticate(request: Request, body: bytes) -> tuple[store.DeviceAuth, auth.SignedHeaders, int]:
        """The registered device that signed this request, its signed headers and the time now."""
        signed = auth.parse_signed_headers(request.headers)
        received_ms = wire.now_ms()
        auth.check_fresh(signed.timestamp_ms, received_ms, config.signature_window_ms)
        entry = await request.app.state.devices.get(signed.device_id)
        if entry is None:
            raise auth.AuthError(401, "unknown_device", f"device {signed.device_id} is not registered (with a key)")
        device, public_key = entry
        auth.check_signature(public_key, request.method, signed_target(request.scope), signed, body)
        return device, signed, received_ms

    async def admit(request: Request, device: store.DeviceAuth, signed: auth.SignedHeaders, received_ms: int) -> None:
        """Claim the request's nonce and count it (a request that writes no scores); 409 or 429."""
        limit = request.app.state.rate_limit
        admitted = await run_in_threadpool(ratelimit.admit_request, request.app.state.engine, device.device_id,
                                           signed.nonce, received_ms, limit)  # fmt: skip
        if admitted == "replay":
            raise auth.AuthError(409, "replay", f"nonce {signed.nonce} was already used by this device")
        if admitted == "rate_limited":
            raise ApiError(429, "rate_limited", f"over {limit.requests} signed requests per {limit.window_ms} ms")

    @app.get("/coupons/{campaign_id}", response_model=CouponOut, openapi_extra=SIGNED_OPENAPI,
             responses=openapi.errors(openapi.SIGNED_REFUSALS | {404: "`unknown_campaign`",
                                                                 422: "`invalid_request`: the campaign id"}))
    async def my_coupon(campaign_id: CampaignId, request: Request) -> dict:
        """The signing device's own user's coupon: no parameter can name another user."""
        device, signed, received_ms = await authenticate(request, await request.body())
        await admit(request, device, signed, received_ms)
        return await run_in_threadpool(store.coupon_of, request.app.state.engine, campaign_id, device.user_id)

    @app.post(wire.SCORES_PATH, response_model=ScoresAccepted, openapi_extra=SCORES_OPENAPI,
              responses=openapi.errors(openapi.SIGNED_REFUSALS | {
                  403: "`device_mismatch`: a score names another device than the signer",
                  413: "`body_too_large`: over 64 KiB; `too_many_scores`: over 256 scores",
                  422: "`invalid_scores`: the detail names each refused score, `scores.<index>.<field>: <reason>`",
                  503: "`storage_unavailable`: nothing was stored; retry"}))
    async def post_scores(request: Request) -> JSONResponse:
        """A signed batch of scores; 200 only once the batch is committed (durable)."""
        return await accept_scores(request, await request.body())

    async def accept_scores(request: Request, body: bytes) -> JSONResponse:
        """The route's handler, shared with the ``ScorePosts`` middleware that serves it."""
        device, signed, received_ms = await authenticate(request, body)
        try:
            batch = _parse_scores(body, device.device_id, config.max_scores_per_post,
                                  latest_ts=received_ms + config.signature_window_ms)
        except ApiError:  # refused, but authenticated: it uses its nonce and counts against the limit
            await admit(request, device, signed, received_ms)
            raise
        post = ScorePost(device.device_id, device.user_id, signed.nonce, batch, received_ms)
        try:
            result = await asyncio.wrap_future(request.app.state.writer.submit(post))
        except Exception as exc:  # noqa: BLE001 (storage down: nothing was acknowledged)
            raise ApiError(503, "storage_unavailable", f"scores not stored, retry: {exc.__class__.__name__}") from exc
        if result.replay:
            raise auth.AuthError(409, "replay", f"nonce {signed.nonce} was already used by this device")
        if result.rate_limited:
            limit = request.app.state.rate_limit
            raise ApiError(429, "rate_limited", f"over {limit.requests} signed requests per {limit.window_ms} ms")
        return JSONResponse({"accepted": result.accepted, "duplicates": result.duplicates})

    app.state.accept_scores = accept_scores


def _parse_scores(body: bytes, device_id: str, max_scores: int, latest_ts: int) -> list[dict]:
    try:
        batch = _score_batch.validate_json(body)
    except ValidationError as exc:
        raise ApiError(422, "invalid_scores", describe_validation_error(exc.errors())) from exc
    if len(batch.scores) > max_scores:
        raise ApiError(413, "too_many_scores", f"{len(batch.scores)} scores in one post; at most {max_scores}")
    rows = []
    for index, score in enumerate(batch.scores):
        if score.device_id != device_id:
            raise ApiError(403, "device_mismatch", f"scores.{index}.device_id is not the signing device")
        if score.ts > latest_ts:  # a future ts would stay the user's "latest" score
            raise ApiError(422, "invalid_scores", f"scores.{index}.ts is in the future by more than the clock window")
        rows.append(score.model_dump(exclude={"device_id"}))
    return rows


def campaign_out(campaign_id: int, config, now_ms: int, created_ms: int | None = None) -> dict:  # noqa: ANN001
    """A campaign as the read API gives it: its status and its band in probability terms."""
    band = {"t_l": config.t_l, "t_u": config.t_u, "kind": (config.band or {}).get("kind", "probability"),
            "statement": config.band}
    return {"id": campaign_id, "name": config.name, "status": report.status_of(config, now_ms),
            "created_ms": created_ms, "band": band, "config": asdict(config)}


def _add_operator_routes(app: FastAPI, config: ServerConfig) -> None:
    def admin(request: Request, _scheme: Annotated[object, Security(openapi.operator_token)]) -> None:
        """The operator token (``Security``: the document's ``operatorToken`` scheme, which adds the
        401 and 403 answers to every route that depends on this)."""
        auth.check_bearer(request.headers.get("authorization"), config.admin_token, "admin")

    def engine_of(request: Request):  # noqa: ANN202
        return request.app.state.engine

    @app.post("/campaigns", status_code=201, response_model=CampaignOut, dependencies=[Depends(admin)])
    def create_campaign(body: CampaignIn, request: Request) -> dict:
        try:
            config = body.to_config()
        except ValueError as exc:
            raise ApiError(422, "invalid_request", f"body: {exc}") from exc
        now = wire.now_ms()
        campaign_id, stored = store.create_campaign(engine_of(request), config, now)
        return campaign_out(campaign_id, stored, now, now)

    @app.get("/campaigns", response_model=CampaignList, dependencies=[Depends(admin)])
    def list_campaigns(request: Request) -> dict:
        now = wire.now_ms()
        campaigns = store.list_campaigns(engine_of(request))
        return {"campaigns": [campaign_out(i, c, now, created) for i, created, c in campaigns]}

    @app.get("/campaigns/{campaign_id}", response_model=CampaignOut, dependencies=[Depends(admin)])
    def get_campaign(campaign_id: CampaignId, request: Request) -> dict:
        return campaign_out(campaign_id, store.get_campaign(engine_of(request), campaign_id), wire.now_ms())

    @app.patch("/campaigns/{campaign_id}", response_model=CampaignOut, dependencies=[Depends(admin)],
               responses=openapi.errors({409: "`budget_below_reserved`: a bucket has already reserved more than "
                                              "the new budget gives it"}))
    def patch_campaign(campaign_id: CampaignId, body: CampaignPatch, request: Request) -> dict:
        changes = body.changes()
        if not changes:
            raise ApiError(422, "invalid_request", "nothing to change")
        now = wire.now_ms()
        return campaign_out(campaign_id, store.update_campaign(engine_of(request), campaign_id, changes, now), now)

    @app.post("/campaigns/{campaign_id}/decisions", response_model=DecisionOut, dependencies=[Depends(admin)])
    def decide(campaign_id: CampaignId, body: DecisionRequest, request: Request) -> dict:
        return store.decide_coupon(engine_of(request), campaign_id, body.user_id, wire.now_ms())

    @app.post("/campaigns/{campaign_id}/orders", status_code=201, response_model=OrderRecorded,
              dependencies=[Depends(admin)], responses={200: {"model": OrderRecorded, "description": "the same order "
                                                              "again (an idempotent retry): `duplicate` is true"}}
              | openapi.errors({409: "`order_conflict` (the order id with other content), `no_coupon`, "
                                     "`coupon_already_used`, `coupon_expired`"}))
    def record_order(campaign_id: CampaignId, body: OrderIn, request: Request) -> JSONResponse:
        recorded = store.record_order(engine_of(request), campaign_id, body.model_dump(), wire.now_ms())
        return JSONResponse(recorded, status_code=200 if recorded["duplicate"] else 201)

    @app.get("/metrics/campaign/{campaign_id}", response_model=MetricsOut, dependencies=[Depends(admin)])
    def metrics(campaign_id: CampaignId, request: Request) -> dict:
        campaign, totals = store.campaign_totals(engine_of(request), campaign_id)
        return {"campaign_id": campaign_id, "name": campaign.name, "buckets": campaign_report(totals)}

    @app.get("/campaigns/{campaign_id}/report", response_model=ReportOut, dependencies=[Depends(admin)])
    def campaign_report_route(campaign_id: CampaignId, request: Request) -> dict:
        """R_c and I_gmv per bucket with user-bootstrap intervals, over time; decisions by reason and
        model version; scores against the band; budget and its burn."""
        return report.campaign_full_report(engine_of(request), campaign_id, wire.now_ms())

    dashboard.add_routes(app, config)
