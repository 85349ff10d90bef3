"""Where samples are cut (section 6.1) and which split each cut belongs to.

The paper truncates each user's logs at random moments (about 400 groups per user over 14 days,
i.e. about 28 a day). A phone scores when the user acts (a page leave) and on a timer while the
app is idle, so the moments a cut may fall on are both: every moment with an event of any view
("event" cuts) and the moments a timer would fire in the idle gaps, every ``timer_ms`` after an
event until the next event or ``idle_limit_ms`` ("idle" cuts). By default each user-day's cuts
are drawn from all of them alike, i.e. in the proportion a timer trigger would score;
``idle_share`` fixes the proportion instead. Only inside the window whose labels are observed.
Splits are by time: the last ``eval_days`` of the window are evaluation (test), the ``val_days``
before them validation (early stopping, model choice), earlier ones train.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dipn.errors import DipnValidationError


# (user, time) packed into one sortable int64, so per-user windows are plain ``searchsorted`` calls.
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

DAY_MS = 86_400_000
HOUR_MS = 3_600_000
TRAIN, VAL, EVAL = 0, 1, 2
EVENT_CUT, IDLE_CUT = 0, 1
CUT_TYPES = {"event": EVENT_CUT, "idle": IDLE_CUT}


@dataclass(frozen=True)
class IdleRule:
    """Idle moments a timer trigger scores; defaults: every minute, for half an hour of idleness."""

    timer_ms: int = 60_000
    idle_limit_ms: int = 30 * 60_000  # after this long without an event the app is taken as closed
    share: float | None = None  # None: as the timer would score them; else this share of the cuts

    def __post_init__(self) -> None:
        if self.timer_ms <= 0 or self.idle_limit_ms < 0:
            raise DipnValidationError("the idle timer must be > 0 ms and the idle limit >= 0 ms")
        if self.share is not None and not 0.0 <= self.share <= 1.0:
            raise DipnValidationError(f"the idle share must lie in [0, 1], got {self.share}")


@dataclass(frozen=True)
class CutWindow:
    start_ms: int  # first moment a cut may be placed
    end_ms: int  # cuts lie strictly before this; end_ms + the longest label horizon is observed
    val_start_ms: int  # cuts at or after this are validation samples
    eval_start_ms: int  # cuts at or after this are evaluation (test) samples

    def split_of(self, ts: np.ndarray) -> np.ndarray:
        ts = np.asarray(ts)
        return np.where(ts >= self.eval_start_ms, EVAL, np.where(ts >= self.val_start_ms, VAL, TRAIN)).astype(np.uint8)


def cut_window(
    first_ts: int, last_ts: int, eval_days: float, meta: dict | None = None,
    val_days: float = 0.0, horizon_ms: int = DAY_MS, drawn: bool = True,
) -> CutWindow:  # fmt: skip
    """From the simulator's meta.json when there is one, else from the data's own time range:
    cuts stop ``horizon_ms`` (the longest label horizon) before the last event. ``drawn``: the cuts
    will be drawn inside this window (not given by a --cuts file, whose cuts the caller placed)."""
    if meta is not None:
        start = int(meta["start_ms"])
        end = min(int(meta["cut_end_ms"]), int(meta.get("end_ms", last_ts + 1)) - int(horizon_ms))
    else:
        start, end = int(first_ts), int(last_ts) - int(horizon_ms) + 1
    # A log holding less than one horizon of events (a 2-hour slice of a 9-day data set whose
    # meta.json names the whole window) observes no label of that horizon: refuse, do not read
    # the unobserved days as "no purchase".
    # An importer records the events' own span beside the published window.
    events = (meta or {}).get("window") if isinstance((meta or {}).get("window"), dict) else {}
    first_event, last_event = int(events.get("events_first_ms") or first_ts), int(events.get("events_last_ms") or last_ts)
    if end <= start or (drawn and last_event - first_event < int(horizon_ms)):
        span_h = (last_event - first_event) / HOUR_MS
        raise DipnValidationError(
            f"the logs' events span {span_h:.1f} h, not more than the {horizon_ms / HOUR_MS:g} h label horizon: "
            "no cut would have observed labels (shorten --longterm-hours or give longer logs)"
        )
    eval_start = max(start, end - int(eval_days * DAY_MS))
    return CutWindow(start, end, max(start, eval_start - int(val_days * DAY_MS)), eval_start)


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
    user_idx: np.ndarray, ts: np.ndarray, window: CutWindow, idle: IdleRule | None = IdleRule()
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Distinct (user, time) moments inside the window in key order: user, time, user-day group and
    cut type (event, or idle: a timer firing before the user's next event; none when ``idle`` is None)."""
    base = min(window.start_ms, int(ts.min())) if len(ts) else window.start_ms
    events = np.unique(user_time_key(user_idx, ts, base))
    keys, kinds = events, np.zeros(len(events), np.uint8)
    if idle is not None and idle.idle_limit_ms >= idle.timer_ms and len(events):
        nxt = np.r_[events[1:], events[-1]]
        same_user = np.r_[key_user(events[1:]) == key_user(events[:-1]), False]
        gap = np.where(same_user, nxt - events, np.int64(idle.idle_limit_ms) + 1)  # last event: no next
        ticks = np.minimum((gap - 1) // idle.timer_ms, idle.idle_limit_ms // idle.timer_ms).clip(min=0)
        origin = np.repeat(events, ticks)
        step = np.arange(len(origin)) - np.repeat(np.cumsum(ticks) - ticks, ticks) + 1
        keys = np.concatenate([events, origin + step * np.int64(idle.timer_ms)])
        kinds = np.r_[kinds, np.ones(len(origin), np.uint8)]
        order = np.argsort(keys, kind="stable")
        keys, kinds = keys[order], kinds[order]
    u, t = key_user(keys), key_time(keys, base)
    inside = (t >= window.start_ms) & (t < window.end_ms)
    u, t, kinds = u[inside], t[inside], kinds[inside]
    return u, t, u * 10_000 + (t - window.start_ms) // DAY_MS, kinds


def draw_counts(
    user_idx: np.ndarray, ts: np.ndarray, window: CutWindow, idle: IdleRule | None = IdleRule()
) -> tuple[int, int]:
    """Moments and user-days of these users: how far their draws advance the two streams."""
    _, _, group, _ = cut_moments(user_idx, ts, window, idle)
    return len(group), len(np.unique(group))


def sample_cuts(
    user_idx: np.ndarray,
    ts: np.ndarray,
    window: CutWindow,
    cuts_per_day: float,
    seed: int,
    position: DrawPosition = DrawPosition(),
    idle: IdleRule | None = IdleRule(),
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pick cut moments (event and idle, see the module docstring), about ``cuts_per_day`` per
    active user-day.

    ``user_idx``/``ts`` are all events of all views of a contiguous range of users (by default
    the whole dataset). Returns (user_idx, ts, cut_type) of the cuts, sorted by user then time. A
    user-day with fewer moments than its quota is cut at every one of them.
    """
    u, t, group, kind = cut_moments(user_idx, ts, window, idle)
    total = len(group) if position.moments_total is None else position.moments_total
    priority = _uniforms(seed, position.moments_before, len(group))
    fixed_share = idle is not None and idle.share is not None
    # random order within each group (and, for a fixed idle share, within each cut type of it)
    order = np.lexsort((priority, kind, group)) if fixed_share else np.lexsort((priority, group))
    g = group[order]
    starts = np.r_[0, np.flatnonzero(g[1:] != g[:-1]) + 1] if len(g) else np.zeros(0, np.int64)
    sizes = np.diff(np.r_[starts, len(g)])
    rank = np.arange(len(g)) - np.repeat(starts, sizes)
    quota = np.repeat(_quota(_uniforms(seed, total + position.user_days_before, len(starts)), cuts_per_day), sizes)
    if fixed_share:
        k = kind[order]
        idle_quota = np.round(quota * idle.share).astype(np.int64)
        events_in_group = np.repeat(np.add.reduceat(k == EVENT_CUT, starts) if len(g) else np.zeros(0, np.int64), sizes)
        type_rank = np.where(k == EVENT_CUT, rank, rank - events_in_group)
        keep_mask = type_rank < np.where(k == EVENT_CUT, quota - idle_quota, idle_quota)
    else:
        keep_mask = rank < quota
    keep = np.sort(order[keep_mask])
    return u[keep], t[keep], kind[keep]


def _uniforms(seed: int, start: int, count: int) -> np.ndarray:
    """Numbers ``start .. start + count`` of the stream ``np.random.default_rng(seed).random``."""
    bits = np.random.PCG64(seed)
    bits.advance(start)
    return np.random.Generator(bits).random(count)


def _quota(uniforms: np.ndarray, cuts_per_day: float) -> np.ndarray:
    """Integer quotas whose mean is ``cuts_per_day`` (fractional rates round at random)."""
    base = np.floor(cuts_per_day)
    return (base + (uniforms < cuts_per_day - base)).astype(np.int64)
