"""The discretization rules of Table 3 at their edges, and batch vs incremental encoding."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dipn.errors import DipnValidationError
from dipn.features import (
    OOV_ID,
    PAD_ID,
    SEQUENCE_ENCODERS,
    STATIC_ENCODERS,
    TABLE3,
    FeatureManifest,
    Group,
    StreamEncoder,
    Vocabulary,
    previous_timestamps,
    step_bucket,
)
from dipn.features import buckets
from dipn.features.spec import SWIPE_ACTIONS, FeatureConfig

GAP = (100, 1000)
DURATION = (25, 250)


@pytest.mark.parametrize(
    ("x", "expected"),
    [(0, 0), (99, 0), (100, 1), (999, 9), (1000, 10), (1999, 10), (2000, 11), (9999, 18),
     (10000, 19), (10001, 19), (86_400_000, 19), (np.inf, 19)],
)  # fmt: skip
def test_step_bucket_gap_edges(x: float, expected: int) -> None:
    assert step_bucket(x, *GAP) == expected


@pytest.mark.parametrize(
    ("x", "expected"),
    [(0, 0), (24, 0), (25, 1), (249, 9), (250, 10), (2499, 18), (2500, 19), (99999, 19)],
)
def test_step_bucket_duration_edges(x: float, expected: int) -> None:
    assert step_bucket(x, *DURATION) == expected


def test_step_bucket_matches_the_paper_formula_everywhere() -> None:
    x = np.arange(0, 12_000, 7)
    fs, fb = GAP
    paper = [int(v // fs) if v < fb else int(np.floor(v / fb + 9)) if v < 10 * fb else 19 for v in x]
    np.testing.assert_array_equal(step_bucket(x, fs, fb), paper)
    assert step_bucket(x, fs, fb).dtype == np.int32


def test_step_bucket_negative_is_bucket_zero_and_nan_raises() -> None:
    np.testing.assert_array_equal(step_bucket([-1, -10_000], *GAP), [0, 0])
    with pytest.raises(DipnValidationError, match="NaN"):
        step_bucket([1.0, np.nan], *GAP)


def test_stay_time_buckets_cover_179_values() -> None:
    ms = np.array([0, 999, 1000, 119_999, 120_000, 129_999, 130_000, 599_999, 600_000, 659_999,
                   1_199_999, 1_200_000, 10**9, -5])  # fmt: skip
    np.testing.assert_array_equal(
        buckets.stay_time_bucket(ms), [0, 0, 1, 119, 120, 120, 121, 167, 168, 168, 177, 178, 178, 0]
    )


def test_screen_segments_at_the_edges() -> None:
    w = np.full(5, 375.0)
    np.testing.assert_array_equal(
        buckets.screen_segment(np.array([0, 22.05, 22.06, 374.99, 375.0]), w, 17), [0, 0, 1, 16, 16]
    )
    # off-screen values are clamped, never out of the table
    np.testing.assert_array_equal(buckets.screen_segment(np.array([-3.0, 900.0]), w[:2], 17), [0, 16])


def test_swipe_length_keeps_direction() -> None:
    w = np.full(4, 340.0)
    dx = np.array([0.0, 25.0, -25.0, -340.0])
    np.testing.assert_array_equal(buckets.signed_length_segment(dx, w, 17), [0, 1, 18, 33])
    np.testing.assert_array_equal(buckets.direction(dx), [0, 0, 1, 1])


def test_history_and_profile_are_capped() -> None:
    assert buckets.capped_count(np.array([0, 19, 20, 500]), 20).tolist() == [0, 19, 19, 19]
    assert buckets.clipped_level(np.array([-1, 0, 8, 9]), 9).tolist() == [0, 0, 8, 8]


def test_vocabulary_oov_padding_and_capacity() -> None:
    vocab = Vocabulary.build(["b", "a", "a", "c", "c", "c", ""], capacity=2)
    assert vocab.values == ("c", "a")
    ids = vocab.ids(np.array(["c", "a", "zzz", None, ""], dtype=object))
    assert ids.tolist() == [2, 3, OOV_ID, PAD_ID, PAD_ID]
    assert vocab.decode(ids) == ["c", "a", "<oov>", "<pad>", "<pad>"]


def test_table3_sizes_are_the_papers() -> None:
    cfg = FeatureConfig()
    # Table 3 plus each view's age column (filled at the cut), then our context group
    assert [cfg.width(g) for g in Group] == [14 + 1, 3 + 1, 6 + 1, 6, 6, 8]
    assert all(cfg.at_cut_columns(v) == (cfg.width(v) - 1,) for v in ("swipe", "tap", "browse"))
    dims = {(f.group.value, f.name): (f.vocab_size, f.embed_dim) for f in TABLE3}
    assert dims[("swipe", "page")] == (224, 32)
    assert dims[("swipe", "swipe_length_y")] == (50, 16)
    assert dims[("browse", "leaf_category")] == (19011, 32)
    assert dims[("browse", "stay_time")] == (179, 16)
    assert dims[("history", "purchase_year")] == (100, 16)
    assert dims[("profile", "phone_price")] == (11, 4)
    assert cfg.spec("tap", "button").num_embeddings == 502  # pad + OOV + 500
    assert cfg.spec("swipe", "time_gap").num_embeddings == 21  # pad + 20 buckets


def _manifest() -> FeatureManifest:
    return FeatureManifest().with_vocabularies(
        {
            "swipe.page": Vocabulary(("Page_Home", "Page_Detail", "Page_Comments")),
            "tap.page": Vocabulary(("Page_Home", "Page_Detail")),
            "tap.button": Vocabulary(("Page_Detail_Button-Comments", "Page_Detail_Button-Cart")),
            "browse.leaf_category": Vocabulary(("c1", "c2")),
            "browse.top_category": Vocabulary(("t1",)),
            "browse.page": Vocabulary(("Page_Detail",)),
        }
    )


def test_manifest_round_trips_and_is_self_describing(tmp_path) -> None:
    manifest = _manifest()
    path = manifest.save(tmp_path / "features.json")
    data = json.loads(path.read_text())
    assert data["ids"]["padding"] == 0 and data["ids"]["oov"] == 1
    assert data["rules"]["time_gap"]["f_s"] == 100 and data["rules"]["swipe_duration"]["f_b"] == 250
    assert {i["name"]: i["shape"] for i in data["inputs"]}["swipe"] == [256, 14 + 1]
    assert FeatureManifest.load(path) == manifest


def test_vocabulary_larger_than_table3_is_refused() -> None:
    with pytest.raises(DipnValidationError, match="allows 181"):
        FeatureManifest().with_vocabularies({"browse.page": Vocabulary(tuple(map(str, range(182))))})


def test_swipe_encoding_of_one_swipe() -> None:
    enc = StreamEncoder(_manifest(), screen_w=340, screen_h=500)
    swipe = {"ts": 10_000, "type": "swipe", "page": "Page_Comments", "x0": 170, "y0": 400,
             "x1": 150, "y1": 100, "duration_ms": 260}  # fmt: skip
    ids = enc.encode("swipe", swipe)
    assert ids.tolist() == [
        4,  # third page of the vocabulary
        SWIPE_ACTIONS.index("swipe") + 1,
        20,  # first event: no previous, bucket 19
        0, 0,  # tap position does not apply
        9, 21, 8, 6,  # start (8, 20), end (7, 5) segments, +1
        1 + 17 + 1,  # |dx| = 20 -> segment 1, moving left
        15 + 25 + 1,  # |dy| = 300 -> segment 15, moving up
        2, 2,  # left, up
        11,  # 260 ms -> 10
        0,  # age: padding until the cut fills it in (inputs_at_cut)
    ]


def test_unknown_action_and_missing_coordinates_raise() -> None:
    enc = StreamEncoder(_manifest(), 340, 500)
    with pytest.raises(DipnValidationError, match="unknown swipe action"):
        enc.encode("swipe", {"ts": 1, "type": "pinch", "page": "Page_Home"})
    with pytest.raises(DipnValidationError, match="x is missing"):
        enc.encode("swipe", {"ts": 1, "type": "tap", "page": "Page_Home", "y": 3})


# ---- batch and incremental encoding agree ------------------------------------------------

PAGES = st.sampled_from(["Page_Home", "Page_Detail", "Page_Comments", "Page_Unseen"])
SCREEN = (360.0, 780.0)


@st.composite
def swipe_events(draw: st.DrawFn) -> dict:
    kind = draw(st.sampled_from(SWIPE_ACTIONS))
    ev: dict = {"type": kind, "page": draw(PAGES)}
    coord_x = st.floats(0, SCREEN[0], allow_nan=False)
    coord_y = st.floats(0, SCREEN[1], allow_nan=False)
    if kind == "tap":
        ev |= {"x": draw(coord_x), "y": draw(coord_y)}
    if kind == "swipe":
        ev |= {"x0": draw(coord_x), "y0": draw(coord_y), "x1": draw(coord_x), "y1": draw(coord_y),
               "duration_ms": draw(st.floats(0, 5000, allow_nan=False))}  # fmt: skip
    return ev


@st.composite
def tap_events(draw: st.DrawFn) -> dict:
    event = draw(st.sampled_from(["page", "button"]))
    button = draw(st.sampled_from(["Page_Detail_Button-Comments", "Page_Detail_Button-Cart", "Other"]))
    return {"event": event, "page": draw(PAGES), "button": button if event == "button" else None}


@st.composite
def browse_events(draw: st.DrawFn) -> dict:
    return {
        "action": draw(st.sampled_from(["browse", "search", "collect", "cart", "purchase"])),
        "leaf_category": draw(st.sampled_from(["c1", "c2", "c9", None])),
        "top_category": draw(st.sampled_from(["t1", "t2"])),
        "page": draw(PAGES),
        "stay_ms": draw(st.one_of(st.none(), st.floats(0, 3_000_000, allow_nan=False))),
    }


def _stream(draw: st.DrawFn, events: st.SearchStrategy) -> list[dict]:
    evs = draw(st.lists(events, min_size=1, max_size=40))
    gaps = draw(st.lists(st.integers(0, 200_000), min_size=len(evs), max_size=len(evs)))
    ts = 1_700_000_000_000 + np.cumsum(gaps)
    users = sorted(draw(st.lists(st.sampled_from(["u1", "u2", "u3"]), min_size=len(evs), max_size=len(evs))))
    return [ev | {"ts": int(t), "user_id": u} for ev, t, u in zip(evs, ts, users, strict=True)]


@st.composite
def streams(draw: st.DrawFn) -> tuple[str, list[dict]]:
    view = draw(st.sampled_from(["swipe", "tap", "browse"]))
    events = {"swipe": swipe_events(), "tap": tap_events(), "browse": browse_events()}[view]
    return view, _stream(draw, events)


def _as_columns(view: str, events: list[dict]) -> dict[str, np.ndarray]:
    from dipn.features.contract import VIEW_COLUMNS

    cols = {}
    for name in VIEW_COLUMNS[view]:
        values = [ev.get(name) for ev in events]
        if name == "screen_w":
            values = [SCREEN[0]] * len(events)
        elif name == "screen_h":
            values = [SCREEN[1]] * len(events)
        numeric = name in {"ts", "x", "y", "x0", "y0", "x1", "y1", "duration_ms", "stay_ms",
                           "screen_w", "screen_h"}  # fmt: skip
        cols[name] = np.array(
            [np.nan if v is None else v for v in values] if numeric else values,
            dtype=np.float64 if numeric and name != "ts" else (np.int64 if name == "ts" else object),
        )
    return cols


@settings(max_examples=150, deadline=None)
@given(streams())
def test_batch_and_incremental_encoding_agree(case: tuple[str, list[dict]]) -> None:
    view, events = case
    manifest = _manifest()
    cols = _as_columns(view, events)
    batch = SEQUENCE_ENCODERS[view](cols, manifest, previous_timestamps(cols["ts"], cols["user_id"]))
    incremental = []
    encoders: dict[str, StreamEncoder] = {}
    for ev in events:  # one encoder per user, as one phone per user
        enc = encoders.setdefault(ev["user_id"], StreamEncoder(manifest, *SCREEN))
        incremental.append(enc.encode(view, ev))
    np.testing.assert_array_equal(batch, np.stack(incremental))
    assert batch.dtype == np.int32
    specs = manifest.config.group(view)
    assert batch.shape == (len(events), len(specs))
    assert ((batch >= 0) & (batch < np.array([s.num_embeddings for s in specs]))).all()


def test_static_groups_encode_to_table3_ranges() -> None:
    manifest = _manifest()
    hist = {"collect_7d": np.array([0, 30]), "collect_365d": np.array([5, 1000]),
            "cart_7d": np.array([1, 2]), "cart_365d": np.array([0, 99]),
            "purchase_7d": np.array([0, 0]), "purchase_365d": np.array([100, 3])}  # fmt: skip
    assert STATIC_ENCODERS["history"](hist, manifest).tolist() == [[1, 6, 2, 1, 1, 100], [20, 100, 3, 100, 1, 4]]
    prof = {"age_level": np.array([3]), "gender": np.array([1]), "buyer_star": np.array([20]),
            "tm_level": np.array([0]), "vip_level": np.array([7]), "phone_price_level": np.array([10])}  # fmt: skip
    assert STATIC_ENCODERS["profile"](prof, manifest).tolist() == [[4, 2, 17, 1, 8, 11]]
