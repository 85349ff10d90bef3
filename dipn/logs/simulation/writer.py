"""Chunked Parquet writing: one file per view, one row group per chunk of users.

Columns and their order come from ``dipn.features.contract.SCHEMAS``; strings are built from integer
codes and fixed name tables (Arrow materialises the strings), NaN / negative codes become nulls.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from dipn.logs.simulation import catalog as cat
from dipn.logs.simulation.config import SimulationConfig
from dipn.logs.simulation.history import daily_counts, snapshots
from dipn.logs.simulation.sessions import Chunk
from dipn.features.contract import SCHEMAS, VIEW_COLUMNS
from dipn.features.spec import BROWSE_ACTIONS, SWIPE_ACTIONS, TAP_EVENTS

COMPRESSION = "zstd"
TRUTH_FILE = "truth_sessions.parquet"
_ARROW = {"int": pa.int64(), "float": pa.float64(), "str": pa.string()}
_GEOMETRY = ("x", "y", "x0", "y0", "x1", "y1", "duration_ms")


def arrow_schema(view: str) -> pa.Schema:
    return pa.schema([pa.field(r.name, _ARROW[r.dtype], nullable=r.nullable) for r in SCHEMAS[view]])


def strings(codes: np.ndarray, names: list[str] | tuple[str, ...]) -> pa.Array:
    """Codes into ``names`` -> a string array; negative codes are nulls."""
    codes = np.asarray(codes)
    missing = codes < 0
    mask = missing if missing.any() else None
    indices = pa.array(np.where(missing, 0, codes).astype(np.int32), mask=mask)
    dictionary = pa.array(list(names), pa.string())
    return pa.DictionaryArray.from_arrays(indices, dictionary).cast(pa.string())


def floats(values: np.ndarray) -> pa.Array:
    """float64, NaN written as null."""
    values = np.asarray(values, dtype=np.float64)
    nan = np.isnan(values)
    return pa.array(values, pa.float64(), mask=nan if nan.any() else None)


def ints(values: np.ndarray) -> pa.Array:
    return pa.array(np.asarray(values, dtype=np.int64), pa.int64())


def chunk_columns(
    config: SimulationConfig, c: Chunk, ids: list[str]
) -> dict[str, dict[str, pa.Array]]:
    """One chunk of every view as Arrow columns."""
    s, t, b = c.swipe, c.tap, c.browse
    w, h = c.shoppers.screen_w, c.shoppers.screen_h
    hist = snapshots(config, c.shoppers.pre_counts, daily_counts(config, len(ids), b))
    prof = c.shoppers.profile
    return {
        "swipe": {
            "user_id": strings(s["user"], ids), "ts": ints(s["ts"]),
            "type": strings(s["type"], SWIPE_ACTIONS), "page": strings(s["page"], cat.PAGE_NAMES),
            **{k: floats(s[k]) for k in _GEOMETRY},
            "screen_w": floats(w[s["user"]]), "screen_h": floats(h[s["user"]]),
        },
        "tap": {
            "user_id": strings(t["user"], ids), "ts": ints(t["ts"]),
            "event": strings(t["event"], TAP_EVENTS), "page": strings(t["page"], cat.PAGE_NAMES),
            "button": strings(t["button"], cat.BUTTON_NAMES),
        },
        "browse": {
            "user_id": strings(b["user"], ids), "ts": ints(b["ts"]),
            "action": strings(b["action"], BROWSE_ACTIONS),
            "leaf_category": strings(b["leaf"], cat.LEAF_NAMES),
            "top_category": strings(b["top"], cat.TOP_NAMES),
            "page": strings(b["page"], cat.BROWSE_PAGE_NAMES), "stay_ms": floats(b["stay_ms"]),
        },
        "history": {
            "user_id": strings(hist.pop("user"), ids), **{k: ints(v) for k, v in hist.items()},
        },
        "profile": {
            "user_id": strings(np.arange(len(ids)), ids),
            **{name: ints(prof[:, j]) for j, name in enumerate(VIEW_COLUMNS["profile"][1:])},
        },
    }  # fmt: skip


def truth_columns(c: Chunk, ids: list[str]) -> dict[str, pa.Array]:
    """The latent session table (user, start, end, phase 0/1/2, orders placed, switch visit)."""
    s = c.sessions
    return {"user_id": strings(s["user"], ids), **{k: ints(v) for k, v in s.items() if k != "user"}}


class ViewWriters:
    """Open Parquet writers for the views; ``write`` appends one chunk as one row group."""

    def __init__(self, out_dir: Path, views: tuple[str, ...]) -> None:
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
    """A one-shot table (the latent truth), in the given column order."""
    pq.write_table(pa.table(columns), path, compression=COMPRESSION)
