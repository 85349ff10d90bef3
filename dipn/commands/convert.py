"""``dipn convert``: a checkpoint -> ONNX / TFLite / CoreML artifacts, checked, in a bundle directory.

The converters live in the top-level ``convert`` package (they need onnx, TensorFlow and
coremltools: the ``dipn[convert]`` extra); this module only declares the command and imports
``convert`` inside ``run`` (as ``dipn keygen`` does for ``convert.signing``): ``dipn`` reaches into it
nowhere else.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from dipn.commands.options import float_in, int_in, regular_file


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "convert",
        help="convert a checkpoint to ONNX, TFLite and CoreML (int8), verify each against PyTorch",
        description="Export a checkpoint to the formats asked for, quantize each to int8, run every "
        "artifact on held-out eval samples and compare with PyTorch fp32 (max abs diff, AUC), and "
        "write a bundle directory: artifacts, features.json, golden vectors, manifest.json (sha256 "
        "and size of each file, parity figures, checkpoint metrics, minimum runtime versions). "
        "Exits non-zero when an artifact outputs NaN or loses more AUC than --max-auc-drop; the "
        "bundle is then written for inspection but marked rejected.",
    )
    p.add_argument("checkpoint", type=regular_file, help="a checkpoint from dipn train (best.pt)")
    p.add_argument("--samples", type=Path, help="sample directory whose eval split checks parity "
                   "(default: the one the checkpoint was trained on)")  # fmt: skip
    p.add_argument("--out", type=Path, help="bundle directory (default: bundle/ beside the checkpoint)")
    p.add_argument("--to", default="onnx,tflite,coreml", help="comma-separated formats (default onnx,tflite,coreml)")
    p.add_argument(
        "--quantize", choices=["int8", "none"], default="int8", help="int8 artifacts too (default) or fp32 only"
    )
    p.add_argument(
        "--max-auc-drop", type=float_in(0, 1), default=0.003, help="largest AUC loss allowed vs PyTorch (default 0.003)"
    )
    p.add_argument("--parity-samples", type=int_in(0, 10**9), default=4000, help="eval samples scored by every artifact "
                   "(default 4000; 0 = the whole eval split)")  # fmt: skip
    p.add_argument("--threads", type=int, default=1, help="threads of torch and of the runtimes in the parity runs (default 1: "
                   "never slower than one thread, also when other jobs share the cores)")
    p.add_argument("--tflite-route", choices=["tf-while", "litert-torch"], default="tf-while",
                   help="tf-while: TF re-expression, one WHILE loop (default); "
                   "litert-torch: unrolled fallback")  # fmt: skip
    p.add_argument("--coreml-weights", choices=["int8", "palette6", "palette4"], default="int8",
                   help="CoreML weight compression (default int8 per-channel)")  # fmt: skip
    p.add_argument("--signing-key", type=regular_file, help="Ed25519 private key (from dipn keygen): sign manifest.json "
                   "into manifest.sig; devices configured with the public key refuse anything else")
    p.add_argument("--quiet", action="store_true", help="print only the final table")
    p.set_defaults(run=run)


def _default_samples(checkpoint: Path) -> Path | None:
    from dipn.training.checkpoint import load

    recorded = load(checkpoint).get("samples")
    if isinstance(recorded, dict):
        recorded = recorded.get("path") or recorded.get("root")
    return Path(recorded) if isinstance(recorded, str) else None


def run(args: argparse.Namespace) -> int:
    from convert.bundle import ConvertOptions, build_bundle, size_parity_table
    from convert.errors import ParityGateError
    from dipn.errors import DipnValidationError

    samples = args.samples or _default_samples(args.checkpoint)
    if samples is None:
        raise DipnValidationError(f"{args.checkpoint} does not record its samples; pass --samples DIR")
    options = ConvertOptions(
        formats=tuple(f.strip() for f in args.to.split(",") if f.strip()),
        quantize=None if args.quantize == "none" else args.quantize,
        max_auc_drop=args.max_auc_drop,
        parity_samples=args.parity_samples or None,
        threads=args.threads,
        tflite_route=args.tflite_route,
        coreml_weights=args.coreml_weights,
        signing_key=args.signing_key,
    )
    out = args.out or args.checkpoint.parent / "bundle"
    start = time.perf_counter()

    def progress(message: str) -> None:
        if not args.quiet:
            print(f"[{time.perf_counter() - start:6.1f} s] {message}", flush=True)

    try:
        manifest = build_bundle(args.checkpoint, samples, out, options, progress)
    except ParityGateError:
        import json

        manifest = json.loads((out / "manifest.json").read_text())
        print(size_parity_table(manifest))
        raise
    print(size_parity_table(manifest))
    print(f"bundle {out} ({manifest['model_version']}): parity passed on {manifest['parity']['samples']:,} eval "
          f"samples, max AUC drop allowed {options.max_auc_drop}", file=sys.stdout)  # fmt: skip
    if args.signing_key is None:
        print("unsigned: devices refuse it unless allow_unsigned=True (development); sign with --signing-key")
    return 0
