"""Knobs of the behaviour simulator, with the defaults the calibration in docs/simulator.md used."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from dipn.errors import DipnValidationError

DAY_MS = 86_400_000
HOUR_MS = 3_600_000

# Bumped whenever the same config would produce different rows.
GENERATOR_VERSION = "dipn-sim/1"

# Users per chunk. Random streams are keyed by (seed, chunk index), so this is part of the
# reproducibility contract and deliberately not a config knob.
CHUNK_USERS = 200


@dataclass(frozen=True)
class SimulationConfig:
    """What to simulate. Same config -> same rows, byte for byte.

    Attributes:
        users: number of shoppers ("u000000", "u000001", ...).
        days: simulated days in which samples may be cut, starting at ``start_ms``.
        seed: root of every random stream.
        density: scales sessions per user-day, and with them every view's event counts
            (1.0 = the paper's Table 1: ~42 browse, ~391 tap and ~1583 swipe-view actions per
            user per day). Purchase and window-shopping episodes scale with it too, so the
            share of buying sessions stays; but fewer purchases per day and fewer sessions in
            each considering stretch mean lower label rates below 1 (calibrated at 1.0).
        start_ms: 00:00 UTC of the first simulated day (default 2026-11-02, the run-up to a
            shopping festival).
        horizon_hours: extra simulated time after the last day, so the 24 h labels of the last
            day are observed; events in it are written but no sample should be cut there.
        buyer_share: share of users who can buy at all; the rest never purchase (but still
            window-shop: consider items, read comments, add to cart).
        episodes_per_day: mean purchase episodes per buyer per day at density 1 (a skewed
            per-user rate around this mean).
        window_shopping_per_day: mean abandoned consideration episodes per user per day.
        sessions_per_day: mean app sessions per user per day at density 1 (heavy and light
            users vary around it, log-normally).
        festival_boost: purchase rate in the simulated window over the user's yearly average;
            the pre-period history (365 days before ``start_ms``) is drawn at the lower rate.
        write_truth: also write ``truth_sessions.parquet`` (the latent phase of every session).
            Off by default: it is the answer key, not an input.
    """

    users: int = 1000
    days: int = 3
    seed: int = 0
    density: float = 1.0
    start_ms: int = 1_793_577_600_000  # 2026-11-02 00:00:00 UTC
    horizon_hours: int = 24
    buyer_share: float = 0.75
    episodes_per_day: float = 0.5
    window_shopping_per_day: float = 0.5
    sessions_per_day: float = 8.4
    festival_boost: float = 2.5
    write_truth: bool = False

    def __post_init__(self) -> None:
        if self.users < 1:
            raise DipnValidationError(f"users must be >= 1, got {self.users}")
        if self.days < 1:
            raise DipnValidationError(f"days must be >= 1, got {self.days}")
        if not 0 < self.density <= 10:
            raise DipnValidationError(f"density must be in (0, 10], got {self.density}")
        if self.horizon_hours < 0:
            raise DipnValidationError(f"horizon_hours must be >= 0, got {self.horizon_hours}")
        if not 0 <= self.buyer_share <= 1:
            raise DipnValidationError(f"buyer_share must be in [0, 1], got {self.buyer_share}")
        if self.start_ms < 366 * DAY_MS:
            raise DipnValidationError("start_ms must leave room for a year of pre-period history")
        if self.seed < 0:
            raise DipnValidationError(f"seed must be >= 0, got {self.seed}")

    @property
    def cut_end_ms(self) -> int:
        return self.start_ms + self.days * DAY_MS

    @property
    def end_ms(self) -> int:
        return self.cut_end_ms + self.horizon_hours * HOUR_MS

    @property
    def snapshot_days(self) -> int:
        """History snapshots per user: each simulated day plus the days of the horizon."""
        return self.days + -(-self.horizon_hours // 24)

    def as_dict(self) -> dict:
        return asdict(self)
