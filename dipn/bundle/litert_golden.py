"""The golden ids a bundle stores, through any LiteRT interpreter, against the stored scores.

For runtimes the device package cannot run beside: tflite-runtime, which many apps still ship,
needs numpy < 2 and its last aarch64 wheels Python <= 3.10. So this reads the stored ids (not the
raw events: the encoder is not needed) and imports numpy, the interpreter and
``dipn.bundle.golden`` only, in Python 3.9 syntax. The bundle's files are not checked here; the
caller checked them where dipn runs.

    python -m dipn.bundle.litert_golden BUNDLE [--repeat N] [--runtime tflite_runtime]
"""

from __future__ import annotations

import argparse
import importlib
import json
from pathlib import Path
from typing import Any, Dict

import numpy as np

from dipn.bundle.golden import input_shapes, read_golden, stored_inputs
from dipn.bundle.timing import percentiles, timed

TIMED_CASE = "long"  # the golden case with full views: the cost of a phone with a history


def golden_report(bundle_dir: Path, repeat: int, runtime: str = "tflite_runtime") -> Dict[str, Any]:
    """Per TFLite artifact: its scores of every case, the largest difference from the stored ones,
    the tolerance, and the latency of ``repeat`` inferences; or why it could not run."""
    interpreter = importlib.import_module(f"{runtime}.interpreter").Interpreter
    version = getattr(importlib.import_module(runtime), "__version__", "0")
    manifest = json.loads((Path(bundle_dir) / "manifest.json").read_text())
    golden = read_golden(bundle_dir, manifest)
    shapes = input_shapes(manifest)
    report: Dict[str, Any] = {"runtime": f"{runtime} {version}", "numpy": np.__version__, "artifacts": {}}
    for entry in manifest["artifacts"]:
        if entry["format"] != "tflite":
            continue
        row: Dict[str, Any] = {"format": "tflite", "precision": entry["precision"]}
        try:
            runner = interpreter(model_path=str(Path(bundle_dir) / entry["path"]), num_threads=1).get_signature_runner()
            diffs, scores, timing_feeds = [], {}, {}
            for case in golden["cases"]:
                feeds = stored_inputs(case, shapes)
                out = runner(**feeds)
                got = [float(np.ravel(out["p_realtime"])[0]), float(np.ravel(out["p_longterm"])[0])]
                scores[case["name"]] = got
                diffs.append(max(abs(g - e) for g, e in zip(got, case["scores"][entry["path"]])))
                if case["name"] == TIMED_CASE or not timing_feeds:
                    timing_feeds = feeds
            row["scores"] = scores
            row["golden_max_abs_diff"] = max(diffs)
            row["tolerance"] = golden["tolerance"][entry["precision"]]
            timed(lambda: runner(**timing_feeds), 2)  # warm-up: first calls allocate
            row["inference"] = percentiles(timed(lambda: runner(**timing_feeds), repeat))
        except Exception as exc:  # an old runtime may refuse newer op versions: a finding, not a crash
            row["error"] = f"{type(exc).__name__}: {exc}"
        report["artifacts"][entry["path"]] = row
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("bundle", type=Path)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--runtime", default="tflite_runtime", help="the interpreter's package")
    args = parser.parse_args()
    print(json.dumps(golden_report(args.bundle, args.repeat, args.runtime)))


if __name__ == "__main__":
    main()
