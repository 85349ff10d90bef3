"""ATRank (Zhou et al., AAAI'18): heterogeneous behaviours, K latent semantic spaces, self-attention.

Mapping from the paper to our inputs:
  * behaviour groups bg_i = our views (swipe, tap, browse); a behaviour's object features are its
    row of ids, embedded with DIPN's tables (``GroupEmbedding``). The behaviour-type lookup
    (lookup_a) is the view's action table inside that embedding (swipe ``action``, tap ``event``,
    browse ``type``): a concatenation followed by the linear map F_M equals the sum of the
    per-lookup maps, the paper's u = emb(o) + lookup_t + lookup_a up to that linear map.
  * time: the elapsed time from each behaviour to the view's most recent one, decoded from the ids
    (``dipn.models.event_time``; the cut time itself is not an input), bucketized in exponential
    slices [0, 1), [1, 2), [2, 4), ... seconds, one time table per group (not shared, as the paper).
  * eq. (1): S = concat over groups of F_M_i(u), F_M_i = Linear + ReLU to s_all, per group;
  * eq. (2)-(6), ``MultiSpaceAttention``: per space k, S_k = F_P_k(S), scores S_k W_k S^T
    (bilinear), softmax over the real behaviours, C_k = A_k F_Q_k(S); then F_self on the
    concatenated C_k, dropout, residual, layer norm (the paper: "successively perform drop out,
    residual connections and layer normalization").
  * eq. (7)-(8), vanilla attention: the paper attends with the embedding q_t of the item to rank.
    We rank no item: the query is a learned vector (one per model), and the vanilla attention has
    its own projections, F_vanilla included. Its output e_u, with the history and profile
    embeddings, feeds DIPN's two task branches (multi-task, as the paper's unified model).
Ours beyond the paper: scores scaled by 1/sqrt(s_k) (as Vaswani et al.; the paper's bilinear score
is unscaled), and each view reads its last ``window`` events (default 64, so 192 behaviours): the
self-attention is quadratic in the number of behaviours, 768 at the full 3 x 256 would cost 16x
the memory and time on a phone; the paper's users average 19.8 behaviours.

Padding: projected behaviours are zeroed on padded steps and padded steps are masked out of
every softmax as keys; their own rows never reach the output (the vanilla attention masks them).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from dipn.errors import DipnValidationError
from dipn.features import TASKS
from dipn.features.spec import FeatureConfig
from dipn.models.base import TaskHeads, masked_softmax
from dipn.models.event_time import StepSeconds, exponential_slices, seconds_before_last
from dipn.models.sources import BehaviourModel, SourcesConfig


@dataclass(frozen=True)
class ATRankConfig(SourcesConfig):
    window: int = 64  # most recent events of each view in the self-attention
    model_dim: int = 128  # s_all (the paper: hidden size 128)
    spaces: int = 8  # K latent semantic spaces (the paper: 8), s_k = s_all / K
    time_buckets: int = 18  # exponential slices: < 1 s, [1, 2) s, ..., >= 2^16 s (18 h)
    time_dim: int = 16  # width of a group's time embedding
    feedforward_dim: int = 128  # hidden layer of F_self and F_vanilla

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.window < 1 or self.spaces < 1 or self.model_dim % self.spaces:
            raise DipnValidationError("window and spaces must be >= 1, model_dim a multiple of spaces")
        if self.time_buckets < 2 or self.time_dim < 1 or self.feedforward_dim < 1:
            raise DipnValidationError("time_buckets >= 2, time_dim and feedforward_dim >= 1")


def _perceptron(in_dim: int, out_dim: int) -> nn.Sequential:
    """The paper's projection functions F: a single layer perceptron with ReLU."""
    return nn.Sequential(nn.Linear(in_dim, out_dim), nn.ReLU())


