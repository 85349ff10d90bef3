"""Latency of one call, measured the same way wherever it is measured (host benchmarks, the
emulated phone, old runtimes): wall time per call, reported as percentiles in milliseconds.
Python 3.9 syntax and numpy only, like ``dipn.bundle.golden``."""

from __future__ import annotations

import time
from typing import Callable, Dict, List, Sequence

import numpy as np

QUANTILES = (50, 90, 99)


def timed(call: Callable[[], object], repeat: int) -> List[float]:
    """Seconds of each of ``repeat`` calls."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return times


def percentiles(seconds: Sequence[float]) -> Dict[str, float]:
    """{"p50_ms", "p90_ms", "p99_ms", "runs"} of call times in seconds."""
    ms = np.asarray(seconds) * 1e3
    return {**{f"p{q}_ms": float(np.percentile(ms, q)) for q in QUANTILES}, "runs": len(seconds)}
