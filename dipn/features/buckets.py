"""Discretization rules of Table 3, each a numpy-vectorized function returning 0-based values.

They return the paper's values (e.g. the step function's y in 0..19); the +1 shift that keeps id 0
for padding is applied once, in ``spec.value_to_id``.
"""

from __future__ import annotations

import numpy as np

from dipn.errors import DipnValidationError

STEP_BUCKETS = 20
STAY_TIME_BUCKETS = 179


def _as_float(x: np.ndarray | float, what: str) -> np.ndarray:
    arr = np.asarray(x, dtype=np.float64)
    if np.isnan(arr).any():
        where = np.flatnonzero(np.isnan(arr.ravel()))[:5].tolist()
        raise DipnValidationError(f"{what}: NaN at positions {where}; a time must be a number")
    return arr


def step_bucket(x: np.ndarray | float, f_s: float, f_b: float) -> np.ndarray:
    """Section 3.1 step function.

    y = floor(x / f_s)        for x < f_b
    y = floor(x / f_b + 9)    for f_b <= x < 10 f_b
    y = 19                    for x >= 10 f_b
    Fine resolution for short gaps, where most of the signal is, and coarse beyond. Negative
    inputs (clock skew, time going backwards on a device) map to 0; NaN raises.
    """
    arr = _as_float(x, "step_bucket input")
    with np.errstate(invalid="ignore"):
        fine = np.floor(arr / f_s)
        coarse = np.floor(arr / f_b + 9)
    y = np.where(arr < f_b, fine, np.where(arr < 10 * f_b, coarse, STEP_BUCKETS - 1))
    y = np.where(arr < 0, 0, y)
    return y.astype(np.int32)


# Browse page stay time: Table 3c has 179 buckets and the paper says only "similar to the time
# gap". Ours: 1 s steps below 2 min (0..119), 10 s steps to 10 min (120..167), 1 min steps to
# 20 min (168..177), and one bucket for longer stays (178).
_STAY_EDGES_S = (120.0, 600.0, 1200.0)


def stay_time_bucket(stay_ms: np.ndarray | float) -> np.ndarray:
    """Page stay time in ms -> 0..178 (see the edges above)."""
    s = np.maximum(_as_float(stay_ms, "stay time") / 1000.0, 0.0)
    first, second, third = _STAY_EDGES_S
    y = np.where(
        s < first,
        np.floor(s),
        np.where(
            s < second,
            first + np.floor((s - first) / 10.0),
            np.where(s < third, 168 + np.floor((s - second) / 60.0), STAY_TIME_BUCKETS - 1),
        ),
    )
    return y.astype(np.int32)


def hour_of_day(ts_ms: np.ndarray | int, utc_offset_minutes: int = 0) -> np.ndarray:
    """Hour 0..23 of a unix-ms timestamp, read at a fixed offset from UTC."""
    ts = np.asarray(ts_ms, dtype=np.int64) + np.int64(utc_offset_minutes) * 60_000
    return ((ts // 3_600_000) % 24).astype(np.int32)


def _clipped(values: np.ndarray | int, vocab_size: int, what: str) -> np.ndarray:
    """Clip before casting: a float count of 1e30 (or an infinite one) lands in the last bucket
    instead of overflowing int64; NaN is refused."""
    arr = np.asarray(values)
    if arr.dtype.kind == "f" and np.isnan(arr).any():
        raise DipnValidationError(f"{what}: NaN; counts and levels are integers")
    return np.clip(arr, 0, vocab_size - 1).astype(np.int32)


def capped_count(counts: np.ndarray | int, vocab_size: int) -> np.ndarray:
    """History counts: 0..vocab_size-1, larger counts share the last bucket."""
    return _clipped(counts, vocab_size, "history count")


def clipped_level(levels: np.ndarray | int, vocab_size: int) -> np.ndarray:
    """Profile levels: 0..vocab_size-1; out-of-range levels are clipped to the nearest edge."""
    return _clipped(levels, vocab_size, "profile level")


def screen_segment(coord: np.ndarray, extent: np.ndarray, segments: int) -> np.ndarray:
    """Position on the device's own screen -> one of ``segments`` uniform segments.

    Coordinates are clamped to the screen (the reader rejects off-screen rows in strict mode; the
    device clamps so a stray touch never crashes the app).
    """
    c = _as_float(coord, "screen coordinate")
    e = np.asarray(extent, dtype=np.float64)
    seg = np.floor(c / e * segments)
    return np.clip(seg, 0, segments - 1).astype(np.int32)


def signed_length_segment(delta: np.ndarray, extent: np.ndarray, segments: int) -> np.ndarray:
    """Swipe length with its direction: ``2 * segments`` values.

    0..segments-1 are lengths in screen segments moving right/down (delta >= 0), segments..
    2*segments-1 the same lengths moving left/up; hence Table 3's 34 = 2 x 17 and 50 = 2 x 25.
    """
    d = _as_float(delta, "swipe length")
    e = np.asarray(extent, dtype=np.float64)
    length = np.clip(np.floor(np.abs(d) / e * segments), 0, segments - 1)
    return (length + np.where(d < 0, segments, 0)).astype(np.int32)


def direction(delta: np.ndarray) -> np.ndarray:
    """0 = right (or down), 1 = left (or up)."""
    return (_as_float(delta, "swipe direction") < 0).astype(np.int32)


def recency_bucket(elapsed_ms: np.ndarray | float, f_s: float, f_b: float) -> np.ndarray:
    """Time since a view's last event -> the step function's 0..19, or 20 when there is none (NaN).

    A view without any event is not the same as one idle for hours, so it gets its own value.
    """
    arr = np.asarray(elapsed_ms, dtype=np.float64)
    none = np.isnan(arr)
    return np.where(none, STEP_BUCKETS, step_bucket(np.where(none, 0.0, arr), f_s, f_b)).astype(np.int32)


def piecewise_bucket(elapsed_ms: np.ndarray | float, pieces: tuple[tuple[float, float], ...]) -> np.ndarray:
    """Elapsed ms -> the value of a ``spec.PiecewiseRule``: inside piece i (from the previous upper
    edge ``lower`` to ``upper``, in steps of ``step``), the buckets of the earlier pieces plus
    floor((x - lower) / step); at or beyond the last edge, the one open bucket. Negative -> 0."""
    x = np.maximum(_as_float(elapsed_ms, "elapsed time"), 0.0)
    lower, offset = 0.0, 0
    y = np.full(x.shape, -1.0)
    for upper, step in pieces:
        inside = (y < 0) & (x < upper)
        y = np.where(inside, offset + np.floor((x - lower) / step), y)
        offset += int((upper - lower) / step)
        lower = upper
    return np.where(y < 0, offset, y).astype(np.int32)


def since_bucket(elapsed_ms: np.ndarray | float, pieces: tuple[tuple[float, float], ...]) -> np.ndarray:
    """Time since the last event of an action -> ``piecewise_bucket``, or one more value when there
    is none (NaN): "never in the window" is not "long ago"."""
    arr = np.asarray(elapsed_ms, dtype=np.float64)
    none = np.isnan(arr)
    open_bucket = piecewise_bucket(np.inf, pieces)
    return np.where(none, open_bucket + 1, piecewise_bucket(np.where(none, 0.0, arr), pieces)).astype(np.int32)
