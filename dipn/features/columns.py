"""Raw column names of each view (DESIGN.md section 2), as the encoder reads them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from dipn.errors import DipnValidationError


@dataclass(frozen=True)
class Factorized:
    """A string column as distinct values plus codes (-1 = absent).

    Columnar readers (Polars, Arrow dictionaries) hand strings over in this form, so a 10-million
    row column is mapped through a vocabulary by looking up each distinct value once.
    """

    categories: np.ndarray
    codes: np.ndarray

    def __len__(self) -> int:
        return len(self.codes)

    def take(self, index: np.ndarray) -> Factorized:
        return Factorized(self.categories, self.codes[index])


def factorize(values: np.ndarray | Factorized) -> Factorized:
    """Any string column (None / NaN / "" = absent) -> ``Factorized``."""
    if isinstance(values, Factorized):
        return values
    arr = np.asarray(values, dtype=object).ravel()
    try:
        missing = is_missing_string(arr)
        uniq, inverse = np.unique(np.where(missing, "", arr).astype(str), return_inverse=True)
    except (TypeError, ValueError) as exc:  # a list or a dict among the values
        raise DipnValidationError(f"a string column holds a value that is not a string ({exc})") from None
    return Factorized(uniq, np.where(missing, -1, inverse).astype(np.int64))


Columns = Mapping[str, "np.ndarray | Factorized"]

SWIPE_COLUMNS = (
    "user_id", "ts", "type", "page", "x", "y", "x0", "y0", "x1", "y1", "duration_ms",
    "screen_w", "screen_h",
)  # fmt: skip
TAP_COLUMNS = ("user_id", "ts", "event", "page", "button")
BROWSE_COLUMNS = (
    "user_id", "ts", "action", "leaf_category", "top_category", "page", "stay_ms",
)  # fmt: skip
HISTORY_COLUMNS = (
    "user_id", "as_of_ts", "collect_7d", "collect_365d", "cart_7d", "cart_365d",
    "purchase_7d", "purchase_365d",
)  # fmt: skip
PROFILE_COLUMNS = (
    "user_id", "age_level", "gender", "buyer_star", "tm_level", "vip_level", "phone_price_level",
)  # fmt: skip

VIEW_COLUMNS = {
    "swipe": SWIPE_COLUMNS,
    "tap": TAP_COLUMNS,
    "browse": BROWSE_COLUMNS,
    "history": HISTORY_COLUMNS,
    "profile": PROFILE_COLUMNS,
}


def column(columns: Columns, name: str) -> np.ndarray:
    """A numeric column: integer or float numbers as given; anything else (strings, None, Python
    objects from a device or a JSON log) is converted to float64 (None -> NaN) or refused, naming
    the column, so that no encoder ever meets a value numpy cannot compute with."""
    try:
        values = columns[name]
    except KeyError:
        raise DipnValidationError(f"missing raw column {name!r}") from None
    try:
        arr = np.asarray(values)
        return arr if arr.dtype.kind in "biuf" else arr.astype(np.float64)
    except (TypeError, ValueError, OverflowError) as exc:
        raise DipnValidationError(f"raw column {name!r} must hold numbers ({exc})") from None


def string_column(columns: Columns, name: str) -> Factorized:
    try:
        return factorize(columns[name])
    except KeyError:
        raise DipnValidationError(f"missing raw column {name!r}") from None


def category_values(values: Factorized, categories: tuple[str, ...], what: str) -> np.ndarray:
    """A fixed enumeration (action type, tap event, browse action) -> 0-based values."""
    lookup = {c: i for i, c in enumerate(categories)}
    present = np.unique(values.codes)
    if (present < 0).any():
        raise DipnValidationError(f"{what} is missing; expected one of {list(categories)}")
    unknown = [str(values.categories[c]) for c in present if str(values.categories[c]) not in lookup]
    if unknown:
        raise DipnValidationError(f"unknown {what} {unknown[:5]}; expected one of {list(categories)}")
    mapped = np.array([lookup.get(str(c), 0) for c in values.categories], dtype=np.int32)
    return mapped[values.codes] if len(mapped) else np.zeros(len(values), dtype=np.int32)


def is_missing_string(values: np.ndarray) -> np.ndarray:
    """None, NaN and empty strings all mean "absent" (CSV, JSON and Parquet spell it differently)."""
    arr = np.asarray(values, dtype=object)
    flags = [v is None or v != v or v == "" for v in arr.ravel().tolist()]
    return np.array(flags, dtype=bool).reshape(arr.shape)
