"""Training settings as one dataclass; defaults follow the paper's section 6.1 where it says."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, get_args, get_type_hints

from dipn.errors import DipnValidationError


@dataclass(frozen=True)
class TrainConfig:
    model: str = "dipn"  # dipn.models.MODELS (dipn, rnn_dnn, atrank, rib, heroes) or gbdt, gbdt_touch
    variant: str | None = None  # a preset of the model (e.g. "no_tap"); None = the full model
    epochs: int = 5
    # Training samples per epoch (None: the whole training set). Val, early stopping and each
    # task's best epoch act at every epoch, so on a large set a shorter epoch lets them act within
    # a pass; epochs (and patience) then count these shorter epochs.
    epoch_samples: int | None = None
    batch_size: int = 256  # global: split across processes under torchrun
    lr: float = 1e-3
    # Section 6.1: "Adam optimizer with initial hyper-parameters of eps = 1e-3, beta1 = 0.9,
    # beta2 = 0.999". We read eps as Adam's epsilon, as written.
    adam_eps: float = 1e-3
    beta1: float = 0.9
    beta2: float = 0.999
    patience: int = 2  # epochs without a better val AUC before a task retires (dipn.training.task_epochs) and stopping
    seed: int = 0
    max_steps: int | None = None  # stop after this many optimizer steps (quick runs, tests)
    max_train_samples: int | None = None  # use a fixed random subset of the training split
    max_eval_samples: int | None = None  # same for the validation split scored each epoch
    checkpoint_every: int = 200  # steps between resumable checkpoints (and at every epoch end)
    threads: int | None = None  # torch intra-op threads per process (None: chosen while training, runtime.adapt_threads)
    device: str = "cpu"  # "cuda" (the local GPU under torchrun) or "cuda:N"; see docs/deploy.md
    amp: bool = False  # mixed precision: bfloat16 autocast on CPU, float16 with loss scaling on CUDA
    compile: bool = False  # torch.compile the model; falls back to eager, with a warning, if that fails
    weight_decay: float = 0.0  # Adam's L2 penalty; the paper names none
    dropout: float | None = None  # overrides the model's dropout (DIPN: before each head layer); None: the model's
    embedding_dropout: float = 0.0  # training only: a vocabulary id (page, button, category) is read as OOV with this probability
    # Overrides DIPN's action_age_horizon_hours (docs/models.md, "Time since each action, up to a
    # horizon"): read the time since each browse action up to this many hours; None: the model's.
    action_age_horizon_hours: float | None = None
    # Weight averaging (ours, docs/models.md): val, best.pt and the artifact hold an exponential
    # moving average of the weights, this decay per step; training goes on from the trained weights.
    ema_decay: float | None = None

    def __post_init__(self) -> None:
        """Refuse what would crash later or, worse, run and mean nothing (``max_steps=-5`` wrote an
        untrained best.pt, ``patience=-1`` stopped after one epoch), naming the option."""
        for name, hint in get_type_hints(TrainConfig).items():
            value = getattr(self, name)
            kinds = tuple(k for k in get_args(hint) or (hint,) if k is not type(None))  # int | None -> (int,)
            if value is None and len(kinds) < len(get_args(hint)):
                continue
            number = kinds == (float,) and isinstance(value, int)  # JSON writes 1.0 as 1
            if (isinstance(value, bool) and bool not in kinds) or not (isinstance(value, kinds) or number):
                wanted = " or ".join(k.__name__ for k in kinds)
                raise DipnValidationError(f"training option {name} must be {wanted}, got {value!r}")
            if kinds == (float,) and not _finite(value):
                raise DipnValidationError(f"training option {name} must be a finite number, got {value!r}")
        for name in ("epochs", "epoch_samples", "batch_size", "patience", "checkpoint_every", "max_steps", "max_train_samples",
                     "max_eval_samples", "threads"):  # fmt: skip
            value = getattr(self, name)
            if value is not None and value < 1:
                raise DipnValidationError(f"training option {name} must be >= 1, got {value!r}")
        if not 0 <= self.seed < 2**32:
            raise DipnValidationError(f"training option seed must be >= 0 and < 2**32, got {self.seed}")
        if not (self.lr > 0 and self.adam_eps > 0 and 0 <= self.beta1 < 1 and 0 <= self.beta2 < 1):
            raise DipnValidationError(f"lr and adam_eps must be > 0, beta1 and beta2 in [0, 1): lr {self.lr}, "
                                      f"adam_eps {self.adam_eps}, beta1 {self.beta1}, beta2 {self.beta2}")  # fmt: skip
        if self.ema_decay is not None and not 0 < self.ema_decay < 1:
            raise DipnValidationError(f"training option ema_decay must be in (0, 1), got {self.ema_decay}")
        if not 0 <= self.embedding_dropout < 1:
            raise DipnValidationError(f"training option embedding_dropout must be in [0, 1), got {self.embedding_dropout}")
        if self.action_age_horizon_hours is not None and not self.action_age_horizon_hours > 0:
            raise DipnValidationError(f"training option action_age_horizon_hours must be > 0, got "
                                      f"{self.action_age_horizon_hours}")  # fmt: skip
        if self.weight_decay < 0 or not (self.dropout is None or 0 <= self.dropout < 1):
            raise DipnValidationError(f"training option weight_decay must be >= 0 and dropout in [0, 1), got "
                                      f"{self.weight_decay}, {self.dropout}")  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        if not isinstance(data, dict):
            raise DipnValidationError(f"training options must be a JSON object, got {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise DipnValidationError(f"unknown training option(s) {unknown}; known: {sorted(known)}")
        return cls(**data)

    @classmethod
    def load(cls, path: str | Path) -> TrainConfig:
        try:
            return cls.from_dict(json.loads(Path(path).read_text()))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, DipnValidationError) as exc:
            raise DipnValidationError(f"{path}: not a readable training config ({exc})") from None


def _finite(value: float) -> bool:
    try:
        return math.isfinite(value)
    except OverflowError:  # an integer beyond any float
        return False
