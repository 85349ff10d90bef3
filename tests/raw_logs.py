"""Small hand-made raw logs in the raw contracts, for tests that need exact expectations."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

if TYPE_CHECKING:
    from dipn.samples.store import SampleStore
    from mobile_demo import IntentScorer

DAY = 86_400_000
HOUR = 3_600_000
START = 1_767_225_600_000  # 2026-01-01 00:00 UTC

SWIPE_SCHEMA = {"user_id": pl.Utf8, "ts": pl.Int64, "type": pl.Utf8, "page": pl.Utf8,
                "x": pl.Float64, "y": pl.Float64, "x0": pl.Float64, "y0": pl.Float64,
                "x1": pl.Float64, "y1": pl.Float64, "duration_ms": pl.Float64,
                "screen_w": pl.Float64, "screen_h": pl.Float64}  # fmt: skip


def swipe_rows(user: str, times: list[int], page: str = "Page_Home") -> list[dict]:
    rows = []
    for i, t in enumerate(times):
        kind = ("open_page", "swipe", "tap", "leave_page")[i % 4]
        row = {"user_id": user, "ts": t, "type": kind, "page": page, "x": None, "y": None,
               "x0": None, "y0": None, "x1": None, "y1": None, "duration_ms": None,
               "screen_w": 360.0, "screen_h": 780.0}  # fmt: skip
        if kind == "tap":
            row |= {"x": 100.0, "y": 200.0}
        if kind == "swipe":
            row |= {"x0": 180.0, "y0": 600.0, "x1": 170.0, "y1": 200.0, "duration_ms": 180.0}
        rows.append(row)
    return rows


def write_logs(root: Path, days: int = 2) -> dict:
    """Two users over ``days`` days (+ a 24 h horizon); user a buys at day 1 + 10 h."""
    root.mkdir(parents=True, exist_ok=True)
    purchase = START + DAY + 10 * HOUR
    a_swipes = [START + 60_000 * i for i in range(300)]  # 300 swipe-view events on day 0
    a_swipes += [purchase - 30 * 60_000, purchase - 2 * HOUR]
    b_swipes = [START + DAY + 5 * HOUR + 1000 * i for i in range(5)]
    swipe = pl.DataFrame(swipe_rows("a", sorted(a_swipes)) + swipe_rows("b", b_swipes), schema=SWIPE_SCHEMA)
    tap = pl.DataFrame(
        {"user_id": ["a", "a", "b"], "ts": [START + 5_000, purchase - 2 * HOUR + 1, START + DAY + 5 * HOUR],
         "event": ["page", "button", "page"], "page": ["Page_Home", "Page_Detail", "Page_Home"],
         "button": [None, "Page_Detail_Button-Buy", None]}  # fmt: skip
    )
    browse = pl.DataFrame(
        {"user_id": ["a", "a", "a"], "ts": [START + 10_000, purchase - HOUR, purchase],
         "action": ["browse", "cart", "purchase"], "leaf_category": ["c1", "c1", "c1"],
         "top_category": ["t1", "t1", "t1"], "page": ["Page_Detail", "Page_Cart", "Page_Pay"],
         "stay_ms": [5_000.0, 1_000.0, None]}  # fmt: skip
    )
    history = pl.DataFrame(
        {"user_id": ["a", "a", "b"], "as_of_ts": [START, START + DAY, START],
         "collect_7d": [1, 2, 0], "collect_365d": [10, 11, 0], "cart_7d": [0, 1, 0],
         "cart_365d": [5, 6, 0], "purchase_7d": [0, 0, 0], "purchase_365d": [3, 3, 0]}  # fmt: skip
    )
    profile = pl.DataFrame(
        {"user_id": ["a", "b"], "age_level": [3, 4], "gender": [1, 2], "buyer_star": [5, 1],
         "tm_level": [2, 0], "vip_level": [1, 0], "phone_price_level": [6, 2]}  # fmt: skip
    )
    for name, frame in {"swipe": swipe, "tap": tap, "browse": browse, "history": history, "profile": profile}.items():
        frame.write_parquet(root / f"{name}.parquet")
    meta = {"start_ms": START, "days": days, "cut_end_ms": START + days * DAY, "end_ms": START + (days + 1) * DAY}
    (root / "meta.json").write_text(json.dumps(meta))
    return {"purchase": purchase, **meta}


def user_events_until(raw: Path, user: str, cut: int) -> tuple[list[tuple[int, str, dict]], dict, dict | None, tuple]:
    """What a phone of ``user`` has seen up to ``cut`` in a simulated raw directory: its events of
    every view in time order (each view keeps its own order), its profile, its latest history
    snapshot, and its screen (the swipe log's; a user without swipes gets a phone-sized one)."""
    events = []
    for view in ("swipe", "tap", "browse"):
        frame = pl.read_parquet(raw / f"{view}.parquet").filter((pl.col("user_id") == user) & (pl.col("ts") <= cut))
        events += [(row["ts"], view, row) for row in frame.iter_rows(named=True)]
    events.sort(key=lambda e: e[0])
    profile = pl.read_parquet(raw / "profile.parquet").filter(pl.col("user_id") == user).row(0, named=True)
    history = pl.read_parquet(raw / "history.parquet").filter((pl.col("user_id") == user) & (pl.col("as_of_ts") <= cut))
    latest = history.sort("as_of_ts").row(len(history) - 1, named=True) if len(history) else None
    swipes = pl.read_parquet(raw / "swipe.parquet").filter(pl.col("user_id") == user)
    screen = (swipes["screen_w"][0], swipes["screen_h"][0]) if len(swipes) else (390, 844)
    return events, profile, latest, screen


def device_at_cut(
    store: SampleStore, index: int, raw: Path, bundle: Path, backend: str
) -> tuple[IntentScorer, dict[str, np.ndarray], int]:
    """A device scorer that has seen sample ``index``'s user up to its cut, the sample's batch, and
    its cut: what the tests compare the training tensors with."""
    from mobile_demo import IntentScorer, IntentScorerOptions, ScoringPolicy, event_from_row

    batch = store.batch(np.array([index]))
    user, cut = str(store.users[batch["user_index"][0]]), int(batch["cut_ts"][0])
    events, profile, history, screen = user_events_until(raw, user, cut)
    options = IntentScorerOptions(bundle, format=backend, screen=screen, allow_unsigned=True, strict=True,
                                  scoring_policy=ScoringPolicy(on_event=False, timer_ms=None))  # fmt: skip
    runtime = IntentScorer.create_from_options(options)
    runtime.set_user(history, profile)
    for _, view, row in events:
        runtime.on_event(event_from_row(view, row))
    return runtime, batch, cut
