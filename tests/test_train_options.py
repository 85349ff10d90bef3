"""Training options of issue 19: --device (the same code path on CPU), --amp, --compile's fallback,
the batch prefetch, thread and allocator settings (dipn.training.loop, runtime, prefetch, compiled)."""

from __future__ import annotations

import logging
import threading
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from dipn.cli import main as cli
from dipn.samples.store import SampleStore
from dipn.training import runtime
from dipn.training.checkpoint import load_model
from dipn.training.config import TrainConfig
from dipn.training.loop import Trainer
from dipn.training.prefetch import prefetched

QUICK = TrainConfig(epochs=1, batch_size=16, max_steps=3, max_train_samples=64, max_eval_samples=32, seed=4, threads=1)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_cuda_is_refused_in_one_line(tiny_samples: Path, tmp_path: Path, capsys) -> None:
    code = cli(["train", str(tiny_samples), "--out", str(tmp_path / "run"), "--device", "cuda", "--max-steps", "1",
                "--quiet"])  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and "CUDA is not available" in err and "--device cpu" in err
    assert not (tmp_path / "run").exists()


def test_the_device_path_on_cpu_with_mixed_precision_trains_and_saves(tiny_samples: Path, tmp_path: Path) -> None:
    """--device cpu --amp: batches moved to the device, bfloat16 autocast, fp32 weights in the checkpoint."""
    trainer = Trainer(SampleStore(tiny_samples), replace(QUICK, device="cpu", amp=True), tmp_path, progress=False)
    result = trainer.fit()
    assert result["global_step"] == 3
    assert all(p.device.type == "cpu" and p.dtype == torch.float32 for p in trainer.model.parameters())
    model, _, ckpt = load_model(tmp_path / "last.pt")
    assert ckpt["train_config"]["amp"] is True
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_train_flags_reach_the_config(tiny_samples: Path, tmp_path: Path) -> None:
    code = cli(["train", str(tiny_samples), "--out", str(tmp_path), "--device", "cpu", "--amp", "--max-steps", "1",
                "--batch-size", "8", "--max-train-samples", "16", "--max-eval-samples", "16", "--threads", "1",
                "--quiet"])  # fmt: skip
    assert code == 0
    _, _, ckpt = load_model(tmp_path / "last.pt")
    assert ckpt["train_config"]["device"] == "cpu" and ckpt["train_config"]["amp"] is True
    assert ckpt["train_config"]["compile"] is False


@pytest.mark.parametrize(
    ("argv", "message"),
    [(["--action-age-horizon-hours", "30"], "30 h is not a bucket edge; the edges in hours: 1, 2,"),
     (["--action-age-horizon-hours", "0"], "action_age_horizon_hours must be > 0"),
     (["--action-age-horizon-hours", "24", "--model", "atrank"], "has no setting ['action_age_horizon_hours']")],
)  # fmt: skip
def test_an_action_age_horizon_the_model_cannot_take_is_refused_in_one_line(
    tiny_samples: Path, tmp_path: Path, capsys, argv: list[str], message: str
) -> None:
    code = cli(["train", str(tiny_samples), "--out", str(tmp_path / "run"), "--max-steps", "1", "--quiet", *argv])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and message in err, err


@pytest.mark.filterwarnings("ignore:.*torch.jit.*deprecated:DeprecationWarning")  # torch's own imports
def test_a_failing_compile_falls_back_to_eager_with_one_warning(
    tiny_samples: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Inductor without a working C++ compiler: the run trains eagerly, to the same weights as eager."""
    import torch._inductor.config as inductor

    monkeypatch.setattr(inductor.cpp, "cxx", ("/nonexistent/c++",))
    monkeypatch.setattr(inductor, "fx_graph_cache", False)  # a cached kernel would need no compiler
    store = SampleStore(tiny_samples)
    try:
        with caplog.at_level(logging.WARNING, logger="dipn.training.compiled"):
            compiled = Trainer(store, replace(QUICK, compile=True), tmp_path / "compiled", progress=False)
            compiled.fit()
    finally:
        torch._dynamo.reset()
    warnings = [r for r in caplog.records if "torch.compile failed" in r.getMessage()]
    assert len(warnings) == 1 and "\n" not in warnings[0].getMessage()
    assert not compiled.forward.compiled and compiled.state.global_step == 3
    eager = Trainer(store, QUICK, tmp_path / "eager", progress=False)
    eager.fit()
    for a, b in zip(compiled.model.state_dict().values(), eager.model.state_dict().values()):
        torch.testing.assert_close(a, b)


def test_prefetch_keeps_order_overlaps_and_stops_early() -> None:
    seen_threads = set()

    def gather(i: int) -> int:
        seen_threads.add(threading.current_thread().name)
        return i * i

    assert list(prefetched(range(5), gather)) == [0, 1, 4, 9, 16]
    assert all(name.startswith("dipn-prefetch") for name in seen_threads)
    calls = []
    stream = prefetched(range(100), lambda i: calls.append(i) or i)
    assert next(stream) == 0
    stream.close()
    assert len(calls) <= 2  # the item in use and at most one ahead, never the rest


def test_prefetch_raises_a_gather_error_where_the_batch_is_used() -> None:
    def gather(i: int) -> int:
        if i == 2:
            raise ValueError("bad batch")
        return i

    stream = prefetched(range(4), gather)
    assert [next(stream), next(stream)] == [0, 1]
    with pytest.raises(ValueError, match="bad batch"):
        next(stream)


def test_default_threads_start_on_one_thread_whatever_the_machine_looks_like_at_the_start() -> None:
    """A moment's idle cores once put a run on two threads for its first batches while other jobs
    took the cores; the default starts on one thread and ``adapt_threads`` adds more when a period
    of batches shows a spare core."""
    before = runtime.torch.get_num_threads()
    try:
        assert runtime.set_threads(None) == 1 and runtime.torch.get_num_threads() == 1
        assert runtime.set_threads(2) == 2
    finally:
        runtime.torch.set_num_threads(before)
    idle = runtime.idle_since(runtime.cpu_jiffies())
    assert idle is None or 0.0 <= idle <= runtime.os.cpu_count()


def test_freed_memory_is_kept_for_reuse_on_glibc() -> None:
    import platform

    if platform.libc_ver()[0] != "glibc":
        pytest.skip("the allocator setting is glibc's")
    assert runtime.keep_freed_memory()
