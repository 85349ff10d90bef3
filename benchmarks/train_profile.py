"""Where one training step spends its time, by module, forward and backward together.

``torch.profiler`` reports operators; a model is tuned module by module. Each child module of the
model (each entry of a ``ModuleDict``: ``grus.swipe``, ``heads``, ...) and each of the model
module's own attention functions is wrapped in a labelled range; a forward operator belongs to the
innermost range around it, and a backward operator to the forward operator that recorded its
autograd node (same sequence number), so a module's time includes its gradient. The optimizer step
gets its own label; time outside every torch operator (Python, numpy: the gathering of the batch)
is "outside torch ops"; what is left (autograd bookkeeping between nodes) is "other".

    python -m benchmarks.train_profile --samples runs/demo/samples        # the DIPN of this tree
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from torch import nn
from torch.profiler import ProfilerActivity, profile, record_function

LABEL = "module::"
# Functions of a model's module that hold real work outside any child module (DIPN's attention).
FUNCTIONS = ("inter_view_attention", "ragged_inter_view_attention", "bidirectional_grus", "last_states", "multitask_loss")
OPTIMIZER = "Optimizer.step#"  # torch.optim's own range around every step
BACKWARD = "autograd::engine::evaluate_function"


def labelled_modules(model: nn.Module) -> Iterator[tuple[str, nn.Module]]:
    """The children of ``model``, a ``ModuleDict`` / ``ModuleList`` child replaced by its entries."""
    for name, child in model.named_children():
        if isinstance(child, nn.ModuleDict | nn.ModuleList):
            yield from ((f"{name}.{key}", grandchild) for key, grandchild in child.named_children())
        else:
            yield name, child


@contextlib.contextmanager
def labels(model: nn.Module) -> Iterator[None]:
    """Wrap every labelled module's forward, and the model module's ``FUNCTIONS``, in a range."""
    handles, ranges = [], []

    def enter(name: str) -> Callable[..., None]:
        def hook(*_: Any) -> None:
            ranges.append(record_function(LABEL + name))
            ranges[-1].__enter__()

        return hook

    def leave(*_: Any) -> None:
        ranges.pop().__exit__(None, None, None)

    for name, module in labelled_modules(model):
        handles += [module.register_forward_pre_hook(enter(name)), module.register_forward_hook(leave)]
    namespace = sys.modules[type(model).__module__]
    originals = {f: getattr(namespace, f) for f in FUNCTIONS if callable(getattr(namespace, f, None))}
    for name, function in originals.items():
        setattr(namespace, name, _ranged(name, function))
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()
        for name, function in originals.items():
            setattr(namespace, name, function)


def _ranged(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with record_function(LABEL + name):
            return function(*args, **kwargs)

    return wrapper


def module_times(events: Any) -> dict[str, float]:
    """Self CPU seconds per label, from the events of one profiled step."""

    def label_of(event: Any) -> str | None:
        while event is not None:
            if event.name.startswith(LABEL):
                return event.name[len(LABEL) :]
            if event.name.startswith(OPTIMIZER):
                return "optimizer"
            event = event.cpu_parent
        return None

    def backward_node(event: Any) -> Any:
        while event is not None:
            if event.name.startswith(BACKWARD):
                return event
            event = event.cpu_parent
        return None

    forward_label: dict[int, str] = {}
    for event in events:
        if event.sequence_nr >= 0 and backward_node(event) is None:
            found = label_of(event)
            if found is not None:
                forward_label.setdefault(event.sequence_nr, found)
    totals: dict[str, float] = defaultdict(float)
    for event in events:
        node = backward_node(event)
        found = forward_label.get(node.sequence_nr) if node is not None else label_of(event)
        totals[found or "other"] += event.self_cpu_time_total / 1e6
    return dict(totals)


def profile_step(model: nn.Module, step: Callable[[], None]) -> dict[str, float]:
    """Seconds per label of one call of ``step`` (a warm training step of ``model``), and the wall
    time outside every operator."""
    with labels(model), profile(activities=[ProfilerActivity.CPU]) as prof:
        started = time.perf_counter()
        step()
        wall = time.perf_counter() - started
    times = module_times(prof.events())
    times["outside torch ops"] = max(wall - sum(times.values()), 0.0)
    return times


def grouped(times: dict[str, float]) -> dict[str, float]:
    """Per kind of module: ``grus.swipe`` + ``grus.tap`` + ... -> ``grus``, largest first."""
    out: dict[str, float] = defaultdict(float)
    for name, seconds in times.items():
        out[name.split(".")[0]] += seconds
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=Path, required=True)
    parser.add_argument("--model", default="dipn")
    parser.add_argument("--variant")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    runner = StepRunner(args.samples, args.model, args.variant, args.batch_size, args.threads)
    times = runner.profile()
    total = sum(times.values())
    for name, seconds in grouped(times).items():
        print(f"{name:24s} {seconds * 1e3:9.1f} ms {seconds / total:7.1%}")
    print(f"{'step':24s} {total * 1e3:9.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())


class StepRunner:
    """A real ``Trainer`` of whichever ``dipn`` is importable, stepped and timed from outside."""

    def __init__(self, samples: Path, model: str, variant: str | None, batch_size: int, threads: int | None,
                 compile: bool = False) -> None:  # fmt: skip
        import dipn

        # The code before issue 28 kept the store in dipn.data. Ask the package measured, not the
        # import system: an editable install resolves a child name the old package lacks
        # (dipn.samples) from the installed tree, which would mix two revisions in one process.
        if (Path(dipn.__path__[0]) / "samples").is_dir():
            from dipn.samples.store import SampleStore
        else:
            from dipn.data.store import SampleStore
        from dipn.training.config import TrainConfig
        from dipn.training.loop import Trainer

        self._run_dir = tempfile.TemporaryDirectory(prefix="train-speed-")
        options = {"compile": True} if compile else {}  # a field the baseline's TrainConfig does not have
        config = TrainConfig(model=model, variant=variant, batch_size=batch_size, threads=threads, epochs=10**6,
                             checkpoint_every=10**9, **options)  # fmt: skip
        self.trainer = Trainer(SampleStore(samples), config, self._run_dir.name, progress=False)
        self.batch_size, self.threads = batch_size, threads

    def steps(self, count: int) -> tuple[float, float]:
        """Wall and CPU seconds (all threads of the process) of ``count`` optimizer steps through
        ``Trainer.train_epoch``, the loop users run."""
        trainer, state = self.trainer, self.trainer.state
        batches = len(trainer.train_indices) // self.batch_size  # full batches only: same work per step
        if state.step_in_epoch + count > batches:
            state.epoch, state.step_in_epoch = state.epoch + 1, 0
        trainer.config = dataclasses.replace(trainer.config, max_steps=state.global_step + count)
        wall, cpu = time.perf_counter(), time.process_time()
        trainer.train_epoch()
        return time.perf_counter() - wall, time.process_time() - cpu

    def profile(self) -> dict[str, float]:
        """Seconds per module of one warm step (``train_profile``)."""
        self.steps(1)
        trainer = self.trainer
        batch = trainer.train_indices[: self.batch_size]
        return profile_step(trainer.model, lambda: trainer.train_step(batch))

    def macs_per_sample(self) -> dict[str, float]:
        """MACs per sample of one forward pass and of one training step (forward + backward)."""
        from torch.utils.flop_counter import FlopCounterMode

        from dipn.models import multitask_loss

        trainer = self.trainer
        tensors = trainer.gather(trainer.train_indices[: self.batch_size]) if hasattr(trainer, "gather") else None
        if tensors is None:  # the baseline's loop has no gather step
            from dipn.training import batches

            tensors = batches.to_tensors(trainer.store, trainer.train_indices[: self.batch_size], trainer.input_names)
        model = trainer.model.train()
        inputs = {n: tensors[n] for n in trainer.input_names}
        with FlopCounterMode(display=False) as forward:  # with autograd on: FlopCounterMode's module
            model(**inputs)  # tracker hooks gradients, and no_grad outputs of some models (ATRank) have none
        with FlopCounterMode(display=False) as training:
            multitask_loss(model(**inputs), tensors, trainer.tasks).backward()
        model.zero_grad(set_to_none=True)
        return {"forward": forward.get_total_flops() / 2 / self.batch_size,
                "training": training.get_total_flops() / 2 / self.batch_size}  # fmt: skip
