"""Retailrocket "ecommerce dataset" (Kaggle): events.csv, plus optional item properties and tree.

``events.csv``: header ``timestamp,visitorid,event,itemid,transactionid``; ``timestamp`` in unix
milliseconds; ``event`` in view / addtocart / transaction; ``transactionid`` only on transactions.
Categories are not in the events: ``item_properties_part1.csv`` / ``_part2.csv`` (header
``timestamp,itemid,property,value``; weekly snapshots) give an item's ``categoryid`` over time,
and ``category_tree.csv`` (header ``categoryid,parentid``; empty parent at a root) the tree.
Without the properties files every category is null; without the tree the top category is.
Files are told apart by their headers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl

from dipn.logs.importers.base import PAGE_LOG, LogFormat, RowReader, constant
from dipn.logs.importers.layout import Field, Layout
from dipn.logs.importers.lines import first_line
from dipn.logs.readers import RawDataError

EVENT_TO_ACTION = {"view": "browse", "addtocart": "cart", "transaction": "purchase"}
CATEGORY_PROPERTY = "categoryid"
_PROPERTY_SCHEMA = {"timestamp": pl.Int64, "itemid": pl.String, "property": pl.String, "value": pl.String}

LAYOUTS = {
    "events": Layout(
        "events",
        (
            Field("timestamp", "int", minimum=0),
            Field("visitorid"),
            Field("event", allowed=tuple(EVENT_TO_ACTION)),
            Field("itemid", required=False),
            Field("transactionid", used=False),
        ),
        header=True,
    ),
    "item_properties": Layout(
        "item_properties",
        (Field("timestamp", "int", minimum=0), Field("itemid"), Field("property"), Field("value", required=False)),
        header=True,
        rest_in_last=True,  # property values are free text
    ),
    "category_tree": Layout("category_tree", (Field("categoryid"), Field("parentid", required=False)), header=True),
}


class Retailrocket(LogFormat):
    name = "retailrocket"
    title = "Retailrocket recommender system dataset"
    utc_offset_minutes = 0  # unix time; the shop's own zone is not published

    def __init__(self) -> None:
        self._item_categories: pl.DataFrame | None = None  # itemid, ts, leaf_category (by ts)
        self._first_category: pl.DataFrame | None = None  # itemid, leaf_category (earliest)
        self._tops: pl.DataFrame | None = None  # leaf_category, top_category
        self._sources: dict[str, bool] = {"item_properties": False, "category_tree": False}

    def role_of(self, path: Path) -> str:
        header = tuple(name.strip().strip('"') for name in first_line(path).split(","))
        for role, layout in LAYOUTS.items():
            if set(layout.names) <= set(header):
                return role
        known = "; ".join(f"{role}: {','.join(layout.names)}" for role, layout in LAYOUTS.items())
        raise RawDataError(path, f"not a Retailrocket file: header {list(header)} matches none of {known}",
                           rule="unknown_file", line=1)  # fmt: skip

    def layout(self, role: str) -> Layout:
        return LAYOUTS[role]

    def prepare(self, side_files: dict[str, list[Path]], read: RowReader) -> None:
        properties = side_files.get("item_properties", [])
        if properties:
            parts = [_category_rows(rows) for path in properties for rows in read(path, "item_properties")]
            table = pl.concat([_category_rows(pl.DataFrame(schema=_PROPERTY_SCHEMA)), *parts])
            self._item_categories = table.unique(["itemid", "ts"], keep="last", maintain_order=True).sort("ts")
            self._first_category = self._item_categories.group_by("itemid").agg(pl.col("leaf_category").first())
            self._sources["item_properties"] = True
        trees = [rows for path in side_files.get("category_tree", []) for rows in read(path, "category_tree")]
        if trees:
            self._tops = top_categories(pl.concat(trees))
            self._sources["category_tree"] = True

    def events(self, rows: pl.DataFrame, role: str) -> pl.DataFrame:
        return rows.select(
            pl.col("visitorid").alias("user_id"),
            pl.col("timestamp").alias("ts"),
            pl.col("event").replace_strict(EVENT_TO_ACTION, return_dtype=pl.String).alias("action"),
            pl.col("itemid").alias("item"),
            constant(None).alias("leaf_category"),
            constant(None).alias("top_category"),
            constant(PAGE_LOG).alias("page"),
        )

    def resolve(self, events: pl.DataFrame) -> pl.DataFrame:
        """Leaf: the item's categoryid in force at the event (the latest snapshot at or before it,
        else the earliest one); top: the root of that category in the tree."""
        if self._item_categories is None or self._first_category is None:
            return events
        order = pl.int_range(pl.len(), dtype=pl.UInt32).alias("__position")
        by_time = events.drop("leaf_category").with_columns(order).sort("ts")
        joined = by_time.join_asof(self._item_categories, on="ts", by_left="item", by_right="itemid",
                                   strategy="backward", check_sortedness=False)  # fmt: skip
        earliest = joined.join(self._first_category.rename({"leaf_category": "__first"}),
                               left_on="item", right_on="itemid", how="left")  # fmt: skip
        out = earliest.with_columns(pl.coalesce("leaf_category", "__first").alias("leaf_category"))
        if self._tops is not None:
            out = out.drop("top_category").join(self._tops, on="leaf_category", how="left")
        return out.sort("__position").select(events.columns)

    def mapping(self) -> dict[str, Any]:
        return {
            "action": {"event": EVENT_TO_ACTION},
            "leaf_category": "the item's categoryid in item_properties at the event's time"
            + ("" if self._sources["item_properties"] else " (no item_properties file given: null)"),
            "top_category": "root of the leaf in category_tree"
            + ("" if self._sources["category_tree"] and self._sources["item_properties"] else " (not given: null)"),
            "page": PAGE_LOG,
            "user_id": "visitorid",
        }


def _category_rows(rows: pl.DataFrame) -> pl.DataFrame:
    """item_properties rows -> (itemid, ts, leaf_category) of the categoryid property."""
    return (
        rows.filter(pl.col("property") == CATEGORY_PROPERTY)
        .select(pl.col("itemid"), pl.col("timestamp").alias("ts"), pl.col("value").alias("leaf_category"))
        .drop_nulls()
    )


def top_categories(tree: pl.DataFrame) -> pl.DataFrame:
    """categoryid -> the root above it (itself for a root); a cycle stops the walk where it closes."""
    parent = dict(zip(tree["categoryid"].to_list(), tree["parentid"].to_list(), strict=True))
    tops: dict[str, str] = {}
    for category in parent:
        seen, node = {category}, category
        while parent.get(node) is not None and parent[node] not in seen:
            node = parent[node]
            seen.add(node)
        tops[category] = node
    return pl.DataFrame({"leaf_category": list(tops), "top_category": list(tops.values())},
                        schema={"leaf_category": pl.String, "top_category": pl.String})  # fmt: skip
