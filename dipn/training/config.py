"""Training settings as one dataclass; defaults follow the paper's section 6.1 where it says."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from dipn.errors import DipnValidationError


@dataclass(frozen=True)
class TrainConfig:
    model: str = "dipn"  # a name of dipn.models.MODELS: dipn, rnn_dnn, atrank, rib, heroes
    variant: str | None = None  # a preset of the model (e.g. "no_tap"); None = the full model
    epochs: int = 5
    batch_size: int = 256  # global: split across processes under torchrun
    lr: float = 1e-3
    # Section 6.1: "Adam optimizer with initial hyper-parameters of eps = 1e-3, beta1 = 0.9,
    # beta2 = 0.999". We read eps as Adam's epsilon, as written.
    adam_eps: float = 1e-3
    beta1: float = 0.9
    beta2: float = 0.999
    patience: int = 2  # epochs without a better mean eval AUC before stopping
    seed: int = 0
    max_steps: int | None = None  # stop after this many optimizer steps (quick runs, tests)
    max_train_samples: int | None = None  # use a fixed random subset of the training split
    max_eval_samples: int | None = None  # same for the validation split scored each epoch
    checkpoint_every: int = 200  # steps between resumable checkpoints (and at every epoch end)
    threads: int | None = None  # torch intra-op threads per process (None: its cores / processes on the node)
    device: str = "cpu"  # "cuda" (the local GPU under torchrun) or "cuda:N"; see docs/deploy.md
    amp: bool = False  # mixed precision: bfloat16 autocast on CPU, float16 with loss scaling on CUDA
    compile: bool = False  # torch.compile the model; falls back to eager, with a warning, if that fails

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1 or self.lr <= 0 or self.checkpoint_every < 1:
            raise DipnValidationError("epochs, batch_size, checkpoint_every must be >= 1 and lr > 0")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise DipnValidationError(f"unknown training option(s) {unknown}; known: {sorted(known)}")
        return cls(**data)

    @classmethod
    def load(cls, path: str | Path) -> TrainConfig:
        try:
            return cls.from_dict(json.loads(Path(path).read_text()))
        except (OSError, json.JSONDecodeError) as exc:
            raise DipnValidationError(f"{path}: not a readable training config ({exc})") from exc
