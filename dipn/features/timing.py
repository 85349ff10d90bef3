"""Time gaps between consecutive events of one view of one user."""

from __future__ import annotations

import numpy as np

from dipn.errors import DipnValidationError

NO_PREVIOUS = np.nan  # marks the first event of a user's stream
# Gaps are computed in float64, exact for integers below 2^53 ms (285,000 years): a timestamp
# beyond that is not milliseconds since the epoch, whatever it is.
MAX_ABS_TS = 2**53


def checked_timestamps(ts: np.ndarray | float) -> np.ndarray:
    """Timestamps as int64 ms; NaN, infinite, non-numeric or beyond +-2^53 -> ``DipnValidationError``."""
    try:
        arr = np.asarray(ts)
        as_float = arr.astype(np.float64)
    except (TypeError, ValueError, OverflowError) as exc:
        raise DipnValidationError(f"timestamps must be integer ms since the epoch ({exc})") from None
    bad = ~np.isfinite(as_float) | (np.abs(as_float) >= MAX_ABS_TS)
    if bad.any():
        where = np.flatnonzero(bad.ravel())[:5].tolist()
        raise DipnValidationError(
            f"timestamp at positions {where} is NaN, infinite or beyond 2^53; timestamps are integer ms since the epoch"
        )
    return arr.astype(np.int64) if arr.dtype.kind in "iu" else as_float.astype(np.int64)


def previous_timestamps(ts: np.ndarray, user_ids: np.ndarray | None = None) -> np.ndarray:
    """Each event's predecessor timestamp within its user (rows sorted by user, then time).

    The first event of each user has ``NO_PREVIOUS``. Batch encoding uses this; the device keeps the
    last timestamp instead, and both feed ``time_gaps`` so they agree by construction.
    """
    ts = checked_timestamps(ts)
    prev = np.empty(ts.shape, dtype=np.float64)
    if ts.size == 0:
        return prev
    prev[0] = NO_PREVIOUS
    prev[1:] = ts[:-1]
    if user_ids is not None:
        users = np.asarray(user_ids)
        starts = np.flatnonzero(users[1:] != users[:-1]) + 1
        prev[starts] = NO_PREVIOUS
    return prev


def time_gaps(ts: np.ndarray, prev_ts: np.ndarray) -> np.ndarray:
    """Gap in ms; the first event of a stream has an infinite gap (the step function's last bucket)."""
    checked_timestamps(ts)
    ts = np.asarray(ts, dtype=np.float64)
    prev = np.asarray(prev_ts, dtype=np.float64)
    return np.where(np.isnan(prev), np.inf, ts - np.nan_to_num(prev, nan=0.0))
