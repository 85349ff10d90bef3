"""The device scorer: loads a checked bundle, encodes live events exactly as training did, scores
with a real runtime at the moments its scoring policy names, and answers bad input with typed
errors (strict) or drops, counts and logs it (lenient). (That it loads nothing heavy:
tests/test_layers.py.)"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnxruntime")

from convert.reference import TorchReference  # noqa: E402
from dipn.bundle.errors import BundleIntegrityError  # noqa: E402
from dipn.samples.store import SampleStore  # noqa: E402
from mobile_demo import (  # noqa: E402
    Browse,
    DeviceError,
    IntentScorer,
    IntentScorerOptions,
    InvalidArgumentError,
    InvalidEventError,
    Page,
    ScoringPolicy,
    Swipe,
    Tap,
    Touch,
    event_from_row,
)
from mobile_demo.ring import ViewBuffer  # noqa: E402
from tests.raw_logs import device_at_cut  # noqa: E402

T = 1_790_000_000_000  # in the past: events ahead of the device clock are dropped
SCREEN = (360, 780)


def scorer(bundle: Path, **options: object) -> IntentScorer:
    return IntentScorer.create_from_options(
        IntentScorerOptions(bundle, allow_unsigned=True, **{"screen": SCREEN, "format": "onnx", **options}))


def swipe(ts: int, **fields: object) -> Swipe:
    return Swipe(**{"ts": ts, "page": "Page_Home", "x0": 10, "y0": 700, "x1": 12, "y1": 100, "duration_ms": 150,
                    **fields})  # fmt: skip


def test_ring_buffer_is_a_left_padded_window_of_the_last_rows() -> None:
    ring = ViewBuffer(4, 2)
    for i in range(1, 4):
        ring.append(np.array([i, i]))
    np.testing.assert_array_equal(ring.window(), [[0, 0], [1, 1], [2, 2], [3, 3]])
    for i in range(4, 7):
        ring.append(np.array([i, i]))
    np.testing.assert_array_equal(ring.window(), [[3, 3], [4, 4], [5, 5], [6, 6]])


@pytest.mark.parametrize("backend", ["tflite", "onnx"])
def test_live_events_encode_to_the_training_tensors_and_score_like_the_bundle(
    backend: str, tiny_bundle: Path, tiny_samples: Path, tiny_raw: Path
) -> None:
    store = SampleStore(tiny_samples)
    index = int(store.indices("eval")[0])
    runtime, batch, cut = device_at_cut(store, index, tiny_raw, tiny_bundle, backend)
    assert runtime.model.self_test["cases"] > 0 and runtime.model.backend == backend
    inputs = runtime.inputs(at=cut)
    for name in inputs:
        np.testing.assert_array_equal(inputs[name][0], batch[name][0], err_msg=name)
    score = runtime.score(cut)
    reference = json.loads((tiny_bundle / "manifest.json").read_text())
    assert 0 <= score.p_realtime <= 1 and 0 <= score.p_longterm <= 1 and reference["status"] == "ok"


def test_lenient_mode_drops_counts_and_logs_each_reason_once(tiny_bundle: Path, caplog: pytest.LogCaptureFixture) -> None:
    runtime = scorer(tiny_bundle)
    bad = [
        event_from_row("swipe", {"type": "swipe", "page": "Page_Home"}),  # no ts
        event_from_row("browse", {"timestamp": T, "action": "browse", "page": "Page_Home"}),  # ts under another name
        event_from_row("swipe", {"ts": T, "type": "pinch", "page": "Page_Home"}),  # unknown action
        Browse(ts=T, action="view", page="Page_Detail"),  # unknown action
        Browse(ts=T // 1000, action="cart", page="Page_Cart"),  # seconds
        Browse(ts=T // 1000 + 1, action="cart", page="Page_Cart"),  # seconds again: logged once
        Touch(ts=T, page="Page_Home", x=float("nan"), y=3),
        Tap(ts=T, page="Page_Home", button=""),  # a button tap without its button
        "not an event",
    ]
    with caplog.at_level(logging.WARNING, logger="mobile_demo.scorer"):
        assert [runtime.on_event(e) for e in bad] == [None] * len(bad)
    dropped = runtime.status()["dropped"]
    assert dropped["Browse.ts: looks like seconds"] == 2 and dropped["Browse.action: unknown action"] == 1
    assert dropped["swipe row.type: unknown type"] == 1 and dropped["Touch.x: not a finite number"] == 1
    assert dropped["Swipe.ts: missing"] == dropped["Browse.ts: missing"] == dropped["Tap.button: missing"] == 1
    assert sum(dropped.values()) == len(bad) and "events_encoded" not in runtime.status()["counts"]
    warnings = [r.getMessage() for r in caplog.records if r.name == "mobile_demo.scorer"]
    assert len(warnings) == len(bad) - 1 and sum("looks like seconds" in w for w in warnings) == 1
    # Repairs, not drops: off the screen, time backwards, negative stay; an unknown page is OOV.
    runtime.on_event(Touch(ts=T, page="Page_Home", x=5000, y=-9))
    runtime.on_event(Page(ts=T - 50_000, page="Page_Never_Seen"))
    runtime.on_event(Browse(ts=T, action="purchase", page="Page_Pay", stay_ms=-4))
    repaired = runtime.status()["repaired"]
    assert repaired["clamped_off_screen"] == 2 and repaired["clamped_time_backwards"] == 1
    assert repaired["clamped_stay_ms"] == 1 and runtime.status()["counts"]["events_encoded"] == 3


@pytest.mark.parametrize(("event", "message"), [
    (Browse(ts=T // 1000, action="cart", page="Page_Cart"),
     r"Browse event: ts: looks like seconds \(1790000000; pass milliseconds since the epoch \(1790000000000\)\)"),
    (Browse(ts=T, action="view", page="Page_Detail"),
     r"Browse event: action: unknown action \('view'; allowed: browse, search, collect, cart, purchase\)"),
    (event_from_row("browse", {"timestamp": T, "action": "browse", "page": "P"}),
     r"Browse event: ts: missing \(the row has timestamp; the time field is ts"),
    (Page(ts=T, page="Page_Home", action="close"), r"Page event: action: unknown action \('close'; allowed: open, leave\)"),
    (swipe(T, duration_ms=10**400), r"Swipe event: duration_ms: not a finite number"),
    (swipe(T + 3_600_000), r"Swipe event: ts: more than 5 min ahead of the device clock"),
])  # fmt: skip
def test_strict_mode_raises_one_typed_error_naming_the_field_and_the_rule(
    tiny_bundle: Path, event: object, message: str
) -> None:
    runtime = scorer(tiny_bundle, strict=True, clock=lambda: T)
    with pytest.raises(InvalidEventError, match=message):
        runtime.on_event(event)


def test_a_bundle_with_a_modified_artifact_is_refused(tiny_bundle: Path, tmp_path: Path) -> None:
    copy = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, copy)
    with open(copy / "model.int8.onnx", "r+b") as f:
        f.seek(100)
        f.write(b"\x00\x01\x02")
    with pytest.raises(BundleIntegrityError, match="sha256 mismatch"):
        scorer(copy, format="auto")


def test_every_event_and_each_idle_tick_is_scored_and_the_torch_reference_agrees(
    tiny_bundle: Path, tiny_checkpoint: Path
) -> None:
    policy = ScoringPolicy(timer_ms=1000, idle_limit_ms=3500)
    scores = []
    onnx = scorer(tiny_bundle, scoring_policy=policy, result_listener=scores.append)
    reference = scorer(tiny_bundle, scoring_policy=policy, runner=TorchReference(tiny_checkpoint))
    for i in range(5):
        assert onnx.on_event(swipe(T + 100 * i)).ts == T + 100 * i
        reference.on_event(swipe(T + 100 * i))
    ticks = onnx.tick(T + 400 + 10_000)
    assert [s.ts for s in ticks] == [T + 1400, T + 2400, T + 3400] and onnx.tick(T + 20_000) == []
    assert [s.trigger for s in scores] == ["event"] * 5 + ["idle"] * 3 and scores[5:] == ticks
    for tick in ticks:
        expected = reference.score(tick.ts)
        assert abs(tick.p_realtime - expected.p_realtime) < 0.05 and abs(tick.p_longterm - expected.p_longterm) < 0.05
    # A tick the app never drove before the next event is skipped, not scored late.
    onnx.on_event(swipe(T + 30_000))
    onnx.tick(T + 31_500)
    onnx.on_event(swipe(T + 33_000))
    counts = onnx.status()["counts"]
    assert counts["ticks_skipped"] == 1 and counts["scores_idle"] == 4 and counts["scores_event"] == 7


def test_the_bundle_names_the_scoring_policy_and_an_older_bundle_gets_the_defaults_and_says_so(
    tiny_bundle: Path, tmp_path: Path
) -> None:
    manifest = json.loads((tiny_bundle / "manifest.json").read_text())
    assert manifest["scoring_policy"] == {"on_event": True, "timer_ms": 60_000, "idle_limit_ms": 1_800_000}
    assert scorer(tiny_bundle).status()["scoring_policy"]["source"] == "bundle"
    older = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, older)
    del manifest["scoring_policy"]
    (older / "manifest.json").write_text(json.dumps(manifest))
    status = scorer(older).status()["scoring_policy"]
    assert status["source"].startswith("defaults") and status["timer_ms"] == 60_000


def test_numbers_no_float_can_hold_are_refused_with_typed_errors_or_repaired(tiny_bundle: Path) -> None:
    runtime = scorer(tiny_bundle, clock=lambda: T)
    huge = 10**400
    for call in (lambda: runtime.score(2**70), lambda: runtime.score(huge), lambda: runtime.tick(float("nan")),
                 lambda: runtime.tick("soon"), lambda: runtime.inputs(at=-1)):  # fmt: skip
        with pytest.raises(InvalidArgumentError, match="must be"):
            call()
    for event in (swipe(huge), swipe(T, x0=huge), Browse(ts=T, action="browse", page="P", stay_ms=huge)):
        assert runtime.on_event(event) is None
    runtime.set_user(history={"collect_7d": [1, 2], "cart_7d": huge, "purchase_7d": "many"},
                     profile={"age_level": float("nan"), "vip_level": {"x": 1}})  # fmt: skip
    repaired = runtime.status()["repaired"]
    assert repaired["cleared_collect_7d"] == repaired["cleared_cart_7d"] == repaired["cleared_age_level"] == 1
    assert sum(runtime.status()["dropped"].values()) == 3
    score = runtime.score(T)
    assert np.isfinite([score.p_realtime, score.p_longterm]).all()
    with pytest.raises(InvalidArgumentError, match="screen must be two finite sizes"):
        scorer(tiny_bundle, screen=(huge, 780))
    for bad, match in (({"precision": "fp16"}, "precision must be"), ({"threads": 0}, "threads must be"),
                       ({"format": "tflite-gpu"}, "format must be"), ({"clock": 5}, "clock must be")):  # fmt: skip
        with pytest.raises(InvalidArgumentError, match=match):
            IntentScorerOptions(tiny_bundle, **bad)
    with pytest.raises(InvalidArgumentError, match="bundle must be a directory path"):
        IntentScorerOptions(None)  # type: ignore[arg-type]


def test_a_far_future_timestamp_is_dropped_and_a_view_clock_recovers_when_the_device_clock_goes_back(
    tiny_bundle: Path,
) -> None:
    now = [T]
    runtime = scorer(tiny_bundle, clock=lambda: now[0])
    year_2530 = 17_672_000_000_000

    def leave(ts: int):  # noqa: ANN202 (a Score or None)
        return runtime.on_event(Page(ts=ts, page="Page_Home", action="leave"))

    assert leave(now[0]).ts == now[0]
    assert leave(year_2530) is None and runtime.status()["repaired"]["dropped_future_ts"] == 1
    now[0] += 60_000
    assert leave(now[0]).ts == now[0]  # the view's clock was not frozen at 2530
    assert runtime.status()["repaired"].get("clamped_time_backwards", 0) == 0
    # The device clock itself was wrong (set to 2530), then corrected: the view follows it back.
    now[0] = year_2530
    assert leave(year_2530).ts == year_2530
    now[0] = T + 120_000
    assert leave(now[0]).ts == now[0] and runtime.status()["repaired"]["clock_reset"] == 1


def test_the_screen_is_needed_only_by_a_model_that_reads_swipes_and_a_closed_scorer_refuses_calls(
    tiny_bundle: Path,
) -> None:
    with pytest.raises(DeviceError, match="reads the swipe view; give screen"):
        scorer(tiny_bundle, screen=None)
    with scorer(tiny_bundle, precision="fp32") as runtime:
        assert runtime.model.self_test["artifact"] == "model.onnx"
        runtime.on_event(swipe(T))
    assert runtime.status()["closed"]
    with pytest.raises(DeviceError, match="closed"):
        runtime.on_event(swipe(T + 1))


def test_the_listener_gets_every_score_and_its_own_errors_never_reach_scoring(
    tiny_bundle: Path, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(score: object) -> None:
        raise RuntimeError("the app's bug")

    runtime = scorer(tiny_bundle, result_listener=broken)
    with caplog.at_level(logging.ERROR, logger="mobile_demo.scorer"):
        scores = [runtime.on_event(swipe(T + i)) for i in range(3)]
    assert all(s is not None for s in scores) and runtime.status()["counts"]["listener_errors"] == 3
    assert [r.name for r in caplog.records if r.levelno >= logging.ERROR] == ["mobile_demo.scorer"]
    assert "the result listener raised" in caplog.text
    # The posting policy marks what the uplink sends: the first score, then what moves.
    assert scores[0].post and scores[0].post_reason == "first"


def test_the_stored_golden_ids_score_as_stored_under_a_bare_litert_interpreter(tiny_bundle: Path) -> None:
    """``dipn.bundle.litert_golden``, what runs under tflite-runtime, here with LiteRT's own interpreter."""
    pytest.importorskip("ai_edge_litert")
    from dipn.bundle.litert_golden import golden_report

    report = golden_report(tiny_bundle, repeat=2, runtime="ai_edge_litert")
    rows = report["artifacts"]
    assert set(rows) == {"model.tflite", "model.int8.tflite"} and report["runtime"].startswith("ai_edge_litert")
    for row in rows.values():
        assert "error" not in row and row["golden_max_abs_diff"] <= row["tolerance"]
        assert row["inference"]["runs"] == 2 and set(row["scores"]) >= {"long", "no_events"}
