"""``dipn evaluate``: AUC, PR-AUC and log loss per task with user-bootstrap intervals, by cut type,
calibration and score histograms of a checkpoint."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from dipn.commands.options import positive_int, regular_file
from dipn.errors import DipnValidationError


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "evaluate",
        help="score a checkpoint on a sample split: AUC, PR-AUC, log loss with intervals, calibration, histograms",
        description="Score a checkpoint on a split of a sample directory and write to --out: metrics.json "
        "(per task: AUC, PR-AUC and log loss, each with a 95%% interval from resampling users, the same "
        "for cuts at an event and at an idle moment, and the calibration table), reliability.png "
        "(observed purchase rate against mean score in bins of equal sample counts) and scores.png "
        "(score histograms by label). Plots are titled with the model, the split and the AUC.",
    )
    p.add_argument("checkpoint", type=regular_file, help="a checkpoint from dipn train (best.pt, or gbdt.json of a GBDT run)")
    p.add_argument("samples", type=Path, help="sample directory encoded with the same features.json")
    p.add_argument("--split", choices=["train", "val", "eval"], default="eval",
                   help="train, val (what early stopping saw) or eval, the held-out test days (default)")
    p.add_argument("--out", type=Path, help="directory for metrics.json and plots (default: next to the checkpoint)")
    p.add_argument("--batch-size", type=positive_int, help="samples per scoring batch (default 128)")
    p.add_argument("--threads", type=positive_int,
                   help="torch threads (default: chosen while scoring by timing batches with 1 thread and with "
                        "this process's cores, so a busy machine never makes the default slower than 1 thread)")
    p.add_argument("--bootstrap-rounds", type=positive_int, default=200,
                   help="user resamples for the 95%% intervals (default 200)")
    p.add_argument("--predictions-out", type=Path, help="CSV of one score pair per cut: user_id, ts, p_realtime, p_longterm")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
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
    report = evaluate_checkpoint(args.checkpoint, args.samples, args.split, out, args.batch_size, args.predictions_out,
                                 threads=args.threads, progress=not args.quiet, rounds=args.bootstrap_rounds)  # fmt: skip
    print(f"{report['model']} on the {args.split} split: {report['scoring']['samples']:,} samples of "
          f"{report['bootstrap']['users']:,} users; [95% interval over users]")
    for task, m in report["tasks"].items():
        print(f"{task:9s} {summary(m)}  positive rate {m['positive_rate']:.3f}  mean score {m['mean_score']:.3f}")
        for cut, c in m["by_cut_type"].items():
            print(f"  {cut:7s} {summary(c)}  ({c['samples']:,} samples)")
    print(f"wrote {out / 'metrics.json'}, {out / 'reliability.png'}, {out / 'scores.png'}")
    print(json.dumps({"checkpoint": str(args.checkpoint), "split": args.split}))
    return 0


def summary(m: dict) -> str:
    """ "AUC 0.7012 [0.6801, 0.7190]  PR-AUC ...  log loss ..." of one task's (or cut type's) metrics."""
    return "  ".join(f"{label} {m[key]:.4f} [{m[f'{key}_low']:.4f}, {m[f'{key}_high']:.4f}]"
                     for label, key in (("AUC", "auc"), ("PR-AUC", "pr_auc"), ("log loss", "logloss")))  # fmt: skip
