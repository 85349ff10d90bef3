"""The per-device rate limit and single-use nonces: may this signed request act now?

Each device has one counter row per fixed time window, incremented by one atomic upsert (``INSERT
... ON CONFLICT DO UPDATE ... RETURNING``) inside the transaction that writes the request's
effects. So the limit holds however many worker processes and hosts serve the device (a counter in
a worker's memory would give every worker its own allowance), and a refused request is never
half-counted. Counters are taken in device-id order, so two workers' transactions always lock
them in the same order and cannot deadlock.

A fixed window lets a device make up to twice the limit across a window boundary: this bounds
abuse, it does not shape legitimate traffic. Requests that fail authentication (unknown device,
bad signature) belong to no device and are not counted here: limit those by client address in the
reverse proxy (docs/security.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from sqlalchemy import Connection, Engine

from dipn.serving.db import write_tx
from dipn.serving.store import insert_ignore
from dipn.serving.tables import rate_counters, request_nonces


@dataclass(frozen=True)
class RateLimit:
    requests: int  # signed requests per device per window; 0: no limit
    window_ms: int

    def window_start(self, now_ms: int) -> int:
        return now_ms - now_ms % self.window_ms

    def retry_after_s(self, now_ms: int) -> int:
        """Seconds until the current window ends (the Retry-After of a 429)."""
        return max(1, math.ceil((self.window_start(now_ms) + self.window_ms - now_ms) / 1000))


def _upsert(conn: Connection):  # noqa: ANN202 (an Insert of the dialect)
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(rate_counters)


def admit(conn: Connection, wanted: dict[str, int], now_ms: int, limit: RateLimit) -> dict[str, int]:
    """Count ``wanted[device]`` more requests per device; returns how many of each device's fit
    under the limit (the first ones). Every attempt counts, admitted or not."""
    if limit.requests <= 0:
        return dict(wanted)
    window = limit.window_start(now_ms)
    admitted = {}
    for device_id in sorted(wanted):
        n = wanted[device_id]
        statement = _upsert(conn).values(device_id=device_id, window_start_ms=window, requests=n)
        total = conn.execute(
            statement.on_conflict_do_update(
                index_elements=[rate_counters.c.device_id, rate_counters.c.window_start_ms],
                set_={"requests": rate_counters.c.requests + statement.excluded.requests},
            ).returning(rate_counters.c.requests)
        ).scalar_one()
        admitted[device_id] = max(0, min(n, limit.requests - (total - n)))
    return admitted


def prune(conn: Connection, now_ms: int, limit: RateLimit) -> None:
    """Drop counters of windows that have ended."""
    conn.execute(rate_counters.delete().where(rate_counters.c.window_start_ms < limit.window_start(now_ms)))


def admit_request(engine: Engine, device_id: str, nonce: str, now_ms: int, limit: RateLimit) -> str:
    """One signed request that writes nothing else (a read): claim its nonce, then count it.
    Returns "ok", "replay" (the nonce was used) or "rate_limited"."""
    with write_tx(engine) as conn:
        claimed = conn.execute(
            insert_ignore(conn, request_nonces).values(device_id=device_id, nonce=nonce, created_ms=now_ms)
            .returning(request_nonces.c.nonce)
        ).scalar()
        if claimed is None:
            return "replay"
        return "ok" if admit(conn, {device_id: 1}, now_ms, limit)[device_id] else "rate_limited"
