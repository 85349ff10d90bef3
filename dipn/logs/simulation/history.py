"""User history snapshots (Table 3d): collect / cart / purchase counts in the 7 and 365 days
before each day's 00:00, from the pre-period history plus the simulated browse view."""

from __future__ import annotations

import numpy as np

from dipn.logs.simulation.config import DAY_MS, SimulationConfig
from dipn.logs.simulation.sessions import CART, COLLECT, PURCHASE
from dipn.logs.simulation.shoppers import PRE_DAYS

WINDOWS = (7, 365)
COUNTED = (COLLECT, CART, PURCHASE)  # third axis of the daily counts


def daily_counts(
    config: SimulationConfig, n_users: int, browse: dict[str, np.ndarray]
) -> np.ndarray:
    """(n_users, simulated days, 3) collect/cart/purchase counts per simulated day."""
    n_days = -(-(config.end_ms - config.start_ms) // DAY_MS)
    out = np.zeros((n_users, n_days, len(COUNTED)), dtype=np.int64)
    day = (browse["ts"] - config.start_ms) // DAY_MS
    for j, action in enumerate(COUNTED):
        sel = browse["action"] == action
        np.add.at(out, (browse["user"][sel], day[sel], j), 1)
    return out


def snapshots(
    config: SimulationConfig, pre_counts: np.ndarray, sim_counts: np.ndarray
) -> dict[str, np.ndarray]:
    """One row per user and snapshot day, sorted by user then as_of_ts.

    Returns chunk-local ``user``, ``as_of_ts`` and the six count columns.
    """
    n = pre_counts.shape[0]
    timeline = np.concatenate([pre_counts, sim_counts], axis=1)  # oldest day first
    cum = np.concatenate([np.zeros((n, 1, 3), dtype=np.int64), np.cumsum(timeline, axis=1)], axis=1)
    days = np.arange(config.snapshot_days)
    pos = PRE_DAYS + days  # days in the timeline before each snapshot
    out: dict[str, np.ndarray] = {
        "user": np.repeat(np.arange(n), len(days)),
        "as_of_ts": np.tile(config.start_ms + days * DAY_MS, n).astype(np.int64),
    }
    names = ("collect", "cart", "purchase")
    for j, name in enumerate(names):
        for w in WINDOWS:
            counts = cum[:, pos, j] - cum[:, np.maximum(pos - w, 0), j]
            out[f"{name}_{w}d"] = counts.reshape(-1).astype(np.int64)
    return out
