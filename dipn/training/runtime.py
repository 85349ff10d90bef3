"""Process settings for a training run: torch threads, the allocator, the device.

Threads. torch's intra-op threads default to the machine's cores, which loses on any machine
that other jobs share: a thread of every parallel operator waits at its barrier for a sibling the
scheduler has parked. DIPN runs thousands of small operators per batch (the recurrence is 256
steps of small products), and on a 2-core machine with one other CPU-bound job, two threads
scored 2.2-2.5x slower in wall time than one, and a training step took 10-20x longer (and as much
more CPU, spinning at the barriers). On an idle machine two threads are faster (training 1.4x). A
choice made once at the start cannot be right for both, since other jobs come and go while a run
lasts. So the default (``--threads`` unset) is chosen while the run runs (``adapt_threads``): it
starts on one thread, then, when the machine left a spare core idle over the last period, times
the model's own batches with one thread and with this process's share of its CPU affinity (among
the processes torchrun starts on the node), keeps the faster, and checks again after twice as many
batches each time the choice holds (from 16 batches up to 512), so a job that starts or ends later
on the machine is noticed. It never starts on more threads: an idle-core reading at the start
(a moment of a shared machine) once put a run on two threads for its first 16 batches while other
jobs took the cores, each batch several times slower than on one thread. A check whose first
batch on more threads runs ``LOSING`` times slower than the period's batches ends there. ``--threads
N`` fixes the count. ``benchmarks/train_speed.py`` times the default against one thread on an idle
and on a busy machine (docs/benchmarks.md).

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

import numpy as np
import torch

from dipn.errors import DipnValidationError

_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4  # glibc malloc.h
_TRIM_THRESHOLD = 1 << 30


def cpu_jiffies() -> tuple[int, int] | None:
    """(idle + iowait, all) jiffies of the machine so far, from ``/proc/stat``; None without it."""
    try:
        values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        return values[3] + values[4], sum(values[:8])  # idle + iowait; user..steal
    except (OSError, ValueError, IndexError):
        return None


def idle_since(before: tuple[int, int] | None) -> float | None:
    """Cores the machine left idle on average since ``before`` (a ``cpu_jiffies`` reading)."""
    after = cpu_jiffies()
    if before is None or after is None or after[1] <= before[1]:
        return None
    return (after[0] - before[0]) / (after[1] - before[1]) * (os.cpu_count() or 1)


def set_threads(threads: int | None) -> int:
    """Intra-op threads (None: one, where ``adapt_threads`` starts); returns the number set."""
    count = threads or 1
    torch.set_num_threads(count)
    return count


def most_threads() -> int:
    """This process's share of its cores among the processes torchrun runs on this node."""
    processes = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cores // processes)


