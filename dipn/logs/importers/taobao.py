"""Alibaba Tianchi "User Behavior Data from Taobao" (UserBehavior.csv), as published.

No header; one line per behaviour: ``user_id,item_id,category_id,behavior_type,timestamp`` with
``behavior_type`` in pv / cart / fav / buy and ``timestamp`` in unix seconds. The data set covers
the nine China days 2017-11-25 .. 2017-12-03 (UTC+8); the few rows outside them are dropped.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from dipn.logs.importers.base import PAGE_LOG, LogFormat, constant
from dipn.logs.importers.layout import Field, Layout

CHINA_UTC_OFFSET_MINUTES = 480
WINDOW_START_MS = 1_511_539_200_000  # 2017-11-25 00:00 UTC+8
WINDOW_DAYS = 9  # through 2017-12-03 23:59:59 UTC+8
BEHAVIOR_TO_ACTION = {"pv": "browse", "fav": "collect", "cart": "cart", "buy": "purchase"}
_LATEST_SECONDS = 10**12  # later "seconds" would overflow as milliseconds: out of any window

LAYOUT = Layout(
    "events",
    (
        Field("user_id"),
        Field("item_id", used=False),
        Field("category_id", required=False),
        Field("behavior_type", allowed=tuple(BEHAVIOR_TO_ACTION)),
        Field("timestamp", "int", minimum=0),
    ),
    header=False,
)


class TaobaoUserBehavior(LogFormat):
    name = "taobao-userbehavior"
    title = "Taobao UserBehavior (Alibaba Tianchi)"
    utc_offset_minutes = CHINA_UTC_OFFSET_MINUTES
    window_ms = (WINDOW_START_MS, WINDOW_START_MS + WINDOW_DAYS * 86_400_000)

    def layout(self, role: str) -> Layout:
        return LAYOUT

    def events(self, rows: pl.DataFrame, role: str) -> pl.DataFrame:
        seconds = pl.col("timestamp")
        return rows.select(
            pl.col("user_id"),
            pl.when(seconds < _LATEST_SECONDS).then(seconds * 1000).alias("ts"),
            pl.col("behavior_type").replace_strict(BEHAVIOR_TO_ACTION, return_dtype=pl.String).alias("action"),
            constant(None).alias("item"),
            pl.col("category_id").alias("leaf_category"),
            constant(None).alias("top_category"),  # the data set has no category tree
            constant(PAGE_LOG).alias("page"),
        )

    def mapping(self) -> dict[str, Any]:
        return {
            "action": {"behavior_type": BEHAVIOR_TO_ACTION},
            "leaf_category": "category_id",
            "top_category": None,
            "page": PAGE_LOG,
            "user_id": "user_id",
        }
