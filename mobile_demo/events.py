"""Typed events: what an app hands the scorer, one class per kind of row of the raw contract.

    Page(ts, page, action)                    swipe view: "open" -> open_page, "leave" -> leave_page
    Swipe(ts, page, x0, y0, x1, y1, duration_ms)   swipe view: swipe (coordinates in screen units)
    Touch(ts, page, x, y)                     swipe view: tap (a touch point, with its coordinates)
    Tap(ts, page, button=None)                tap view: a page tap, or a button tap when button is set
    Browse(ts, action, page, leaf_category, top_category, stay_ms)   browse view (Table 3c)

Each event checks itself (``problem()``, ``validate()``) against ``dipn.features.contract``, the
rules the log readers enforce on whole files, and names the field and the rule it breaks: ``ts``
missing or not integer milliseconds since the epoch (a value that reads as seconds is called so),
an unknown action (with the allowed ones), a field a button tap or a swipe needs, a number that is
no finite number. Constructing an event never raises, so an app in production cannot crash on one;
the scorer decides what a bad one costs (strict: ``InvalidEventError``; lenient: dropped, counted
and logged once per reason). ``event_from_row`` reads a row of a raw log (the replay, or an app
that already logs in the raw contract) into its typed event, keeping the names of fields the
contract does not have, so that ``timestamp`` instead of ``ts`` is reported, not ignored.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

from dipn.features.contract import KIND_FIELD, VIEW_COLUMNS
from dipn.features.timing import MAX_ABS_TS
from mobile_demo.errors import InvalidEventError

EPOCH_2000_MS = 946_684_800_000  # a ts before this is no millisecond time of a phone's event
PAGE_ACTIONS = {"open": "open_page", "leave": "leave_page"}


def _ts_problem(kind: str, ts: Any) -> InvalidEventError | None:
    if ts is None:
        return InvalidEventError(kind, "ts", "missing", "integer milliseconds since the epoch")
    if isinstance(ts, bool) or not isinstance(ts, numbers.Real):
        return InvalidEventError(kind, "ts", "not a number", f"got {type(ts).__name__}")
    try:
        value = float(ts)
    except OverflowError:
        value = math.inf
    if not math.isfinite(value):
        return InvalidEventError(kind, "ts", "not a finite number")
    if value != math.floor(value):
        return InvalidEventError(kind, "ts", "not whole milliseconds", f"got {ts!r}")
    if EPOCH_2000_MS / 1000 <= value < EPOCH_2000_MS:
        return InvalidEventError(kind, "ts", "looks like seconds",
                                 f"{int(value)}; pass milliseconds since the epoch ({int(value) * 1000})")
    if not EPOCH_2000_MS <= value < MAX_ABS_TS:
        return InvalidEventError(kind, "ts", "not milliseconds since the epoch", f"{ts!r} is not after 2000")
    return None


def _number_problem(kind: str, name: str, value: Any, required: bool) -> InvalidEventError | None:
    if value is None:
        return InvalidEventError(kind, name, "missing") if required else None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return InvalidEventError(kind, name, "not a number", f"got {type(value).__name__}")
    try:
        finite = math.isfinite(float(value))
    except OverflowError:
        finite = False
    return None if finite else InvalidEventError(kind, name, "not a finite number")


def _text_problem(kind: str, name: str, value: Any, required: bool) -> InvalidEventError | None:
    if value is None:
        return InvalidEventError(kind, name, "missing") if required else None
    if isinstance(value, str) or (isinstance(value, numbers.Real) and not isinstance(value, bool)):
        return None  # numbers are ids as written (numeric page ids of some logs)
    return InvalidEventError(kind, name, "not text", f"got {type(value).__name__}")


@dataclass(frozen=True)
class Event:
    """The fields every event has; subclasses add theirs. ``unknown_fields``: names a raw row held
    that the contract does not (``event_from_row``), reported by ``problem()``."""

    VIEW: ClassVar[str]
    NUMBERS: ClassVar[tuple[str, ...]] = ()  # number fields, all required
    TEXTS: ClassVar[tuple[str, ...]] = ()  # optional text fields

    ts: int
    page: str
    # Read from a raw row only (``event_from_row``): fields the contract lacks, and a kind value
    # no typed event expresses (an unknown ``type`` / ``event``; "" when missing).
    unknown_fields: tuple[str, ...] = field(default=(), kw_only=True, repr=False)
    raw_kind: str | None = field(default=None, kw_only=True, repr=False)

    @property
    def view(self) -> str:
        return self.VIEW

    @property
    def kind(self) -> str:
        """The value of the view's kind column (``type``, ``event``, ``action``) this event has."""
        raise NotImplementedError

    def _kind_problem(self) -> InvalidEventError | None:
        return None

    def _raw_kind_problem(self) -> InvalidEventError | None:
        if self.raw_kind is None:
            return None
        column, allowed = KIND_FIELD[self.VIEW]
        if not self.raw_kind:
            return InvalidEventError(f"{self.VIEW} row", column, "missing", f"allowed: {', '.join(allowed)}")
        return InvalidEventError(f"{self.VIEW} row", column, f"unknown {column}",
                                 f"{self.raw_kind!r}; allowed: {', '.join(allowed)}")

    def problem(self) -> InvalidEventError | None:
        """The first rule this event breaks, or None."""
        name = type(self).__name__
        problem = _ts_problem(name, self.ts)
        if problem is not None and self.ts is None and self.unknown_fields:
            problem = InvalidEventError(name, "ts", "missing", f"the row has {', '.join(self.unknown_fields)}; the time "
                                        "field is ts, integer milliseconds since the epoch")  # fmt: skip
        if problem is None and self.unknown_fields:
            problem = InvalidEventError(name, self.unknown_fields[0], "unknown field",
                                        f"a {self.VIEW} row has {', '.join(VIEW_COLUMNS[self.VIEW][1:])}")
        problem = problem or self._raw_kind_problem() or self._kind_problem()
        problem = problem or _text_problem(name, "page", self.page, required=False)
        for number in self.NUMBERS:
            problem = problem or _number_problem(name, number, getattr(self, number), required=True)
        for text in self.TEXTS:
            problem = problem or _text_problem(name, text, getattr(self, text), required=False)
        return problem

    def validate(self) -> None:
        """Raise ``InvalidEventError`` naming the field and the rule this event breaks, if any."""
        problem = self.problem()
        if problem is not None:
            raise problem

    def row(self) -> dict[str, Any]:
        """The event as a row of its view's raw contract (what the encoder reads)."""
        out: dict[str, Any] = {"ts": self.ts, KIND_FIELD[self.VIEW][0]: self.kind}
        for f in fields(self):
            if f.name not in ("ts", "action", "unknown_fields", "raw_kind"):
                out[f.name] = getattr(self, f.name)
        return out


