"""REES46 "eCommerce behavior data from multi category store" (monthly CSVs such as 2019-Oct.csv).

Header ``event_time,event_type,product_id,category_id,category_code,brand,price,user_id,
user_session``; ``event_time`` like ``2019-10-01 00:00:00 UTC``; ``event_type`` in view / cart /
remove_from_cart / purchase; ``category_code`` a dotted taxonomy ("electronics.smartphone"),
empty for many accessories. Several monthly files may be imported together.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from dipn.logs.importers.base import PAGE_LOG, LogFormat, constant
from dipn.logs.importers.layout import Field, Layout

# remove_from_cart has no counterpart among browse / search / collect / cart / purchase.
EVENT_TO_ACTION = {"view": "browse", "cart": "cart", "remove_from_cart": None, "purchase": "purchase"}

LAYOUT = Layout(
    "events",
    (
        Field("event_time", "datetime", formats=("%Y-%m-%d %H:%M:%S UTC",), example="2019-10-01 00:00:00 UTC"),
        Field("event_type", allowed=tuple(EVENT_TO_ACTION)),
        Field("product_id", used=False),
        Field("category_id", required=False),
        Field("category_code", required=False),
        Field("brand", used=False),
        Field("price", used=False),
        Field("user_id"),
        Field("user_session", used=False),
    ),
    header=True,
)


class Rees46(LogFormat):
    name = "rees46"
    title = "eCommerce behavior data from multi category store (REES46 / Open CDP)"
    utc_offset_minutes = 0  # event_time is UTC; the store's own zone is not published

    def layout(self, role: str) -> Layout:
        return LAYOUT

    def events(self, rows: pl.DataFrame, role: str) -> pl.DataFrame:
        return rows.select(
            pl.col("user_id"),
            pl.col("event_time").alias("ts"),
            pl.col("event_type").replace_strict(EVENT_TO_ACTION, return_dtype=pl.String).alias("action"),
            constant(None).alias("item"),
            pl.col("category_id").alias("leaf_category"),
            top_of_code(pl.col("category_code")).alias("top_category"),
            constant(PAGE_LOG).alias("page"),
        )

    def mapping(self) -> dict[str, Any]:
        return {
            "action": {"event_type": EVENT_TO_ACTION},
            "leaf_category": "category_id",
            "top_category": "first segment of category_code (null where category_code is empty)",
            "page": PAGE_LOG,
            "user_id": "user_id",
        }


def top_of_code(code: pl.Expr) -> pl.Expr:
    """"electronics.smartphone" -> "electronics"; null stays null."""
    first = code.str.split_exact(".", 1).struct.field("field_0").str.strip_chars()
    return pl.when(first != "").then(first)