class ThreadChooser:
    """Chooses torch's intra-op threads from the wall time of a loop's own batches (see the module
    docstring): one thread against ``most``, per kind of batch (training steps and scoring differ).

    ``tick`` is called when a batch starts; the time since the previous tick is the previous batch
    (its data, forward, backward, update), charged per sample to the threads it ran with. A tick
    whose kind differs from the previous one closes no measurement (the interval spans the switch,
    a checkpoint, an evaluation). Choosing: each candidate runs ``PROBES`` batches, interleaved, the
    lower median per sample wins; the winner runs ``period`` batches, doubled when the next check
    confirms it (at most ``LONGEST``), reset when the winner changes. Running on one thread, more
    are only tried when the machine left ``SPARE`` of each extra thread's core idle over the period
    (``/proc/stat``): on a busy machine a batch on two threads can take many times one on one
    thread (16x, at a load average of 20 on 2 cores), so a probe there would cost more than the
    check could ever win; and a check ends at its first batch when that batch ran ``LOSING`` times
    slower per sample than the median of the period's last ``RECENT`` batches (the machine got
    busy since the period began: the remaining probes would lose as much). The first check comes
    after ``FIRST`` batches, so a kind's first batch (allocations, caches) is never a probe.
    """

    PROBES, FIRST, LONGEST, RECENT = 2, 16, 512, 8
    SPARE = 0.75  # idle share of each extra thread's core below which more threads are not tried
    LOSING = 1.25  # a first probe this many times slower per sample than the period ends the check

    def __init__(self, most: int, start: int) -> None:
        self.candidates = (1, most) if most > 1 else (1,)
        self.start = start if start in self.candidates else 1
        self.kinds: dict[bool, dict] = {}
        self.last: tuple[bool, float, int, int] | None = None  # kind, time, threads, samples of the running batch

    def tick(self, kind: bool, samples: int) -> int:
        """A batch of ``samples`` of ``kind`` starts now: records the previous one, sets and returns
        the threads for this one."""
        now = time.perf_counter()
        if self.last is not None and self.last[0] == kind and self.last[3]:
            _, then, threads, count = self.last
            state = self.kinds[kind]
            if state["plan"]:
                state["times"].setdefault(threads, []).append((now - then) / count)
            else:
                state["recent"] = [*state["recent"][1 - self.RECENT :], (now - then) / count]
        if kind not in self.kinds:
            self.kinds[kind] = {"plan": [], "times": {}, "choice": self.start, "left": self.FIRST,
                                "period": self.FIRST, "since": cpu_jiffies(), "recent": []}  # fmt: skip
        state = self.kinds[kind]
        threads = self._next(state)
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)
        self.last = (kind, now, threads, samples)
        return threads

    def _next(self, state: dict) -> int:
        if len(self.candidates) == 1:
            return 1
        if state["plan"]:
            measured = sum(len(v) for v in state["times"].values())
            if measured == 1 and state["recent"]:
                probe = state["times"][state["plan"][0]][0]
                if probe > self.LOSING * float(np.median(state["recent"])):  # clearly lost: keep the choice
                    state["period"] = min(2 * state["period"], self.LONGEST)
                    state.update(plan=[], times={}, left=state["period"], since=cpu_jiffies(), recent=[])
                    return state["choice"]
            if measured < len(state["plan"]):
                return state["plan"][measured]
            medians = {t: float(np.median(v)) for t, v in state["times"].items()}
            choice = min(medians, key=medians.get)
            state["period"] = min(2 * state["period"], self.LONGEST) if choice == state["choice"] else self.FIRST
            state.update(plan=[], times={}, choice=choice, left=state["period"], since=cpu_jiffies(), recent=[])
            return choice
        state["left"] -= 1
        if state["left"] > 0:
            return state["choice"]
        idle = idle_since(state["since"]) if state["choice"] == 1 else None
        if state["choice"] == 1 and state["since"] is not None and not (idle or 0.0) >= self.SPARE * (self.candidates[-1] - 1):
            # the machine had no cores to spare over the period (or too short a period to tell):
            # more threads would wait on them; where there is no /proc/stat, the timing decides
            state.update(left=state["period"], since=cpu_jiffies())
            return 1
        other = [c for c in self.candidates if c != state["choice"]]  # check: the other first, then interleaved
        state["plan"] = [*other, state["choice"]] * self.PROBES
        return state["plan"][0]


def adapt_threads(model: torch.nn.Module) -> ThreadChooser:
    """Let ``model``'s batches choose the intra-op threads (a forward pre-hook; once per model),
    starting from the current setting."""
    chooser = getattr(model, "_dipn_thread_chooser", None)
    if chooser is None:
        chooser = ThreadChooser(most_threads(), torch.get_num_threads())

        def before_batch(module: torch.nn.Module, args: tuple, kwargs: dict) -> None:
            if torch.jit.is_tracing() or torch.onnx.is_in_onnx_export() or torch.compiler.is_compiling():
                return  # an exporter records the graph: no timing, no thread switch inside it
            first = next((t for t in (*args, *kwargs.values()) if isinstance(t, torch.Tensor)), None)
            chooser.tick(module.training, len(first) if first is not None and first.dim() else 0)

        model.register_forward_pre_hook(before_batch, with_kwargs=True)
        model._dipn_thread_chooser = chooser
    return chooser


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
