"""The fixed signature every artifact has, and the PyTorch reference it is checked against.

Inputs: one int32 tensor per input group the model reads, named as the group (``swipe`` (B, T, 15),
``tap`` (B, T, 4), ``browse`` (B, T, 7), ``history`` (B, 6), ``profile`` (B, 6), ``context`` (B, 8); ``merged`` for the
early-fusion variant), in ``model.input_names`` order. Outputs: ``p_realtime`` and ``p_longterm``,
probabilities of shape (B,). A variant trained on one task still outputs both; the other is
sigmoid(0) = 0.5 and means nothing (the manifest lists the model's tasks).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from dipn.samples.store import SampleStore
from dipn.features import MERGED, OUTPUTS, STATICS, TASKS
from dipn.features.spec import input_shape as feature_input_shape


class ScoreModule(nn.Module):
    """``module(*int32 tensors in input order) -> (p_realtime, p_longterm)``: what is exported.

    Parameter names are ``scored.model.<the model's own names>``; CoreML keeps them (dots as
    underscores) on the weights it quantizes, which is how ``coreml_export`` maps them back.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.scored = model.positional()
        self.input_names = tuple(model.input_names)

    def forward(self, *inputs: Tensor) -> tuple[Tensor, Tensor]:
        realtime, longterm = self.scored(*inputs)
        return torch.sigmoid(realtime), torch.sigmoid(longterm)


def input_shape(model: nn.Module, name: str, batch: int | str = 1) -> list[int | str]:
    return feature_input_shape(model.feature_config, name, batch)


def input_signature(model: nn.Module, batch: int | str = 1) -> list[dict[str, Any]]:
    """Names, dtypes and shapes of the inputs, for manifests and exporters."""
    return [{"name": n, "dtype": "int32", "shape": input_shape(model, n, batch)} for n in model.input_names]


def output_signature(batch: int | str = 1) -> list[dict[str, Any]]:
    return [{"name": n, "dtype": "float32", "shape": [batch]} for n in OUTPUTS]


def model_inputs(store: SampleStore, indices: np.ndarray, input_names: Sequence[str]) -> dict[str, np.ndarray]:
    """The int32 input arrays of some samples, in the signature's names."""
    batch = store.batch(np.asarray(indices), merged=MERGED in input_names)
    return {n: np.ascontiguousarray(batch[n], dtype=np.int32) for n in input_names}


def labels_of(store: SampleStore, indices: np.ndarray) -> dict[str, np.ndarray]:
    batch = store.batch(np.asarray(indices))
    return {task: batch[task] for task in TASKS}


def example_inputs(model: nn.Module, inputs: Mapping[str, np.ndarray] | None = None) -> tuple[Tensor, ...]:
    """One-row int32 tensors to trace or export with: the first row of ``inputs``, else padding
    with one real step per view (an all-padding example would trace the same graph, but a real
    step makes a broken export visible in the first comparison)."""
    out = []
    for name in model.input_names:
        if inputs is not None:
            out.append(torch.from_numpy(np.ascontiguousarray(inputs[name][:1], dtype=np.int32)))
            continue
        array = np.ones(input_shape(model, name), dtype=np.int32)
        if name not in STATICS:
            array[:, :-1, :] = 0
        out.append(torch.from_numpy(array))
    return tuple(out)


@torch.no_grad()
def torch_scores(model: nn.Module, inputs: Mapping[str, np.ndarray], batch_size: int = 64) -> np.ndarray:
    """PyTorch fp32 reference: (N, 2) probabilities, columns ``OUTPUTS``. (Small batches: the
    inter-view attention holds (B, T, T) score matrices.)"""
    module = ScoreModule(model).eval()
    n = len(next(iter(inputs.values())))
    parts = []
    for start in range(0, n, batch_size):
        chunk = [torch.from_numpy(np.asarray(inputs[name][start : start + batch_size])) for name in model.input_names]
        realtime, longterm = module(*chunk)
        parts.append(torch.stack([realtime, longterm], dim=1).numpy())
    return np.concatenate(parts) if parts else np.zeros((0, 2), np.float32)
