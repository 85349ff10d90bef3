"""Time gaps between consecutive events of one view of one user."""

from __future__ import annotations

import numpy as np

from dipn.errors import DipnValidationError

NO_PREVIOUS = np.nan  # marks the first event of a user's stream


def previous_timestamps(ts: np.ndarray, user_ids: np.ndarray | None = None) -> np.ndarray:
    """Each event's predecessor timestamp within its user (rows sorted by user, then time).

    The first event of each user has ``NO_PREVIOUS``. Batch encoding uses this; the device keeps the
    last timestamp instead, and both feed ``time_gaps`` so they agree by construction.
    """
    ts = np.asarray(ts, dtype=np.int64)
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
    ts = np.asarray(ts, dtype=np.float64)
    if np.isnan(ts).any():
        raise DipnValidationError("timestamp is NaN; timestamps are integer ms since the epoch")
    prev = np.asarray(prev_ts, dtype=np.float64)
    return np.where(np.isnan(prev), np.inf, ts - np.nan_to_num(prev, nan=0.0))
