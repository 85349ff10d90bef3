"""Raw event contracts (DESIGN.md section 2): columns, types and the rules a reader enforces.

Timestamps are integer milliseconds since the epoch; user ids are read as strings so that the
views join whatever the source used.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from dipn.features.columns import VIEW_COLUMNS
from dipn.features.spec import BROWSE_ACTIONS, SWIPE_ACTIONS, TAP_EVENTS

Dtype = Literal["int", "float", "str"]


@dataclass(frozen=True)
class ColumnRule:
    name: str
    dtype: Dtype
    nullable: bool = False  # may a row leave it empty?
    minimum: float | None = None  # inclusive lower bound for numbers
    allowed: tuple[str, ...] | None = None  # closed set of strings


def _counts(*names: str) -> tuple[ColumnRule, ...]:
    return tuple(ColumnRule(n, "int", minimum=0) for n in names)


SCHEMAS: dict[str, tuple[ColumnRule, ...]] = {
    "swipe": (
        ColumnRule("user_id", "str"),
        ColumnRule("ts", "int", minimum=0),
        ColumnRule("type", "str", allowed=SWIPE_ACTIONS),
        ColumnRule("page", "str"),
        ColumnRule("x", "float", nullable=True, minimum=0),
        ColumnRule("y", "float", nullable=True, minimum=0),
        ColumnRule("x0", "float", nullable=True, minimum=0),
        ColumnRule("y0", "float", nullable=True, minimum=0),
        ColumnRule("x1", "float", nullable=True, minimum=0),
        ColumnRule("y1", "float", nullable=True, minimum=0),
        ColumnRule("duration_ms", "float", nullable=True, minimum=0),
        ColumnRule("screen_w", "float", minimum=1),
        ColumnRule("screen_h", "float", minimum=1),
    ),
    "tap": (
        ColumnRule("user_id", "str"),
        ColumnRule("ts", "int", minimum=0),
        ColumnRule("event", "str", allowed=TAP_EVENTS),
        ColumnRule("page", "str"),
        ColumnRule("button", "str", nullable=True),
    ),
    "browse": (
        ColumnRule("user_id", "str"),
        ColumnRule("ts", "int", minimum=0),
        ColumnRule("action", "str", allowed=BROWSE_ACTIONS),
        ColumnRule("leaf_category", "str", nullable=True),
        ColumnRule("top_category", "str", nullable=True),
        ColumnRule("page", "str"),
        ColumnRule("stay_ms", "float", nullable=True, minimum=0),
    ),
    "history": (
        ColumnRule("user_id", "str"),
        ColumnRule("as_of_ts", "int", minimum=0),
        *_counts("collect_7d", "collect_365d", "cart_7d", "cart_365d", "purchase_7d", "purchase_365d"),
    ),
    "profile": (
        ColumnRule("user_id", "str"),
        *_counts("age_level", "gender", "buyer_star", "tm_level", "vip_level", "phone_price_level"),
    ),
}

# Fields that become required for some rows: (view, when column, equals value, required columns).
CONDITIONAL_REQUIRED: tuple[tuple[str, str, str, tuple[str, ...]], ...] = (
    ("swipe", "type", "tap", ("x", "y")),
    ("swipe", "type", "swipe", ("x0", "y0", "x1", "y1", "duration_ms")),
    ("tap", "event", "button", ("button",)),
)

# Coordinates that must lie on the device's screen: (column, extent column).
ON_SCREEN = (("x", "screen_w"), ("x0", "screen_w"), ("x1", "screen_w"),
             ("y", "screen_h"), ("y0", "screen_h"), ("y1", "screen_h"))  # fmt: skip

VIEWS = tuple(SCHEMAS)
TIME_COLUMN = {"swipe": "ts", "tap": "ts", "browse": "ts", "history": "as_of_ts"}

assert all(tuple(r.name for r in SCHEMAS[v]) == VIEW_COLUMNS[v] for v in VIEWS)
