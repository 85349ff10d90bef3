"""Shared fixtures: a small simulated dataset, built once per test session."""

from __future__ import annotations

from pathlib import Path

import pytest

from dipn.samples.build import BuildConfig, build_samples
from dipn.logs.simulation import SimulationConfig, simulate

TINY = SimulationConfig(users=60, days=2, seed=7, density=0.1)


@pytest.fixture(scope="module")
def one_torch_thread():
    """For a module of tiny tensors: one thread is as fast, and does not stall when other jobs
    share the cores (``pytestmark = pytest.mark.usefixtures("one_torch_thread")``)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def tiny_raw(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("tiny-raw")
    simulate(TINY, out, progress=False)
    return out


@pytest.fixture(scope="session")
def tiny_samples(tiny_raw: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("tiny-samples")
    build_samples(tiny_raw, out, BuildConfig(cuts_per_day=10, seed=3, val_days=0.5), progress=False)
    return out


@pytest.fixture(scope="session")
def tiny_checkpoint(tiny_samples: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small DIPN trained for one short epoch on the tiny dataset."""
    from dipn.samples.store import SampleStore
    from dipn.training.config import TrainConfig
    from dipn.training.loop import Trainer

    run = tmp_path_factory.mktemp("tiny-run")
    config = TrainConfig(epochs=1, batch_size=16, max_train_samples=96, max_eval_samples=64, seed=11, threads=1, lr=3e-3)
    Trainer(SampleStore(tiny_samples), config, run, progress=False).fit()
    return run / "best.pt"


@pytest.fixture(scope="session")
def tiny_bundle(tiny_checkpoint: Path, tiny_samples: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny checkpoint converted to every format (loose AUC gate: the tiny eval set is small)."""
    pytest.importorskip("tensorflow")
    from convert.bundle import ConvertOptions, build_bundle

    out = tmp_path_factory.mktemp("tiny-bundle") / "bundle"
    build_bundle(tiny_checkpoint, tiny_samples, out, ConvertOptions(parity_samples=48, max_auc_drop=0.05),
                 progress=lambda _: None)  # fmt: skip
    return out