@dataclass(frozen=True)
class Page(Event):
    """The app opened or left a page (swipe view ``open_page`` / ``leave_page``)."""

    VIEW: ClassVar[str] = "swipe"
    action: str = "open"

    @property
    def kind(self) -> str:
        return PAGE_ACTIONS.get(self.action, self.action)

    def _kind_problem(self) -> InvalidEventError | None:
        if self.action not in PAGE_ACTIONS:
            return InvalidEventError("Page", "action", "unknown action",
                                     f"{self.action!r}; allowed: {', '.join(PAGE_ACTIONS)}")
        return None


@dataclass(frozen=True)
class Swipe(Event):
    """A swipe from (x0, y0) to (x1, y1) in the device's screen units, lasting ``duration_ms``."""

    VIEW: ClassVar[str] = "swipe"
    NUMBERS: ClassVar[tuple[str, ...]] = ("x0", "y0", "x1", "y1", "duration_ms")
    x0: float | None = None
    y0: float | None = None
    x1: float | None = None
    y1: float | None = None
    duration_ms: float | None = None

    @property
    def kind(self) -> str:
        return "swipe"


@dataclass(frozen=True)
class Touch(Event):
    """A touch point (x, y) in the device's screen units (swipe view ``tap``)."""

    VIEW: ClassVar[str] = "swipe"
    NUMBERS: ClassVar[tuple[str, ...]] = ("x", "y")
    x: float | None = None
    y: float | None = None

    @property
    def kind(self) -> str:
        return "tap"


@dataclass(frozen=True)
class Tap(Event):
    """A tap of the tap view (Table 2b): on a button when ``button`` is given, else on the page."""

    VIEW: ClassVar[str] = "tap"
    TEXTS: ClassVar[tuple[str, ...]] = ("button",)
    button: str | None = None

    @property
    def kind(self) -> str:
        return "page" if self.button is None else "button"

    def _kind_problem(self) -> InvalidEventError | None:
        if self.button == "":
            return InvalidEventError("Tap", "button", "missing", "a button tap names its button; a page tap has None")
        return None


@dataclass(frozen=True)
class Browse(Event):
    """A browse-view action (Table 3c) on a page, with its categories and the stay on the page."""

    VIEW: ClassVar[str] = "browse"
    TEXTS: ClassVar[tuple[str, ...]] = ("leaf_category", "top_category")
    action: str = "browse"
    leaf_category: str | None = None
    top_category: str | None = None
    stay_ms: float | None = None

    @property
    def kind(self) -> str:
        return self.action

    def _kind_problem(self) -> InvalidEventError | None:
        allowed = KIND_FIELD["browse"][1]
        if self.action not in allowed:
            return InvalidEventError("Browse", "action", "unknown action", f"{self.action!r}; allowed: {', '.join(allowed)}")
        return _number_problem("Browse", "stay_ms", self.stay_ms, required=False)


EVENT_TYPES = (Page, Swipe, Touch, Tap, Browse)
_CONTRACT_ONLY = ("user_id", "screen_w", "screen_h")  # row fields an event does not carry: the scorer knows them


def event_from_row(view: str, row: Mapping[str, Any]) -> Event:
    """The typed event of a raw-contract row of ``view`` (never raises: an unusable row becomes an
    event whose ``problem()`` says why). Raises ``InvalidEventError`` only for an unknown view."""
    if view not in KIND_FIELD:
        raise InvalidEventError(str(view), "view", "unknown view", f"views: {', '.join(KIND_FIELD)}")
    if not isinstance(row, Mapping):
        raise InvalidEventError(view, "row", "not a mapping", f"got {type(row).__name__}")
    column, allowed = KIND_FIELD[view]
    kind, get = row.get(column), row.get
    unknown = tuple(str(k) for k in row if k not in VIEW_COLUMNS[view] and row[k] is not None)
    base = {"ts": get("ts"), "page": get("page"), "unknown_fields": unknown,
            "raw_kind": None if isinstance(kind, str) and kind in allowed else str(kind or "")}
    if view == "browse":
        return Browse(**base, action=kind if base["raw_kind"] is None else "browse", leaf_category=get("leaf_category"),
                      top_category=get("top_category"), stay_ms=get("stay_ms"))  # fmt: skip
    if view == "tap":
        button = (get("button") or "") if kind == "button" else None  # "": a button tap without its button
        return Tap(**base, button=button)
    if kind == "swipe":
        return Swipe(**base, x0=get("x0"), y0=get("y0"), x1=get("x1"), y1=get("y1"), duration_ms=get("duration_ms"))
    if kind == "tap":
        return Touch(**base, x=get("x"), y=get("y"))
    return Page(**base, action="leave" if kind == "leave_page" else "open")
