"""Scores of a torch model on given samples of a store.

Batches of ``SCORING_BATCH`` samples: scoring per sample gets slower as batches grow past what
the caches hold (DIPN's recurrence keeps (K, B, 3d) per step; at one thread, batches of 64-128
scored about twice as many samples per core-second as batches of 512), and smaller ones pay more
per-operator dispatch. ``inference_mode``: no autograd records, and the recurrence keeps no
buffers for a backward pass.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from dipn.samples.store import SampleStore
from dipn.features import TASKS
from dipn.training.batches import eval_batches, to_tensors

SCORING_BATCH = 128


@torch.inference_mode()
def predict(
    model: nn.Module, store: SampleStore, indices: np.ndarray, batch_size: int = SCORING_BATCH,
    device: torch.device | None = None, progress: bool = False,
) -> dict[str, np.ndarray]:  # fmt: skip
    """Labels ("realtime", "longterm") and probabilities ("p_realtime", "p_longterm"), in order;
    the model runs on ``device`` (default CPU), where it must already be. ``progress``: a bar
    counting samples."""
    model.eval()
    device = device or torch.device("cpu")
    names = tuple(model.input_names)
    out: dict[str, list[np.ndarray]] = {t: [] for t in TASKS} | {f"p_{t}": [] for t in TASKS}
    with tqdm(total=len(indices), unit="sample", desc="scoring", disable=not progress, dynamic_ncols=True) as bar:
        for chunk in eval_batches(indices, batch_size):
            tensors = to_tensors(store, chunk, names)
            logits = model(**{n: tensors[n].to(device) for n in names})
            for task, logit in zip(TASKS, logits, strict=True):
                out[task].append(tensors[task].numpy())
                out[f"p_{task}"].append(torch.sigmoid(logit).float().cpu().numpy())
            bar.update(len(chunk))
    return {k: np.concatenate(v) if v else np.zeros(0, np.float32) for k, v in out.items()}
