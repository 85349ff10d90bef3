"""Swipe-interactive view (Table 3a): open/leave page, swipe and tap actions with screen geometry."""

from __future__ import annotations

import numpy as np

from dipn.errors import DipnValidationError
from dipn.features import buckets
from dipn.features.columns import Columns, category_values, column, string_column
from dipn.features.manifest import FeatureManifest
from dipn.features.spec import PAD_ID, SWIPE_ACTIONS, Group, value_to_id
from dipn.features.timing import time_gaps

_TAP = SWIPE_ACTIONS.index("tap")
_SWIPE = SWIPE_ACTIONS.index("swipe")


def _where_applicable(applies: np.ndarray, values: np.ndarray, name: str) -> np.ndarray:
    """Ids where the field applies, padding elsewhere; NaN where it applies is an error."""
    bad = applies & ~np.isfinite(values)
    if bad.any():
        raise DipnValidationError(f"{name} is missing or not a finite number on {int(bad.sum())} event(s) that need it")
    return np.where(applies, np.nan_to_num(values, nan=0.0), 0.0)


def encode_swipe(columns: Columns, manifest: FeatureManifest, prev_ts: np.ndarray) -> np.ndarray:
    """Raw swipe-view columns -> (n, 14) int32 ids in Table 3a order.

    ``prev_ts`` is each event's predecessor in the same user's swipe stream (NaN for the first);
    see ``timing.previous_timestamps`` (batch) and ``stream.StreamEncoder`` (device).
    """
    cfg = manifest.config
    action = category_values(string_column(columns, "type"), SWIPE_ACTIONS, "swipe action type")
    is_tap, is_swipe = action == _TAP, action == _SWIPE
    w = column(columns, "screen_w").astype(np.float64)
    h = column(columns, "screen_h").astype(np.float64)
    if not ((w > 0) & (h > 0) & np.isfinite(w) & np.isfinite(h)).all():
        raise DipnValidationError("screen_w and screen_h must be positive finite numbers")
    sx, sy = cfg.screen_segments_x, cfg.screen_segments_y

    def coord(name: str, applies: np.ndarray) -> np.ndarray:
        return _where_applicable(applies, column(columns, name).astype(np.float64), name)

    x, y = coord("x", is_tap), coord("y", is_tap)
    x0, y0 = coord("x0", is_swipe), coord("y0", is_swipe)
    x1, y1 = coord("x1", is_swipe), coord("y1", is_swipe)
    duration = coord("duration_ms", is_swipe)
    dx, dy = x1 - x0, y1 - y0

    def only(applies: np.ndarray, values: np.ndarray) -> np.ndarray:
        return np.where(applies, value_to_id(values), PAD_ID)

    gap = time_gaps(column(columns, "ts"), prev_ts)
    page = manifest.vocabulary(cfg.spec(Group.SWIPE, "page")).ids(string_column(columns, "page"))
    out = [
        page,
        value_to_id(action),
        value_to_id(buckets.step_bucket(gap, cfg.time_gap.f_s, cfg.time_gap.f_b)),
        only(is_tap, buckets.screen_segment(x, w, sx)),
        only(is_tap, buckets.screen_segment(y, h, sy)),
        only(is_swipe, buckets.screen_segment(x0, w, sx)),
        only(is_swipe, buckets.screen_segment(y0, h, sy)),
        only(is_swipe, buckets.screen_segment(x1, w, sx)),
        only(is_swipe, buckets.screen_segment(y1, h, sy)),
        only(is_swipe, buckets.signed_length_segment(dx, w, sx)),
        only(is_swipe, buckets.signed_length_segment(dy, h, sy)),
        only(is_swipe, buckets.direction(dx)),
        only(is_swipe, buckets.direction(dy)),
        only(is_swipe, buckets.step_bucket(duration, cfg.duration.f_s, cfg.duration.f_b)),
    ]
    return np.stack(out, axis=-1).astype(np.int32)
