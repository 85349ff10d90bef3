"""Bounded per-view buffers of encoded events, O(1) to append and O(1) to read as a window.

Each row is written twice, at ``i`` and ``i + length``, so the last ``length`` rows are always one
contiguous slice: the model's left-padded input without a copy or a reorder.
"""

from __future__ import annotations

import numpy as np


class ViewBuffer:
    def __init__(self, length: int, width: int, dtype: type = np.int32, fill: int = 0) -> None:
        self.length = length
        self._rows = np.full((2 * length, width), fill, dtype=dtype)
        self._next = 0  # slot of the next row, in [0, length)

    def append(self, row: np.ndarray) -> None:
        i = self._next
        self._rows[i] = row
        self._rows[i + self.length] = row
        self._next = (i + 1) % self.length

    def window(self) -> np.ndarray:
        """(length, width) rows, oldest first, ``fill`` rows on the left until the buffer is full."""
        return self._rows[self._next : self._next + self.length]
