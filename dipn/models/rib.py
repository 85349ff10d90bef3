"""RIB (Zhou et al., WSDM'18, "Micro Behaviors"): micro-behaviour tuples -> GRU -> attention pooling.

The paper's input is one sequence of tuples (product, activity, dwell time) (eq. 2), each embedded
and concatenated (eq. 3), read by a GRU (eq. 6), pooled by attention (eq. 7). Ours, per view the
configuration names (one GRU and one attention per view, as DIPN keeps views apart), the tuple is
the view's (what, action, how long) columns, ``RIB_TUPLES``:
  * browse: (leaf_category, type, stay_time): item, activity (browse / search / collect / cart /
    purchase), dwell bucket: the paper's tuple, with the leaf category standing for the SKU;
  * swipe: (page, action, time_gap): the page is the "item", the gap before the action its dwell;
  * tap: (page, button, event): no dwell feature exists in the tap view (Table 3b).
The other columns of a view get no embedding table. The GRU is unidirectional with the paper's
input (the concatenated embeddings, no extra FC); the pooled outputs of the views, the history and
profile embeddings feed DIPN's two task branches (the paper's single next-item softmax becomes
our two purchase-intent logits; loss = sum of both BCEs, eq. 5-6 of DIPN).

Padding: embeddings are zeroed on padded steps, so the GRU sees the same zeros whatever ids a
padded step holds, and padded steps are masked out of the attention softmax. Word2vec
pre-training of the embeddings (section 4.1) is not done: tables start random, as DIPN's.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from torch import Tensor, nn

from dipn.errors import DipnValidationError
from dipn.features import TASKS
from dipn.features.spec import FeatureConfig
from dipn.models.base import TaskHeads, masked_softmax
from dipn.models.embeddings import GroupEmbedding
from dipn.models.sources import BehaviourModel, SourcesConfig

# view -> the columns of its micro-behaviour tuple (item, activity, dwell); see the module docstring
RIB_TUPLES: dict[str, tuple[str, ...]] = {
    "swipe": ("page", "action", "time_gap"),
    "tap": ("page", "button", "event"),
    "browse": ("leaf_category", "type", "stay_time"),
}


@dataclass(frozen=True)
class RIBConfig(SourcesConfig):
    hidden_size: int = 64  # d_h of the GRU (unidirectional: DIPN's 2 x 32 per view)
    attention_size: int = 32  # k of eq. (7)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.hidden_size < 1 or self.attention_size < 1:
            raise DipnValidationError("hidden_size and attention_size must be >= 1")


class MicroBehaviourAttention(nn.Module):
    """eq. (7): M_t = tanh(W_m h_t + b_m), att = softmax_t(w_a M_t), output = sum_t att_t h_t.

    (The paper's scalar b_a shifts every score alike; softmax ignores it, so it is left out.)
    """

    def __init__(self, hidden_size: int, attention_size: int) -> None:
        super().__init__()
        self.w_m = nn.Linear(hidden_size, attention_size)
        self.w_a = nn.Linear(attention_size, 1, bias=False)

    def forward(self, h: Tensor, mask: Tensor) -> Tensor:
        scores = self.w_a(torch.tanh(self.w_m(h))).squeeze(-1)  # (B, T)
        weights = masked_softmax(scores, mask)
        return torch.matmul(weights.unsqueeze(1), h).squeeze(1)


class RIB(BehaviourModel):
    def __init__(self, config: RIBConfig | None = None, feature_config: FeatureConfig | None = None) -> None:
        config = config or RIBConfig()
        super().__init__(config, feature_config)
        for view in self.views:
            self.embeddings[view] = GroupEmbedding.for_features(self.feature_config, view, RIB_TUPLES[view])
        self.grus = nn.ModuleDict(
            {v: nn.GRU(self.embeddings[v].output_dim, config.hidden_size, batch_first=True) for v in self.views}
        )
        self.attention = nn.ModuleDict(
            {v: MicroBehaviourAttention(config.hidden_size, config.attention_size) for v in self.views}
        )
        self.head_input_dim = config.hidden_size * len(self.views) + self.static_dim
        self.heads = TaskHeads(self.head_input_dim, config.head_hidden, config.dropout, TASKS)

    def encode(self, views: dict[str, Tensor], masks: dict[str, Tensor]) -> Tensor:
        pooled = []
        for view, ids in views.items():
            e = self.embeddings[view](ids) * masks[view].unsqueeze(-1)  # eq. (3), zero on padding
            h, _ = self.grus[view](e)  # eq. (6)
            pooled.append(self.attention[view](h, masks[view]))  # eq. (7)
        return torch.cat(pooled, dim=-1)


RIB_VARIANTS: dict[str, RIBConfig] = {
    "rib": RIBConfig(),
    "rib_browse": replace(RIBConfig(), views=("browse",)),  # the paper's setting: one tuple sequence
}
