"""History snapshots (Table 3d) derived from the imported log itself.

One snapshot per user and per day on which the user has an event, taken at that day's 00:00 in
the market's time zone: the user's collect / cart / purchase counts in the 7 and 365 days before
it. A cut on day D reads the latest snapshot at or before it, which is D's own, so no cut sees
events of its own day and none is missing a snapshot. The counts see only the log: a 365-day
count of a nine-day log counts at most eight days.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from dipn.features.columns import HISTORY_COLUMNS

DAY_MS = 86_400_000
WINDOWS_DAYS = (7, 365)
COUNTED = ("collect", "cart", "purchase")
_DAY_BITS = 32


def snapshots(events: pl.DataFrame, utc_offset_minutes: int) -> pl.DataFrame:
    """``events`` (user_id, ts, action), each user's events together and by time ->
    HISTORY_COLUMNS in the same order."""
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
        return pl.DataFrame(schema={c: pl.String if c == "user_id" else pl.Int64 for c in HISTORY_COLUMNS})
    user = (daily["user_id"] != daily["user_id"].shift(1)).fill_null(True).cum_sum().to_numpy().astype(np.int64)
    day = daily["day"].to_numpy().astype(np.int64)
    first_day = int(day.min())
    keys = (user << _DAY_BITS) | (day - first_day + max(WINDOWS_DAYS))  # sorted, all >= 0
    out: dict[str, pl.Series | np.ndarray] = {
        "user_id": daily["user_id"],
        "as_of_ts": day * DAY_MS - offset_ms,
    }
    for action in COUNTED:
        before = np.r_[0, np.cumsum(daily[action].to_numpy())]  # before[i]: rows 0..i-1
        for window in WINDOWS_DAYS:
            since = np.searchsorted(keys, keys - window, side="left")  # first row >= day - window
            out[f"{action}_{window}d"] = before[np.arange(len(keys))] - before[since]
    frame = pl.DataFrame(out).select(HISTORY_COLUMNS)
    return frame.filter(pl.col("as_of_ts") >= 0)
