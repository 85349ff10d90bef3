"""The PyTorch checkpoint itself as a runner: the reference every artifact is checked against.

The device package names no torch, so a caller that wants the model itself to score on the device
wrapper (to compare it with an artifact, or to time it) builds this runner and hands it over:
``IntentScorerOptions(bundle, runner=TorchReference(checkpoint))``.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from convert.signature import ScoreModule, torch_scores
from dipn.training.checkpoint import load_model


class TorchReference:
    """``scores(inputs) -> (N, 2)`` of the checkpoint in PyTorch fp32 (``convert.signature.torch_scores``)."""

    label = "torch"

    def __init__(self, checkpoint: str | Path) -> None:
        self.model, _, _ = load_model(checkpoint)

    def scores(self, inputs: Mapping[str, np.ndarray]) -> np.ndarray:
        return torch_scores(self.model, inputs)


def torch_calls(checkpoint: str | Path, threads: int) -> dict[str, Callable[[Mapping[str, np.ndarray]], Any]]:
    """"PyTorch eager fp32" and "PyTorch eager int8" (torch.ao dynamic quantization of Linear and
    GRU) -> one batch-1 call of the scoring module, for latency tables beside the artifacts'."""
    torch.set_num_threads(threads)
    model, _, _ = load_model(checkpoint)
    names = list(model.input_names)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao dynamic quantization is deprecated in favour of torchao
        int8 = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear, torch.nn.GRU}, dtype=torch.qint8)
    calls = {}
    for label, module in (("PyTorch eager fp32", model), ("PyTorch eager int8", int8)):
        scored = ScoreModule(module).eval()

        @torch.no_grad()
        def call(feeds: Mapping[str, np.ndarray], scored: ScoreModule = scored) -> Any:
            return scored(*[torch.from_numpy(feeds[n]) for n in names])

        calls[label] = call
    return calls
