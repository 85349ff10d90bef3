"""What leaves the phone, declared once: the score record, its encoding, and request signing.

The device builds its requests with this module (``mobile_demo``) and the endpoint checks them with
it (``dipn.serving``): the five score fields and their rules, the exact body of a score post, the
registration of a device's public key, and the Ed25519 signature of every request, so the two
sides cannot drift apart. Nothing of dipn and no HTTP library: the standard library and
``cryptography`` only.

Signing: a device makes its key pair itself and registers the public key; the server stores only
public keys, so its database holds nothing that could sign a request. The device's ``secret`` is
the hex of its 32-byte private key. Every signed request carries four headers: the device id, a
timestamp (ms), a fresh nonce and

    hex(Ed25519-sign(private key, "DIPN-ED25519\\n" METHOD "\\n" TARGET "\\n" TIMESTAMP "\\n" NONCE "\\n"
                                  hex(SHA-256(body))))

TARGET is the request target exactly as sent: the path and, when there is one, "?" and the query
string (``/coupons/7``, ``/coupons/7?lang=en``), so nothing in the URL can be added or changed
without breaking the signature. A request without a query signs what it signed before.

(why Ed25519 and not an HMAC, and what the endpoint checks: ``dipn.serving.auth``, docs/security.md).
"""

from __future__ import annotations

import hashlib
import json
import math
import numbers
import re
import secrets
import time
from collections.abc import Mapping, Sequence

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

# ---- the score record ------------------------------------------------------------------------
WIRE_FIELDS = ("device_id", "model_version", "p_realtime", "p_longterm", "ts")
MAX_SCORES_PER_POST = 256
EPOCH_2000_MS = 946_684_800_000  # a ts before this is not milliseconds since the epoch
MAX_TS_MS = 10**15  # exclusive
MODEL_VERSION_PATTERN = r"^[A-Za-z0-9._+-]{1,64}$"
DEVICE_ID_PATTERN = r"^[0-9a-f]{32}$"
PUBLIC_KEY_PATTERN = r"^[0-9a-f]{64}$"  # a device's registered key: 32 bytes of Ed25519, hex
# The endpoint's 422 names each refused score as "scores.<index>.<field>: <reason>".
REFUSED_SCORE = re.compile(r"(?:^|; )scores\.(\d+)\.")

# ---- requests --------------------------------------------------------------------------------
SCORES_PATH = "/scores"
DEVICES_PATH = "/devices"
HEADER_DEVICE = "x-dipn-device"
HEADER_TIMESTAMP = "x-dipn-timestamp"
HEADER_NONCE = "x-dipn-nonce"
HEADER_SIGNATURE = "x-dipn-signature"
SIGNED_HEADERS = (HEADER_DEVICE, HEADER_TIMESTAMP, HEADER_NONCE, HEADER_SIGNATURE)
SCHEME = b"DIPN-ED25519"


def score_problem(record: Mapping[str, object]) -> str | None:
    """Why the endpoint would refuse this score record (None: it would take it)."""
    if set(record) != set(WIRE_FIELDS):
        return f"fields must be exactly {', '.join(WIRE_FIELDS)}"
    if not isinstance(record["device_id"], str) or not re.fullmatch(DEVICE_ID_PATTERN, record["device_id"]):
        return "device_id must be 32 lowercase hex digits"
    if not isinstance(record["model_version"], str) or not re.fullmatch(MODEL_VERSION_PATTERN, record["model_version"]):
        return "model_version must be 1-64 characters of [A-Za-z0-9._+-]"
    for name in ("p_realtime", "p_longterm"):
        value = record[name]
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not (
            0.0 <= value <= 1.0 and math.isfinite(value)  # compared first: math.isfinite(10**400) overflows
        ):
            return f"{name} must be a finite number in [0, 1]"
    ts = record["ts"]
    if isinstance(ts, bool) or not isinstance(ts, numbers.Integral) or not EPOCH_2000_MS <= ts < MAX_TS_MS:
        return "ts must be integer milliseconds since the epoch (after 2000)"
    return None


