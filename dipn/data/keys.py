"""(user, time) packed into one sortable int64, so per-user windows are plain ``searchsorted`` calls."""

from __future__ import annotations

import numpy as np

TIME_BITS = 38  # 2**38 ms is about 8.7 years after the base; leaves 2**24 (16.7 M) users
MAX_USERS = 1 << (62 - TIME_BITS)


def user_time_key(user_idx: np.ndarray, ts: np.ndarray, base_ms: int) -> np.ndarray:
    """Keys that sort by user, then time; ``ts`` must not precede ``base_ms``."""
    u = np.asarray(user_idx, dtype=np.int64)
    t = np.asarray(ts, dtype=np.int64) - np.int64(base_ms)
    if len(t) and (t.min() < 0 or t.max() >= (1 << TIME_BITS)):
        raise ValueError("timestamp more than 8.7 years after the data's first event")
    if len(u) and u.max() >= MAX_USERS:
        raise ValueError(f"more than {MAX_USERS} users")
    return (u << TIME_BITS) | t


def key_time(keys: np.ndarray, base_ms: int) -> np.ndarray:
    return (keys & ((1 << TIME_BITS) - 1)) + np.int64(base_ms)


def key_user(keys: np.ndarray) -> np.ndarray:
    return keys >> TIME_BITS
