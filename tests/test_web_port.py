"""The TypeScript port (mobile_demo/web) on a freshly converted bundle: its Node tests, and every
golden case at fp32 and int8 judged by ``dipn check-port``."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

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
    import numpy as np

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
