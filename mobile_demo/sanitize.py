"""Malformed events never crash the app: each is repaired (clamped) or dropped, and counted.

Rules (per event, before encoding):
  * missing ``ts`` or action field, NaN / infinite ``ts``, unknown action type -> dropped;
  * a tap without x/y, a swipe without start/end, NaN coordinates -> dropped;
  * coordinates off the screen -> clamped to its edges; negative durations or stay -> 0;
  * time going backwards (clock change) -> clamped to the view's last timestamp (gap 0);
  * a button tap without a button -> dropped; unknown pages, buttons, categories -> the
    encoder's out-of-vocabulary id (counted after encoding).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping
from typing import Any

from dipn.features.spec import BROWSE_ACTIONS, SWIPE_ACTIONS, TAP_EVENTS

KIND_FIELD = {"swipe": ("type", SWIPE_ACTIONS), "tap": ("event", TAP_EVENTS), "browse": ("action", BROWSE_ACTIONS)}
REQUIRED = {("swipe", "tap"): ("x", "y"), ("swipe", "swipe"): ("x0", "y0", "x1", "y1"), ("tap", "button"): ("button",)}


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


class Sanitizer:
    """Per-device state (last timestamp per view) and counts of every repair and drop."""

    def __init__(self, screen_w: float, screen_h: float) -> None:
        self.screen = (float(screen_w), float(screen_h))
        self.last_ts: dict[str, float] = {}
        self.counts: Counter[str] = Counter()

    def clean(self, view: str, event: Mapping[str, Any]) -> dict[str, Any] | None:
        """A repaired copy of the event, or None when it must be dropped."""
        if view not in KIND_FIELD:
            self.counts["dropped_unknown_view"] += 1
            return None
        field, allowed = KIND_FIELD[view]
        ts = _number(event.get("ts"))
        kind = event.get(field)
        if ts is None or kind is None:
            self.counts["dropped_missing_field"] += 1
            return None
        if kind not in allowed:
            self.counts["dropped_unknown_type"] += 1
            return None
        out = dict(event)
        if "page" not in out or out["page"] in (None, ""):
            out["page"] = ""  # encodes as out-of-vocabulary, not a crash
        for name in REQUIRED.get((view, kind), ()):
            value = out.get(name)
            if value in (None, "") or (name != "button" and _number(value) is None):
                self.counts["dropped_missing_field"] += 1
                return None
        if view == "swipe":
            self._clamp_coordinates(out, kind)
        for name in ("duration_ms", "stay_ms"):
            value = _number(out.get(name))
            if out.get(name) is not None and (value is None or value < 0):
                out[name] = 0.0 if value is not None else None
                self.counts[f"clamped_{name}"] += 1
        last = self.last_ts.get(view)
        if last is not None and ts < last:
            ts = last
            self.counts["clamped_time_backwards"] += 1
        out["ts"] = int(ts)
        self.last_ts[view] = ts
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
