"""The driver of a Spark build: global facts, then one task per shard, then the index.

Global facts need the whole dataset but are small: the sorted user ids, the time range (hence the
cut window), the vocabularies (counts per value over the training period, ranked on the driver
by ``Vocabulary.build`` exactly as the default engine ranks them) and, per shard, how many
moments and user-days come before it (so its cut draws are the whole-dataset run's draws).
The tasks write the shards straight into the staging directory beside the output, so it must be on
a filesystem the driver and every executor see (local disk in local mode, NFS or similar on a
cluster).
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl
import pyarrow as pa
from tqdm.auto import tqdm

from dipn.errors import DipnValidationError
from dipn.features import VIEWS, FeatureManifest, Kind, Vocabulary, vocab_key
from dipn.features.contract import TIME_COLUMN
from dipn.outputs import SAMPLES, replacing
from dipn.samples.build import (
    BuildConfig,
    dataset_info,
    given_cuts,
    window_and_vocabularies,
    write_index,
)
from dipn.samples.cuts import CutWindow, DrawPosition, IdleRule, user_time_key
from dipn.samples.spark.read import BAD_COLUMNS, VIEW, read_reports, read_validated
from dipn.samples.spark.shards import (
    COUNTS_SCHEMA,
    SHARD,
    SHARDS_SCHEMA,
    UIDX,
    ShardJob,
    build_shard,
    build_shards,
    count_draws,
)

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession


def build_samples_spark(
    spark: SparkSession,
    raw_dir: str | Path,
    out_dir: str | Path,
    config: BuildConfig = BuildConfig(),
    manifest: FeatureManifest | None = None,
    progress: bool = True,
    cuts_file: str | Path | None = None,
) -> dict[str, Any]:
    """``dipn.samples.build.build_samples`` on Spark: same arguments, same sample directory, built
    beside ``out_dir`` and renamed into place as well (the executors write into the staging
    directory, so it must lie on a filesystem they all see)."""
    with replacing(Path(out_dir), SAMPLES) as staging:
        return _build(spark, Path(raw_dir), staging, config, manifest, progress, cuts_file)


def _build(
    spark: SparkSession, raw_dir: Path, out_dir: Path, config: BuildConfig, manifest: FeatureManifest | None,
    progress: bool, cuts_file: str | Path | None,
) -> dict[str, Any]:  # fmt: skip
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    started = time.perf_counter()
    steps = tqdm(total=6, desc="build-samples (spark)", unit="step", disable=not progress)

    steps.set_postfix_str("reading")
    judged, files = read_validated(spark, raw_dir)
    if not any(v in files for v in VIEWS):
        raise DipnValidationError(f"{raw_dir}: no swipe, tap or browse log found")
    judged = judged.persist(StorageLevel.MEMORY_AND_DISK)
    reports, errors = read_reports(judged, files)
    if not config.lenient and errors:
        raise errors[0]
    events = judged.filter(F.col("__rule").isNull()).drop(*BAD_COLUMNS)
    steps.update()

    steps.set_postfix_str("indexing users")
    users = _sorted_users(events)
    base_ms, last_ms = _time_range(events)
    window, manifest, config = window_and_vocabularies(
        raw_dir, config, manifest, base_ms, last_ms, cuts_file is None, steps,
        lambda empty, eval_start_ms: _vocabularies(events, empty, eval_start_ms, config.min_count),
    )  # fmt: skip

    steps.set_postfix_str("partitioning by user")
    n_shards = len(range(0, max(len(users), 1), config.users_per_shard))
    by_shard = _by_shard(spark, events, users, config.users_per_shard, n_shards).persist(StorageLevel.MEMORY_AND_DISK)
    positions, given, cut_report = None, None, {}
    if cuts_file is None:
        positions = _draw_positions(by_shard, window, config.idle, n_shards)
    else:
        cuts, cut_report = given_cuts(Path(cuts_file), users, base_ms, last_ms, config)
        given = _given_by_shard(cuts, n_shards, config.users_per_shard, base_ms)
    steps.update()

    steps.set_postfix_str("encoding, cutting, labelling, writing")
    job = ShardJob(str(out_dir.resolve()), manifest, window, config, base_ms, len(users),
                   tuple(files), positions, given)  # fmt: skip
    done = {r["shard"]: r for r in by_shard.mapInArrow(build_shards(job), SHARDS_SCHEMA).collect()}
    empty = pl.from_arrow(by_shard.limit(0).toArrow())
    for shard in sorted(set(range(n_shards)) - set(done)):  # no rows at all: only when there are no users
        samples, counts = build_shard(job, shard, empty)
        done[shard] = {"shard": shard, "samples": samples, **counts}
    by_shard.unpersist()
    judged.unpersist()
    manifest.save(out_dir / "features.json")
    np.save(out_dir / "users.npy", users)
    steps.update()
    steps.close()

    shards = [{"name": f"shard-{s:05d}", "users": list(job.users_of(s)), "samples": int(done[s]["samples"])}
              for s in range(n_shards)]  # fmt: skip
    info = dataset_info(
        raw_dir, config, users=len(users), views_present=sorted(files),
        events={v: int(sum(d[v] for d in done.values())) for v in VIEWS}, window=window,
        read_reports={v: str(r) for v, r in reports.items()},
        cuts={"source": str(cuts_file) if cuts_file else "random", **cut_report}, shards=shards,
    )  # fmt: skip
    info["engine"] = {"name": "spark", "master": spark.sparkContext.master,
                      "spark_version": spark.version, "default_parallelism": spark.sparkContext.defaultParallelism}  # fmt: skip
    return write_index(out_dir, info, started)


def _sorted_users(events: DataFrame) -> np.ndarray:
    """Distinct user ids in the default engine's order (Polars' string sort)."""
    ids = pl.from_arrow(events.select("user_id").distinct().toArrow())["user_id"]
    return ids.sort().to_numpy().astype(str)


def _by_shard(spark: SparkSession, events: DataFrame, users: np.ndarray, users_per_shard: int,
              n_shards: int) -> DataFrame:
    """Rows with their user index and shard, each shard's rows in one partition."""
    from pyspark.sql import functions as F

    index = spark.createDataFrame(pa.table({"user_id": pa.array(users, pa.string()),
                                            UIDX: pa.array(np.arange(len(users)), pa.int64())}))  # fmt: skip
    shard = F.floor(F.col(UIDX) / users_per_shard).cast("bigint")
    return events.join(index, "user_id").withColumn(SHARD, shard).repartitionByRange(n_shards, SHARD)


