"""Time at every step (issue 25): each view's age column and the context's time since each browse
action, computed at the cut from the windows and the cut time alone, stated in the manifest."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from dipn.errors import DipnValidationError
from dipn.features import FeatureManifest, StreamEncoder, Vocabulary, inputs_at_cut, left_pad
from dipn.features.buckets import piecewise_bucket, since_bucket
from dipn.features.cut import NO_EVENT_TS, event_stays
from dipn.features.decode import describe
from dipn.features.spec import ACTION_AGE, STEP_AGE, PiecewiseRule
from dipn.models import build_model

S, MIN, H, D = 1_000, 60_000, 3_600_000, 86_400_000
T0 = 1_700_000_000_000


def _manifest() -> FeatureManifest:
    return FeatureManifest().with_vocabularies(
        {"browse.leaf_category": Vocabulary(("c1",)), "browse.top_category": Vocabulary(("t1",)),
         "browse.page": Vocabulary(("Page_Log",))}  # fmt: skip
    )


def _browse(ts: int, action: str, stay: float | None = None) -> dict:
    return {"user_id": "u", "ts": ts, "action": action, "leaf_category": "c1", "top_category": "t1",
            "page": "Page_Log", "stay_ms": stay}  # fmt: skip


def _inputs_at(events: list[dict], cut: int, manifest: FeatureManifest) -> dict[str, np.ndarray]:
    """What a device holding ``events`` (its browse ring buffer) feeds the model at ``cut``."""
    length = manifest.config.sequence_length
    encoder = StreamEncoder(manifest, 390, 844)
    rows = np.stack([encoder.encode("browse", e) for e in events])
    windows = {"browse": left_pad(rows, length)[None]}
    times = {"browse": left_pad(np.array([e["ts"] for e in events], np.int64), length, NO_EVENT_TS)[None]}
    stay = left_pad(event_stays(events), length)[None]
    return inputs_at_cut(windows, times, stay, np.array([cut], np.int64), {}, manifest)


def test_piecewise_rules_tile_seconds_to_days() -> None:
    edges = np.array([-5, 0, 9_999, 10 * S, 59_999, MIN, 10 * MIN, H, D - 1, D, 10 * D - 1, 10 * D, 10**13])
    assert piecewise_bucket(edges, STEP_AGE.pieces).tolist() == [0, 0, 0, 1, 5, 6, 15, 20, 42, 43, 51, 52, 52]
    assert STEP_AGE.buckets == 53
    assert piecewise_bucket(np.array([0, H - 1, H, D, 9 * D, 10 * D]), ACTION_AGE.pieces).tolist() == [0, 0, 1, 24, 32, 33]
    assert since_bucket(np.array([np.nan, 0.0]), ACTION_AGE.pieces).tolist() == [ACTION_AGE.buckets, 0]
    with pytest.raises(ValueError, match="does not tile"):
        PiecewiseRule(((100.0, 30.0),))


def test_ages_and_action_times_are_computed_at_the_cut() -> None:
    manifest = _manifest()
    cfg = manifest.config
    events = [_browse(T0, "purchase"), _browse(T0 + 2 * D, "cart"), _browse(T0 + 3 * D, "browse", 40 * S),
              _browse(T0 + 3 * D + 45 * S, "browse")]  # fmt: skip
    age = cfg.at_cut_columns("browse")[0]
    early = _inputs_at(events, T0 + 3 * D + 50 * S, manifest)
    later = _inputs_at(events, T0 + 4 * D + 50 * S, manifest)
    # the same events, older at the later cut: ages move, the per-event columns do not
    assert early["browse"][0, -4:, age].tolist() == [1 + 43 + 2, 1 + 43, 1 + 5, 1 + 0]  # 3 d, 1 d 0 h, 50 s, 5 s
    assert later["browse"][0, -4:, age].tolist() == [1 + 43 + 3, 1 + 43 + 1, 1 + 43, 1 + 43]
    assert (early["browse"][0, :-4] == 0).all()  # padding stays padding
    columns = [s.name for s in cfg.group("context")]
    context = dict(zip(columns, early["context"][0].tolist(), strict=True))
    assert context["since_purchase"] == 1 + 24 + 2  # 3 days
    assert context["since_cart"] == 1 + 24 + 0  # 1 day
    assert context["since_browse"] == 1 + 0  # 5 s
    assert context["since_collect"] == 1 + ACTION_AGE.buckets  # none in the window
    by_name = {s.name: s for s in cfg.group("context")}
    assert describe(by_name["since_purchase"], context["since_purchase"], manifest) == "3d-4d"
    assert describe(cfg.spec("browse", "age"), int(early["browse"][0, -2, age]), manifest) == "50s-1min ago"


def test_the_manifest_states_every_rule_and_refuses_an_older_format(tmp_path) -> None:
    manifest = _manifest()
    data = manifest.to_dict()
    rule = data["rules"]["step_age"]
    assert rule["buckets"] == 53 and rule["open_value"] == 52
    assert rule["pieces"][1] == {"from_ms": 60_000.0, "to_ms": 600_000.0, "step_ms": 60_000.0, "first_value": 6}
    assert data["rules"]["action_age"]["none_value"] == ACTION_AGE.buckets
    assert {i["name"]: i["columns"] for i in data["inputs"]}["context"][-4:] == [
        "since_purchase", "since_cart", "since_collect", "since_browse"]  # fmt: skip
    assert FeatureManifest.from_dict(json.loads(json.dumps(data))) == manifest
    with pytest.raises(DipnValidationError, match="format 3 \\(found 2\\) \\(written by an older dipn"):
        FeatureManifest.from_dict({**data, "format": 2})


def test_the_papers_dipn_reads_no_time_and_ours_does() -> None:
    manifest = _manifest()
    cfg = manifest.config
    events = [_browse(T0, "purchase"), _browse(T0 + D, "browse", 20 * S)]
    a = _inputs_at(events, T0 + D + 30 * S, manifest)
    b = _inputs_at(events, T0 + 5 * D, manifest)  # the same steps, only their ages and the action times differ
    for name, moves in (("browse_history_paper", False), ("browse_history", True)):
        torch.manual_seed(0)
        model = build_model("dipn", name, cfg).eval()
        with torch.no_grad():
            def score(x: dict) -> torch.Tensor:
                context = torch.from_numpy(x["context"]).clone()
                context[:, :4] = torch.from_numpy(a["context"][:, :4])  # same recency and hour
                history = torch.ones((1, cfg.width("history")), dtype=torch.int32)
                return torch.stack(model(browse=torch.from_numpy(x["browse"]), history=history, context=context))

            moved = not torch.equal(score(a), score(b))
        assert moved is moves, name
    assert "age" not in [r.feature for r in build_model("dipn", "dipn_paper", cfg).embeddings["browse"].records]
