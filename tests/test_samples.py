"""The sample builder: windows, left padding, labels, time split, and the store's batches."""

from __future__ import annotations

import numpy as np
import pytest

from dipn.samples.build import BuildConfig, build_samples
from dipn.samples.store import SPLITS, SampleStore
from dipn.features import SEQUENCE_ENCODERS, StreamEncoder
from dipn.features.buckets import piecewise_bucket
from tests.raw_logs import DAY, HOUR, START, write_logs

# cut at every event moment, no idle cuts, train then eval: exact expectations
EVERY_MOMENT = BuildConfig(cuts_per_day=1e6, val_days=0, idle_limit_ms=0)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    raw = tmp_path_factory.mktemp("raw")
    facts = write_logs(raw)
    out = tmp_path_factory.mktemp("samples")
    info = build_samples(raw, out, EVERY_MOMENT, progress=False)
    return facts, info, SampleStore(out)


def _find(store: SampleStore, user: str, ts: int) -> int:
    users = store.users
    for i in range(len(store)):
        b = store.batch(np.array([i]))
        if users[b["user_index"][0]] == user and b["cut_ts"][0] == ts:
            return i
    raise AssertionError(f"no cut at {user} {ts}")


def test_labels_follow_the_one_hour_and_one_day_windows(built) -> None:
    facts, _, store = built
    p = facts["purchase"]
    cases = {p - 30 * 60_000: (1, 1), p - 2 * HOUR: (0, 1), p - HOUR: (1, 1), p: (0, 0), START: (0, 0)}
    for ts, (rt, lt) in cases.items():
        b = store.batch(np.array([_find(store, "a", ts)]))
        assert (b["realtime"][0], b["longterm"][0]) == (rt, lt), ts
    # the purchase 34 h after the start of day 0 is beyond 24 h from day-0 morning cuts
    b = store.batch(np.array([_find(store, "a", START + 60_000)]))
    assert b["longterm"][0] == 0


def test_windows_are_the_last_256_events_left_padded(built) -> None:
    _, _, store = built
    b = store.batch(np.array([_find(store, "a", START + 299 * 60_000)]))
    swipe = b["swipe"][0]
    assert swipe.shape == (256, 14 + 1) and swipe.dtype == np.int32  # Table 3a and the age
    assert (swipe[:, 1] != 0).all()  # 300 events up to the cut: all 256 steps real
    b = store.batch(np.array([_find(store, "b", START + DAY + 5 * HOUR + 2000)]))
    real = b["swipe"][0][:, 1] != 0
    assert real.sum() == 3 and real[-3:].all() and not real[:-3].any()
    assert (b["swipe"][0][~real] == 0).all()
    assert (b["browse"][0] == 0).all()  # user b never browsed: an all-padding view


def test_window_ids_equal_the_stream_encoder_on_the_same_events(built) -> None:
    facts, _, store = built
    b = store.batch(np.array([_find(store, "a", facts["purchase"])]))
    enc = StreamEncoder(store.manifest, 360, 780)
    from tests.raw_logs import swipe_rows

    times = sorted([START + 60_000 * i for i in range(300)] + [facts["purchase"] - 30 * 60_000, facts["purchase"] - 2 * HOUR])
    rows = np.stack([enc.encode("swipe", r) for r in swipe_rows("a", times)][-256:])
    age = store.manifest.config.at_cut_columns("swipe")[0]
    np.testing.assert_array_equal(np.delete(b["swipe"][0], age, axis=1), np.delete(rows, age, axis=1))
    assert (rows[:, age] == 0).all()  # the stream encoder leaves the age to the cut ...
    elapsed = facts["purchase"] - np.array(times[-256:])
    expected = piecewise_bucket(elapsed, store.manifest.config.step_age.pieces) + 1
    np.testing.assert_array_equal(b["swipe"][0][:, age], expected)  # ... which fills in t - ts
    assert SEQUENCE_ENCODERS  # the same functions serve both paths


def test_split_is_by_time(built) -> None:
    _, info, store = built
    ts = store.batch(store.indices())["cut_ts"]
    split = store.split
    assert (ts[split == SPLITS["eval"]] >= START + DAY).all() and (ts[split == SPLITS["train"]] < START + DAY).all()
    assert info["splits"]["train"]["samples"] + info["splits"]["eval"]["samples"] == len(store)


