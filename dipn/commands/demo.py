"""``dipn demo``: the pipeline end to end on a small synthetic dataset, saying what it does."""

from __future__ import annotations

import argparse
import time
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo",
        help="run the pipeline end to end on a small synthetic dataset",
        description="Simulate shoppers, build samples and show one decoded sample; each stage "
        "prints what it did. Everything lands under --out.",
    )
    p.add_argument("--out", type=Path, default=Path("runs/demo"))
    p.add_argument("--users", type=int, default=400)
    p.add_argument("--days", type=int, default=3)
    p.add_argument("--density", type=float, default=0.25, help="activity scale (1.0 = paper's Table 1)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(run=run)


def _stage(title: str) -> float:
    print(f"\n=== {title} ===", flush=True)
    return time.perf_counter()


def run(args: argparse.Namespace) -> int:
    from dipn.commands.build_samples import format_summary
    from dipn.commands.inspect import render_sample
    from dipn.data.build import BuildConfig, build_samples
    from dipn.data.simulation import SimulationConfig, simulate

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
    print(f"\nDone. Inspect more samples with: dipn inspect {samples} --split eval --sample N")
    return 0
