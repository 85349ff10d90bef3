"""YOOCHOOSE data of the RecSys Challenge 2015: yoochoose-clicks.dat and yoochoose-buys.dat.

No headers. Clicks: ``session,timestamp,item,category``; buys: ``session,timestamp,item,price,
quantity``; timestamps in ISO 8601 UTC (``2014-04-07T10:51:09.277Z``). A session stands for a
user. The clicks' ``category`` is the context of the click: ``S`` a special offer, ``0`` unknown,
``1``..``12`` a real category, any other number a brand. yoochoose-test.dat has the clicks'
layout. Files are told apart by the number of fields on their first line (4 clicks, 5 buys).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl

from dipn.logs.importers.base import PAGE_LOG, LogFormat, constant
from dipn.logs.importers.layout import Field, Layout
from dipn.logs.importers.lines import first_line
from dipn.logs.readers import RawDataError

ISO_FORMATS = ("%Y-%m-%dT%H:%M:%S%.fZ", "%Y-%m-%dT%H:%M:%SZ")
EXAMPLE_TIME = "2014-04-07T10:51:09.277Z"
REAL_CATEGORIES = tuple(str(c) for c in range(1, 13))
CONTEXT_PAGES = {"category": "Page_Category", "special_offer": "Page_SpecialOffer", "brand": "Page_Brand"}


def _time() -> Field:
    return Field("timestamp", "datetime", formats=ISO_FORMATS, example=EXAMPLE_TIME)


LAYOUTS = {
    "clicks": Layout(
        "clicks",
        (Field("session"), _time(), Field("item", required=False),
         Field("category", required=False, pattern=r"S|\d+", example="S, 0, 1..12 or a brand number")),
        header=False,
    ),  # fmt: skip
    "buys": Layout(
        "buys",
        (Field("session"), _time(), Field("item", required=False),
         Field("price", used=False), Field("quantity", used=False)),
        header=False,
    ),  # fmt: skip
}


def context_kind(category: pl.Expr) -> pl.Expr:
    """The published meaning of a click's category field (null for 0 / missing)."""
    return (
        pl.when(category == "S").then(pl.lit("special_offer"))
        .when(category.is_in(REAL_CATEGORIES)).then(pl.lit("category"))
        .when(category.is_not_null() & (category.str.strip_chars_start("0") != "")).then(pl.lit("brand"))
    )  # fmt: skip


class YooChoose(LogFormat):
    name = "yoochoose"
    title = "YOOCHOOSE clicks and buys (RecSys Challenge 2015)"
    utc_offset_minutes = 0  # timestamps are UTC; the shop's own zone is not published
    event_roles = ("clicks", "buys")

    def __init__(self) -> None:
        # item, kind ("category" / "brand"), value, clicks: how often each item was clicked
        # in each real-category and brand context (pass 1); item -> top / leaf after it.
        self._context_counts = pl.DataFrame(schema={"item": pl.String, "kind": pl.String,
                                                    "value": pl.String, "n": pl.UInt32})  # fmt: skip
        self._item_categories: pl.DataFrame | None = None

    def role_of(self, path: Path) -> str:
        fields = first_line(path).count(",") + 1
        for role, layout in LAYOUTS.items():
            if fields == len(layout.fields):
                return role
        raise RawDataError(
            path, f"not a YooChoose file: line 1 has {fields} fields; clicks have 4 "
            f"(session,timestamp,item,category), buys 5 (session,timestamp,item,price,quantity)",
            rule="unknown_file", line=1,
        )  # fmt: skip

    def layout(self, role: str) -> Layout:
        return LAYOUTS[role]

    def events(self, rows: pl.DataFrame, role: str) -> pl.DataFrame:
        if role == "buys":
            action, page, kind, value = "purchase", constant(PAGE_LOG), constant(None), constant(None)
        else:
            kind = context_kind(pl.col("category"))
            action, value = "browse", pl.col("category")
            page = kind.replace_strict(CONTEXT_PAGES, default=PAGE_LOG, return_dtype=pl.String)
        return rows.select(
            pl.col("session").alias("user_id"),
            pl.col("timestamp").alias("ts"),
            constant(action).alias("action"),
            pl.col("item").alias("item"),
            constant(None).alias("leaf_category"),
            constant(None).alias("top_category"),
            page.alias("page"),
            kind.alias("__kind"),
            value.alias("__value"),
        )

    def observe(self, events: pl.DataFrame) -> None:
        seen = (
            events.filter(pl.col("__kind").is_in(["category", "brand"]) & pl.col("item").is_not_null())
            .group_by("item", pl.col("__kind").alias("kind"), pl.col("__value").alias("value"))
            .agg(pl.len().cast(pl.UInt32).alias("n"))
        )
        merged = pl.concat([self._context_counts, seen])
        self._context_counts = merged.group_by("item", "kind", "value").agg(pl.col("n").sum())
        self._item_categories = None

    def resolve(self, events: pl.DataFrame) -> pl.DataFrame:
        """Top: the real category (1..12) the item was clicked in most often; leaf: the brand it
        was clicked under most often (ties: the first in text order). Buys get their item's too."""
        if self._item_categories is None:
            self._item_categories = item_categories(self._context_counts)
        out = events.drop("leaf_category", "top_category").join(
            self._item_categories, on="item", how="left", maintain_order="left"
        )
        return out.select(events.columns)

    def mapping(self) -> dict[str, Any]:
        return {
            "action": {"clicks": "browse", "buys": "purchase"},
            "leaf_category": "the brand the item is most often clicked under (category field > 12)",
            "top_category": "the real category 1..12 the item is most often clicked in",
            "page": {"S": CONTEXT_PAGES["special_offer"], "1..12": CONTEXT_PAGES["category"],
                     "other numbers": CONTEXT_PAGES["brand"], "0 and buys": PAGE_LOG},  # fmt: skip
            "user_id": "session",
        }


def item_categories(counts: pl.DataFrame) -> pl.DataFrame:
    """item -> top_category (most frequent real category), leaf_category (most frequent brand)."""
    best = (
        counts.sort(["item", "kind", "n", "value"], descending=[False, False, True, False])
        .group_by("item", "kind", maintain_order=True).first()
    )  # fmt: skip
    wide = best.pivot(on="kind", index="item", values="value")
    for kind in ("category", "brand"):
        if kind not in wide.columns:
            wide = wide.with_columns(constant(None).alias(kind))
    return wide.select("item", pl.col("brand").alias("leaf_category"), pl.col("category").alias("top_category"))
