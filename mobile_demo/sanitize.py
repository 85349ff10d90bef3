"""Malformed events never crash the app: each is repaired (clamped) or dropped, and counted.

The contract an event is held to (its fields, their types, the kinds of event and the fields each
kind requires) is the one the log readers enforce, ``dipn.features.contract``; only what to do with
a one-off bad event on a phone (repair or drop, never refuse the whole log) is decided here.

Rules (per event, before encoding):
  * missing ``ts`` or action field, NaN / infinite ``ts``, unknown action type -> dropped;
  * a tap without x/y, a swipe without start/end or duration, NaN coordinates -> dropped;
  * coordinates off the screen -> clamped to its edges; negative durations or stay -> 0;
  * time going backwards (clock change) -> clamped to the view's last timestamp (gap 0);
  * a ts more than ``MAX_AHEAD_MS`` ahead of the device clock -> dropped, so one bad timestamp
    cannot become the view's clock (every later event clamped to it, scores dated centuries ahead);
    a view whose last timestamp is itself that far ahead (the device clock was set back) starts
    its clock again at the next event, counted;
  * a button tap without a button -> dropped; unknown pages, buttons, categories -> the
    encoder's out-of-vocabulary id (counted after encoding);
  * a ts that is not milliseconds since the epoch (negative, beyond 2^53) -> dropped;
  * every other field is coerced to its contract type: a number field that holds no finite
    number, or a string field that holds no string or number, becomes absent (counted); fields
    outside the contract are not copied. So whatever the app hands over, the encoder gets values
    of the types it reads, and a property test (tests/test_fuzz.py) holds it to that;
  * history counts and profile levels (``clean_static``): the contract's fields only, each a
    finite number, anything else 0 (counted).
"""

from __future__ import annotations

import math
import numbers
import time
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

from dipn.features.contract import KIND_FIELD, REQUIRED, STRING_FIELDS, VIEW_COLUMNS
from dipn.features.timing import MAX_ABS_TS
from mobile_demo.errors import InvalidArgumentError

MAX_AHEAD_MS = 5 * 60_000  # how far an event may be ahead of the device clock (the endpoint's window)


def wall_clock_ms() -> float:
    return time.time() * 1000


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except Exception:  # noqa: BLE001 (10**400 overflows; an app object's own __float__ may raise anything)
        return None
    return number if math.isfinite(number) else None


