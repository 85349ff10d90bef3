"""What one Spark task does: the default engine's steps for the users of one shard.

A task gets every row (all views) of the users of one or more shards, already validated and
numbered: ``__uidx`` the global user index, ``__shard`` = ``__uidx // users_per_shard``,
``__row`` the row's place in its file. It rebuilds the frames the default reader would hold
for those users, counts users from the shard's first (so every array stays shard-sized) and
runs ``dipn.samples.build``'s encoder, cuts, labels and shard writer on them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa

from dipn.features import VIEWS, FeatureManifest
from dipn.features.contract import TIME_COLUMN
from dipn.samples.build import BuildConfig, assemble_samples, encode_view, random_cuts, write_shard
from dipn.samples.cuts import CutWindow, DrawPosition, IdleRule, draw_counts
from dipn.samples.spark.read import ROW, VIEW

UIDX, SHARD = "__uidx", "__shard"
COUNTS_SCHEMA = "shard bigint, moments bigint, user_days bigint"
SHARDS_SCHEMA = "shard bigint, samples bigint, " + ", ".join(f"{v} bigint" for v in VIEWS)

MapFunction = Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]]


@dataclass(frozen=True)
class ShardJob:
    """Everything a task needs besides its rows (pickled into each task)."""

    out_dir: str
    manifest: FeatureManifest
    window: CutWindow
    config: BuildConfig
    base_ms: int
    n_users: int
    views: tuple[str, ...]  # the views whose files exist
    positions: dict[int, DrawPosition] | None  # random cuts: where each shard starts in the stream
    given: dict[int, dict[str, np.ndarray]] | None  # given cuts per shard, users counted from its first

    def users_of(self, shard: int) -> tuple[int, int]:
        first = shard * self.config.users_per_shard
        return first, min(first + self.config.users_per_shard, self.n_users)


def count_draws(window: CutWindow, idle: IdleRule) -> MapFunction:
    """Per shard: moments and user-days, i.e. how far its users advance the cut sampler's streams."""

    def count(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        rows = _rows(batches)
        if rows is None:
            return
        for (shard,), part in rows.filter(pl.col(VIEW).is_in(VIEWS)).group_by(SHARD):
            moments, user_days = draw_counts(part[UIDX].to_numpy(), part["ts"].to_numpy(), window, idle)
            yield pa.RecordBatch.from_pydict({"shard": [shard], "moments": [moments], "user_days": [user_days]})

    return count


def build_shards(job: ShardJob) -> MapFunction:
    """Per shard: write its directory; yield its sample and event counts."""

    def build(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        rows = _rows(batches)
        if rows is None:
            return
        for (shard,), part in rows.group_by(SHARD):
            samples, events = build_shard(job, int(shard), part)
            yield pa.RecordBatch.from_pydict({"shard": [shard], "samples": [samples],
                                              **{v: [events[v]] for v in VIEWS}})  # fmt: skip

    return build


def build_shard(job: ShardJob, shard: int, rows: pl.DataFrame) -> tuple[int, dict[str, int]]:
    """Encode, cut, label and write one shard from all rows of its users (possibly none)."""
    first, last = job.users_of(shard)
    frames = _frames(rows, first, job.views)
    encoded = {v: encode_view(frames, v, job.manifest, job.base_ms) for v in VIEWS}
    if job.given is None:
        position = job.positions[shard] if job.positions else DrawPosition()
        cuts = random_cuts(encoded, job.window, job.config, job.base_ms, position)
    else:
        cuts = job.given[shard]
    samples = assemble_samples(cuts, encoded, frames, job.manifest, last - first, job.window, job.config, job.base_ms)
    samples["user"] = samples["user"] + first
    events = {v: {k: a for k, a in encoded[v].items() if k in ("ids", "ts", "stay")} for v in VIEWS}
    entry = write_shard(Path(job.out_dir), shard, (first, last), events, samples)
    return entry["samples"], {v: len(encoded[v]["ts"]) for v in VIEWS}


def _frames(rows: pl.DataFrame, first: int, views: tuple[str, ...]) -> dict[str, pl.DataFrame]:
    """The default reader's frames for these users: sorted by user, time and file order, with
    ``_uidx`` counted from the shard's first user."""
    frames = {}
    for view in views:
        time = [TIME_COLUMN[view]] if view in TIME_COLUMN else []
        part = rows.filter(pl.col(VIEW) == view).sort([UIDX, *time, ROW])
        frames[view] = part.with_columns((pl.col(UIDX) - first).alias("_uidx"))
    return frames


def _rows(batches: Iterator[pa.RecordBatch]) -> pl.DataFrame | None:
    """All rows of the task's partition (the shards it holds) in one frame; None if it has none."""
    batches = list(batches)
    return pl.from_arrow(pa.Table.from_batches(batches)) if batches else None
