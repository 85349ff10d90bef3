"""The endpoint's checks of a signed device request; the signature itself is ``dipn.wire``'s.

The server rejects a timestamp more than ``signature_window_ms`` away from its clock (stale) and
a nonce the device has already used (replay; nonces are kept for twice the window, after which
the timestamp alone rejects the request). The body hash binds the scores to the signature, and
the signed target (path and query string) binds the URL.

Why not HMAC with a hashed secret: to check an HMAC the server needs the very key the device signs
with, so whatever it stores (the secret, or a hash the device then signs with) signs requests as
well as it checks them; hashing only renames the secret. With a public key, checking and signing
need different keys. The cost is CPU: about 0.1 ms to verify a request, against microseconds for
an HMAC (docs/security.md).
"""

from __future__ import annotations

import hmac
import re
import uuid
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from dipn.wire import (
    DEVICE_ID_PATTERN,
    HEADER_DEVICE,
    HEADER_NONCE,
    HEADER_SIGNATURE,
    HEADER_TIMESTAMP,
    PUBLIC_KEY_PATTERN,
    SIGNED_HEADERS,
    signed_message,
)

# ASCII only and matched whole: str.isdigit() takes "²", which int() then refuses (a 500).
_NONCE = re.compile(r"[A-Za-z0-9_-]{16,64}")
_DEVICE_ID = re.compile(DEVICE_ID_PATTERN)
_TIMESTAMP = re.compile(r"[0-9]{1,15}")
_SIGNATURE = re.compile(r"[0-9a-f]{128}")


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


def parse_public_key(public_key: str) -> Ed25519PublicKey:
    """A registered public key (64 hex digits); ``ValueError`` for anything else."""
    if not re.match(PUBLIC_KEY_PATTERN, public_key):
        raise ValueError("a public key is 64 lowercase hex digits (32 bytes, Ed25519)")
    return Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_key))


def parse_signed_headers(headers) -> SignedHeaders:  # noqa: ANN001 (any case-insensitive mapping)
    values = {name: headers.get(name) for name in SIGNED_HEADERS}
    missing = [name for name, value in values.items() if not value]
    if missing:
        raise AuthError(401, "missing_signature", f"signed request needs headers {', '.join(missing)}")
    if not _DEVICE_ID.fullmatch(values[HEADER_DEVICE]):
        raise AuthError(401, "unknown_device", f"{HEADER_DEVICE} is not a device id (32 hex digits)")
    if not _TIMESTAMP.fullmatch(values[HEADER_TIMESTAMP]):
        raise AuthError(401, "stale_timestamp", f"{HEADER_TIMESTAMP} must be integer milliseconds since the epoch")
    if not _NONCE.fullmatch(values[HEADER_NONCE]):
        raise AuthError(401, "bad_nonce", f"{HEADER_NONCE} must be 16-64 characters of [A-Za-z0-9_-]")
    if not _SIGNATURE.fullmatch(values[HEADER_SIGNATURE]):
        raise AuthError(401, "bad_signature", f"{HEADER_SIGNATURE} must be 128 lowercase hex digits")
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


def check_signature(public_key: Ed25519PublicKey, method: str, target: str, signed: SignedHeaders, body: bytes) -> None:
    """``target``: the request target as received, path and query (``dipn.wire.request_target``)."""
    message = signed_message(method, target, signed.timestamp_ms, signed.nonce, body)
    try:
        public_key.verify(bytes.fromhex(signed.signature), message)
    except InvalidSignature:
        raise AuthError(
            401, "bad_signature", "signature does not match the request (method, path and query, timestamp, nonce, body)"
        ) from None


def check_bearer(header: str | None, token: str | None, what: str) -> None:
    """Operator routes: ``Authorization: Bearer TOKEN``; open when no token is configured (the app
    refuses to start so unless told to, ``app.create_app``)."""
    if token is None:
        return
    if not header or not header.startswith("Bearer "):
        raise AuthError(401, "missing_token", f"{what} needs 'Authorization: Bearer <token>'")
    if not hmac.compare_digest(header[len("Bearer "):].encode(), token.encode()):
        raise AuthError(403, "bad_token", f"wrong {what} token")
