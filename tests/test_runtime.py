"""The device wrapper: loads a checked bundle, encodes live events exactly as training did, scores
with a real runtime and survives malformed events. (That it loads nothing heavy: tests/test_layers.py.)"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnxruntime")

from convert.reference import TorchReference  # noqa: E402
from dipn.bundle.errors import BundleIntegrityError  # noqa: E402
from dipn.data.store import SampleStore  # noqa: E402
from mobile_demo.ring import ViewBuffer  # noqa: E402
from mobile_demo.runtime import IntentRuntime  # noqa: E402
from tests.raw_logs import device_at_cut  # noqa: E402


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
    assert runtime.self_test["cases"] > 0 and runtime.backend == backend
    inputs = runtime.inputs(at=cut)
    for name in inputs:
        np.testing.assert_array_equal(inputs[name][0], batch[name][0], err_msg=name)
    score = runtime.score(cut)
    reference = json.loads((tiny_bundle / "manifest.json").read_text())
    assert 0 <= score.p_realtime <= 1 and 0 <= score.p_longterm <= 1 and reference["status"] == "ok"


def test_malformed_events_are_repaired_or_dropped_and_counted(tiny_bundle: Path) -> None:
    runtime = IntentRuntime(tiny_bundle, (360, 780), backend="onnx", allow_unsigned=True)
    t = 1_790_000_000_000  # in the past: events ahead of the device clock are dropped
    bad = [
        ("swipe", {"type": "swipe", "page": "Page_Home"}),  # no ts
        ("swipe", {"ts": t, "type": "pinch", "page": "Page_Home"}),  # unknown action
        ("swipe", {"ts": t, "type": "tap", "page": "Page_Home", "x": float("nan"), "y": 3}),  # NaN
        ("swipe", {"ts": t, "type": "tap", "page": "Page_Home", "x": 5000, "y": -9}),  # off screen: clamped
        ("swipe", {"ts": t - 50_000, "type": "open_page", "page": "Page_Never_Seen"}),  # backwards, OOV page
        ("tap", {"ts": t, "event": "button", "page": "Page_Home"}),  # button tap without a button
        ("browse", {"ts": t, "action": "purchase", "page": None, "stay_ms": -4}),
        ("gyro", {"ts": t}),
    ]
    for view, event in bad:
        runtime.on_event(view, event)
    counts = runtime.sanitizer.counts
    assert counts["dropped_missing_field"] == 3 and counts["dropped_unknown_type"] == 1
    assert counts["dropped_unknown_view"] == 1 and counts["clamped_off_screen"] == 2
    assert counts["clamped_time_backwards"] == 1 and counts["clamped_stay_ms"] == 1
    assert runtime.events_encoded == 3
    score = runtime.score()
    assert np.isfinite([score.p_realtime, score.p_longterm]).all()


def test_a_bundle_with_a_modified_artifact_is_refused(tiny_bundle: Path, tmp_path: Path) -> None:
    copy = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, copy)
    with open(copy / "model.int8.onnx", "r+b") as f:
        f.seek(100)
        f.write(b"\x00\x01\x02")
    with pytest.raises(BundleIntegrityError, match="sha256 mismatch"):
        IntentRuntime(copy, (360, 780), allow_unsigned=True)


def test_timer_trigger_and_the_torch_reference_agree_with_the_artifact(tiny_bundle: Path, tiny_checkpoint: Path) -> None:
    onnx = IntentRuntime(tiny_bundle, (360, 780), backend="onnx", timer_ms=1000, score_on_page_leave=False,
                         allow_unsigned=True)
    reference = IntentRuntime(tiny_bundle, (360, 780), backend=TorchReference(tiny_checkpoint),
                              allow_unsigned=True)
    t = 1_790_000_000_000  # in the past: events ahead of the device clock are dropped
    fired = []
    for i in range(30):
        event = {"ts": t + 100 * i, "type": "swipe", "page": "Page_Home", "x0": 10, "y0": 700, "x1": 12, "y1": 100,
                 "duration_ms": 150}  # fmt: skip
        fired.append(onnx.on_event("swipe", event) is not None)
        reference.on_event("swipe", event)
    assert sum(fired) == 3  # at 0, 1000 and 2000 ms
    a, b = onnx.score(t + 3000), reference.score(t + 3000)
    assert abs(a.p_realtime - b.p_realtime) < 0.05 and abs(a.p_longterm - b.p_longterm) < 0.05


def test_integers_beyond_float_in_any_field_and_wrong_user_values_never_raise(tiny_bundle: Path) -> None:
    """10**400 overflows float(): in ts, a coordinate, a duration, a stay or the screen size it is
    dropped or repaired and counted; history and profile values that are no numbers count as 0."""
    t = 1_790_000_000_000
    runtime = IntentRuntime(tiny_bundle, (360, 780), backend="onnx", allow_unsigned=True, clock=lambda: t)
    huge = 10**400
    swipe = {"ts": t, "type": "swipe", "page": "Page_Home", "x0": 10, "y0": 700, "x1": 12, "y1": 100, "duration_ms": 150}
    for view, event in [
        ("swipe", {**swipe, "ts": huge}),
        ("swipe", {**swipe, "x0": huge}),
        ("swipe", {**swipe, "duration_ms": huge}),
        ("swipe", {**swipe, "screen_w": huge, "screen_h": -huge}),
        ("browse", {"ts": t, "action": "browse", "page": "Page_Detail", "stay_ms": huge}),
        ("swipe", {"ts": t, "type": "tap", "page": "Page_Detail", "x": huge, "y": 30}),
    ]:
        runtime.on_event(view, event)
    runtime.set_user(history={"collect_7d": [1, 2], "cart_7d": huge, "purchase_7d": "many"},
                     profile={"age_level": float("nan"), "vip_level": {"x": 1}})  # fmt: skip
    counts = runtime.sanitizer.counts
    assert counts["dropped_missing_field"] == 4  # a ts, a swipe's start and duration, a tap's x: required
    assert counts["cleared_duration_ms"] == counts["cleared_stay_ms"] == counts["cleared_x"] == 1
    assert counts["cleared_screen_w"] == counts["cleared_screen_h"] == 1 and runtime.events_encoded == 2
    assert counts["cleared_collect_7d"] == counts["cleared_cart_7d"] == counts["cleared_age_level"] == 1
    score = runtime.score(t)
    assert np.isfinite([score.p_realtime, score.p_longterm]).all()
    with pytest.raises(ValueError, match="screen must be two finite sizes"):
        IntentRuntime(tiny_bundle, (huge, 780), backend="onnx", allow_unsigned=True)


def test_a_far_future_timestamp_is_dropped_and_a_view_clock_recovers_when_the_device_clock_goes_back(
    tiny_bundle: Path,
) -> None:
    now = [1_790_000_000_000]
    runtime = IntentRuntime(tiny_bundle, (360, 780), backend="onnx", allow_unsigned=True, clock=lambda: now[0])
    year_2530 = 17_672_000_000_000

    def leave(ts: int):  # noqa: ANN202 (a Score or None)
        return runtime.on_event("swipe", {"ts": ts, "type": "leave_page", "page": "Page_Home"})

    assert leave(now[0]).ts == now[0]
    assert leave(year_2530) is None and runtime.sanitizer.counts["dropped_future_ts"] == 1
    now[0] += 60_000
    assert leave(now[0]).ts == now[0]  # the view's clock was not frozen at 2530
    assert runtime.sanitizer.counts["clamped_time_backwards"] == 0
    # The device clock itself was wrong (set to 2530), then corrected: the view follows it back.
    now[0] = year_2530
    assert leave(year_2530).ts == year_2530
    now[0] = 1_790_000_120_000
    assert leave(now[0]).ts == now[0] and runtime.sanitizer.counts["clock_reset"] == 1


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
