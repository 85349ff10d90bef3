"""``dipn import``: a public clickstream log in its published layout -> our raw contract."""

from __future__ import annotations

import argparse
from pathlib import Path

from dipn.commands.options import float_in, regular_file, utc_offset_minutes
from dipn.logs.importers import FORMATS, STAY_CAP_MS


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "import",
        help="convert a public e-commerce log (Taobao, REES46, Retailrocket, YooChoose) to raw logs",
        description="Read a public clickstream log in its original published layout and write "
        "browse.parquet (the browse view), history.parquet (collect/cart/purchase counts derived "
        "from the log) and meta.json into DIR, ready for 'dipn build-samples DIR'. Formats: "
        "taobao-userbehavior (UserBehavior.csv), rees46 (monthly CSVs such as 2019-Oct.csv), "
        "retailrocket (events.csv, optionally item_properties_part*.csv and category_tree.csv), "
        "yoochoose (yoochoose-clicks.dat, yoochoose-buys.dat). Plain or .gz files; any size "
        "(streamed in bounded memory). See docs/data.md for the layouts and the mapping.",
    )
    p.add_argument("format", choices=tuple(FORMATS), metavar="FORMAT", help=f"one of {', '.join(FORMATS)}")
    p.add_argument("paths", nargs="+", type=regular_file, metavar="PATH", help="the data set's files")
    p.add_argument("--out", type=Path, required=True, metavar="DIR",
                   help="output directory: browse.parquet, history.parquet, meta.json")
    p.add_argument("--lenient", action="store_true",
                   help="drop and count malformed rows instead of stopping at the first")
    p.add_argument("--utc-offset-minutes", type=utc_offset_minutes, default=None,
                   help="the market's offset from UTC: days of the history snapshots, and recorded in "
                   "meta.json for build-samples' hour feature (default: the format's; Taobao 480, others 0)")
    cap = STAY_CAP_MS / 60_000
    p.add_argument("--stay-cap-minutes", type=float_in(0, 7 * 24 * 60, low_open=True), default=cap,
                   help=f"longest stay time of a browse event (the gap to the user's next event; default {cap:g})")
    p.add_argument("--users-fraction", type=float_in(0, 1, low_open=True), default=1.0, metavar="F",
                   help="keep a fixed pseudo-random share F of the users, with all their events (default 1: "
                   "all); build-samples holds a whole log in memory, see docs/data.md")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=run)  # fmt: skip


def run(args: argparse.Namespace) -> int:
    from dipn.logs.importers import ImportConfig, import_logs

    config = ImportConfig(
        lenient=args.lenient,
        utc_offset_minutes=args.utc_offset_minutes,
        stay_cap_ms=round(args.stay_cap_minutes * 60_000),
        users_fraction=args.users_fraction,
        progress=not args.quiet,
    )
    result = import_logs(args.format, args.paths, args.out, config)
    print(result)
    print(f"next: dipn build-samples {args.out} --out SAMPLES   (hour of day in UTC{result.meta['utc_offset_minutes']:+d} min, from meta.json)")
    return 0
