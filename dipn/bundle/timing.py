"""Latency of one call, measured the same way wherever it is measured (host benchmarks, the
emulated phone, old runtimes): wall time per call, reported as percentiles in milliseconds, and
several backends timed in interleaved rounds, so that background load on a shared machine hits
them alike. Python 3.9 syntax and numpy only, like ``dipn.bundle.golden``."""

from __future__ import annotations

import time
from typing import Any, Callable, Dict, List, Mapping, Sequence

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


def interleaved(calls: Mapping[str, Callable[[Dict[str, np.ndarray]], Any]], inputs: Mapping[str, np.ndarray],
                rounds: int, per_round: int) -> Dict[str, List[float]]:  # fmt: skip
    """Seconds per call of each backend: every round runs every backend on the same ``per_round``
    distinct batch-1 samples of ``inputs``, after three warm-up calls each (first calls allocate and
    pick kernels)."""
    feeds = [{k: np.ascontiguousarray(v[i : i + 1]) for k, v in inputs.items()} for i in range(per_round)]
    times: Dict[str, List[float]] = {label: [] for label in calls}
    for call in calls.values():
        for feed in feeds[:3]:
            call(feed)
    for _ in range(rounds):
        for label, call in calls.items():
            for feed in feeds:
                started = time.perf_counter()
                call(feed)
                times[label].append(time.perf_counter() - started)
    return times
