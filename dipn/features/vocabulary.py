"""String vocabularies (pages, buttons, categories) built from training logs and shipped as JSON."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from dipn.errors import DipnValidationError
from dipn.features.columns import Factorized, factorize
from dipn.features.spec import OOV_ID, PAD_ID


@dataclass(frozen=True)
class Vocabulary:
    """Known values in id order: ``values[i]`` has id ``i + 2`` (0 = padding, 1 = OOV)."""

    values: tuple[str, ...]

    def __post_init__(self) -> None:
        # The vocabulary ships to phones: a NUL ends a C string, so "a\0b" would be "a" in a port.
        bad = next((v for v in self.values if not isinstance(v, str) or "\0" in v), None)
        if bad is not None:
            raise DipnValidationError(f"vocabulary value {bad!r}: values are strings without NUL characters")

    @classmethod
    def build(cls, counts: Counter[str] | Iterable[str], capacity: int, min_count: int = 1) -> Vocabulary:
        """Keep the ``capacity`` most frequent values seen at least ``min_count`` times; ties broken
        by name so builds reproduce. A rarer value encodes as OOV: its few events would train a row
        of its own that mostly memorizes the users who produced them."""
        if min_count < 1:
            raise DipnValidationError(f"a vocabulary's frequency floor must be >= 1, got {min_count}")
        counter = counts if isinstance(counts, Counter) else Counter(counts)
        counter.pop("", None)
        ranked = sorted(((v, n) for v, n in counter.items() if n >= min_count), key=lambda kv: (-kv[1], kv[0]))
        return cls(tuple(v for v, _ in ranked[:capacity]))

    def __len__(self) -> int:
        return len(self.values)

    def ids(self, values: np.ndarray | Factorized) -> np.ndarray:
        """Strings -> ids; unknown strings -> OOV; absent values (no button) -> padding.

        Each distinct string is looked up once: as cheap for a 10-million-row column as its
        distinct values allow, and a single dict probe for one event on a device.
        """
        col = factorize(values)
        index = self._index
        cat_ids = np.fromiter(
            (index.get(str(c), OOV_ID) for c in col.categories),
            dtype=np.int32,
            count=len(col.categories),
        )
        cat_ids = np.append(cat_ids, np.int32(PAD_ID))  # code -1 picks the padding id
        return cat_ids[col.codes]

    def decode(self, ids: np.ndarray) -> list[str]:
        """Ids back to strings, for ``dipn inspect``."""
        out = []
        for i in np.asarray(ids).ravel().tolist():
            if i == PAD_ID:
                out.append("<pad>")
            elif i == OOV_ID:
                out.append("<oov>")
            else:
                out.append(self.values[i - 2])
        return out

    @property
    def _index(self) -> dict[str, int]:
        cached = self.__dict__.get("_index_cache")
        if cached is None:
            cached = {v: i + 2 for i, v in enumerate(self.values)}
            object.__setattr__(self, "_index_cache", cached)
        return cached

    def to_json(self) -> list[str]:
        return list(self.values)

    @classmethod
    def from_json(cls, values: list[str]) -> Vocabulary:
        return cls(tuple(values))