def test_history_is_the_snapshot_before_the_cut_and_profile_joins(built) -> None:
    _, _, store = built
    early = store.batch(np.array([_find(store, "a", START + 60_000)]))
    late = store.batch(np.array([_find(store, "a", START + DAY + 8 * HOUR)]))
    assert early["history"][0].tolist() == [2, 11, 1, 6, 1, 4]  # snapshot at START, +1 ids
    assert late["history"][0].tolist() == [3, 12, 2, 7, 1, 4]  # snapshot at START + DAY
    assert early["profile"][0].tolist() == [4, 2, 6, 3, 2, 7]


def test_merged_view_is_time_ordered_with_each_views_columns(built) -> None:
    facts, _, store = built
    b = store.batch(np.array([_find(store, "a", facts["purchase"])]), merged=True)
    merged = b["merged"][0]
    assert merged.shape == (256, 15 + 4 + 7)
    assert merged[-1, 19] == 5  # the last event is the purchase (browse type id 5)
    per_row_views = (merged[:, [1, 15, 19]] != 0).sum(axis=1)
    assert per_row_views.max() == 1  # each row holds exactly one view


def test_no_cut_outside_the_label_observed_window(built) -> None:
    _, _, store = built
    ts = store.batch(store.indices())["cut_ts"]
    assert ts.min() >= START and ts.max() < START + 2 * DAY


def test_encoding_in_user_aligned_chunks_changes_nothing(tiny_raw, tmp_path, monkeypatch) -> None:
    import dipn.samples.build as build

    whole = SampleStore(build_samples(tiny_raw, tmp_path / "whole", BuildConfig(cuts_per_day=5), progress=False)
                        and tmp_path / "whole")  # fmt: skip
    monkeypatch.setattr(build, "ENCODE_CHUNK_ROWS", 97)
    build_samples(tiny_raw, tmp_path / "chunked", BuildConfig(cuts_per_day=5), progress=False)
    chunked = SampleStore(tmp_path / "chunked")
    a, b = whole.batch(whole.indices()), chunked.batch(chunked.indices())
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def test_simulated_shoppers_become_samples_with_the_stated_label_rates(tmp_path) -> None:
    """Simulator + builder at the paper's density: shapes, dtypes, id ranges, label bands, split.

    Bands (docs/simulator.md measures about 7% and 28% at density 1.0 over thousands of users):
    realtime in [2%, 15%], longterm in [12%, 45%], wide enough for 40 users.
    """
    from dipn.logs.simulation import SimulationConfig, simulate

    simulate(SimulationConfig(users=40, days=2, seed=3, density=1.0), tmp_path / "raw", progress=False)
    info = build_samples(tmp_path / "raw", tmp_path / "s", BuildConfig(cuts_per_day=20, val_days=0.5), progress=False)
    store = SampleStore(tmp_path / "s")
    batch = store.batch(store.indices(), merged=True)
    cfg = store.manifest.config
    for view, width in (("swipe", 15), ("tap", 4), ("browse", 7), ("merged", 26)):
        assert batch[view].shape == (len(store), 256, width) and batch[view].dtype == np.int32
    for group in ("swipe", "tap", "browse", "history", "profile"):
        limits = np.array([s.num_embeddings for s in cfg.group(group)])
        assert ((batch[group] >= 0) & (batch[group] < limits)).all(), group
    assert batch["realtime"].dtype == np.float32
    realtime, longterm = batch["realtime"].mean(), batch["longterm"].mean()
    assert 0.02 <= realtime <= 0.15 and 0.12 <= longterm <= 0.45, (realtime, longterm)
    assert (batch["realtime"] <= batch["longterm"]).all()  # 1 h lies inside 24 h
    window = info["window"]
    eval_ts, train_ts = batch["cut_ts"][store.split == SPLITS["eval"]], batch["cut_ts"][store.split == SPLITS["train"]]
    assert len(eval_ts) and len(train_ts)
    assert eval_ts.min() >= window["eval_start_ms"] > train_ts.max()


