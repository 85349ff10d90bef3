"""Mini-batches of sample indices and their tensors."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

from dipn.samples.store import SampleStore
from dipn.errors import DipnValidationError
from dipn.features import TASKS


def subset(indices: np.ndarray, limit: int | None, seed: int) -> np.ndarray:
    """A fixed random subset (sorted), so capped runs still see every day and user."""
    if limit is None or limit >= len(indices):
        return indices
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(indices, size=limit, replace=False))


def fit_splits(store: SampleStore, max_train: int | None, max_val: int | None, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The training subset and the validation subset a model is fitted and chosen on (the eval
    days are the test, never seen here); an empty one is refused, saying how to get samples."""
    train = subset(store.indices("train"), max_train, seed)
    val = subset(store.indices("val"), max_val, seed + 1)
    if len(train) == 0:
        raise DipnValidationError(f"{store.root}: the training split is empty (build samples over more days)")
    if len(val) == 0:
        raise DipnValidationError(
            f"{store.root}: the validation split is empty; early stopping needs it (build-samples --val-days > 0)"
        )
    return train, val


def epoch_batches(indices: np.ndarray, batch_size: int, seed: int, epoch: int,
                  epoch_samples: int | None = None) -> list[np.ndarray]:  # fmt: skip
    """The epoch's global batches; the same on every process (seeded by seed and pass).

    With ``epoch_samples``, an epoch is the next ``epoch_samples`` samples of a pass over the
    training set (the last part of a pass may be shorter), so val, early stopping and each task's
    best epoch act within a pass: on a large training set one pass can already overfit a task."""
    size = len(indices) if epoch_samples is None else min(epoch_samples, len(indices))
    parts = -(-len(indices) // max(size, 1))
    order = np.random.default_rng([seed, epoch // parts]).permutation(indices)
    order = order[(epoch % parts) * size : (epoch % parts + 1) * size]
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def local_slice(batch: np.ndarray, rank: int, world: int) -> np.ndarray:
    """This process's share of a global batch."""
    return batch[rank::world]


def to_tensors(store: SampleStore, indices: np.ndarray, input_names: tuple[str, ...]) -> dict[str, torch.Tensor]:
    arrays = store.batch(indices, merged="merged" in input_names)
    out = {name: torch.from_numpy(arrays[name]) for name in input_names}
    for label in TASKS:
        out[label] = torch.from_numpy(arrays[label])
    return out


def eval_batches(indices: np.ndarray, batch_size: int) -> Iterator[np.ndarray]:
    for i in range(0, len(indices), batch_size):
        yield indices[i : i + batch_size]
