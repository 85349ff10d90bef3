"""Which encoder serves which group."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from dipn.features.browse import encode_browse
from dipn.features.columns import Columns
from dipn.features.manifest import FeatureManifest
from dipn.features.spec import PAD_ID
from dipn.features.swipe import encode_swipe
from dipn.features.tap import encode_tap
from dipn.features.user import encode_history, encode_profile

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