def test_samples_are_built_exactly_at_given_cuts(tmp_path) -> None:
    from tests.raw_logs import write_logs

    facts = write_logs(tmp_path / "raw")
    p = facts["purchase"]
    (tmp_path / "cuts.csv").write_text(
        f"user_id,ts,split\na,{p - 30 * 60_000},eval\na,{p - 2 * HOUR},train\nb,{START + DAY},eval\nzz,{p},eval\n"
    )
    info = build_samples(tmp_path / "raw", tmp_path / "s", progress=False, cuts_file=tmp_path / "cuts.csv")
    assert info["cuts"]["given"] == 4 and info["cuts"]["dropped_unknown_user"] == 1
    store = SampleStore(tmp_path / "s")
    users, ts = store.cuts(store.indices())
    got = {(store.users[u], int(t)): i for i, (u, t) in enumerate(zip(users, ts, strict=True))}
    assert set(got) == {("a", p - 30 * 60_000), ("a", p - 2 * HOUR), ("b", START + DAY)}
    b = store.batch(np.array([got[("a", p - 30 * 60_000)], got[("a", p - 2 * HOUR)]]))
    assert b["realtime"].tolist() == [1, 0] and b["longterm"].tolist() == [1, 1]
    assert store.split[got[("a", p - 2 * HOUR)]] == SPLITS["train"] and store.split[got[("b", START + DAY)]] == SPLITS["eval"]


@pytest.mark.parametrize(("rows", "why"), [
    ("", "the file holds no rows"),
    ("zz,{p}\nyy,{p}\n", "no user_id of the file is a user of the logs"),
    ("a,{p_seconds}\n", "ts looks like seconds, and --cuts takes integer milliseconds"),
    ("a,{before}\n", "every cut of a known user precedes the logs' first event"),
])  # fmt: skip
def test_a_cuts_file_that_yields_no_sample_is_an_error_that_says_why(tmp_path, capsys, rows: str, why: str) -> None:
    from dipn.cli import main
    from tests.raw_logs import write_logs

    p = write_logs(tmp_path / "raw")["purchase"]
    (tmp_path / "cuts.csv").write_text("user_id,ts\n" + rows.format(p=p, p_seconds=p // 1000, before=START - DAY))
    code = main(["build-samples", str(tmp_path / "raw"), "--out", str(tmp_path / "s"), "--cuts",
                 str(tmp_path / "cuts.csv"), "--quiet"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("dipn: error: ") and why in err and "cuts can be built" in err
    assert len(err.strip().splitlines()) == 1 and not (tmp_path / "s" / "dataset.json").exists()
    assert ("seconds" in err) == ("seconds" in why)  # a cut in ms before the logs is not called seconds


def test_cuts_drawn_one_user_range_at_a_time_equal_the_whole_dataset_draw() -> None:
    """What lets the Spark engine sample each shard alone and still pick the default engine's cuts."""
    from dipn.samples.cuts import CutWindow, DrawPosition, draw_counts, sample_cuts

    rng = np.random.default_rng(1)
    window = CutWindow(start_ms=0, end_ms=3 * DAY, val_start_ms=2 * DAY, eval_start_ms=2 * DAY)
    user = np.sort(rng.integers(0, 40, 5000))
    ts = rng.integers(0, 4 * DAY, 5000)
    whole = sample_cuts(user, ts, window, cuts_per_day=3.5, seed=9)
    counts = [draw_counts(user[(user >= lo) & (user < lo + 7)], ts[(user >= lo) & (user < lo + 7)], window)
              for lo in range(0, 40, 7)]  # fmt: skip
    total, parts, moments, user_days = sum(m for m, _ in counts), [], 0, 0
    for lo, (m, d) in zip(range(0, 40, 7), counts, strict=True):
        sel = (user >= lo) & (user < lo + 7)
        parts.append(sample_cuts(user[sel], ts[sel], window, 3.5, 9, DrawPosition(moments, user_days, total)))
        moments, user_days = moments + m, user_days + d
    assert np.array_equal(np.concatenate([p[0] for p in parts]), whole[0])
    assert np.array_equal(np.concatenate([p[1] for p in parts]), whole[1])
    assert np.array_equal(np.concatenate([p[2] for p in parts]), whole[2])  # event / idle
    assert 0 < len(whole[0]) < len(np.unique(user * 4 * DAY + ts))  # a real subsample
