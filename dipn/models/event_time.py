"""Time between events, read back from the ids a model is fed (ATRank's time slices, HEROES' decay).

The models take the same int32 ids as DIPN (no raw timestamps reach a model, on the server or on
the phone), so elapsed time is decoded from the bucketed features each view carries:
  * swipe: ``time_gap`` (section 3.1 step function: the gap to the previous action);
  * browse: ``stay_time`` of the previous event (the user stayed on that page, then acted again);
  * tap: no time feature at all; each event counts as ``TAP_STEP_SECONDS``, so "time" there is
    event order.
A bucket decodes to the middle of its range; the open last bucket to twice its lower edge. The
ranges are found by running the encoder's own bucket functions (``dipn.features.buckets``) over a
fine grid, so the edges are never typed twice. Decoded times are lower-resolution than the raw
logs (the step function saturates at 10 f_b = 10 s per gap): an approximation the docs state.

Padded steps get a zero gap, so nothing at a padded step can move a real step's time.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

from dipn.features.buckets import stay_time_bucket, step_bucket
from dipn.features.spec import FeatureConfig, Group, StepRule

TAP_STEP_SECONDS = 1.0
_GRID_STEP_MS = 10.0
_GRID_MS = np.arange(0.0, 2_500_000.0, _GRID_STEP_MS)  # 0 .. ~42 min in 10 ms steps: finer than any bucket


def _bucket_centres_seconds(values: np.ndarray, num_embeddings: int) -> np.ndarray:
    """Seconds per id (id = bucket + 1; id 0 = padding / not applicable -> 0 s)."""
    out = np.zeros(num_embeddings, np.float32)
    for bucket in range(num_embeddings - 1):
        hit = _GRID_MS[values == bucket]
        if hit.size == 0:
            continue
        top = hit.max() + _GRID_STEP_MS if bucket < num_embeddings - 2 else 2 * hit.min()  # open last bucket
        out[bucket + 1] = (hit.min() + top) / 2 / 1000.0
    return out


def gap_seconds_table(rule: StepRule, num_embeddings: int) -> np.ndarray:
    return _bucket_centres_seconds(step_bucket(_GRID_MS, rule.f_s, rule.f_b), num_embeddings)


def stay_seconds_table(num_embeddings: int) -> np.ndarray:
    return _bucket_centres_seconds(stay_time_bucket(_GRID_MS), num_embeddings)


class StepSeconds(nn.Module):
    """(B, T, F) ids of one view and its (B, T) mask -> seconds since the view's previous event."""

    def __init__(self, feature_config: FeatureConfig, view: str) -> None:
        super().__init__()
        names = [spec.name for spec in feature_config.group(view)]
        self.view = Group(view)
        self.column = -1
        table = np.zeros(1, np.float32)
        if self.view is Group.SWIPE:
            self.column = names.index("time_gap")
            spec = feature_config.spec(view, "time_gap")
            table = gap_seconds_table(feature_config.time_gap, spec.num_embeddings)
        elif self.view is Group.BROWSE:
            self.column = names.index("stay_time")
            table = stay_seconds_table(feature_config.spec(view, "stay_time").num_embeddings)
        self.register_buffer("seconds", torch.from_numpy(table), persistent=False)

    def forward(self, ids: Tensor, mask: Tensor) -> Tensor:
        if self.view is Group.TAP:
            return mask * TAP_STEP_SECONDS
        decoded = self.seconds[ids[..., self.column].long()] * mask
        if self.view is Group.BROWSE:  # the gap before event t is the stay on event t - 1
            decoded = torch.cat([torch.zeros_like(decoded[:, :1]), decoded[:, :-1]], dim=1) * mask
        return decoded


def seconds_before_last(step_seconds: Tensor) -> Tensor:
    """(B, T) gaps -> (B, T) time from each event to the view's most recent event (step T-1):
    the sum of the gaps of the later events (total minus the running sum: no reversed cumsum)."""
    total = step_seconds.sum(dim=1, keepdim=True)
    return total - torch.cumsum(step_seconds, dim=1)


def exponential_slices(seconds: Tensor, buckets: int) -> Tensor:
    """ATRank's time bucketization: [0, 1) -> 0, [1, 2) -> 1, [2, 4) -> 2, ..., [2^k, 2^(k+1)) -> k + 1,
    the last bucket open. Compared with constant edges (no log): exact in every runtime."""
    edges = torch.tensor([2.0**k for k in range(buckets - 1)], dtype=seconds.dtype)
    return (seconds.unsqueeze(-1) >= edges).to(torch.int64).sum(dim=-1)
