"""``dipn simulate``: synthetic shoppers in the raw contracts."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from dipn.commands.options import float_in, int_in, seed

MAX_USERS = 10_000_000  # about 20 billion events a day at density 1: far beyond a single machine


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "simulate",
        help="generate synthetic shoppers (swipe, tap, browse, history, profile) as Parquet",
        description="Generate a seeded synthetic dataset of mobile shoppers whose latent purchase "
        "intent (browsing -> considering -> buying) shows in touch and browse behaviour. Writes "
        "swipe/tap/browse/history/profile.parquet and meta.json in the raw contracts. "
        "See docs/simulator.md for the generative model.",
    )
    p.add_argument("--users", type=int_in(1, MAX_USERS), default=1000,
                   help=f"number of shoppers (default 1000; at most {MAX_USERS:,})")
    p.add_argument("--days", type=int_in(1, 366), default=3, help="days in which samples may be cut (default 3)")
    p.add_argument("--seed", type=seed, default=0, help="random seed; same seed, same data (default 0)")
    p.add_argument(
        "--density",
        type=float_in(0, 10, low_open=True),
        default=1.0,
        help="scale of activity; 1.0 is the paper's Table 1 (about 42 browse, 391 tap, 1583 swipe "
        "actions per user-day); use e.g. 0.1 for quick experiments",
    )
    p.add_argument("--out", type=Path, required=True, help="output directory")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from dipn.logs.simulation import SimulationConfig, simulate

    config = SimulationConfig(users=args.users, days=args.days, seed=args.seed, density=args.density)
    summary = simulate(config, args.out, progress=not args.quiet)
    print(json.dumps(summary, indent=1))
    return 0
