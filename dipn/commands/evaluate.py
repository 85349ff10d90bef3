"""``dipn evaluate``: AUC per task, log loss, calibration and score histograms of a checkpoint."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from dipn.commands.options import positive_int, regular_file
from dipn.errors import DipnValidationError


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "evaluate",
        help="score a checkpoint on a sample split: AUC, log loss, calibration, histograms",
        description="Score a checkpoint on a split of a sample directory and write metrics.json, "
        "reliability.png (calibration) and scores.png (score histograms by label) to --out.",
    )
    p.add_argument("checkpoint", type=regular_file, help="a checkpoint from dipn train (best.pt, or gbdt.json of a GBDT run)")
    p.add_argument("samples", type=Path, help="sample directory encoded with the same features.json")
    p.add_argument("--split", choices=["train", "val", "eval"], default="eval",
                   help="train, val (what early stopping saw) or eval, the held-out test days (default)")
    p.add_argument("--out", type=Path, help="directory for metrics.json and plots (default: next to the checkpoint)")
    p.add_argument("--batch-size", type=positive_int, default=512)
    p.add_argument("--predictions-out", type=Path, help="CSV of one score pair per cut: user_id, ts, p_realtime, p_longterm")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from dipn.evaluation.report import evaluate_checkpoint
    from dipn.outputs import (
        BUNDLE,
        EVALUATION,
        RAW_LOGS,
        SAMPLES,
        check_output_file,
        existing_output,
        refuse_kinds,
    )

    out = args.out or args.checkpoint.parent / f"evaluation-{args.split}"
    # found before the scoring, not after it: a file, another kind of directory, a report inside a
    # signed bundle (the device would refuse the bundle) or a sample directory, a FIFO or a device
    if out.exists() and not out.is_dir():
        raise DipnValidationError(f"--out {out} is a file; give a directory for metrics.json and the plots")
    existing_output(out, EVALUATION)
    refuse_kinds(out, BUNDLE, SAMPLES, RAW_LOGS, role="--out")
    if args.predictions_out is not None:
        check_output_file(args.predictions_out, role="--predictions-out")
        refuse_kinds(args.predictions_out, BUNDLE, SAMPLES, RAW_LOGS, role="--predictions-out")
    report = evaluate_checkpoint(args.checkpoint, args.samples, args.split, out, args.batch_size, args.predictions_out)
    for task, m in report["tasks"].items():
        print(f"{task:9s} AUC {m['auc']:.4f}  log loss {m['logloss']:.4f}  positive rate {m['positive_rate']:.3f}"
              f"  mean score {m['mean_score']:.3f}  ({m['samples']:,} samples)")
    print(f"wrote {out / 'metrics.json'}, {out / 'reliability.png'}, {out / 'scores.png'}")
    print(json.dumps({"checkpoint": str(args.checkpoint), "split": args.split}))
    return 0
