"""Device routes: registration (the enrollment token), signed coupon reads and signed score posts.

A signed request's device is found and its signature checked by ``authenticate``; a request that
writes no scores then claims its nonce and counts against the device's rate limit (``admit``),
while a score post does both in the same transaction as its scores (``ingest``).
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from dataclasses import dataclass
from typing import Annotated

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from fastapi import APIRouter, Depends, Request, Security
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import TypeAdapter, ValidationError

from dipn import wire
from dipn.serving import auth, openapi, ratelimit, store
from dipn.serving.config import ServerConfig
from dipn.serving.ingest import ScorePost
from dipn.serving.migrations import LATEST
from dipn.serving.refusals import ApiError, describe_validation_error
from dipn.serving.routes import CampaignId
from dipn.serving.schemas import CouponOut, DeviceRegistered, RegisterDevice, ScoreBatch, ScoresAccepted

_score_batch = TypeAdapter(ScoreBatch)


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


async def authenticate(request: Request, body: bytes,
                       window_ms: int) -> tuple[store.DeviceAuth, auth.SignedHeaders, int]:
    """The registered device that signed this request, its signed headers and the time now."""
    signed = auth.parse_signed_headers(request.headers)
    received_ms = wire.now_ms()
    auth.check_fresh(signed.timestamp_ms, received_ms, window_ms)
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


async def enrolled(body: RegisterDevice, request: Request,
                   _scheme: Annotated[object, Security(openapi.enrollment_token)]) -> RegisterDevice:
    """A registration from the enrollment token's holder (``Security``: the document's
    ``enrollmentToken`` scheme). It takes the body so that FastAPI checks the body first: a
    malformed registration is a 422 whoever sends it."""
    auth.check_bearer(request.headers.get("authorization"), request.app.state.config.enroll_token, "enrollment")
    return body


@dataclass(frozen=True)
class CampaignRead:
    """A signed device's read about one campaign: the campaign id and the device that signed."""

    campaign_id: int
    device: store.DeviceAuth


async def signed_campaign_read(campaign_id: CampaignId, request: Request) -> CampaignRead:
    """The campaign id, then the device that signed the request, its nonce claimed and counted (409,
    429). The id is this dependency's parameter, not the route's, so that FastAPI checks it first
    and once: a request for an id that cannot exist is a 422 and uses no nonce."""
    window_ms = request.app.state.config.signature_window_ms
    device, signed, received_ms = await authenticate(request, await request.body(), window_ms)
    await admit(request, device, signed, received_ms)
    return CampaignRead(campaign_id, device)


router = APIRouter()


@router.get("/healthz")
def healthz() -> dict:
    return {"status": "ok", "schema_version": LATEST}


@router.post(wire.DEVICES_PATH, status_code=201, response_model=DeviceRegistered,
             responses=openapi.errors({401: "`missing_token`: no `Authorization: Bearer <enrollment token>`",
                                       403: "`bad_token`: not the enrollment token",
                                       422: "`invalid_request`: user_id, platform or public_key"}))
def register(body: Annotated[RegisterDevice, Depends(enrolled)], request: Request) -> dict:
    """Register a device's Ed25519 public key for a user: only the enrollment token's holder
    (the app backend, which has logged the user in) may say which user a device acts for."""
    try:
        auth.parse_public_key(body.public_key)
    except ValueError as exc:
        raise ApiError(422, "invalid_request", f"public_key: {exc}") from exc
    device = store.register_device(request.app.state.engine, body.user_id, body.platform, body.public_key,
                                   wire.now_ms())  # fmt: skip
    return {"device_id": device.device_id, "user_id": device.user_id}


@router.get("/coupons/{campaign_id}", response_model=CouponOut, openapi_extra=SIGNED_OPENAPI,
            responses=openapi.errors(openapi.SIGNED_REFUSALS | {404: "`unknown_campaign`",
                                                                422: "`invalid_request`: the campaign id"}))
async def my_coupon(read: Annotated[CampaignRead, Depends(signed_campaign_read)], request: Request) -> dict:
    """The signing device's own user's coupon: no parameter can name another user."""
    return await run_in_threadpool(store.coupon_of, request.app.state.engine, read.campaign_id, read.device.user_id)


@router.post(wire.SCORES_PATH, response_model=ScoresAccepted, openapi_extra=SCORES_OPENAPI,
             responses=openapi.errors(openapi.SIGNED_REFUSALS | {
                 403: "`device_mismatch`: a score names another device than the signer",
                 413: "`body_too_large`: over 64 KiB; `too_many_scores`: over 256 scores",
                 422: "`invalid_scores`: the detail names each refused score, `scores.<index>.<field>: <reason>`",
                 503: "`storage_unavailable`: nothing was stored; retry"}))
async def post_scores(request: Request) -> JSONResponse:
    """A signed batch of scores; 200 only once the batch is committed (durable)."""
    return await request.app.state.accept_scores(request, await request.body())


class ScoreIntake:
    """The handler of ``POST /scores``, shared by the route and the ``app.ScorePosts`` middleware
    that serves it (``app.state.accept_scores``). It keeps the settings it reads, so that a post,
    nearly all of the endpoint's traffic, looks none of them up."""

    def __init__(self, config: ServerConfig) -> None:
        self.window_ms, self.max_scores = config.signature_window_ms, config.max_scores_per_post

    async def __call__(self, request: Request, body: bytes) -> JSONResponse:
        device, signed, received_ms = await authenticate(request, body, self.window_ms)
        try:
            batch = _parse_scores(body, device.device_id, self.max_scores, latest_ts=received_ms + self.window_ms)
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
