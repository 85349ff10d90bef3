"""Polars frames of raw events -> the encoder's numpy columns."""

from __future__ import annotations

import numpy as np
import polars as pl

from dipn.features.columns import Factorized
from dipn.features.contract import SCHEMAS


def factorized(series: pl.Series) -> Factorized:
    """A string column as sorted distinct values plus codes; empty strings and nulls are absent."""
    s = series.cast(pl.Utf8)
    s = pl.select(pl.when(s == "").then(None).otherwise(s)).to_series()
    categories = s.drop_nulls().unique().sort().to_numpy().astype(str)
    codes = s.rank("dense").fill_null(0).cast(pl.Int64).to_numpy() - 1
    return Factorized(categories, codes)


def to_columns(frame: pl.DataFrame, view: str) -> dict[str, np.ndarray | Factorized]:
    """Columns of one view in the encoder's input form; numeric nulls become NaN."""
    out: dict[str, np.ndarray | Factorized] = {}
    for rule in SCHEMAS[view]:
        if rule.name == "user_id":
            continue
        series = frame[rule.name]
        if rule.dtype == "str":
            out[rule.name] = factorized(series)
        elif rule.dtype == "int" and not rule.nullable:
            out[rule.name] = series.cast(pl.Int64).to_numpy()
        else:
            out[rule.name] = series.cast(pl.Float64).fill_null(np.nan).to_numpy()
    return out
