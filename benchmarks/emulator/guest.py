"""What runs on the emulated phone, and the same on the host for comparison: prints one JSON line.

    python guest.py runtime BUNDLE [--repeat N] [--public-key PEM]   # IntentRuntime + every artifact
    python guest.py golden  BUNDLE [--repeat N]                      # tflite-runtime on the golden ids
    python guest.py count   BUNDLE [--artifact PATH --repeat N]      # N inferences after loading all

``runtime`` is the device wrapper as an app would use it: each ONNX and TFLite artifact is loaded
and self-tested on its golden vectors (the same refusal rule as ``IntentRuntime``), its scores of
the golden cases are printed for the caller to compare with the host's, single inferences are
timed, and ``IntentRuntime`` is timed from a new raw event to its score (sanitize + encode + model).
``golden`` needs only numpy and ``tflite_runtime``: it runs in the Python 3.9 userland, where
tflite-runtime's aarch64 wheels live and dipn (Python 3.11) does not. ``count`` does a fixed amount
of work so that instruction counts of two runs differ by exactly ``N`` inferences.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

EVENT_CASE = "long"  # the golden case with full 256-step views: the cost of a phone with a history


def percentiles(seconds: list[float]) -> dict[str, float]:
    ms = np.asarray(seconds) * 1e3
    return {"p50_ms": float(np.percentile(ms, 50)), "p90_ms": float(np.percentile(ms, 90)), "runs": len(seconds)}


def timed(call: Any, repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return times


def device_artifacts(bundle: Any) -> list[dict[str, Any]]:
    return [a for a in bundle.artifacts if a["format"] in ("onnx", "tflite")]


def runtime_report(bundle_dir: Path, repeat: int, public_key: str | None) -> dict[str, Any]:
    """Every device artifact through the wrapper's own loading path, then IntentRuntime end to end."""
    from convert.golden import encode_case
    from convert.runners import runner_for
    from convert.signing import load_trusted_bundle
    from convert.verify import self_test

    bundle, signer = load_trusted_bundle(bundle_dir, public_key, allow_unsigned=public_key is None)
    golden = json.loads((bundle.root / bundle.manifest["golden"]).read_text())
    from dipn.features import FeatureManifest

    features = FeatureManifest.load(bundle.root / bundle.manifest["features"])
    names = [i["name"] for i in bundle.manifest["inputs"]]
    encoded = {case["name"]: encode_case(case["raw"], features, names) for case in golden["cases"]}
    report: dict[str, Any] = {"signer": signer, "artifacts": {}, "event_to_score": {}}
    for entry in device_artifacts(bundle):
        row: dict[str, Any] = {"format": entry["format"], "precision": entry["precision"]}
        try:
            runner = runner_for(entry, bundle.root, threads=1)
            row["runtime"] = runner.label
            row["self_test"] = self_test(bundle, entry, runner)
        except Exception as exc:  # a refused artifact is a finding, not a crash of the benchmark
            row["error"] = f"{type(exc).__name__}: {exc}"
            report["artifacts"][entry["path"]] = row
            continue
        row["scores"] = {name: runner.scores(inputs)[0].tolist() for name, inputs in encoded.items()}
        feeds = {k: np.ascontiguousarray(v, np.int32) for k, v in encoded[EVENT_CASE].items()}
        timed(lambda: runner.run_one(feeds), 2)  # warm-up: first calls allocate
        row["inference"] = percentiles(timed(lambda: runner.run_one(feeds), repeat))
        report["artifacts"][entry["path"]] = row
    for fmt in sorted({a["format"] for a in device_artifacts(bundle)}):
        report["event_to_score"][fmt] = event_to_score(bundle_dir, golden, fmt, repeat, public_key)
    heavy = {"torch", "tensorflow", "pandas", "polars", "fastapi", "sqlalchemy", "uvicorn", "coremltools", "sklearn"}
    report["heavy_modules_imported"] = sorted(heavy & {m.split(".")[0] for m in sys.modules})
    return report


def event_to_score(bundle_dir: Path, golden: dict, fmt: str, repeat: int, public_key: str | None, threads: int = 1,
                   checkpoint: Path | None = None) -> dict[str, Any]:  # fmt: skip
    """IntentRuntime with a full history (the golden ``long`` case): time from one new raw event to
    its score. ``fmt`` "torch" is the PyTorch reference backend (needs ``checkpoint``)."""
    from mobile_demo.runtime import VIEWS, IntentRuntime

    case = next(c for c in golden["cases"] if c["name"] == EVENT_CASE)["raw"]
    try:
        runtime = IntentRuntime(bundle_dir, tuple(case["screen"]), backend=fmt, threads=threads,
                                score_on_page_leave=False, checkpoint=checkpoint, public_key=public_key,
                                allow_unsigned=public_key is None)  # fmt: skip
    except Exception as exc:
        return {"error": f"{type(exc).__name__}: {exc}"}
    runtime.set_user(case["history"], case["profile"])
    events = sorted(((e["ts"], view, e) for view in VIEWS for e in case["events"][view]), key=lambda x: x[0])
    for _, view, event in events:
        runtime.on_event(view, event)
    last_ts = events[-1][0]
    swipes = [e for _, v, e in events if v == "swipe" and e["type"] == "swipe"]

    def new_event_then_score() -> None:
        nonlocal last_ts
        last_ts += 700
        runtime.on_event("swipe", {**swipes[last_ts % len(swipes)], "ts": last_ts})
        runtime.score(last_ts)

    timed(new_event_then_score, 2)
    artifact = "checkpoint" if fmt == "torch" else runtime.bundle.artifact(fmt)["path"]
    return {"artifact": artifact, "runtime": runtime.status()["runtime"],
            **percentiles(timed(new_event_then_score, repeat))}  # fmt: skip


