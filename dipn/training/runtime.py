"""Process settings for a training run: torch threads, the allocator, the device.

Threads. One process per core set: torch's intra-op threads default to the machine's cores, so
two ``torchrun`` processes on a 2-core machine would each start two and fight over the cores. The
default is the cores this process may run on (its CPU affinity) divided among the processes
torchrun starts on the node.

Allocator. A training step allocates and frees tensors of tens of MB (attention, the recurrence's
buffers, their gradients). glibc serves an allocation above 32 MB with a fresh ``mmap`` and unmaps
it on free, so every step page-faults its working set in again: on the 2-core KVM host of
benchmarks/RESULTS.md that was about half of a DIPN step. With ``M_MMAP_MAX = 0`` and a high trim
threshold, freed memory stays in the heap and the next step reuses it. The process keeps its peak
heap until it exits, which a training run does anyway. Other C libraries: no change.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

import torch

from dipn.errors import DipnValidationError

_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4  # glibc malloc.h
_TRIM_THRESHOLD = 1 << 30


def default_threads() -> int:
    """Cores this process may use, shared among the processes torchrun runs on this node."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cores // int(os.environ.get("LOCAL_WORLD_SIZE", "1")))


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
    device = torch.device(name)
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
