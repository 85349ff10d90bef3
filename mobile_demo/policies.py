"""When the device scores, and which scores it posts: the two policies an app port mirrors.

Scoring (``ScoringPolicy``, by default the bundle's ``scoring_policy``: the rule the training
samples were cut with, ``dipn.samples.cuts.cut_moments``): a score at the timestamp of every accepted
event of any view (the cut at t holds every event with ts <= t; a second event at the same
millisecond scores that moment again, and the later score supersedes), and, while the app is idle,
at t0 + k * timer_ms after the last event t0, for k = 1 .. floor(idle_limit_ms / timer_ms), each
strictly before the next event. The app drives idle ticks with ``tick(now)`` (from its own timer;
the replay from event time): every due tick moment <= now not yet scored is scored, in order; a
tick the app never drove before the next event arrived is skipped (counted), not scored late.

Posting (``PostingPolicy``): a score is posted iff (1) nothing was posted yet for this user (since
start or ``set_user``), (2) it crosses into or out of the band [band_low, band_high] of p_realtime
(the campaign's coupon thresholds t_l, t_u), (3) p_realtime or p_longterm moved by min_delta or
more since the last posted score, (4) heartbeat_ms passed since the last posted score, or (5) the
scoring policy schedules no score after it (the last idle tick; with no timer, every event score):
then the endpoint's latest score of the user is the device's latest once the device goes quiet. So
the endpoint's "latest score within score_max_age_ms" (``dipn.serving.store.latest_score``) is in
the band exactly when the device's latest score is, and is recent exactly when it is, as long as
heartbeat_ms + timer_ms <= score_max_age_ms (30 min + 1 min against the endpoint's hour):
coupon decisions of the model bucket are those of posting every score (benchmarks/uplink_cost.py
counts them). ``enabled=False`` posts every score.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from mobile_demo.errors import InvalidArgumentError

DEFAULT_TIMER_MS = 60_000  # dipn.samples.cuts.IdleRule's defaults: what an older bundle was cut with
DEFAULT_IDLE_LIMIT_MS = 30 * 60_000


def _whole(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or not minimum <= value < 2**53:
        raise InvalidArgumentError(f"{name} must be a whole number of ms >= {minimum}, got {value!r}")
    return int(value)


def _fraction(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not (
        math.isfinite(float(value)) and 0.0 <= value <= 1.0
    ):
        raise InvalidArgumentError(f"{name} must be a number in [0, 1], got {value!r}")
    return float(value)


@dataclass(frozen=True)
class ScoringPolicy:
    """When to score; ``timer_ms=None``: no idle ticks (samples built without idle cuts)."""

    on_event: bool = True
    timer_ms: int | None = DEFAULT_TIMER_MS
    idle_limit_ms: int = DEFAULT_IDLE_LIMIT_MS

    def __post_init__(self) -> None:
        if not isinstance(self.on_event, bool):
            raise InvalidArgumentError(f"on_event must be True or False, got {self.on_event!r}")
        if self.timer_ms is not None:
            _whole("timer_ms", self.timer_ms, 1)
        _whole("idle_limit_ms", self.idle_limit_ms, 0)

    @property
    def ticks_per_idle(self) -> int:
        """How many idle ticks follow an event when no other event comes."""
        return 0 if self.timer_ms is None else self.idle_limit_ms // self.timer_ms

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, record: Mapping[str, Any]) -> ScoringPolicy:
        """A manifest's ``scoring_policy``; raises ``InvalidArgumentError`` naming a bad field."""
        if not isinstance(record, Mapping):
            raise InvalidArgumentError(f"scoring_policy must be an object, got {type(record).__name__}")
        unknown = sorted(set(record) - {"on_event", "timer_ms", "idle_limit_ms"})
        if unknown:
            raise InvalidArgumentError(f"scoring_policy: unknown field(s) {unknown}")
        return cls(record.get("on_event", True), record.get("timer_ms", DEFAULT_TIMER_MS),
                   record.get("idle_limit_ms", DEFAULT_IDLE_LIMIT_MS))  # fmt: skip


@dataclass(frozen=True)
class PostingPolicy:
    """Which scores leave the phone (the module docstring's rules 1-5)."""

    band_low: float = 0.2  # the campaign's t_l (dipn.serving.config.CampaignConfig)
    band_high: float = 0.4  # the campaign's t_u
    min_delta: float = 0.05
    heartbeat_ms: int = 30 * 60_000
    enabled: bool = True

    def __post_init__(self) -> None:
        _fraction("band_low", self.band_low)
        _fraction("band_high", self.band_high)
        _fraction("min_delta", self.min_delta)
        _whole("heartbeat_ms", self.heartbeat_ms, 0)
        if self.band_low > self.band_high:
            raise InvalidArgumentError(f"band_low must be <= band_high, got {self.band_low} > {self.band_high}")
        if not isinstance(self.enabled, bool):
            raise InvalidArgumentError(f"enabled must be True or False, got {self.enabled!r}")

    def in_band(self, p_realtime: float) -> bool:
        return self.band_low <= p_realtime <= self.band_high

    def reason_to_post(self, p_realtime: float, p_longterm: float, ts: int, last: tuple[float, float, int] | None,
                       quiet_after: bool) -> str | None:  # fmt: skip
        """Why this score is posted (first, band, delta, heartbeat, quiet, every), or None.
        ``last``: (p_realtime, p_longterm, ts) of the last posted score; ``quiet_after``: no score
        is scheduled after this one."""
        if not self.enabled:
            return "every"
        if last is None:
            return "first"
        if self.in_band(p_realtime) != self.in_band(last[0]):
            return "band"
        if abs(p_realtime - last[0]) >= self.min_delta or abs(p_longterm - last[1]) >= self.min_delta:
            return "delta"
        if ts - last[2] >= self.heartbeat_ms:
            return "heartbeat"
        if quiet_after:
            return "quiet"
        return None
