"""The behaviour simulator: raw contracts, reproducibility, densities, ground-truth signals, history."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from dipn.logs.simulation import SimulationConfig, simulate
from dipn.logs.simulation import catalog as cat
from dipn.logs.simulation.config import CHUNK_USERS, DAY_MS, HOUR_MS
from dipn.features.contract import CONDITIONAL_REQUIRED, ON_SCREEN, RAW_VIEWS, SCHEMAS, TIME_COLUMN
from dipn.features.spec import FeatureConfig, Group

POLARS_DTYPE = {"int": pl.Int64, "float": pl.Float64, "str": pl.String}
TABLE1 = {"browse": 42.0, "tap": 391.0, "swipe": 1583.0}  # actions per user per day, density 1
SPEC = FeatureConfig()


def _run(tmp: Path, **kw) -> tuple[dict, dict[str, pl.DataFrame]]:
    meta = simulate(SimulationConfig(**kw), tmp, progress=False)
    frames = {v: pl.read_parquet(tmp / f"{v}.parquet") for v in RAW_VIEWS}
    if (tmp / "truth_sessions.parquet").exists():
        frames["truth"] = pl.read_parquet(tmp / "truth_sessions.parquet")
    return meta, frames


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> tuple[SimulationConfig, dict, dict[str, pl.DataFrame]]:
    config = SimulationConfig(users=40, days=2, seed=3, density=0.05)
    meta, frames = _run(tmp_path_factory.mktemp("small"), **config.as_dict())
    return config, meta, frames


@pytest.fixture(scope="module")
def rich(tmp_path_factory: pytest.TempPathFactory) -> tuple[SimulationConfig, dict, dict[str, pl.DataFrame]]:
    """Fewer users, more sessions each, with the latent truth written."""
    config = SimulationConfig(users=30, days=3, seed=11, density=0.4, write_truth=True)
    meta, frames = _run(tmp_path_factory.mktemp("rich"), **config.as_dict())
    return config, meta, frames


# --- raw contracts ---------------------------------------------------------------------------------


def test_columns_dtypes_and_nulls_follow_the_schemas(small) -> None:
    _, _, frames = small
    for view, rules in SCHEMAS.items():
        df = frames[view]
        assert tuple(df.columns) == tuple(r.name for r in rules), view
        assert df.height > 0, view
        for r in rules:
            assert df.schema[r.name] == POLARS_DTYPE[r.dtype], (view, r.name)
            if not r.nullable:
                assert df[r.name].null_count() == 0, (view, r.name)
            if r.minimum is not None:
                assert df[r.name].min() >= r.minimum, (view, r.name)
            if r.allowed is not None:
                assert set(df[r.name].drop_nulls().unique()) <= set(r.allowed), (view, r.name)


def test_fields_are_filled_exactly_where_they_apply(small) -> None:
    _, _, frames = small
    for view, col, value, required in CONDITIONAL_REQUIRED:
        df = frames[view]
        applies = df.filter(pl.col(col) == value)
        others = df.filter(pl.col(col) != value)
        assert applies.height > 0 and others.height > 0
        for c in required:
            assert applies[c].null_count() == 0, (view, c)
            assert others[c].null_count() == others.height, (view, c)  # null where it does not apply
    browse = frames["browse"]
    # Every item action names its category; a search names a top category but no leaf.
    items = browse.filter(pl.col("action") != "search")
    assert items["leaf_category"].null_count() == 0 and browse["top_category"].null_count() == 0
    assert browse.filter(pl.col("action") == "search")["leaf_category"].null_count() > 0
    assert browse.filter(pl.col("action") == "browse")["stay_ms"].null_count() == 0


def test_rows_sorted_by_user_then_time_and_inside_the_window(small) -> None:
    config, meta, frames = small
    for view in ("swipe", "tap", "browse", "history"):
        t = TIME_COLUMN[view]
        keys = frames[view].select("user_id", t)
        assert keys.equals(keys.sort("user_id", t, maintain_order=True)), view
        assert keys[t].min() >= config.start_ms and keys[t].max() < config.end_ms, view
    assert meta["cut_end_ms"] == config.start_ms + config.days * DAY_MS
    assert meta["end_ms"] == meta["cut_end_ms"] + config.horizon_hours * HOUR_MS
    ids = frames["profile"]["user_id"].to_list()
    assert ids == [f"u{i:06d}" for i in range(config.users)]


def test_one_device_per_user_and_touches_on_its_screen(small) -> None:
    _, _, frames = small
    sw = frames["swipe"]
    per_user = sw.group_by("user_id").agg(pl.col("screen_w").n_unique(), pl.col("screen_h").n_unique())
    assert per_user["screen_w"].max() == 1 and per_user["screen_h"].max() == 1
    sizes = set(zip(sw["screen_w"].to_list(), sw["screen_h"].to_list(), strict=True))
    assert sizes <= {(w, h) for w, h in cat.DEVICES[:, :2].tolist()}
    for c, extent in ON_SCREEN:
        on = sw.filter(pl.col(c).is_not_null())
        assert ((on[c] >= 0) & (on[c] <= on[extent])).all(), c


def test_vocabularies_fit_table3(small) -> None:
    _, _, frames = small

    def cap(group: Group, name: str) -> int:
        return SPEC.spec(group, name).vocab_size

    assert frames["swipe"]["page"].n_unique() <= cap(Group.SWIPE, "page")
    assert frames["tap"]["page"].n_unique() <= cap(Group.TAP, "page")
    assert frames["tap"]["button"].drop_nulls().n_unique() <= cap(Group.TAP, "button")
    assert frames["browse"]["page"].n_unique() <= cap(Group.BROWSE, "page")
    assert frames["browse"]["top_category"].n_unique() <= cap(Group.BROWSE, "top_category")
    assert frames["browse"]["leaf_category"].drop_nulls().n_unique() <= cap(Group.BROWSE, "leaf_category")
    # Not just in this sample: the whole catalogue fits.
    assert cat.N_PAGES <= min(cap(Group.SWIPE, "page"), cap(Group.TAP, "page"))
    assert len(cat.BROWSE_PAGE_NAMES) <= cap(Group.BROWSE, "page")
    assert cat.N_BUTTONS <= cap(Group.TAP, "button")
    assert cat.N_TOP <= cap(Group.BROWSE, "top_category") and cat.N_LEAF <= cap(Group.BROWSE, "leaf_category")
    # Profile levels stay inside Table 3e's ranges (no clipping needed by the encoder).
    prof = frames["profile"]
    for spec in SPEC.group(Group.PROFILE):
        assert prof[spec.source].min() >= 0 and prof[spec.source].max() < spec.vocab_size, spec.name


def test_meta_describes_the_files(small, tmp_path: Path) -> None:
    config, meta, frames = small
    for view in RAW_VIEWS:
        assert meta["rows"][view] == frames[view].height
    assert meta["users"] == config.users and meta["seed"] == config.seed
    assert meta["density"] == config.density and meta["days"] == config.days
    assert meta["start_ms"] == config.start_ms and meta["generator"].startswith("dipn-sim/")
    gt = meta["ground_truth"]
    for key in ("realtime_1h", "longterm_24h"):
        assert 0.0 <= gt["label_rates_event_weighted"][key] <= 1.0
    assert gt["label_rates_event_weighted"]["realtime_1h"] <= gt["label_rates_event_weighted"]["longterm_24h"]
    assert frames["browse"].filter(pl.col("action") == "purchase").height >= gt["purchases"]


def test_invalid_configs_are_rejected() -> None:
    for bad in ({"users": 0}, {"days": 0}, {"density": 0.0}, {"horizon_hours": -1}, {"buyer_share": 1.5}):
        with pytest.raises(ValueError):
            SimulationConfig(**bad)


# --- reproducibility -------------------------------------------------------------------------------


def test_same_seed_same_rows_other_seed_other_rows(tmp_path: Path) -> None:
    kw = {"users": 25, "days": 2, "density": 0.05}
    _, a = _run(tmp_path / "a", seed=5, **kw)
    _, b = _run(tmp_path / "b", seed=5, **kw)
    _, c = _run(tmp_path / "c", seed=6, **kw)
    for view in RAW_VIEWS:
        assert a[view].equals(b[view]), view
        assert (tmp_path / "a" / f"{view}.parquet").read_bytes() == (tmp_path / "b" / f"{view}.parquet").read_bytes()
    assert not a["swipe"].equals(c["swipe"])
    assert not a["profile"].equals(c["profile"])


def test_full_chunks_do_not_depend_on_the_total_number_of_users(tmp_path: Path) -> None:
    """Chunks are seeded by (seed, chunk): a full chunk's users are the same whatever follows."""
    n = CHUNK_USERS
    _, a = _run(tmp_path / "a", users=n, days=1, seed=2, density=0.02)
    _, b = _run(tmp_path / "b", users=n + 7, days=1, seed=2, density=0.02)
    assert a["profile"].equals(b["profile"].head(n))
    assert a["swipe"].equals(b["swipe"].filter(pl.col("user_id") < f"u{n:06d}"))


