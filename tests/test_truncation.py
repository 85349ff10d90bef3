"""A sample cut at t holds only what a phone knows at t: removing every event after t from the raw
logs and rebuilding gives the very same ids for that cut, in every input group; and the device
wrapper, fed the events up to t, builds the same ids when it scores at t."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dipn.samples.build import BuildConfig, build_samples
from dipn.samples.cuts import IDLE_CUT
from dipn.samples.store import SampleStore
from tests.raw_logs import device_at_cut

INPUTS = ("swipe", "tap", "browse", "history", "profile", "context")
VIEWS = ("swipe", "tap", "browse")


def _truncated_copy(raw: Path, out: Path, user: str, cut: int) -> Path:
    """The raw logs of one user with nothing after ``cut`` (history snapshots taken after it too)."""
    out.mkdir(parents=True, exist_ok=True)
    for path in raw.glob("*.parquet"):
        frame = pl.read_parquet(path).filter(pl.col("user_id") == user)
        time = {"history": "as_of_ts"}.get(path.stem, "ts" if path.stem in VIEWS else None)
        if time is not None:
            frame = frame.filter(pl.col(time) <= cut)
        frame.write_parquet(out / path.name)
    meta = raw / "meta.json"
    if meta.exists():
        (out / "meta.json").write_text(meta.read_text())
    return out


def _cut_samples(raw: Path, out: Path, manifest: Path, user: str, cut: int, split: str) -> dict[str, np.ndarray]:
    cuts = out.parent / f"{out.name}-cuts.csv"
    pl.DataFrame({"user_id": [user], "ts": [cut], "split": [split]}).write_csv(cuts)
    from dipn.features import FeatureManifest

    build_samples(raw, out, BuildConfig(), FeatureManifest.load(manifest), progress=False, cuts_file=cuts)
    store = SampleStore(out)
    return store.batch(np.arange(len(store)))


@pytest.fixture(scope="module")
def store(tiny_samples: Path) -> SampleStore:
    return SampleStore(tiny_samples)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pick=st.integers(min_value=0, max_value=10**9), idle_after=st.sampled_from([0, 1, 45_000, 20 * 60_000]))
def test_removing_the_events_after_a_cut_changes_no_id_of_that_cut(
    pick: int, idle_after: int, store: SampleStore, tiny_raw: Path, tiny_samples: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    index = pick % len(store)
    users, times = store.cuts(np.array([index]))
    user, cut = str(store.users[users[0]]), int(times[0]) + idle_after  # also an idle moment after it
    work = tmp_path_factory.mktemp("truncation")
    full = _cut_samples(tiny_raw, work / "full", tiny_samples / "features.json", user, cut, "eval")
    truncated_raw = _truncated_copy(tiny_raw, work / "raw", user, cut)
    short = _cut_samples(truncated_raw, work / "short", tiny_samples / "features.json", user, cut, "eval")
    for name in INPUTS:
        np.testing.assert_array_equal(full[name], short[name], err_msg=f"{name} at cut {cut} of {user}")


def test_an_open_page_has_stayed_only_until_the_cut() -> None:
    """The leak this guards against: a browse event's logged (final) stay runs past the cut."""
    from dipn.features import FeatureManifest
    from dipn.features.cut import browse_at_cut, raw_stays

    manifest, ts = FeatureManifest(), 1_800_000_000_000
    ids = np.zeros((1, 1, 6), np.int32)
    ids[0, 0, 0] = 1  # a page view
    ids[0, 0, 4] = 179  # the last stay bucket: as the logged final stay of 25 min encodes
    stay = raw_stays(np.array(["browse"], dtype=object), np.array([25 * 60_000.0]))[None]
    at = browse_at_cut(ids, np.array([[ts]]), stay, np.array([ts + 30_000]), manifest)
    assert at[0, 0, 4] == 31  # 30 s so far: bucket 30, id 31
    left = browse_at_cut(ids, np.array([[ts]]), stay, np.array([ts + 30 * 60_000]), manifest)
    assert left[0, 0, 4] == 179  # the page was left before the cut: its final stay is known
    no_stay = raw_stays(np.array(["browse"], dtype=object), np.array([np.nan]))[None]  # not left in the log
    assert browse_at_cut(ids, np.array([[ts]]), no_stay, np.array([ts + 5_000]), manifest)[0, 0, 4] == 6


def test_samples_are_also_cut_at_idle_moments_and_record_their_type(store: SampleStore) -> None:
    info = json.loads((store.root / "dataset.json").read_text())
    assert info["splits"]["train"]["idle_cuts"] > 0 and info["splits"]["train"]["event_cuts"] > 0
    batch = store.batch(np.arange(len(store)))
    nearest = batch["context"][:, :3].min(axis=1)  # recency id of the most recent view
    idle = batch["cut_type"] == IDLE_CUT
    assert (nearest[~idle] == 1).all()  # an event at the cut: 0 ms since it, bucket 0
    assert (nearest[idle] >= 2).all()  # a timer fires at least one period after the last event
    assert set(np.unique(store.split)) == {0, 1, 2}


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pick=st.integers(min_value=0, max_value=10**9))  # the store's cuts include idle ones
def test_the_device_scoring_at_a_cut_builds_the_ids_of_that_sample(
    pick: int, store: SampleStore, tiny_raw: Path, tiny_bundle: Path
) -> None:
    runtime, batch, cut = device_at_cut(store, pick % len(store), tiny_raw, tiny_bundle, "onnx")
    inputs = runtime.inputs(at=cut)
    for name in inputs:
        np.testing.assert_array_equal(inputs[name][0], batch[name][0], err_msg=name)
