"""Argument types for options whose value is converted or used before any config checks it.

``type=float`` takes "nan" and "inf", and ``type=int`` takes -5: a NaN that reaches ``round`` is a
traceback, a negative batch size a silent no-op. These refuse such values while parsing, with
argparse's one-line error naming the option. Settings with a config dataclass (``TrainConfig``,
``BuildConfig``) are checked there as well, for callers that do not come through the command line.
"""

from __future__ import annotations

import argparse
import math
import re
import stat
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any


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


SEED_MAX = 2**32 - 1  # numpy's and torch's seeds alike; a larger one was a traceback (2**70)


def int_in(low: int, high: int) -> Callable[[str], int]:
    """An integer in [low, high]: a count, an offset or a seed with its sensible range."""

    def parse(text: str) -> int:
        value = int(text)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be in {low:,}..{high:,}, got {text!r}")
        return value

    parse.__name__ = "integer"  # argparse's "invalid integer value: 'x'"
    return parse


def float_in(low: float, high: float, *, low_open: bool = False) -> Callable[[str], float]:
    """A finite number in [low, high] (or (low, high])."""

    def parse(text: str) -> float:
        value = finite_float(text)
        if value > high or value < low or (low_open and value == low):
            raise argparse.ArgumentTypeError(f"must be in {'(' if low_open else '['}{low:g}, {high:g}], got {text!r}")
        return value

    parse.__name__ = "number"
    return parse


seed = int_in(0, SEED_MAX)
utc_offset_minutes = int_in(-1439, 1439)  # within a day either side of UTC (real zones: -720..840)


def plain_name(text: str) -> str:
    """A file name without a directory: no separator, not hidden, no control characters
    (``--name ../x`` wrote outside ``--out``, ``--name ''`` a hidden ``.key``)."""
    if (not text or text in (".", "..") or text.startswith(".") or "/" in text or "\\" in text
            or any(ord(c) < 32 or ord(c) == 127 for c in text) or len(text.encode()) > 200):  # fmt: skip
        raise argparse.ArgumentTypeError(f"must be a plain file name (letters, digits, -, _; no '/', not hidden, "
                                         f"no control characters), got {text!r}")  # fmt: skip
    return text


def regular_file(text: str) -> Path:
    """Not a FIFO, a socket or a device, which would block the read forever or never end (a file
    that is missing is the reader's to name, with what it expected there)."""
    path = Path(text)
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return path
    except OSError as exc:
        raise argparse.ArgumentTypeError(f"{text}: {exc.strerror or exc}") from None
    if stat.S_ISDIR(mode):
        raise argparse.ArgumentTypeError(f"{text} is a directory, not a file")
    if not stat.S_ISREG(mode):
        raise argparse.ArgumentTypeError(f"{text} is not a regular file (a FIFO, socket or device)")
    return path


def torch_device(text: str) -> str:
    """A device name torch knows ("cpu", "cuda", "cuda:1"); whether it is present is checked when
    the run starts (``dipn.training.runtime.resolve_device``)."""
    import torch

    try:
        device = torch.device(text)
    except (RuntimeError, ValueError, TypeError):
        raise argparse.ArgumentTypeError(f"not a device torch knows: {text!r} (cpu, cuda or cuda:N)") from None
    if device.type not in ("cpu", "cuda"):
        raise argparse.ArgumentTypeError(f"{text!r}: dipn trains on cpu or cuda[:N]")
    return text


_SPARK_MASTER = re.compile(r"local(\[(\*|\d+)(,\d+)?\])?|local-cluster\[\d+,\d+,\d+\]|yarn"
                           r"|spark://[^\s/:]+(:\d+)?(,[^\s/:]+(:\d+)?)*|k8s://\S+|mesos://\S+")  # fmt: skip


def spark_master(text: str) -> str:
    """A master URL Spark can start from (Spark's own error for a bogus one is a Java stack trace)."""
    if not _SPARK_MASTER.fullmatch(text):
        raise argparse.ArgumentTypeError(f"not a Spark master URL: {text!r} (local[N], local[*], spark://HOST:PORT, "
                                         "yarn, k8s://URL)")  # fmt: skip
    return text


@dataclass(frozen=True)
class ConfigFlag:
    """The option of one config field (``BuildConfig``, ``TrainConfig``): its name, parser and help
    come from here, its default from the config, so the two cannot drift. Where the config holds
    milliseconds and a person types seconds or minutes, ``unit`` names the typed unit and ``scale``
    converts it (and the default shown back). ``parse=bool`` makes a switch."""

    field: str
    parse: Callable[[str], Any]
    text: str
    unit: str = ""
    scale: float = 1.0

    @property
    def option(self) -> str:
        return self.field.removesuffix("_ms").replace("_", "-") + (f"-{self.unit}" if self.unit else "")

    def help(self, default: Any) -> str:
        numeric = isinstance(default, float) or self.scale != 1  # build-samples shows 28, not 28.0
        shown = "none" if default is None else f"{default / self.scale:g}" if numeric else f"{default}"
        return self.text.replace("{default}", shown) if "{default}" in self.text else f"{self.text} (default {shown})"

    def value(self, typed: Any) -> Any:
        return round(typed * self.scale) if self.scale != 1 else typed


def add_config_flags(parser: argparse.ArgumentParser, flags: Iterable[ConfigFlag], defaults: Any) -> None:
    """One option per flag; a flag left out is absent from the namespace (``given_fields``), so the
    config's own default, or a --config file's value, holds."""
    for flag in flags:
        kind = {"action": "store_true"} if flag.parse is bool else {
            "type": flag.parse, "metavar": flag.option.replace("-", "_").upper()}
        parser.add_argument(f"--{flag.option}", dest=flag.field, default=argparse.SUPPRESS,
                            help=flag.help(getattr(defaults, flag.field)), **kind)  # fmt: skip


def given_fields(args: argparse.Namespace, flags: Iterable[ConfigFlag]) -> dict[str, Any]:
    """The config fields the command line set, in the config's units."""
    return {flag.field: flag.value(getattr(args, flag.field)) for flag in flags if hasattr(args, flag.field)}
