"""What runs on the emulated phone, and the same on the host for comparison: prints one JSON line.

    python guest.py runtime BUNDLE [--repeat N] [--public-key PEM]   # IntentScorer + every artifact
    python guest.py golden  BUNDLE [--repeat N]                      # tflite-runtime on the golden ids
    python guest.py count   BUNDLE [--artifact PATH --repeat N]      # N inferences after loading all

``runtime`` is the device wrapper as an app would use it: each ONNX and TFLite artifact is loaded
and self-tested on its golden vectors (the same refusal rule as ``IntentScorer``), its scores of
the golden cases are printed for the caller to compare with the host's, single inferences are
timed, and ``IntentScorer`` is timed from a new raw event to its score (check + encode + model).
``golden`` is ``dipn.bundle.litert_golden``, which needs only numpy and ``tflite_runtime``: it runs
in the Python 3.9 userland, where tflite-runtime's aarch64 wheels live and the rest of dipn
(Python 3.11) does not. ``count`` does a fixed amount
of work so that instruction counts of two runs differ by exactly ``N`` inferences.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from dipn.bundle.litert_golden import TIMED_CASE, golden_report
from dipn.bundle.timing import percentiles, timed


def device_artifacts(bundle: Any) -> list[dict[str, Any]]:
    return [a for a in bundle.artifacts if a["format"] in ("onnx", "tflite")]


def runtime_report(bundle_dir: Path, repeat: int, public_key: str | None) -> dict[str, Any]:
    """Every device artifact through the scorer's own loading path, then IntentScorer end to end."""
    from dipn.bundle.runners import runner_for
    from dipn.bundle.selftest import encode_case, self_test
    from dipn.bundle.trust import load_trusted_bundle
    from dipn.features import FeatureManifest
    from mobile_demo import HOST_ONLY

    bundle, signer = load_trusted_bundle(bundle_dir, public_key, allow_unsigned=public_key is None)
    golden = json.loads((bundle.root / bundle.manifest["golden"]).read_text())
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
        feeds = {k: np.ascontiguousarray(v, np.int32) for k, v in encoded[TIMED_CASE].items()}
        timed(lambda: runner.run_one(feeds), 2)  # warm-up: first calls allocate
        row["inference"] = percentiles(timed(lambda: runner.run_one(feeds), repeat))
        report["artifacts"][entry["path"]] = row
    for fmt in sorted({a["format"] for a in device_artifacts(bundle)}):
        report["event_to_score"][fmt] = event_to_score(bundle_dir, golden, fmt, repeat, public_key)
    report["heavy_modules_imported"] = sorted(set(HOST_ONLY) & {m.split(".")[0] for m in sys.modules})
    return report


def event_to_score(bundle_dir: Path, golden: dict, backend: Any, repeat: int, public_key: str | None,
                   threads: int = 1) -> dict[str, Any]:  # fmt: skip
    """The device scorer with a full history (the golden ``long`` case): time from one new raw event
    to its score (the scoring policy scores every event). ``backend``: an artifact format, or a
    runner (the host's PyTorch reference)."""
    from dataclasses import replace

    from dipn.features import VIEWS
    from mobile_demo import IntentScorer, IntentScorerOptions, event_from_row

    case = next(c for c in golden["cases"] if c["name"] == TIMED_CASE)["raw"]
    injected = not isinstance(backend, str)
    options = IntentScorerOptions(bundle_dir, public_key=public_key, allow_unsigned=public_key is None,
                                  format="auto" if injected else backend, threads=threads,
                                  screen=tuple(case["screen"]), runner=backend if injected else None)  # fmt: skip
    try:
        runtime = IntentScorer.create_from_options(options)
    except Exception as exc:
        return {"error": f"{type(exc).__name__}: {exc}"}
    runtime.set_user(case["history"], case["profile"])
    events = sorted(((e["ts"], view, e) for view in VIEWS for e in case["events"][view]), key=lambda x: x[0])
    for _, view, event in events:
        runtime.on_event(event_from_row(view, event))
    last_ts = events[-1][0]
    swipes = [event_from_row("swipe", e) for _, v, e in events if v == "swipe" and e["type"] == "swipe"]

    def new_event_then_score() -> None:
        nonlocal last_ts
        last_ts += 700
        runtime.on_event(replace(swipes[last_ts % len(swipes)], ts=last_ts))

    timed(new_event_then_score, 2)
    artifact = runtime.model.bundle.artifact(backend)["path"] if not injected else "checkpoint"
    return {"artifact": artifact, "runtime": runtime.status()["runtime"],
            **percentiles(timed(new_event_then_score, repeat))}  # fmt: skip


def count(bundle_dir: Path, artifact: str | None, repeat: int) -> dict[str, Any]:
    """Load every device artifact and warm each up once, then ``repeat`` inferences of ``artifact``:
    runs differ only in those inferences, so one run with ``repeat`` 0 is the baseline of all."""
    from dipn.bundle.manifest import load_bundle
    from dipn.bundle.runners import runner_for
    from dipn.bundle.selftest import encode_case
    from dipn.features import FeatureManifest

    bundle = load_bundle(bundle_dir)
    golden = json.loads((bundle.root / bundle.manifest["golden"]).read_text())
    features = FeatureManifest.load(bundle.root / bundle.manifest["features"])
    case = next(c for c in golden["cases"] if c["name"] == TIMED_CASE)["raw"]
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
