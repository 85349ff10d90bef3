"""Argument types for options whose value is converted or used before any config checks it.

``type=float`` takes "nan" and "inf", and ``type=int`` takes -5: a NaN that reaches ``round`` is a
traceback, a negative batch size a silent no-op. These refuse such values while parsing, with
argparse's one-line error naming the option. Settings with a config dataclass (``TrainConfig``,
``BuildConfig``) are checked there as well, for callers that do not come through the command line.
"""

from __future__ import annotations

import argparse
import math


def finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    return value


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {text!r}")
    return value


def non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text!r}")
    return value
