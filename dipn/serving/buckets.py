"""Stable-hash A/B buckets: a user lands in the same bucket of a campaign on every worker and host.

position = first 8 bytes of SHA-256(salt, 0x00, user_id) / 2^64, uniform in [0, 1); the buckets
take consecutive intervals of that range in the order of ``BUCKETS``, each as wide as its share.
Each campaign has its own salt, so campaigns split users independently.
"""

from __future__ import annotations

import hashlib
import math

from dipn.serving.config import BUCKETS, check_shares


def bucket_position(user_id: str, salt: str) -> float:
    digest = hashlib.sha256(salt.encode() + b"\x00" + user_id.encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def assign_bucket(user_id: str, salt: str, shares: dict[str, float]) -> str:
    check_shares(shares)
    position = bucket_position(user_id, salt)
    upper = 0.0
    last_nonempty = None
    for bucket in BUCKETS:
        share = shares.get(bucket, 0.0)
        if share <= 0:
            continue
        upper += share
        last_nonempty = bucket
        if position < upper:
            return bucket
    return last_nonempty  # shares summed to just under 1 in floating point


def bucket_caps_cents(budget_cents: int | None, shares: dict[str, float]) -> dict[str, int | None]:
    """Each bucket's share of the budget, rounded down so the caps never add up past the budget."""
    if budget_cents is None:
        return {bucket: None for bucket in BUCKETS}
    return {bucket: math.floor(budget_cents * shares.get(bucket, 0.0)) for bucket in BUCKETS}
