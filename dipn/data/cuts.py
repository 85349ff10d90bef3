"""Where samples are cut (section 6.1) and which split each cut belongs to.

The paper truncates each user's logs at random moments (about 400 groups per user over 14 days,
i.e. about 28 a day). We cut at random moments when the user acts (an event of any view), since
that is when a phone would score; only inside the window whose 24-hour labels are fully observed.
Splits are by time: cuts in the last ``eval_days`` of the window are evaluation, earlier ones train.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dipn.data.keys import key_time, key_user, user_time_key

DAY_MS = 86_400_000
HOUR_MS = 3_600_000
TRAIN, EVAL = 0, 1


@dataclass(frozen=True)
class CutWindow:
    start_ms: int  # first moment a cut may be placed
    end_ms: int  # cuts lie strictly before this; end_ms + 24 h is observed
    eval_start_ms: int  # cuts at or after this are evaluation samples

    def split_of(self, ts: np.ndarray) -> np.ndarray:
        return np.where(np.asarray(ts) >= self.eval_start_ms, EVAL, TRAIN).astype(np.uint8)


def cut_window(first_ts: int, last_ts: int, eval_days: float, meta: dict | None = None) -> CutWindow:
    """From the simulator's meta.json when there is one, else from the data's own time range."""
    if meta is not None:
        start, end = int(meta["start_ms"]), int(meta["cut_end_ms"])
    else:
        start, end = int(first_ts), int(last_ts) - DAY_MS + 1
    if end <= start:
        raise ValueError(
            "the logs span less than the 24-hour label horizon: no cut has observed labels"
        )
    return CutWindow(start, end, max(start, end - int(eval_days * DAY_MS)))


@dataclass(frozen=True)
class DrawPosition:
    """Where a contiguous range of users starts in the random streams of a whole-dataset sampling.

    Cuts come from one seeded stream: first one uniform number per moment (all users, in key
    order), then one per user-day (the quota draws). An engine that samples one range of users
    at a time (Spark: one shard per task) passes the counts of the moments and user-days before
    its range and the dataset's total moments, and so draws the very numbers a whole-dataset run
    draws for those users. The default, the whole dataset, starts both streams at 0.
    """

    moments_before: int = 0
    user_days_before: int = 0
    moments_total: int | None = None  # None: the users given are the whole dataset


def cut_moments(
    user_idx: np.ndarray, ts: np.ndarray, window: CutWindow
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct (user, time) moments inside the window in key order, with their user-day group."""
    inside = (ts >= window.start_ms) & (ts < window.end_ms)
    moments = np.unique(user_time_key(user_idx[inside], ts[inside], window.start_ms))
    u, t = key_user(moments), key_time(moments, window.start_ms)
    return u, t, u * 10_000 + (t - window.start_ms) // DAY_MS


def draw_counts(user_idx: np.ndarray, ts: np.ndarray, window: CutWindow) -> tuple[int, int]:
    """Moments and user-days of these users: how far their draws advance the two streams."""
    _, _, group = cut_moments(user_idx, ts, window)
    return len(group), len(np.unique(group))


def sample_cuts(
    user_idx: np.ndarray,
    ts: np.ndarray,
    window: CutWindow,
    cuts_per_day: float,
    seed: int,
    position: DrawPosition = DrawPosition(),
) -> tuple[np.ndarray, np.ndarray]:
    """Pick cut moments among each user's event times, about ``cuts_per_day`` per active day.

    ``user_idx``/``ts`` are all events of all views of a contiguous range of users (by default
    the whole dataset). Returns (user_idx, ts) of the cuts, sorted by user then time. A user-day
    with fewer distinct event moments than its quota is cut at every one of them.
    """
    u, t, group = cut_moments(user_idx, ts, window)
    total = len(group) if position.moments_total is None else position.moments_total
    priority = _uniforms(seed, position.moments_before, len(group))
    order = np.lexsort((priority, group))  # random order within each group
    g = group[order]
    starts = np.r_[0, np.flatnonzero(g[1:] != g[:-1]) + 1] if len(g) else np.zeros(0, np.int64)
    sizes = np.diff(np.r_[starts, len(g)])
    rank = np.arange(len(g)) - np.repeat(starts, sizes)
    quota = _quota(_uniforms(seed, total + position.user_days_before, len(starts)), cuts_per_day)
    keep = np.sort(order[rank < np.repeat(quota, sizes)])
    return u[keep], t[keep]


def _uniforms(seed: int, start: int, count: int) -> np.ndarray:
    """Numbers ``start .. start + count`` of the stream ``np.random.default_rng(seed).random``."""
    bits = np.random.PCG64(seed)
    bits.advance(start)
    return np.random.Generator(bits).random(count)


def _quota(uniforms: np.ndarray, cuts_per_day: float) -> np.ndarray:
    """Integer quotas whose mean is ``cuts_per_day`` (fractional rates round at random)."""
    base = np.floor(cuts_per_day)
    return (base + (uniforms < cuts_per_day - base)).astype(np.int64)
