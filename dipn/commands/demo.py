"""``dipn demo``: the pipeline end to end on a small synthetic dataset, saying what it does."""

from __future__ import annotations

import argparse
import time
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo",
        help="run the pipeline end to end on a small synthetic dataset",
        description="Simulate shoppers, build samples, show one decoded sample, train a small DIPN "
        "and evaluate it; each stage prints what it did. Everything lands under --out.",
    )
    p.add_argument("--out", type=Path, default=Path("runs/demo"))
    p.add_argument("--users", type=int, default=300)
    p.add_argument("--days", type=int, default=3)
    p.add_argument("--density", type=float, default=1.0, help="activity scale (1.0 = paper's Table 1)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--train-samples", type=int, default=6000, help="training samples per epoch (CPU budget)")
    p.add_argument("--eval-samples", type=int, default=4000, help="evaluation samples")
    p.add_argument("--epochs", type=int, default=2)
    p.set_defaults(run=run)


def _stage(title: str) -> float:
    print(f"\n=== {title} ===", flush=True)
    return time.perf_counter()


def run(args: argparse.Namespace) -> int:
    from dipn.commands.build_samples import format_summary
    from dipn.commands.inspect import render_sample
    from dipn.data.build import BuildConfig, build_samples
    from dipn.commands.train import describe_model
    from dipn.data.simulation import SimulationConfig, simulate
    from dipn.data.store import SampleStore
    from dipn.evaluation.report import evaluate_checkpoint
    from dipn.training.config import TrainConfig
    from dipn.training.loop import Trainer

    raw, samples = args.out / "raw", args.out / "samples"
    t0 = _stage(f"1. simulate {args.users} shoppers over {args.days} days (density {args.density:g}) -> {raw}")
    summary = simulate(
        SimulationConfig(users=args.users, days=args.days, seed=args.seed, density=args.density), raw
    )
    rows = summary.get("rows", {})
    print("rows: " + ", ".join(f"{k} {v:,}" for k, v in rows.items()))
    print(f"done in {time.perf_counter() - t0:.1f} s")

    t0 = _stage(f"2. build samples (Table 3 encoding, cuts, 1 h / 24 h labels, time split) -> {samples}")
    info = build_samples(raw, samples, BuildConfig(seed=args.seed))
    print(format_summary(info))

    _stage("3. one evaluation sample, decoded (what the model sees)")
    print(render_sample(samples, 0, "eval", 6))

    run_dir = args.out / "run"
    t0 = _stage(f"4. train DIPN (both tasks jointly, Adam) on {args.train_samples:,} samples x {args.epochs} epochs -> {run_dir}")
    config = TrainConfig(epochs=args.epochs, batch_size=128, max_train_samples=args.train_samples,
                         max_eval_samples=args.eval_samples, seed=args.seed, lr=2e-3)  # fmt: skip
    store = SampleStore(samples)
    print(describe_model(config, store).split("\ntraining config")[0])
    Trainer(store, config, run_dir).fit()
    print(f"done in {time.perf_counter() - t0:.1f} s")

    _stage("5. evaluate the best checkpoint on the whole evaluation day")
    report = evaluate_checkpoint(run_dir / "best.pt", samples, "eval", run_dir / "evaluation-eval")
    for task, m in report["tasks"].items():
        print(f"{task:9s} AUC {m['auc']:.4f}  log loss {m['logloss']:.4f}  positive rate {m['positive_rate']:.3f}")
    print(f"plots: {run_dir / 'evaluation-eval'}/reliability.png, scores.png")
    print(f"\nDone. Inspect more samples with: dipn inspect {samples} --split eval --sample N")
    return 0
