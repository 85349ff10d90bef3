"""The TypeScript port (mobile_demo/web) on a freshly converted bundle: its Node tests, and every
golden case at fp32 and int8 judged by ``dipn check-port``."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest

from dipn.cli import main
from tests.web_bundle import WEB, onnx_bundle, signing_keys, web_build  # noqa: F401


def test_the_node_tests_pass_on_the_bundle(onnx_bundle: Path, signing_keys, web_build: Path) -> None:
    env = os.environ | {"DIPN_TEST_BUNDLE": str(onnx_bundle), "DIPN_TEST_PUBLIC_KEY": str(signing_keys[1])}
    done = subprocess.run(["node", "--test", "dist/test/"], cwd=WEB, env=env, capture_output=True, text=True, timeout=600)
    summary = dict(re.findall(r"^# (pass|fail|skipped) (\d+)$", done.stdout, re.M))
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert summary == {"pass": summary["pass"], "fail": "0", "skipped": "0"} and int(summary["pass"]) >= 13, summary


@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_the_port_reproduces_every_golden_case(onnx_bundle: Path, signing_keys, web_build: Path, tmp_path: Path,
                                               precision: str, capsys: pytest.CaptureFixture) -> None:  # fmt: skip
    results = tmp_path / "PORT_RESULTS.json"
    done = subprocess.run(["node", str(web_build / "src" / "node" / "port-results.js"), str(onnx_bundle), str(results),
                           "--public-key", str(signing_keys[1])], capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr
    data = json.loads(results.read_text())
    assert data["port"].startswith("dipn-web TypeScript port on onnxruntime-node")
    assert main(["check-port", str(onnx_bundle), str(results), "--precision", precision]) == 0, capsys.readouterr().out
    out = capsys.readouterr().out
    assert "OK: every id equal, every score within tolerance" in out


def test_the_port_refuses_a_bundle_it_cannot_trust(onnx_bundle: Path, web_build: Path, tmp_path: Path) -> None:
    done = subprocess.run(["node", str(web_build / "src" / "node" / "port-results.js"), str(onnx_bundle),
                           str(tmp_path / "r.json")], capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 2 and done.stderr.startswith("port-results: error: pass --public-key")


def test_the_early_fusion_input_is_assembled_as_in_python(onnx_bundle: Path, web_build: Path, tmp_path: Path) -> None:
    """``merged`` (read by the early-fusion variant only) for every golden case, against the one
    Python assembly (``inputs_at_cut``), on a bundle whose model does not read it."""
    from dipn.bundle.selftest import encode_case
    from dipn.features import FeatureManifest

    results = tmp_path / "PORT_RESULTS.json"
    done = subprocess.run(["node", str(web_build / "src" / "node" / "port-results.js"), str(onnx_bundle), str(results),
                           "--allow-unsigned", "--also", "merged"], capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr
    features = FeatureManifest.load(onnx_bundle / "features.json")
    golden = json.loads((onnx_bundle / "golden.json").read_text())["cases"]
    port = {case["name"]: case for case in json.loads(results.read_text())["cases"]}
    names = ["swipe", "tap", "browse", "history", "profile", "context", "merged"]
    for case in golden:
        expected = encode_case(case["raw"], features, names)["merged"][0]
        assert np.array_equal(np.asarray(port[case["name"]]["ids"]["merged"]), expected), case["name"]


def _time_cases(length: int) -> list[dict]:
    """Raw cases beyond the golden ones for the rules of time at the cut: a purchase, a cart and a
    collect that scrolled out of the browse window (the device saw them; the window no longer holds
    them), and a cut before some events' timestamps (a clock stepped back: negative ages)."""
    day, start = 86_400_000, 1_767_261_600_000

    def browse(ts: int, action: str) -> dict:
        return {"user_id": "u", "ts": ts, "action": action, "leaf_category": None, "top_category": None,
                "page": "Page_Home", "stay_ms": None if action == "browse" else 1_000.0}  # fmt: skip

    early = [browse(start - 5 * day + i, a) for i, a in enumerate(("purchase", "cart", "collect"))]
    later = [browse(start - 4 * day + 137_000 * i, ("browse", "search")[i % 2]) for i in range(length + 1)]
    taps = [{"user_id": "u", "ts": start - 3_600_000 * k, "event": "page", "page": "Page_Home", "button": None}
            for k in (5, 0, 2)]  # fmt: skip
    base = {"history": {}, "profile": {}, "screen": [390.0, 844.0]}
    return [
        {**base, "name": "scrolled_out", "events": {"swipe": [], "tap": [], "browse": early + later},
         "score_ts": start + 3 * day},
        {**base, "name": "clock_back", "events": {"swipe": [], "tap": taps, "browse": [browse(start + 50_000, "cart")]},
         "score_ts": start - 1_800_000},
    ]  # fmt: skip


def test_step_and_action_ages_are_computed_as_in_python(onnx_bundle: Path, web_build: Path, tmp_path: Path) -> None:
    """Every input of the time cases through the port (a copy of the bundle whose golden.json holds
    them, opened unsigned) against the one Python assembly: a purchase that left the browse window
    is 'none' on both sides, an event after the cut is 0 ms old."""
    import hashlib
    import shutil

    from dipn.bundle.selftest import encode_case
    from dipn.features import FeatureManifest

    bundle = tmp_path / "bundle"
    shutil.copytree(onnx_bundle, bundle)
    features = FeatureManifest.load(bundle / "features.json")
    golden = json.loads((bundle / "golden.json").read_text())
    names = ["swipe", "tap", "browse", "history", "profile", "context", "merged"]
    cases = _time_cases(features.config.sequence_length)
    expected = {case["name"]: encode_case(case, features, names) for case in cases}
    golden["cases"] = [{"name": case["name"], "raw": case, "ids": {}, "scores": {}} for case in cases]
    data = (json.dumps(golden) + "\n").encode()
    (bundle / "golden.json").write_bytes(data)
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["files"]["golden.json"] = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    results = tmp_path / "PORT_RESULTS.json"
    done = subprocess.run(["node", str(web_build / "src" / "node" / "port-results.js"), str(bundle), str(results),
                           "--allow-unsigned", "--also", "merged"], capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr
    port = {case["name"]: case["ids"] for case in json.loads(results.read_text())["cases"]}
    context = [spec.name for spec in features.config.group("context")]
    none_id = features.config.action_age.buckets + 1
    scrolled = expected["scrolled_out"]["context"][0]
    assert [scrolled[context.index(f"since_{a}")] for a in ("purchase", "cart", "collect")] == [none_id] * 3
    assert expected["clock_back"]["browse"][0, -1, -1] == 1  # the cart after the cut: age 0
    for name, inputs in expected.items():
        for input_name in names:
            assert np.array_equal(np.asarray(port[name][input_name]), inputs[input_name][0]), (name, input_name)
