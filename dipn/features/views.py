"""Which encoder serves which group."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from dipn.features.browse import encode_browse
from dipn.features.columns import Columns
from dipn.features.manifest import FeatureManifest
from dipn.features.swipe import encode_swipe
from dipn.features.tap import encode_tap
from dipn.features.user import encode_history, encode_profile

SequenceEncoder = Callable[[Columns, FeatureManifest, np.ndarray], np.ndarray]

SEQUENCE_ENCODERS: dict[str, SequenceEncoder] = {
    "swipe": encode_swipe,
    "tap": encode_tap,
    "browse": encode_browse,
}
STATIC_ENCODERS = {"history": encode_history, "profile": encode_profile}