# --- densities -------------------------------------------------------------------------------------


def test_densities_scale_with_density_and_match_table1(tmp_path: Path) -> None:
    per_ud = {}
    users = 100
    for density in (0.05, 0.2):
        meta, _ = _run(tmp_path / str(density), users=users, days=2, seed=4, density=density)
        user_days = users * (2 + 1)  # the horizon day is simulated at the same rates
        per_ud[density] = {v: meta["rows"][v] / user_days for v in TABLE1}
    for v in TABLE1:
        ratio = per_ud[0.2][v] / per_ud[0.05][v]
        assert 0.7 * 4 < ratio < 1.4 * 4, (v, ratio)
        # Per user-day at density 1: within a generous band of Table 1 (100 heavy-tailed users).
        at_one = per_ud[0.2][v] / 0.2
        assert 0.6 * TABLE1[v] < at_one < 1.5 * TABLE1[v], (v, at_one)
    # Table 1's proportions: tap ~ 0.25 x swipe, browse ~ 0.027 x swipe (band +-30%).
    p = per_ud[0.2]
    assert 0.7 * 391 / 1583 < p["tap"] / p["swipe"] < 1.3 * 391 / 1583
    assert 0.7 * 42 / 1583 < p["browse"] / p["swipe"] < 1.3 * 42 / 1583


