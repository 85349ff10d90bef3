"""``dipn check-port`` on a real converted bundle: the Python device's own encoder and runtime
pass as a port, and each kind of difference is reported by case, input, row and field."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnxruntime")

from dipn.bundle.golden import input_shapes, read_golden  # noqa: E402
from dipn.bundle.manifest import load_bundle  # noqa: E402
from dipn.bundle.runners.onnx import OnnxRunner  # noqa: E402
from dipn.bundle.selftest import encode_case  # noqa: E402
from dipn.cli import main  # noqa: E402
from dipn.features import FeatureManifest  # noqa: E402
from dipn.features.buckets import stay_time_bucket  # noqa: E402
from dipn.features.port_spec import STAY_PIECES  # noqa: E402
from tests.web_bundle import onnx_bundle, signing_keys  # noqa: E402, F401


def python_port_results(bundle_dir: Path) -> dict:
    """The Python device as a port: each case's raw events through dipn.features, every ONNX
    artifact through onnxruntime."""
    bundle = load_bundle(bundle_dir)
    features = FeatureManifest.load(bundle_dir / "features.json")
    names = list(input_shapes(bundle.manifest))
    runners = {a["path"]: OnnxRunner(bundle.path(a)) for a in bundle.artifacts}
    cases = []
    for case in read_golden(bundle_dir, bundle.manifest)["cases"]:
        inputs = encode_case(case["raw"], features, names)
        cases.append({"name": case["name"], "ids": {n: inputs[n][0].tolist() for n in names},
                      "scores": {path: runner.scores(inputs)[0].tolist() for path, runner in runners.items()}})
    return {"format": 1, "port": "dipn (Python)", "model_version": bundle.manifest["model_version"], "cases": cases}


def run_check(capsys: pytest.CaptureFixture, *argv: object) -> tuple[int, str, str]:
    code = main(["check-port", *map(str, argv)])
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture(scope="module")
def results(onnx_bundle: Path) -> dict:
    return python_port_results(onnx_bundle)


def write(tmp_path: Path, data: object, name: str = "results.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return path


def test_the_python_device_passes_as_a_port_at_both_precisions(onnx_bundle, results, tmp_path, capsys) -> None:
    path = write(tmp_path, results)
    for precision in ([], ["--precision", "fp32"], ["--precision", "int8"]):
        code, out, _ = run_check(capsys, onnx_bundle, path, *precision)
        assert code == 0, out
        assert "OK: every id equal" in out
    code, out, _ = run_check(capsys, onnx_bundle, path, "--json")
    report = json.loads(out)
    assert code == 0 and report["ok"] and set(report["tolerance"]) == {"model.onnx", "model.int8.onnx"}
    assert report["cases"] == ["session", "long", "unknown_values", "no_events"]


def test_each_difference_is_named_by_case_input_row_and_field(onnx_bundle, results, tmp_path, capsys) -> None:
    broken = json.loads(json.dumps(results))
    session = broken["cases"][0]
    session["ids"]["swipe"][255][2] += 1  # the last event's time gap
    session["ids"]["context"][3] += 1  # the cut hour
    session["scores"]["model.int8.onnx"][1] += 0.01  # beyond the int8 tolerance 5e-3
    session["scores"]["model.onnx"][0] += 5e-5  # within the fp32 tolerance 1e-4
    long_case = broken["cases"][1]
    long_case["ids"]["tap"] = long_case["ids"]["tap"][-40:]  # real rows only: the padding left out
    del broken["cases"][3]
    code, out, _ = run_check(capsys, onnx_bundle, write(tmp_path, broken))
    assert code == 1
    lines = [line.strip() for line in out.splitlines() if "MISMATCH" in line]
    assert "MISMATCH case 'session' input 'swipe' row 255 field 'time_gap' (column 2)" in lines[0]
    assert any("case 'session' input 'context' row 0 field 'cut_hour' (column 3)" in line for line in lines)
    assert any("case 'session' artifact 'model.int8.onnx' field 'p_longterm'" in line and "> tolerance 0.005" in line
               for line in lines)  # fmt: skip
    assert not any("'model.onnx'" in line and "session" in line for line in lines)
    width = len(long_case["ids"]["tap"][0])
    assert any(f"case 'long' input 'tap': shape [40, {width}], the model reads [256, {width}]" in line for line in lines)
    assert any("case 'no_events': missing from the port's results" in line for line in lines)
    assert out.rstrip().endswith(")") and "FAILED: 5 mismatch line(s)" in out
    # --precision fp32 leaves the int8 difference out
    code, out, _ = run_check(capsys, onnx_bundle, write(tmp_path, broken), "--precision", "fp32", "--json")
    assert code == 1 and not any("int8" in line for line in json.loads(out)["mismatches"])


@pytest.mark.parametrize(("data", "message"), [
    ("not json", "not a readable JSON file"),
    ([], "not port results of format 1"),
    ({"format": 1, "cases": {"session": {}}}, "'cases' must be a list of objects"),
    ({"format": 1, "cases": [{"name": "session", "ids": [], "scores": {}}]}, "'ids' must be an object"),
    ({"format": 1, "cases": [{"name": "session", "ids": {}, "scores": {"model.tflite": [0.1, 0.2]}}]},
     "hold scores of none of the bundle's artifacts"),
])  # fmt: skip
def test_bad_results_are_one_line_errors(onnx_bundle, tmp_path, capsys, data, message) -> None:
    path = tmp_path / "bad.json"
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    code, out, err = run_check(capsys, onnx_bundle, path)
    assert code == 2 and message in err and err.count("\n") == 1 and err.startswith("dipn: error: ")
    code, _, err = run_check(capsys, tmp_path / "no-bundle", path)
    assert code == 2 and "not a bundle" in err
    code, _, err = run_check(capsys, onnx_bundle, tmp_path / "absent.json")
    assert code == 2 and "no such file" in err


def test_the_checker_loads_no_torch(onnx_bundle, results, tmp_path) -> None:
    path = write(tmp_path, results)
    code = ("import sys; from dipn.cli import main; rc = main(['check-port', sys.argv[1], sys.argv[2]]); "
            "assert 'torch' not in sys.modules, 'torch loaded'; sys.exit(rc)")  # fmt: skip
    done = subprocess.run([sys.executable, "-c", code, str(onnx_bundle), str(path)], capture_output=True, text=True,
                          timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr + done.stdout


def test_the_manifest_stay_pieces_are_the_encoders_rule() -> None:
    """features.json states the stay-time buckets as pieces a port computes from; they must be the
    encoder's own rule, at every second up to beyond the last piece."""
    stays_ms = np.arange(0, 1_300_000, 250, dtype=np.float64)
    seconds = stays_ms / 1000.0
    expected = np.full(len(seconds), STAY_PIECES[-1]["first"] + (1200 - 600) // 60)
    for piece in reversed(STAY_PIECES):
        inside = (seconds >= piece["from_s"]) & (seconds < piece["below_s"])
        expected[inside] = piece["first"] + np.floor((seconds[inside] - piece["from_s"]) / piece["step_s"])
    assert np.array_equal(stay_time_bucket(stays_ms), expected)
