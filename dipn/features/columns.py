"""Raw columns as the encoder reads them: numbers checked, strings factorized, enumerations mapped.

The columns each view has are the contract's (``dipn.features.contract``)."""

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
