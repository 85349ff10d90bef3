"""Tap-interactive view (Table 3b): page and button taps."""

from __future__ import annotations

import numpy as np

from dipn.errors import DipnValidationError
from dipn.features.columns import Columns, category_values, string_column
from dipn.features.manifest import FeatureManifest
from dipn.features.spec import PAD_ID, TAP_EVENTS, Group, value_to_id

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
