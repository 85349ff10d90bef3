"""Process settings for a training run: torch threads, the allocator, the device.

Threads. torch's intra-op threads default to the machine's cores, which fails two ways. Two
``torchrun`` processes on a 2-core machine each start two threads and fight over the cores. And
on a machine that other jobs share, a thread of every parallel operator waits at its barrier for
a sibling the scheduler has parked: a DIPN step runs thousands of small operators, and with two
threads on two cores of which another job holds one, a step was several times slower than with
one thread. The default is therefore the cores that are idle when the run starts (sampled from
``/proc/stat``), at least one, at most this process's cores (its CPU affinity) divided among the
processes torchrun starts on the node. ``--threads`` overrides it.

Allocator. A training step allocates and frees tensors of tens of MB (attention, the recurrence's
buffers, their gradients). glibc serves an allocation above 32 MB with a fresh ``mmap`` and unmaps
it on free, so every step page-faults its working set in again (the pre-issue-19 DIPN step took
hundreds of thousands of page faults; benchmarks/train_speed.py measures what the setting alone
gains on that code). With ``M_MMAP_MAX = 0`` and a high trim threshold, freed memory stays in the
heap and the next step reuses it. The process keeps its peak heap until it exits, which a
training run does anyway. Other C libraries: no change.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import time
from pathlib import Path

import torch

from dipn.errors import DipnValidationError

_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4  # glibc malloc.h
_TRIM_THRESHOLD = 1 << 30


def default_threads() -> int:
    """The idle cores this process may use, shared among the processes torchrun runs on this node."""
    processes = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    share = max(1, cores // processes)
    idle = idle_cores()
    return share if idle is None else max(1, min(share, round(idle / processes)))


def idle_cores(seconds: float = 0.3) -> float | None:
    """Cores the whole machine left idle over ``seconds`` (idle + iowait in ``/proc/stat``); None
    where there is no ``/proc/stat``."""

    def sample() -> tuple[int, int]:
        values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        return values[3] + values[4], sum(values[:8])  # idle + iowait; user..steal

    try:
        idle_0, total_0 = sample()
        time.sleep(seconds)
        idle_1, total_1 = sample()
    except (OSError, ValueError, IndexError):
        return None
    if total_1 <= total_0:
        return None
    return (idle_1 - idle_0) / (total_1 - total_0) * (os.cpu_count() or 1)


def set_threads(threads: int | None) -> int:
    """Intra-op threads (None: ``default_threads``); returns the number set."""
    count = threads or default_threads()
    torch.set_num_threads(count)
    return count


def keep_freed_memory() -> bool:
    """Make glibc keep freed blocks for reuse instead of returning them to the kernel; False where
    the C library is not glibc."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(_M_MMAP_MAX, 0)) and bool(mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD))


def resolve_device(name: str) -> torch.device:
    """The torch device for ``--device`` ("cpu", "cuda", "cuda:1"); under torchrun, "cuda" is the
    process's local GPU. Refused in one line when CUDA is asked for and absent."""
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError, TypeError):
        raise DipnValidationError(f"--device {name}: not a device torch knows (cpu, cuda or cuda:N)") from None
    if device.type == "cpu":
        return device
    if device.type != "cuda":
        raise DipnValidationError(f"--device {name}: expected cpu or cuda[:N]")
    if not torch.cuda.is_available():
        build = f"torch {torch.__version__} " + ("has no CUDA support" if torch.version.cuda is None else "finds no GPU")
        raise DipnValidationError(f"--device {name}: CUDA is not available here ({build}); use --device cpu")
    if device.index is None:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    if device.index >= torch.cuda.device_count():
        raise DipnValidationError(f"--device {name}: only {torch.cuda.device_count()} CUDA device(s) here")
    torch.cuda.set_device(device)
    return device
