"""Chunked Parquet writing: one file per view, one row group per chunk of users.

Columns and their order come from ``dipn.data.schema.SCHEMAS``; strings are built from integer
codes and a fixed name table (Arrow does the string materialisation), nulls are masks.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from dipn.data.schema import SCHEMAS

_ARROW = {"int": pa.int64(), "float": pa.float64(), "str": pa.string()}
COMPRESSION = "zstd"


def arrow_schema(view: str) -> pa.Schema:
    return pa.schema([pa.field(r.name, _ARROW[r.dtype], nullable=r.nullable) for r in SCHEMAS[view]])


def strings(codes: np.ndarray, names: list[str] | tuple[str, ...] | np.ndarray) -> pa.Array:
    """codes into ``names`` -> a string array; negative codes are nulls."""
    codes = np.asarray(codes)
    missing = codes < 0
    indices = pa.array(np.where(missing, 0, codes).astype(np.int32), mask=missing if missing.any() else None)
    return pa.DictionaryArray.from_arrays(indices, pa.array(list(names), pa.string())).cast(pa.string())


def floats(values: np.ndarray) -> pa.Array:
    """float64 with NaN written as null."""
    values = np.asarray(values, dtype=np.float64)
    nan = np.isnan(values)
    return pa.array(values, pa.float64(), mask=nan if nan.any() else None)


def ints(values: np.ndarray) -> pa.Array:
    return pa.array(np.asarray(values, dtype=np.int64), pa.int64())


class ViewWriters:
    """Open Parquet writers for the views; ``write`` appends one chunk as a row group."""

    def __init__(self, out_dir: Path, views: tuple[str, ...]) -> None:
        self.out_dir = out_dir
        self.rows = {v: 0 for v in views}
        self._schemas = {v: arrow_schema(v) for v in views}
        self._writers = {
            v: pq.ParquetWriter(out_dir / f"{v}.parquet", self._schemas[v], compression=COMPRESSION)
            for v in views
        }

    def write(self, view: str, columns: dict[str, pa.Array]) -> None:
        schema = self._schemas[view]
        table = pa.Table.from_arrays([columns[f.name] for f in schema], schema=schema)
        self._writers[view].write_table(table, row_group_size=max(len(table), 1))
        self.rows[view] += len(table)

    def close(self) -> None:
        for w in self._writers.values():
            w.close()

    def __enter__(self) -> ViewWriters:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def write_table(path: Path, columns: dict[str, pa.Array]) -> None:
    """A small one-shot table (the latent truth), in the given column order."""
    pq.write_table(pa.table(columns), path, compression=COMPRESSION)