def golden_report(bundle_dir: Path, repeat: int) -> dict[str, Any]:
    """tflite-runtime on the golden ids stored in the bundle (no dipn needed), against the stored scores."""
    import tflite_runtime
    from tflite_runtime.interpreter import Interpreter

    manifest = json.loads((bundle_dir / "manifest.json").read_text())
    golden = json.loads((bundle_dir / manifest["golden"]).read_text())
    shapes = {i["name"]: i["shape"][1:] for i in manifest["inputs"]}
    report: dict[str, Any] = {"runtime": f"tflite_runtime {tflite_runtime.__version__}", "numpy": np.__version__,
                              "artifacts": {}}  # fmt: skip
    for entry in manifest["artifacts"]:
        if entry["format"] != "tflite":
            continue
        row: dict[str, Any] = {"format": "tflite", "precision": entry["precision"]}
        try:
            runner = Interpreter(model_path=str(bundle_dir / entry["path"]), num_threads=1).get_signature_runner()
            diffs, feeds, scores = [], {}, {}
            for case in golden["cases"]:
                feeds = {n: _pad(case["ids"][n], shapes[n]) for n in shapes}
                out = runner(**feeds)
                got = [float(np.ravel(out["p_realtime"])[0]), float(np.ravel(out["p_longterm"])[0])]
                scores[case["name"]] = got
                diffs.append(max(abs(g - e) for g, e in zip(got, case["scores"][entry["path"]])))
                if case["name"] == EVENT_CASE:
                    timing_feeds = feeds
            row["scores"] = scores
            row["golden_max_abs_diff"] = max(diffs)
            row["tolerance"] = golden["tolerance"][entry["precision"]]
            timed(lambda: runner(**timing_feeds), 2)
            row["inference"] = percentiles(timed(lambda: runner(**timing_feeds), repeat))
        except Exception as exc:  # tflite-runtime 2.13 may refuse newer op versions: a finding
            row["error"] = f"{type(exc).__name__}: {exc}"
        report["artifacts"][entry["path"]] = row
    return report


def _pad(rows: list, shape: list[int]) -> np.ndarray:
    """Golden ids (real rows only) left-padded to the input shape, as convert.golden.pad_rows."""
    out = np.zeros((1, *shape), np.int32)
    if len(shape) == 1:
        out[0] = rows[0]
    elif rows:
        out[0, shape[0] - len(rows) :] = np.asarray(rows, np.int32)
    return out


def count(bundle_dir: Path, artifact: str | None, repeat: int) -> dict[str, Any]:
    """Load every device artifact and warm each up once, then ``repeat`` inferences of ``artifact``:
    runs differ only in those inferences, so one run with ``repeat`` 0 is the baseline of all."""
    from convert.golden import encode_case
    from convert.runners import runner_for
    from convert.verify import load_bundle
    from dipn.features import FeatureManifest

    bundle = load_bundle(bundle_dir)
    golden = json.loads((bundle.root / bundle.manifest["golden"]).read_text())
    features = FeatureManifest.load(bundle.root / bundle.manifest["features"])
    case = next(c for c in golden["cases"] if c["name"] == EVENT_CASE)["raw"]
    feeds = encode_case(case, features, [i["name"] for i in bundle.manifest["inputs"]])
    runners = {entry["path"]: runner_for(entry, bundle.root, threads=1) for entry in device_artifacts(bundle)}
    for runner in runners.values():
        runner.run_one(feeds)
    for _ in range(repeat if artifact else 0):
        runners[artifact].run_one(feeds)
    labels = sorted({r.label for r in runners.values()})
    return {"artifact": artifact, "repeat": repeat if artifact else 0, "runtimes": labels}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mode", choices=("runtime", "golden", "count"))
    parser.add_argument("bundle", type=Path)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--artifact", help="count: the artifact's path inside the bundle")
    parser.add_argument("--public-key", help="runtime: PEM of the bundle's signer (else loaded unsigned)")
    args = parser.parse_args()
    if args.mode == "runtime":
        report = runtime_report(args.bundle, args.repeat, args.public_key)
    elif args.mode == "golden":
        report = golden_report(args.bundle, args.repeat)
    else:
        report = count(args.bundle, args.artifact, args.repeat)
    import platform

    report |= {"machine": platform.machine(), "python": platform.python_version(), "numpy": np.__version__}
    print(json.dumps(report))


if __name__ == "__main__":
    main()
