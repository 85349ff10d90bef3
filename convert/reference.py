"""The PyTorch checkpoint itself as a runner: the reference every artifact is checked against.

The device package names no torch, so a caller that wants the model itself to score on the device
wrapper (to compare it with an artifact, or to time it) builds this runner and hands it over:
``IntentRuntime(bundle, screen, backend=TorchReference(checkpoint))``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from convert.signature import torch_scores
from dipn.training.checkpoint import load_model


class TorchReference:
    """``scores(inputs) -> (N, 2)`` of the checkpoint in PyTorch fp32 (``convert.signature.torch_scores``)."""

    label = "torch"

    def __init__(self, checkpoint: str | Path) -> None:
        self.model, _, _ = load_model(checkpoint)

    def scores(self, inputs: Mapping[str, np.ndarray]) -> np.ndarray:
        return torch_scores(self.model, inputs)
