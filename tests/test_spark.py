"""The Spark engine of build-samples writes the default engine's sample directory, byte for byte."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from dipn.samples.build import BuildConfig, build_samples
from dipn.logs.readers import RawDataError, write_view
from dipn.samples.spark import spark_unavailable

if spark_unavailable():
    pytest.skip(f"Spark engine not testable: {spark_unavailable()}", allow_module_level=True)

from dipn.samples.spark import build_samples_spark, spark_session  # noqa: E402

SMALL_SHARDS = BuildConfig(cuts_per_day=10, seed=3, users_per_shard=16, val_days=0.5)  # 60 users: 4 shards, 4 tasks
ENGINE_ONLY = ("build_seconds", "engine")  # dataset.json keys that name the engine or its speed


@pytest.fixture(scope="module")
def spark():  # noqa: ANN201
    conf = {"spark.ui.enabled": "false", "spark.sql.shuffle.partitions": "4"}
    with spark_session("local[2]", conf, progress=False) as session:
        yield session


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _index(root: Path) -> dict:
    info = json.loads((root / "dataset.json").read_text())
    return {k: v for k, v in info.items() if k not in ENGINE_ONLY}


def assert_same_samples(default: Path, spark: Path) -> None:
    """Every array, the user list and the manifest identical; the index equal but for the engine."""
    ours, theirs = _files(default), _files(spark)
    assert sorted(ours) == sorted(theirs)
    for name, data in ours.items():
        if name != "dataset.json":
            assert theirs[name] == data, f"{name} differs between the engines"
    assert _index(spark) == _index(default)


def test_spark_engine_writes_the_default_engines_samples_byte_for_byte(tiny_raw: Path, tmp_path: Path, spark) -> None:  # noqa: ANN001
    default = build_samples(tiny_raw, tmp_path / "default", SMALL_SHARDS, progress=False)
    info = build_samples_spark(spark, tiny_raw, tmp_path / "spark", SMALL_SHARDS, progress=False)
    assert info["engine"]["name"] == "spark" and len(info["shards"]) == 4
    assert info["splits"] == default["splits"] and default["splits"]["train"]["samples"] > 50
    assert_same_samples(tmp_path / "default", tmp_path / "spark")


@pytest.fixture(scope="module")
def flawed_csv(tiny_raw: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny logs as CSV with rows that break three rules, plus a cuts file."""
    raw = tmp_path_factory.mktemp("flawed-csv")
    for view in ("swipe", "tap", "browse", "history", "profile"):
        frame = pl.read_parquet(tiny_raw / f"{view}.parquet")
        if view == "swipe":
            off_screen = (pl.col("type") == "tap") & (pl.col("type") == "tap").cum_sum().is_in([3, 50])
            frame = frame.with_columns(pl.when(off_screen).then(pl.col("screen_w") + 1).otherwise(pl.col("x")).alias("x"))
        if view == "browse":
            frame = frame.with_columns(pl.when(pl.int_range(pl.len()) % 97 == 5).then(-1.0)
                                       .otherwise(pl.col("stay_ms")).alias("stay_ms"))  # fmt: skip
        write_view(frame, raw / f"{view}.csv")
    (raw / "meta.json").write_bytes((tiny_raw / "meta.json").read_bytes())
    browse = pl.read_parquet(tiny_raw / "browse.parquet")
    picks = browse.gather_every(40).select("user_id", "ts").with_columns(
        pl.when(pl.int_range(pl.len()) % 2 == 0).then(pl.lit("train")).otherwise(pl.lit("eval")).alias("split"))
    picks.vstack(pl.DataFrame({"user_id": ["nobody"], "ts": [picks["ts"][0]], "split": ["eval"]})).write_csv(
        raw / "cuts.csv")
    return raw


def test_spark_engine_judges_rows_and_takes_given_cuts_like_the_default_engine(
    flawed_csv: Path, tmp_path: Path, spark  # noqa: ANN001
) -> None:
    lenient = BuildConfig(users_per_shard=16, lenient=True)
    cuts = flawed_csv / "cuts.csv"
    default = build_samples(flawed_csv, tmp_path / "default", lenient, progress=False, cuts_file=cuts)
    build_samples_spark(spark, flawed_csv, tmp_path / "spark", lenient, progress=False, cuts_file=cuts)
    assert default["cuts"]["dropped_unknown_user"] == 1
    dropped = {v: r.splitlines()[0] for v, r in default["read_reports"].items() if "dropped" in r}
    assert set(dropped) == {"swipe", "browse"}  # off_screen and negative rows
    spark_reports = json.loads((tmp_path / "spark" / "dataset.json").read_text())["read_reports"]
    for view, head in dropped.items():  # same counts per rule; Spark's examples lack line numbers
        assert spark_reports[view].splitlines()[0] == head
    ours = {k: v for k, v in _index(tmp_path / "default").items() if k != "read_reports"}
    theirs = {k: v for k, v in _index(tmp_path / "spark").items() if k != "read_reports"}
    assert ours == theirs
    assert {k: v for k, v in _files(tmp_path / "default").items() if k != "dataset.json"} == \
        {k: v for k, v in _files(tmp_path / "spark").items() if k != "dataset.json"}


def test_strict_spark_engine_refuses_the_row_the_default_engine_refuses(flawed_csv: Path, tmp_path: Path, spark) -> None:  # noqa: ANN001
    with pytest.raises(RawDataError) as default:
        build_samples(flawed_csv, tmp_path / "default", progress=False)
    with pytest.raises(RawDataError) as ours:
        build_samples_spark(spark, flawed_csv, tmp_path / "spark", progress=False)
    assert (ours.value.path, ours.value.rule, ours.value.column) == (default.value.path, "off_screen", "x")
    assert ours.value.detail == default.value.detail