def _time_range(events: DataFrame) -> tuple[int, int]:
    """First and last timestamp over the views that have one (as the default engine's)."""
    from pyspark.sql import functions as F

    columns = [c for c in dict.fromkeys(TIME_COLUMN.values()) if c in events.columns]
    time = F.coalesce(*[F.col(c) for c in columns])
    timed = events.filter(F.col(VIEW).isin(list(TIME_COLUMN)))
    row = timed.agg(F.min(time).alias("lo"), F.max(time).alias("hi")).first()
    if row["lo"] is None:
        raise DipnValidationError("the logs hold no timed rows (only headers?)")
    return int(row["lo"]), int(row["hi"])


def _vocabularies(events: DataFrame, manifest: FeatureManifest, before_ms: int, min_count: int) -> FeatureManifest:
    """Value counts in the training period, all features in one Spark job, ranked on the driver
    by ``Vocabulary.build`` exactly as the default engine ranks them."""
    from pyspark.sql import functions as F

    specs = [s for s in manifest.config.features if s.kind is Kind.VOCABULARY]
    pairs = [F.when(F.col(VIEW) == s.group.value, F.struct(F.lit(vocab_key(s)).alias("key"),
                                                         F.col(s.source).cast("string").alias("value")))
             for s in specs if s.source in events.columns]  # fmt: skip
    counts: dict[str, Counter[str]] = {vocab_key(s): Counter() for s in specs}
    if pairs:
        train = events.filter(F.col("ts") < before_ms).select(F.explode(F.array(*pairs)).alias("p"))
        rows = train.filter(F.col("p.value").isNotNull()).groupBy("p.key", "p.value").count().collect()
        for row in rows:
            counts[row["key"]][row["value"]] = row["count"]
    return manifest.with_vocabularies({vocab_key(s): Vocabulary.build(counts[vocab_key(s)], s.vocab_size, min_count)
                                       for s in specs}).sized_to_vocabularies()  # fmt: skip


def _draw_positions(by_shard: DataFrame, window: CutWindow, idle: IdleRule, n_shards: int) -> dict[int, DrawPosition]:
    """Where each shard's users start in the cut sampler's two random streams."""
    rows = by_shard.select(SHARD, UIDX, VIEW, "ts").mapInArrow(count_draws(window, idle), COUNTS_SCHEMA).collect()
    counts = {r["shard"]: (r["moments"], r["user_days"]) for r in rows}
    total = sum(m for m, _ in counts.values())
    positions, moments, user_days = {}, 0, 0
    for shard in range(n_shards):
        positions[shard] = DrawPosition(moments, user_days, total)
        m, d = counts.get(shard, (0, 0))
        moments, user_days = moments + m, user_days + d
    return positions


def _given_by_shard(
    cuts: dict[str, np.ndarray], n_shards: int, users_per_shard: int, base_ms: int
) -> dict[int, dict[str, np.ndarray]]:
    """Given cuts split by shard, in file order, users counted from each shard's first."""
    out = {}
    shard_of = cuts["user"] // users_per_shard
    order = np.argsort(shard_of, kind="stable")  # stable: file order within a shard
    starts = np.searchsorted(shard_of[order], np.arange(n_shards + 1))
    for shard in range(n_shards):
        rows = order[starts[shard] : starts[shard + 1]]
        part = {k: v[rows] for k, v in cuts.items()}
        part["user"] = part["user"] - shard * users_per_shard
        part["keys"] = user_time_key(part["user"], part["ts"], base_ms)
        out[shard] = part
    return out
