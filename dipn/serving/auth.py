"""HMAC request signing for devices.

A device gets a random 256-bit secret when it registers. Every signed request carries four
headers: the device id, a timestamp (ms), a fresh nonce and the signature

    hex(HMAC-SHA256(secret, "DIPN-HMAC-SHA256\\n" METHOD "\\n" PATH "\\n" TIMESTAMP "\\n" NONCE "\\n"
                            hex(SHA-256(body))))

The server rejects a timestamp more than ``signature_window_ms`` away from its clock (stale) and
a nonce the device has already used (replay; nonces are kept for twice the window, after which
the timestamp alone rejects the request). The body hash binds the scores to the signature.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
import uuid
from dataclasses import dataclass

HEADER_DEVICE = "x-dipn-device"
HEADER_TIMESTAMP = "x-dipn-timestamp"
HEADER_NONCE = "x-dipn-nonce"
HEADER_SIGNATURE = "x-dipn-signature"
SCHEME = b"DIPN-HMAC-SHA256"

_NONCE = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
_DEVICE_ID = re.compile(r"^[0-9a-f]{32}$")
_SIGNATURE = re.compile(r"^[0-9a-f]{64}$")


class AuthError(Exception):
    """A signed request that must be refused; ``code`` names the reason for the client."""

    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail = status, code, detail


@dataclass(frozen=True)
class SignedHeaders:
    device_id: str
    timestamp_ms: int
    nonce: str
    signature: str


def new_device_id() -> str:
    return uuid.uuid4().hex


def new_secret() -> str:
    return secrets.token_hex(32)


def new_nonce() -> str:
    return secrets.token_urlsafe(18)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def sign(secret: str, method: str, path: str, timestamp_ms: int, nonce: str, body: bytes) -> str:
    message = b"\n".join(
        (
            SCHEME,
            method.upper().encode(),
            path.encode(),
            str(timestamp_ms).encode(),
            nonce.encode(),
            hashlib.sha256(body).hexdigest().encode(),
        )
    )
    return hmac.new(bytes.fromhex(secret), message, hashlib.sha256).hexdigest()


def signed_headers(
    device_id: str, secret: str, method: str, path: str, body: bytes, *, timestamp_ms: int | None = None,
    nonce: str | None = None,
) -> dict[str, str]:
    """The headers a device sends with ``body``; ``timestamp_ms`` and ``nonce`` default to fresh."""
    timestamp_ms = now_ms() if timestamp_ms is None else timestamp_ms
    nonce = new_nonce() if nonce is None else nonce
    return {
        HEADER_DEVICE: device_id,
        HEADER_TIMESTAMP: str(timestamp_ms),
        HEADER_NONCE: nonce,
        HEADER_SIGNATURE: sign(secret, method, path, timestamp_ms, nonce, body),
    }


def parse_signed_headers(headers) -> SignedHeaders:  # noqa: ANN001 (any case-insensitive mapping)
    values = {name: headers.get(name) for name in (HEADER_DEVICE, HEADER_TIMESTAMP, HEADER_NONCE, HEADER_SIGNATURE)}
    missing = [name for name, value in values.items() if not value]
    if missing:
        raise AuthError(401, "missing_signature", f"signed request needs headers {', '.join(missing)}")
    if not _DEVICE_ID.match(values[HEADER_DEVICE]):
        raise AuthError(401, "unknown_device", f"{HEADER_DEVICE} is not a device id (32 hex digits)")
    if not values[HEADER_TIMESTAMP].isdigit() or len(values[HEADER_TIMESTAMP]) > 15:
        raise AuthError(401, "stale_timestamp", f"{HEADER_TIMESTAMP} must be integer milliseconds since the epoch")
    if not _NONCE.match(values[HEADER_NONCE]):
        raise AuthError(401, "bad_nonce", f"{HEADER_NONCE} must be 16-64 characters of [A-Za-z0-9_-]")
    if not _SIGNATURE.match(values[HEADER_SIGNATURE]):
        raise AuthError(401, "bad_signature", f"{HEADER_SIGNATURE} must be 64 lowercase hex digits")
    return SignedHeaders(
        values[HEADER_DEVICE], int(values[HEADER_TIMESTAMP]), values[HEADER_NONCE], values[HEADER_SIGNATURE]
    )


def check_fresh(timestamp_ms: int, server_now_ms: int, window_ms: int) -> None:
    skew = timestamp_ms - server_now_ms
    if abs(skew) > window_ms:
        raise AuthError(
            401, "stale_timestamp",
            f"request timestamp is {skew / 1000:+.1f} s from the server clock; the limit is {window_ms / 1000:.0f} s",
        )


def check_signature(secret: str, method: str, path: str, signed: SignedHeaders, body: bytes) -> None:
    expected = sign(secret, method, path, signed.timestamp_ms, signed.nonce, body)
    if not hmac.compare_digest(expected, signed.signature):
        raise AuthError(
            401, "bad_signature", "signature does not match the request (method, path, timestamp, nonce, body)"
        )


def check_bearer(header: str | None, token: str | None, what: str) -> None:
    """Operator routes: ``Authorization: Bearer TOKEN``; open when no token is configured."""
    if token is None:
        return
    if not header or not header.startswith("Bearer "):
        raise AuthError(401, "missing_token", f"{what} needs 'Authorization: Bearer <token>'")
    if not hmac.compare_digest(header[len("Bearer "):].encode(), token.encode()):
        raise AuthError(403, "bad_token", f"wrong {what} token")
