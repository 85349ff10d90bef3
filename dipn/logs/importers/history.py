"""History snapshots (Table 3d) derived from the imported log itself.

A snapshot at day D's 00:00 in the market's time zone holds the user's collect / cart / purchase
counts in the 7 and 365 days before D. A cut on day D reads the latest snapshot at or before it.
Snapshots are taken on the days a count changes: the day after each day with events (its events
enter both windows), 8 and 366 days after it (they leave them); between two such days every count
is constant, so the latest snapshot holds exactly D's counts. Which snapshots exist depends only
on events before them: a cut never learns from a snapshot's presence that the user is active
later that day, and a cut with no event before it in the log reads none (padding). The counts see
only the log: a 365-day count of a nine-day log counts at most eight days.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from dipn.features.contract import VIEW_COLUMNS

DAY_MS = 86_400_000
WINDOWS_DAYS = (7, 365)
COUNTED = ("collect", "cart", "purchase")
_DAY_BITS = 32


def snapshots(events: pl.DataFrame, utc_offset_minutes: int, last_day: int | None = None) -> pl.DataFrame:
    """``events`` (user_id, ts, action), each user's events together and by time ->
    the contract's history columns in their order; no snapshot after ``last_day`` (days since the epoch in
    market time: the log's last day, after which no cut is made)."""
    offset_ms = utc_offset_minutes * 60_000
    daily = (
        events.select(
            pl.col("user_id"),
            ((pl.col("ts") + offset_ms) // DAY_MS).alias("day"),
            *[(pl.col("action") == a).cast(pl.Int64).alias(a) for a in COUNTED],
        )
        .group_by("user_id", "day", maintain_order=True)  # sorted input: (user, day) in order
        .agg(pl.col(a).sum() for a in COUNTED)
    )
    if daily.height == 0:
        return pl.DataFrame(schema={c: pl.String if c == "user_id" else pl.Int64 for c in VIEW_COLUMNS["history"]})
    first_row = (daily["user_id"] != daily["user_id"].shift(1)).fill_null(True).to_numpy()
    user = np.cumsum(first_row).astype(np.int64)
    user_ids = daily["user_id"].to_numpy()[first_row]  # user_ids[u - 1]: the id of user code u
    day = daily["day"].to_numpy().astype(np.int64)
    first_day = int(day.min())
    shift = max(WINDOWS_DAYS)  # keys - window stays inside the user's key range
    keys = (user << _DAY_BITS) | (day - first_day + shift)  # sorted, all >= 0
    changes = np.unique(np.concatenate([keys + 1] + [keys + w + 1 for w in WINDOWS_DAYS]))
    snap_day = (changes & ((1 << _DAY_BITS) - 1)) - shift + first_day
    if last_day is not None:
        changes, snap_day = changes[snap_day <= last_day], snap_day[snap_day <= last_day]
    out: dict[str, pl.Series | np.ndarray] = {
        "user_id": user_ids[(changes >> _DAY_BITS) - 1],
        "as_of_ts": snap_day * DAY_MS - offset_ms,
    }
    for action in COUNTED:
        before = np.r_[0, np.cumsum(daily[action].to_numpy())]  # before[i]: rows 0..i-1
        upto = np.searchsorted(keys, changes, side="left")  # rows of days < the snapshot's day
        for window in WINDOWS_DAYS:
            since = np.searchsorted(keys, changes - window, side="left")  # first row >= day - window
            out[f"{action}_{window}d"] = before[upto] - before[since]
    frame = pl.DataFrame(out).select(VIEW_COLUMNS["history"])
    return frame.filter(pl.col("as_of_ts") >= 0)
