"""``python -m dipn.serving ARGS``: the same as ``dipn serve ARGS``."""

import argparse
import sys

from dipn.commands import serve

parser = argparse.ArgumentParser(prog="python -m dipn.serving")
serve.add_parser(parser.add_subparsers(required=True))
args = parser.parse_args(["serve", *sys.argv[1:]])
sys.exit(args.run(args))
