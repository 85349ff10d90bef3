"""The raw event contract, declared once: every view's columns, types and rules.

The readers of logs (``dipn.logs.readers``) enforce it on whole files, the device's sanitizer
(``mobile_demo.sanitize``) on one event at a time, and the encoder reads the columns it names; so a
column or a rule changed here changes for all three. Timestamps are integer milliseconds since the
epoch; user ids are read as strings so that the views join whatever the source used.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

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

RAW_VIEWS = tuple(SCHEMAS)  # the five raw views: three event sequences, two per-user tables
TIME_COLUMN = {"swipe": "ts", "tap": "ts", "browse": "ts", "history": "as_of_ts"}
VIEW_COLUMNS = {view: tuple(rule.name for rule in rules) for view, rules in SCHEMAS.items()}

# Per event view: the column that says what kind of event a row is, and its closed set of values.
KIND_FIELD = {view: next((r.name, r.allowed) for r in SCHEMAS[view] if r.allowed is not None)
              for view in ("swipe", "tap", "browse")}  # fmt: skip
# (view, kind) -> the columns an event of that kind must have (``CONDITIONAL_REQUIRED`` by kind).
REQUIRED = {(view, equals): required for view, column, equals, required in CONDITIONAL_REQUIRED
            if column == KIND_FIELD[view][0]}  # fmt: skip
STRING_FIELDS = frozenset(r.name for rules in SCHEMAS.values() for r in rules if r.dtype == "str")