# --- ground truth ----------------------------------------------------------------------------------


def _with_phase(events: pl.DataFrame, truth: pl.DataFrame) -> pl.DataFrame:
    """Attach the latent session (start, phase) to each event."""
    t = truth.select("user_id", "start", "end", "phase").sort("user_id", "start")
    j = events.sort("user_id", "ts").join_asof(
        t, left_on="ts", right_on="start", by="user_id", strategy="backward", check_sortedness=False
    )
    return j.filter(pl.col("ts") <= pl.col("end") + 5_000)


def test_buying_sessions_read_comments_more_but_not_exclusively(rich) -> None:
    _, _, frames = rich
    opens = _with_phase(frames["swipe"].filter(pl.col("type") == "open_page"), frames["truth"])
    per_session = opens.group_by("user_id", "start", "phase").agg(
        (pl.col("page") == "Page_Detail_Comments").any().alias("comments"),
        (pl.col("page") == "Page_Cart").any().alias("cart_page"),
    )
    share = per_session.group_by("phase").agg(pl.col("comments").mean(), pl.col("cart_page").mean(), pl.len())
    by_phase = {r["phase"]: r for r in share.to_dicts()}
    browse, buy = by_phase[0], by_phase[2]
    assert buy["len"] >= 5 and browse["len"] >= 50
    assert buy["comments"] > browse["comments"] > 0.0  # browsers read comments too
    assert buy["comments"] < 1.0  # and some buyers do not
    assert buy["cart_page"] > browse["cart_page"] > 0.0


def test_swipes_differ_with_page_and_phase(rich) -> None:
    _, _, frames = rich
    sw = _with_phase(frames["swipe"].filter(pl.col("type") == "swipe"), frames["truth"]).with_columns(
        ((pl.col("y1") - pl.col("y0")).abs() / pl.col("screen_h")).alias("dy"),
        ((pl.col("x1") - pl.col("x0")).abs() / pl.col("screen_w")).alias("dx"),
        (pl.col("phase") > 0).alias("focused"),
    )

    def med(page: str, col: str, **where: object) -> float:
        df = sw.filter(pl.col("page") == page)
        for k, v in where.items():
            df = df.filter(pl.col(k) == v)
        return float(df[col].median())

    # Fast long flings on the home feed, slower shorter swipes reading comments.
    assert med("Page_Home", "duration_ms") < med("Page_Detail_Comments", "duration_ms", focused=True)
    assert med("Page_Home", "dy") > med("Page_Detail_Comments", "dy", focused=True)
    # Focused phases read comments slower than browsers skim them.
    assert med("Page_Detail_Comments", "duration_ms", focused=True) > med(
        "Page_Detail_Comments", "duration_ms", focused=False
    )
    # Galleries are swiped sideways.
    gallery = sw.filter(pl.col("page") == "Page_Detail_Gallery")
    assert (gallery["dx"] > gallery["dy"]).mean() > 0.7


def test_browse_view_carries_the_phase_with_noise(rich) -> None:
    _, _, frames = rich
    br = _with_phase(frames["browse"], frames["truth"])
    stay = br.filter(pl.col("action") == "browse").group_by(pl.col("phase") > 0).agg(pl.col("stay_ms").median())
    stays = {r["phase"]: r["stay_ms"] for r in stay.to_dicts()}
    assert stays[True] > stays[False]  # longer dwell on items when considering / buying
    carts = br.filter(pl.col("action") == "cart").group_by("phase").len()
    assert carts.filter(pl.col("phase") == 0)["len"].sum() > 0  # browsers add to cart too
    purchases = br.filter(pl.col("action") == "purchase")
    assert purchases.height > 0 and (purchases["phase"] == 2).all()  # orders only when buying


