"""Incremental encoding, one event at a time, as a phone does it.

It calls the very batch functions used for training, on one-row columns, with the predecessor
timestamp it remembers; so a stream encoded here and a log encoded in batch give identical ids.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from dipn.errors import DipnValidationError
from dipn.features.contract import VIEW_COLUMNS
from dipn.features.manifest import FeatureManifest
from dipn.features.timing import NO_PREVIOUS, checked_timestamps
from dipn.features.encoders import SEQUENCE_ENCODERS

_SCALARS = (str, int, float, np.integer, np.floating, np.bool_, type(None))


class StreamEncoder:
    """Encodes each arriving event once; O(1) state: the last timestamp per view."""

    def __init__(self, manifest: FeatureManifest, screen_w: float, screen_h: float) -> None:
        self.manifest = manifest
        self.screen = (float(screen_w), float(screen_h))
        self._last_ts: dict[str, float] = {}

    def encode(self, view: str, event: Mapping[str, Any]) -> np.ndarray:
        """One raw event (a dict in the view's raw contract) -> its row of ids."""
        encoder = SEQUENCE_ENCODERS[view]
        columns: dict[str, np.ndarray] = {}
        for name in VIEW_COLUMNS[view]:
            value = event.get(name)
            if name == "screen_w":
                value = self.screen[0] if value is None else value
            elif name == "screen_h":
                value = self.screen[1] if value is None else value
            if not isinstance(value, _SCALARS):  # a list or a dict would become a row, not a value
                raise DipnValidationError(f"{view} field {name!r} is a {type(value).__name__}; expected a number or a string")
            columns[name] = np.array([value], dtype=object)  # numbers are read by ``columns.column``
        if event.get("ts") is None:
            raise DipnValidationError(f"{view} event has no ts")
        checked_timestamps(columns["ts"])  # the tap view has no time feature, but its ts is remembered
        prev = np.array([self._last_ts.get(view, NO_PREVIOUS)], dtype=np.float64)
        ids = encoder(columns, self.manifest, prev)[0]
        self._last_ts[view] = float(event["ts"])
        return ids