class MultiSpaceAttention(nn.Module):
    """Queries attend over S in K latent spaces (eq. 3-6), then F (one hidden layer), dropout,
    residual and layer norm. Used as self-attention (queries = S) and as the vanilla attention
    (one learned query) with separate parameters."""

    def __init__(self, model_dim: int, spaces: int, feedforward_dim: int, dropout: float) -> None:
        super().__init__()
        self.spaces, self.space_dim = spaces, model_dim // spaces
        self.project_query = _perceptron(model_dim, model_dim)  # F_P_k for all k, side by side
        self.project_value = _perceptron(model_dim, model_dim)  # F_Q_k
        self.bilinear = nn.Linear(model_dim, model_dim, bias=False)  # W_k in R^{s_k x s_all}, all k stacked
        self.feedforward = nn.Sequential(nn.Linear(model_dim, feedforward_dim), nn.ReLU(),
                                         nn.Linear(feedforward_dim, model_dim))  # fmt: skip
        self.dropout = nn.Dropout(dropout)
        self.norm = nn.LayerNorm(model_dim)
        self.scale = 1.0 / math.sqrt(self.space_dim)

    def forward(self, queries: Tensor, keys: Tensor, key_mask: Tensor) -> Tensor:
        """queries (B, Q, s_all), keys S (B, N, s_all), key_mask (B, N) -> (B, Q, s_all)."""
        b, q, n = queries.shape[0], queries.shape[1], keys.shape[1]
        k, s = self.spaces, self.space_dim
        s_k = self.project_query(queries).reshape(b, q, k, s).transpose(1, 2)  # eq. (2): (B, K, Q, s_k)
        keyed = self.bilinear(keys).reshape(b, n, k, s).transpose(1, 2)  # W_k S^T for every k: (B, K, N, s_k)
        scores = torch.matmul(s_k, keyed.transpose(2, 3)) * self.scale  # eq. (4): S_k W_k S^T
        weights = masked_softmax(scores, key_mask[:, None, None, :])  # eq. (3), real behaviours only
        values = self.project_value(keys).reshape(b, n, k, s).transpose(1, 2)  # F_Q_k(S)
        attended = torch.matmul(weights, values).transpose(1, 2).reshape(b, q, k * s)  # eq. (5), C_k side by side
        return self.norm(queries + self.dropout(self.feedforward(attended)))  # eq. (6) + residual, norm


class ATRank(BehaviourModel):
    def __init__(self, config: ATRankConfig | None = None, feature_config: FeatureConfig | None = None) -> None:
        config = config or ATRankConfig()
        super().__init__(config, feature_config)
        d = config.model_dim
        self.times = nn.ModuleDict({v: StepSeconds(self.feature_config, v) for v in self.views})
        self.time_embeddings = nn.ModuleDict({v: nn.Embedding(config.time_buckets, config.time_dim) for v in self.views})
        self.project_group = nn.ModuleDict(
            {v: _perceptron(self.embeddings[v].output_dim + config.time_dim, d) for v in self.views}  # F_M_i
        )
        self.self_attention = MultiSpaceAttention(d, config.spaces, config.feedforward_dim, config.dropout)
        self.vanilla_attention = MultiSpaceAttention(d, config.spaces, config.feedforward_dim, config.dropout)
        self.query = nn.Parameter(torch.randn(1, 1, d) * 0.1)  # stands for F_M(q_t): no item to rank
        self.head_input_dim = d + self.static_dim
        self.heads = TaskHeads(self.head_input_dim, config.head_hidden, config.dropout, TASKS)

    def behaviours(self, views: dict[str, Tensor], masks: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        """eq. (1): S (B, N, s_all) over the last ``window`` events of every view, and its mask."""
        window = self.config.window
        rows, row_masks = [], []
        for view, ids in views.items():
            ids, mask = ids[:, -window:], masks[view][:, -window:]
            elapsed = seconds_before_last(self.times[view](ids, mask))
            time = self.time_embeddings[view](exponential_slices(elapsed, self.config.time_buckets))
            u = torch.cat([self.embeddings[view](ids), time], dim=-1)
            rows.append(self.project_group[view](u) * mask.unsqueeze(-1))
            row_masks.append(mask)
        return torch.cat(rows, dim=1), torch.cat(row_masks, dim=1)

    def encode(self, views: dict[str, Tensor], masks: dict[str, Tensor]) -> Tensor:
        s, mask = self.behaviours(views, masks)
        c = self.self_attention(s, s, mask) * mask.unsqueeze(-1)
        query = self.query.expand(s.shape[0], 1, s.shape[2])
        return self.vanilla_attention(query, c, mask).squeeze(1)  # e_u (eq. 7)


ATRANK_VARIANTS: dict[str, ATRankConfig] = {"atrank": ATRankConfig()}