def refused_indices(detail: str) -> set[int]:
    """The indices of the scores a 422 ``invalid_scores`` detail names."""
    return {int(index) for index in REFUSED_SCORE.findall(detail)}


def encode_scores(scores: Sequence[Mapping[str, object]]) -> bytes:
    """The exact body of a score post: only the five score fields, NaN refused here already."""
    rows = []
    for index, score in enumerate(scores):
        extra = set(score) - set(WIRE_FIELDS)
        if extra:
            raise ValueError(f"scores[{index}] has fields a device may not send: {sorted(extra)}")
        rows.append({name: score[name] for name in WIRE_FIELDS})
    return json.dumps({"scores": rows}, allow_nan=False, separators=(",", ":")).encode()


# ---- keys and signatures ---------------------------------------------------------------------
def new_device_key() -> tuple[str, str]:
    """(secret, public key), both hex: the secret stays on the device, the public key is registered."""
    private_key = Ed25519PrivateKey.generate()
    return private_key.private_bytes_raw().hex(), private_key.public_key().public_bytes_raw().hex()


def public_key_of(secret: str) -> str:
    return Ed25519PrivateKey.from_private_bytes(bytes.fromhex(secret)).public_key().public_bytes_raw().hex()


def new_nonce() -> str:
    return secrets.token_urlsafe(18)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def request_target(path: str, query: str = "") -> str:
    """What a signature covers of the URL: the path, and "?query" when there is a query."""
    return f"{path}?{query}" if query else path


def signed_message(method: str, target: str, timestamp_ms: int, nonce: str, body: bytes) -> bytes:
    """The bytes a request's signature covers (the module docstring's formula); ``target`` is the
    path with its query string, if any (``request_target``)."""
    return b"\n".join(
        (
            SCHEME,
            method.upper().encode(),
            target.encode(),
            str(timestamp_ms).encode(),
            nonce.encode(),
            hashlib.sha256(body).hexdigest().encode(),
        )
    )


def sign(secret: str, method: str, target: str, timestamp_ms: int, nonce: str, body: bytes) -> str:
    private_key = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(secret))
    return private_key.sign(signed_message(method, target, timestamp_ms, nonce, body)).hex()


def signed_headers(
    device_id: str, secret: str, method: str, target: str, body: bytes, *, timestamp_ms: int | None = None,
    nonce: str | None = None,
) -> dict[str, str]:
    """The headers a device sends with ``body`` to ``target`` (the path, with "?query" if the
    request has one); ``timestamp_ms`` and ``nonce`` default to fresh."""
    timestamp_ms = now_ms() if timestamp_ms is None else timestamp_ms
    nonce = new_nonce() if nonce is None else nonce
    return {
        HEADER_DEVICE: device_id,
        HEADER_TIMESTAMP: str(timestamp_ms),
        HEADER_NONCE: nonce,
        HEADER_SIGNATURE: sign(secret, method, target, timestamp_ms, nonce, body),
    }


def signed_score_request(device_id: str, secret: str, scores: Sequence[Mapping[str, object]]
                         ) -> tuple[str, bytes, dict[str, str]]:  # fmt: skip
    """(path, body, headers) of a signed score post, signed afresh (new timestamp and nonce)."""
    body = encode_scores(scores)
    headers = signed_headers(device_id, secret, "POST", SCORES_PATH, body)
    return SCORES_PATH, body, {"content-type": "application/json", **headers}


def registration_request(user_id: str, platform: str | None = None, enroll_token: str | None = None
                         ) -> tuple[str, dict[str, object], dict[str, str], str]:  # fmt: skip
    """(path, JSON body, headers, secret) of registering a new device: a fresh key pair, of which
    only the public key is sent; the secret is the caller's to keep. ``enroll_token``: the
    endpoint's enrollment token, when it requires one."""
    secret, public_key = new_device_key()
    headers = {"authorization": f"Bearer {enroll_token}"} if enroll_token else {}
    return DEVICES_PATH, {"user_id": user_id, "platform": platform, "public_key": public_key}, headers, secret
