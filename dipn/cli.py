"""The ``dipn`` command line: one entry point, one subcommand per stage of the pipeline."""

from __future__ import annotations

import argparse
import sys

from dipn import __version__
from dipn.commands import (band, build_samples, check_port, convert, coupon_report, demo, evaluate, import_logs, inspect,
                           keygen, serve, shop, simulate, train)
from dipn.errors import DipnValidationError

COMMANDS = (simulate, import_logs, build_samples, inspect, train, evaluate, keygen, convert, serve, coupon_report, band,
            demo, check_port, shop)


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dipn",
        description="On-device purchase-intent prediction (DIPN, KDD'19): simulate or read raw "
        "swipe/tap/browse logs, build samples, train, convert for phones, run on the device, "
        "allocate coupons.",
    )
    parser.add_argument("--version", action="version", version=f"dipn {__version__}")
    sub = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    for command in COMMANDS:
        command.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = make_parser().parse_args(argv)
    try:
        return args.run(args)
    except DipnValidationError as exc:
        print(f"dipn: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("dipn: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
