"""The encoders of every group, raw columns -> int32 ids: the swipe view (Table 3a), the tap view
(3b), the browse view (3c), history counts (3d) and profile levels (3e), and which serves which group.

Training (``dipn.samples.build``), the golden vectors (``dipn.bundle``) and the phone
(``dipn.features.stream``) call these and nothing else, so an id means the same on all three.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from dipn.errors import DipnValidationError
from dipn.features import buckets
from dipn.features.columns import Columns, category_values, column, string_column
from dipn.features.manifest import FeatureManifest
from dipn.features.spec import BROWSE_ACTIONS, PAD_ID, SWIPE_ACTIONS, TAP_EVENTS, Group, value_to_id
from dipn.features.timing import checked_timestamps, time_gaps

# The swipe-interactive view (Table 3a): open/leave page, swipe and tap actions with screen geometry.
_SWIPE_TAP = SWIPE_ACTIONS.index("tap")
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
    is_tap, is_swipe = action == _SWIPE_TAP, action == _SWIPE
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


# The tap-interactive view (Table 3b): page and button taps.
_BUTTON = TAP_EVENTS.index("button")


def encode_tap(columns: Columns, manifest: FeatureManifest, prev_ts: np.ndarray) -> np.ndarray:
    """Raw tap-view columns -> (n, 3) int32 ids: event, page, button (padding for page taps).

    ``prev_ts`` is accepted for a uniform signature: Table 3b has no time feature.
    """
    cfg = manifest.config
    event = category_values(string_column(columns, "event"), TAP_EVENTS, "tap event")
    is_button = event == _BUTTON
    page = manifest.vocabulary(cfg.spec(Group.TAP, "page")).ids(string_column(columns, "page"))
    button_col = string_column(columns, "button")
    if (is_button & (button_col.codes < 0)).any():
        raise DipnValidationError("button is missing on a button tap")
    button = manifest.vocabulary(cfg.spec(Group.TAP, "button")).ids(button_col)
    button = np.where(is_button, button, PAD_ID)
    return np.stack([value_to_id(event), page, button], axis=-1).astype(np.int32)


# The browse-interactive view (Table 3c): browse, search, collect, cart and purchase actions.
def encode_browse(columns: Columns, manifest: FeatureManifest, prev_ts: np.ndarray) -> np.ndarray:
    """Raw browse-view columns -> (n, 6) int32 ids: type, leaf and top category, page, stay, hour.

    ``prev_ts`` is accepted for a uniform signature: Table 3c has no gap feature.
    """
    cfg = manifest.config

    def vocab_ids(name: str) -> np.ndarray:
        return manifest.vocabulary(cfg.spec(Group.BROWSE, name)).ids(string_column(columns, name))

    action = category_values(string_column(columns, "action"), BROWSE_ACTIONS, "browse action")
    stay = np.nan_to_num(column(columns, "stay_ms").astype(np.float64), nan=0.0)
    hour = buckets.hour_of_day(checked_timestamps(column(columns, "ts")), cfg.utc_offset_minutes)
    out = [
        value_to_id(action),
        vocab_ids("leaf_category"),
        vocab_ids("top_category"),
        vocab_ids("page"),
        value_to_id(buckets.stay_time_bucket(stay)),
        value_to_id(hour),
    ]
    return np.stack(out, axis=-1).astype(np.int32)


# Per-user static groups: history counts (Table 3d) and profile levels (Table 3e).
def encode_history(columns: Columns, manifest: FeatureManifest) -> np.ndarray:
    """History snapshot rows -> (n, 6) int32 ids of capped counts."""
    specs = manifest.config.group(Group.HISTORY)
    out = [value_to_id(buckets.capped_count(column(columns, s.source), s.vocab_size)) for s in specs]
    return np.stack(out, axis=-1).astype(np.int32)


def encode_profile(columns: Columns, manifest: FeatureManifest) -> np.ndarray:
    """Profile rows -> (n, 6) int32 ids of clipped levels."""
    specs = manifest.config.group(Group.PROFILE)
    out = [value_to_id(buckets.clipped_level(column(columns, s.source), s.vocab_size)) for s in specs]
    return np.stack(out, axis=-1).astype(np.int32)


# Which encoder serves which group.
SequenceEncoder = Callable[[Columns, FeatureManifest, np.ndarray], np.ndarray]


def _with_cut_columns(view: str, encode: SequenceEncoder) -> SequenceEncoder:
    """A view's encoder writing rows of the view's full width: the columns only the cut decides
    (``FeatureConfig.at_cut_columns``: the step age) hold padding until ``inputs_at_cut`` fills them,
    so a stored event, a ring buffer row and a model input have one layout."""

    def encode_rows(columns: Columns, manifest: FeatureManifest, prev_ts: np.ndarray) -> np.ndarray:
        cfg = manifest.config
        event = encode(columns, manifest, prev_ts)
        at_cut = cfg.at_cut_columns(view)
        if not at_cut:
            return event
        rows = np.full((len(event), cfg.width(view)), PAD_ID, np.int32)
        rows[:, [c for c in range(cfg.width(view)) if c not in at_cut]] = event
        return rows

    encode_rows.__doc__ = encode.__doc__
    return encode_rows


SEQUENCE_ENCODERS: dict[str, SequenceEncoder] = {
    "swipe": _with_cut_columns("swipe", encode_swipe),
    "tap": _with_cut_columns("tap", encode_tap),
    "browse": _with_cut_columns("browse", encode_browse),
}
STATIC_ENCODERS = {"history": encode_history, "profile": encode_profile}
