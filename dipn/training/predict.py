"""Scores of a torch model on given samples of a store."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from dipn.data.store import SampleStore
from dipn.features import TASKS
from dipn.training.batches import eval_batches, to_tensors


@torch.no_grad()
def predict(
    model: nn.Module, store: SampleStore, indices: np.ndarray, batch_size: int = 512, device: torch.device | None = None
) -> dict[str, np.ndarray]:
    """Labels ("realtime", "longterm") and probabilities ("p_realtime", "p_longterm"), in order;
    the model runs on ``device`` (default CPU), where it must already be."""
    model.eval()
    device = device or torch.device("cpu")
    names = tuple(model.input_names)
    out: dict[str, list[np.ndarray]] = {t: [] for t in TASKS} | {f"p_{t}": [] for t in TASKS}
    for chunk in eval_batches(indices, batch_size):
        tensors = to_tensors(store, chunk, names)
        logits = model(**{n: tensors[n].to(device) for n in names})
        for task, logit in zip(TASKS, logits, strict=True):
            out[task].append(tensors[task].numpy())
            out[f"p_{task}"].append(torch.sigmoid(logit).float().cpu().numpy())
    return {k: np.concatenate(v) if v else np.zeros(0, np.float32) for k, v in out.items()}
