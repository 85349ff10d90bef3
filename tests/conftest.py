"""Shared fixtures: a small simulated dataset, built once per test session."""

from __future__ import annotations

from pathlib import Path

import pytest

from dipn.data.build import BuildConfig, build_samples
from dipn.data.simulation import SimulationConfig, simulate

TINY = SimulationConfig(users=60, days=2, seed=7, density=0.1)


@pytest.fixture(scope="session")
def tiny_raw(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("tiny-raw")
    simulate(TINY, out, progress=False)
    return out


@pytest.fixture(scope="session")
def tiny_samples(tiny_raw: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("tiny-samples")
    build_samples(tiny_raw, out, BuildConfig(cuts_per_day=10, seed=3), progress=False)
    return out