def test_purchases_usually_but_not_always_follow_a_cart_add(rich) -> None:
    _, _, frames = rich
    br = frames["browse"]
    carts = br.filter(pl.col("action") == "cart").group_by("user_id", "leaf_category").agg(
        pl.col("ts").min().alias("first_cart")
    )
    p = br.filter(pl.col("action") == "purchase").join(carts, on=["user_id", "leaf_category"], how="left")
    after_cart = (p["first_cart"].fill_null(np.iinfo(np.int64).max) < p["ts"]).mean()
    assert 0.3 < after_cart < 0.95


def test_buyers_and_history_and_profile_agree_mildly(tmp_path: Path) -> None:
    _, frames = _run(tmp_path, users=200, days=2, seed=0, density=0.3)
    buyers = frames["browse"].filter(pl.col("action") == "purchase")["user_id"].unique()
    day0 = frames["history"].filter(pl.col("as_of_ts") == pl.col("as_of_ts").min())
    users = day0.join(frames["profile"], on="user_id").with_columns(
        pl.col("user_id").is_in(buyers.implode()).alias("buys")
    )
    mean = users.group_by("buys").agg(pl.col("purchase_365d").mean(), pl.col("buyer_star").mean(), pl.len())
    m = {r["buys"]: r for r in mean.to_dicts()}
    assert m[True]["len"] >= 20 and m[False]["len"] >= 20
    # Last year's purchases track today's buying; non-buyers bought too (lapsed users).
    assert m[True]["purchase_365d"] > 1.2 * m[False]["purchase_365d"] > 0
    # The buyer star only mildly: higher on average, by much less than its range.
    assert 0.0 < m[True]["buyer_star"] - m[False]["buyer_star"] < 2.5


# --- history ---------------------------------------------------------------------------------------


def _sim_counts(browse: pl.DataFrame, lo: int, hi: int) -> pl.DataFrame:
    win = browse.filter((pl.col("ts") >= lo) & (pl.col("ts") < hi))
    return win.group_by("user_id").agg(
        *[(pl.col("action") == a).sum().cast(pl.Int64).alias(a) for a in ("collect", "cart", "purchase")]
    )


def test_history_snapshots_are_consistent_with_the_simulated_events(small) -> None:
    config, _, frames = small
    hist, browse = frames["history"], frames["browse"]
    assert hist.height == config.users * config.snapshot_days
    starts = sorted(hist["as_of_ts"].unique().to_list())
    assert starts == [config.start_ms + d * DAY_MS for d in range(config.snapshot_days)]
    for a in ("collect", "cart", "purchase"):
        assert (hist[f"{a}_365d"] >= hist[f"{a}_7d"]).all()
    first = hist.filter(pl.col("as_of_ts") == config.start_ms)
    for as_of in starts[1:]:
        snap = hist.filter(pl.col("as_of_ts") == as_of)
        sim = _sim_counts(browse, config.start_ms, as_of)
        j = snap.join(first, on="user_id", suffix="_0").join(sim, on="user_id", how="left").fill_null(0)
        for a in ("collect", "cart", "purchase"):
            # This week's count holds every simulated action so far (all within 7 days) ...
            assert (j[f"{a}_7d"] >= j[a]).all()
            # ... and the year grows by them, minus the pre-period days that fell out of the window.
            assert (j[f"{a}_365d"] <= j[f"{a}_365d_0"] + j[a]).all()
            assert (j[f"{a}_365d"] >= j[a]).all()


def test_week_counts_equal_simulated_counts_once_the_pre_period_left_the_window(tmp_path: Path) -> None:
    config = SimulationConfig(users=8, days=8, seed=1, density=0.05)
    _, frames = _run(tmp_path, **config.as_dict())
    as_of = config.start_ms + 8 * DAY_MS  # the horizon day's snapshot: 7 full simulated days behind it
    snap = frames["history"].filter(pl.col("as_of_ts") == as_of)
    sim = _sim_counts(frames["browse"], as_of - 7 * DAY_MS, as_of)
    j = snap.join(sim, on="user_id", how="left").fill_null(0)
    for a in ("collect", "cart", "purchase"):
        assert (j[f"{a}_7d"] == j[a]).all(), a


# --- calibration (slow) ----------------------------------------------------------------------------


@pytest.mark.slow
def test_label_rates_at_full_density(tmp_path: Path) -> None:
    meta = simulate(SimulationConfig(users=400, days=3, seed=0), tmp_path, progress=False)
    gt = meta["ground_truth"]
    for weighting in ("label_rates_event_weighted", "label_rates_user_weighted"):
        assert 0.04 <= gt[weighting]["realtime_1h"] <= 0.15, gt
        assert 0.15 <= gt[weighting]["longterm_24h"] <= 0.40, gt
    json.dumps(meta)  # serialisable