def _text(value: Any) -> str | None:
    """A string field as text: strings as they are, numbers as written (numeric page ids of some
    logs); booleans, lists, dicts and non-finite numbers are no text."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or _number(value) is None:
        return None
    return str(value)


class Sanitizer:
    """Per-device state (last timestamp per view) and counts of every repair and drop.

    ``clock``: the device's time in ms since the epoch (injectable: a replay of old logs passes the
    logs' time); events are bounded by it. ``screen_w``, ``screen_h`` None: no screen (a model
    that reads no swipe view), coordinates are then not clamped. ``last_drop``: (field, rule) of
    the last event ``clean`` dropped, for the scorer's typed error."""

    def __init__(self, screen_w: float | None, screen_h: float | None,
                 clock: Callable[[], float] = wall_clock_ms) -> None:  # fmt: skip
        screen = None
        if screen_w is not None or screen_h is not None:
            screen = (_number(screen_w), _number(screen_h))
            if not all(extent is not None and extent > 0 for extent in screen):
                raise InvalidArgumentError(f"screen must be two finite sizes > 0, got {screen_w!r} x {screen_h!r}")
        self.screen = screen
        self.clock = clock
        self.last_ts: dict[str, float] = {}
        self.counts: Counter[str] = Counter()
        self.last_drop: tuple[str, str] = ("", "")

    def _drop(self, count: str, field: str, rule: str) -> None:
        self.counts[count] += 1
        self.last_drop = (field, rule)

    def clean(self, view: str, event: Mapping[str, Any]) -> dict[str, Any] | None:
        """A repaired copy of the event, or None when it must be dropped."""
        if not isinstance(view, str) or view not in KIND_FIELD:
            return self._drop("dropped_unknown_view", "view", "unknown view")
        if not isinstance(event, Mapping):
            return self._drop("dropped_not_a_mapping", "event", "not a mapping")
        field, allowed = KIND_FIELD[view]
        ts = _number(event.get("ts"))
        kind = event.get(field)
        if ts is None or kind is None:
            return self._drop("dropped_missing_field", "ts" if ts is None else field, "missing")
        if not isinstance(kind, str) or kind not in allowed:
            return self._drop("dropped_unknown_type", field, f"unknown {field}")
        if not 0 <= ts < MAX_ABS_TS:
            return self._drop("dropped_bad_ts", "ts", "not milliseconds since the epoch")
        now = self.clock()
        if ts > now + MAX_AHEAD_MS:
            return self._drop("dropped_future_ts", "ts", f"more than {MAX_AHEAD_MS // 60_000} min ahead of the device clock")
        out = self._typed(view, event)
        out[field] = kind
        if out.get("page") is None:
            out["page"] = ""  # encodes as out-of-vocabulary, not a crash
        for name in REQUIRED.get((view, kind), ()):
            value = out.get(name)
            if value in (None, "") or (name != "button" and _number(value) is None):
                return self._drop("dropped_missing_field", name, f"missing (required for a {kind} row)")
        if view == "swipe" and self.screen is not None:
            self._clamp_coordinates(out, kind)
        for name in ("duration_ms", "stay_ms"):
            if out.get(name) is not None and out[name] < 0:
                out[name] = 0.0
                self.counts[f"clamped_{name}"] += 1
        last = self.last_ts.get(view)
        if last is not None and last > now + MAX_AHEAD_MS:  # the device clock went back: follow it
            last = None
            self.counts["clock_reset"] += 1
        if last is not None and ts < last:
            ts = last
            self.counts["clamped_time_backwards"] += 1
        out["ts"] = int(ts)
        self.last_ts[view] = ts
        return out

    def clean_static(self, group: str, values: Mapping[str, Any]) -> dict[str, float]:
        """History counts or profile levels as the encoder takes them: every contract field a
        finite number; a missing one 0, anything else (a list, a string, NaN, 10**400) 0, counted."""
        if not isinstance(values, Mapping):
            self.counts[f"cleared_{group}"] += 1
            values = {}
        out = {}
        for name in VIEW_COLUMNS[group]:
            if name == "user_id":
                continue
            value = values.get(name)
            number = None if value is None or isinstance(value, bool) else _number(value)
            if number is None and value is not None:
                self.counts[f"cleared_{name}"] += 1
            out[name] = 0.0 if number is None else number
        return out

    def _typed(self, view: str, event: Mapping[str, Any]) -> dict[str, Any]:
        """The contract's fields only, each a finite float, a string, or None (absent)."""
        out: dict[str, Any] = {}
        for name in VIEW_COLUMNS[view]:
            value = event.get(name)
            if value is None or name in ("ts", "user_id", KIND_FIELD[view][0]):  # checked by ``clean``
                continue
            typed = _text(value) if name in STRING_FIELDS else _number(value)
            if typed is None:
                self.counts[f"cleared_{name}"] += 1
            out[name] = typed
        return out

    def _clamp_coordinates(self, event: dict[str, Any], kind: str) -> None:
        w, h = self.screen
        names = {"tap": ("x", "y"), "swipe": ("x0", "y0", "x1", "y1")}.get(kind, ())
        for name in names:
            value = float(event[name])
            extent = w if name.startswith("x") else h
            clamped = min(max(value, 0.0), extent)
            if clamped != value:
                self.counts["clamped_off_screen"] += 1
            event[name] = clamped
        event["screen_w"], event["screen_h"] = w, h
