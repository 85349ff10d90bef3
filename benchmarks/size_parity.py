"""Size, parity and latency of the converted artifacts (issue 5), against the project's targets.

    python -m benchmarks.size_parity                       # converts runs/demo/run/best.pt
    python -m benchmarks.size_parity --reuse               # measure an existing bundle again
    python -m benchmarks.size_parity --tflite-runtime-python /tmp/tflrt/bin/python
                                                           # also run the TFLite files under
                                                           # tflite-runtime (a numpy<2 venv)

Converts the checkpoint with ``convert.bundle.build_bundle`` (ONNX, TFLite, CoreML; fp32 and int8;
parity on the eval split), then times single inferences (batch 1, 3 x 256 steps, 1 thread) of
PyTorch eager, onnxruntime and LiteRT, fp32 and int8, on real eval samples. Runtimes are timed in
interleaved rounds, so background load on the host hits them alike; the load average is recorded
beside the figures. CoreML predicts only on macOS: its row has sizes and the weights-only check.
Writes benchmarks/results/size_parity.json and size_parity.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

from benchmarks.machine import machine_info, machine_line

TARGET_MB, TARGET_DROP, TARGET_P50_MS = 0.6, 0.003, 2.0  # docs/design.md, Targets

def latency(bundle: Path, checkpoint: Path, samples: Path, rounds: int, per_round: int) -> dict[str, dict[str, float]]:
    """p50 / p90 / p99 milliseconds of one batch-1 inference per runtime, 1 thread, interleaved rounds."""
    from convert.reference import torch_calls
    from convert.signature import model_inputs
    from dipn.bundle.manifest import load_bundle
    from dipn.bundle.runners import run_one_calls
    from dipn.bundle.timing import interleaved, percentiles
    from dipn.samples.store import SampleStore

    loaded = load_bundle(bundle)
    store = SampleStore(samples)
    names = [i["name"] for i in loaded.manifest["inputs"]]
    inputs = model_inputs(store, store.indices("eval")[:per_round], names)
    times = interleaved(torch_calls(checkpoint, 1) | run_one_calls(loaded, 1), inputs, rounds, per_round)
    return {label: percentiles(seconds) for label, seconds in times.items()}


def tflite_runtime_check(python: str, bundle: Path, rounds: int) -> dict[str, Any]:
    """``dipn.bundle.litert_golden`` under ``python``, a separate environment with tflite-runtime."""
    result = subprocess.run([python, "-m", "dipn.bundle.litert_golden", str(bundle), "--repeat", str(rounds)],
                            capture_output=True, text=True, timeout=600, cwd=ROOT,
                            env={k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"} | {"PYTHONPATH": str(ROOT)})  # fmt: skip
    if result.returncode:
        return {"error": result.stderr.strip().splitlines()[-1] if result.stderr.strip() else "failed"}
    return json.loads(result.stdout.strip().splitlines()[-1])


def render(report: dict[str, Any]) -> str:
    manifest = report["manifest"]
    art = {(a["format"], a["precision"]): a for a in manifest["artifacts"]}
    tasks = manifest["model"]["tasks"]
    ref = manifest["parity"]["reference_auc"]
    lat = report["latency"]

    def mb(a: dict | None) -> str:
        return f"{a['bytes'] / 1e6:.2f}" if a else "-"

    def auc_pair(fmt: str) -> str:
        parts = []
        for t in tasks:
            fp32, int8 = (
                art[(fmt, "fp32")]["parity"]["auc_artifact"][t],
                art[(fmt, "int8")]["parity"]["auc_artifact"][t],
            )
            parts.append(f"{t} {fp32:.4f} / {int8:.4f}")
        return "; ".join(parts)

    def ms(label: str) -> str:
        return f"{lat[label]['p50_ms']:.2f} / {lat[label]['p90_ms']:.2f}" if label in lat else "n/a"

    lines = [
        "## Size and parity of the converted model (issue 5)",
        "",
        f"Command: `{report['command']}`  ",
        f"Machine: {machine_line(report['machine'])}; load average during the run "
        f"{report['load_average'][0]:.1f} / {report['load_average'][1]:.1f} (1 / 5 min) on "
        f"{report['machine']['cores']} cores, so latencies are upper bounds  ",
        f"Checkpoint: `{report['checkpoint']}` ({manifest['model_version']}); parity on "
        f"{manifest['parity']['samples']:,} eval samples of `{report['samples']}`, PyTorch fp32 AUC "
        + ", ".join(f"{t} {ref[t]:.4f}" for t in tasks)
        + f"; conversion of all six artifacts took {report['conversion_seconds']:.0f} s (parity runs included).",
        "",
        "| format | fp32 MB | int8 MB | max abs diff fp32 / int8 | AUC fp32 / int8 | AUC drop int8 | "
        "p50 / p90 ms fp32 | p50 / p90 ms int8 | graph | convert s fp32 / int8 |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        f"| PyTorch eager | {manifest['model'].get('fp32_mb', '-')} | - | reference | "
        + "; ".join(f"{t} {ref[t]:.4f}" for t in tasks)
        + f" | - | {ms('PyTorch eager fp32')} | {ms('PyTorch eager int8')} (torch.ao dynamic, Linear+GRU) | - | - |",
    ]
    runtime = {"onnx": "onnxruntime", "tflite": "LiteRT", "coreml": None}
    for fmt in ("onnx", "tflite", "coreml"):
        fp32, int8 = art.get((fmt, "fp32")), art.get((fmt, "int8"))
        if not fp32 or not int8:
            continue
        diff = f"{fp32['parity']['max_abs_diff']:.1e} / {int8['parity']['max_abs_diff']:.1e}"
        drop = int8["parity"]["worst_auc_drop"]
        graph = {"onnx": lambda a: f"{a['op_count']} ops, {a['recurrent_ops'].get('GRU', 0)} GRU",
                 "tflite": lambda a: f"{a['op_count']} ops, {a['while_loops']} WHILE",
                 "coreml": lambda a: f"{a['op_count']} ops, {a['while_loops']} while_loop"}[fmt](int8)  # fmt: skip
        name = runtime[fmt]
        lat32 = ms(f"{name} fp32") if name else "needs macOS"
        lat8 = ms(f"{name} int8") if name else "needs macOS"
        label = {"onnx": "ONNX (onnxruntime)", "tflite": "TFLite (LiteRT)",
                 "coreml": "CoreML (weights-only check)"}[fmt]  # fmt: skip
        lines.append(f"| {label} | {mb(fp32)} | {mb(int8)} | {diff} | {auc_pair(fmt)} | {drop:+.4f} | {lat32} | "
                     f"{lat8} | {graph} | {fp32.get('seconds', 0):.1f} / {int8.get('seconds', 0):.1f} |")  # fmt: skip
    lines += ["", f"Targets (docs/design.md): int8 artifact <= {TARGET_MB:g} MB each; AUC drop <= {TARGET_DROP:g} for "
              f"ONNX and TFLite int8; p50 <= {TARGET_P50_MS:g} ms, 1 thread, int8 ONNX and TFLite.", ""]  # fmt: skip
    checks = []
    for fmt in ("onnx", "tflite", "coreml"):
        a = art.get((fmt, "int8"))
        if a:
            checks.append(f"{fmt} int8 {a['bytes'] / 1e6:.2f} MB {'<=' if a['bytes'] / 1e6 <= TARGET_MB else '>'} {TARGET_MB:g}")
    for fmt in ("onnx", "tflite"):
        drop = art[(fmt, "int8")]["parity"]["worst_auc_drop"]
        checks.append(f"{fmt} AUC drop {drop:+.4f} {'<=' if drop <= TARGET_DROP else '>'} {TARGET_DROP:g}")
    for label in ("onnxruntime int8", "LiteRT int8"):
        if label in lat:
            p50 = lat[label]["p50_ms"]
            checks.append(f"{label} p50 {p50:.2f} ms {'<=' if p50 <= TARGET_P50_MS else '>'} {TARGET_P50_MS:g}")
    lines.append("Measured against them: " + "; ".join(checks) + ".")
    old = report.get("tflite_runtime")
    if old:
        if "error" in old:
            lines += ["", f"tflite-runtime: could not run ({old['error']})."]
        else:
            parts = [f"`{k}` " + (f"loads, golden max abs diff {v['golden_max_abs_diff']:.1e}, "
                                   f"p50 {v['inference']['p50_ms']:.2f} ms" if "error" not in v
                                   else f"refused: {v['error']}")
                     for k, v in old["artifacts"].items()]  # fmt: skip
            lines += [
                "",
                f"{old['runtime']} (numpy {old['numpy']}, separate venv): " + "; ".join(parts) + ".",
            ]
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", type=Path, default=ROOT / "runs/demo/run/best.pt")
    p.add_argument("--samples", type=Path, default=ROOT / "runs/demo/samples")
    p.add_argument("--bundle", type=Path, default=HERE / "data/bundle-demo")
    p.add_argument("--reuse", action="store_true", help="measure an existing bundle instead of converting again")
    p.add_argument("--parity-samples", type=int, default=4000)
    p.add_argument("--rounds", type=int, default=10, help="interleaved timing rounds")
    p.add_argument("--per-round", type=int, default=20, help="inferences per runtime per round (distinct samples)")
    p.add_argument("--tflite-runtime-python", help="a python with tflite-runtime (numpy<2) to load the TFLite files")
    p.add_argument("--out", type=Path, default=HERE / "results")
    args = p.parse_args()

    from convert.bundle import ConvertOptions, build_bundle
    from dipn.bundle.manifest import load_bundle

    command = "python -m benchmarks.size_parity " + " ".join(sys.argv[1:])
    start = time.perf_counter()
    if args.reuse and (args.bundle / "manifest.json").exists():
        manifest = load_bundle(args.bundle).manifest
        conversion_seconds = manifest["conversion_seconds"]
    else:
        options = ConvertOptions(parity_samples=args.parity_samples or None)
        def progress(message: str) -> None:
            print(f"[{time.perf_counter() - start:6.1f} s] {message}", flush=True)

        manifest = build_bundle(args.checkpoint, args.samples, args.bundle, options, progress)
        conversion_seconds = manifest["conversion_seconds"]
    load_bundle(args.bundle)  # every sha256 checked before timing anything
    print("timing single inferences ...", flush=True)
    load_start = os.getloadavg()
    lat = latency(args.bundle, args.checkpoint, args.samples, args.rounds, args.per_round)
    load_end = os.getloadavg()
    from dipn.training.checkpoint import load_model

    model, _, _ = load_model(args.checkpoint)
    manifest["model"]["fp32_mb"] = f"{sum(p.numel() for p in model.parameters()) * 4 / 1e6:.2f}"
    report = {
        "command": command,
        "machine": machine_info(),
        "load_average": [max(a, b) for a, b in zip(load_start, load_end, strict=True)],
        "checkpoint": str(
            args.checkpoint.relative_to(ROOT) if args.checkpoint.is_relative_to(ROOT) else args.checkpoint
        ),
        "samples": str(args.samples.relative_to(ROOT) if args.samples.is_relative_to(ROOT) else args.samples),
        "bundle": str(args.bundle),
        "conversion_seconds": conversion_seconds,
        "latency": lat,
        "manifest": {k: v for k, v in manifest.items() if k != "files"},
    }
    if args.tflite_runtime_python:
        report["tflite_runtime"] = tflite_runtime_check(args.tflite_runtime_python, args.bundle, 200)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "size_parity.json").write_text(json.dumps(report, indent=1, default=str) + "\n")
    md = render(report)
    (args.out / "size_parity.md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()
