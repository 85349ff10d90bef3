"""Run under torchrun by tests/test_multinode.py: ``dipn train``'s steps, then every rank saves
the weights it ended with (``dipn train`` saves rank 0's only), so the test can compare them."""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from dipn.samples.store import SampleStore
from dipn.training import distributed
from dipn.training.config import TrainConfig
from dipn.training.loop import Trainer


def main(samples: str, out: str) -> None:
    rank = distributed.init_from_env()
    try:
        config = TrainConfig(batch_size=16, max_steps=3, max_train_samples=96, max_eval_samples=32, seed=5, threads=1)
        trainer = Trainer(SampleStore(samples), config, out, rank, progress=False)
        trainer.fit()
        torch.save({"world": rank.world, "state": trainer.model.state_dict()}, Path(out) / f"rank-{rank.rank}.pt")
    finally:
        distributed.shutdown(rank)


if __name__ == "__main__":
    main(*sys.argv[1:])
