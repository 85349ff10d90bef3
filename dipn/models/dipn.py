"""DIPN: Deep Intent Prediction Network (Guo et al., KDD'19, section 4), top to bottom in one file.

Per view (swipe, tap, browse; ids of shape (B, T=256, F), left-padded, most recent event last):
  embeddings (Table 3, concatenated)  -> fully connected "reshape" (section 4.1), zeroed on padded
  steps -> Bi-GRU, d = 32 (eq. 1; run over the padding as PyTorch does, no packing)
  -> intra-view attention (eq. 2-3), masked softmax over real steps.
Then inter-view attention IA(., .) (eq. 4) for (swipe, browse), (swipe, tap), (tap, browse);
the reduced attention outputs, each view's last forward and backward states, and the history and
profile embeddings are concatenated and fed into two branches of fully connected layers: the
real-time (1 h) and long-term (1 d) logits; loss = L_short + L_long (eq. 5-6).

Padding. A step is real iff its mask column (``MASK_FEATURE``) is non-zero. The FC output is
multiplied by the mask, so ids at padded steps cannot reach the GRU; GRU outputs at padded steps
are masked out of every softmax and every reduction. The "last backward state" is the backward
GRU's output at the first real step (its state after reading every real event and no padding),
picked with a one-hot built from the mask; the last forward state is the output at step T-1. A
view that is all padding contributes zeros and never NaN (masked softmax uses a finite -1e9 and
is multiplied by the mask; means divide by max(count, 1)). No data-dependent Python control flow
in what exporters see: the graph is fixed by the configuration, so ``torch.jit.trace`` and the
legacy ONNX exporter see one path, and a TF re-expression can copy it line by line.

Two faster forms of the same function run when the model is not being traced (``exporting``):
the Bi-GRUs of all sequences as one stacked recurrence with a hand-written backward
(``dipn.models.recurrence``), and inter-view attention over the real steps of each chunk of
samples (``dipn.models.ragged_attention``, data-dependent shapes). ``tests/test_fast_paths.py``
pins them to ``nn.GRU``, to the dense attention below, and DIPN's outputs and gradients to 1e-5 of
the code before them.

Reduction of the attention outputs (ours; the paper flattens them). The paper flattens the
(n x 2d) outputs of the hierarchical attention layer before the fully connected branches. At
n = 256, 2d = 64 that is 16,384 values per output, six outputs, about 98 k inputs: a first layer
of 128 units would be 12.6 M weights per branch, 25 MB at int8 for the two, against the
paper's 2 MB model. We reduce over the step axis instead:
  * intra-view (eq. 3): v_t = h_t * a_t. We pool sum_t a_t h_t: the sum of v over the steps (the
    mean of the rescaled v below), i.e. classic attention-weighted pooling, 2d values per view.
  * inter-view (eq. 4): r = A_x * A_y has one row per query step; we take the masked mean over the
    steps where both views are real (rows are aligned by position from the end: both sequences end
    at the same cut time). If either view is empty the pair contributes zeros.
Scale of v (ours, ``rescale_intra_view``). Read literally, v_t = a_t h_t with a_t ~ 1/n, so v is
~1/256 of h; eq. (4)'s dot products between two such v are then ~1e-5 (the softmax is uniform
whatever the data) and r = A_x * A_y is ~1e-6: features a head cannot use. By default we feed
eq. (4) with v_t = (n a_t) h_t, n = number of real steps: uniform attention leaves h unchanged,
so the 1/sqrt(2d) scaling of eq. (4) means what it does in a Transformer. The pooled intra-view
output is sum_t a_t h_t either way. ``rescale_intra_view=False`` gives the literal reading.
Head inputs use both attention levels: each view's pooled v (its own evidence, kept when the other
view of a pair is empty) and each pair's pooled r. This makes the ablations one switch each:
no intra-view attention = uniform a (v = h); no inter-view = drop r; no attention = both.

Single-task models (``tasks`` of one element) build one branch; ``forward`` still returns
(logit_realtime, logit_longterm), the absent task's logit being zeros of the same shape (B,),
and ``multitask_loss`` only counts the configured tasks.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import torch
from torch import Tensor, nn

from dipn.errors import DipnValidationError
from dipn.features import MERGED, STATICS, VIEWS
from dipn.features.cut import context_columns_read
from dipn.features.spec import FeatureConfig, Group, Kind, mask_columns, merged_layout
from dipn.models.base import IntentModel, TaskHeads, TasksConfig, ViewsConfig, last_states, masked_mean, masked_softmax
from dipn.models.base import step_mask
from dipn.models.embeddings import embedded_and_projected, group_embedding
from dipn.models.ragged_attention import exporting, ragged_inter_view_attention
from dipn.models.recurrence import bidirectional_grus

INPUT_ORDER = (*VIEWS, MERGED, *STATICS)
INTER_VIEW_PAIRS = (("swipe", "browse"), ("swipe", "tap"), ("tap", "browse"))


@dataclass(frozen=True)
class DIPNConfig(ViewsConfig, TasksConfig):
    """Architecture and variant switches besides the inputs and heads every model has (``ViewsConfig``
    and ``TasksConfig``: views, use_history, use_profile, use_context, head_hidden, dropout, tasks);
    defaults are the paper's full DIPN with time at every step."""

    # Time at every step (docs/models.md, "Time at every step"): each view's age column (t - ts of
    # each step) and the context's time since the last purchase, cart, collect and browse. Not in
    # the paper: off in its rows (``dipn_paper`` and the Table 4-6 ablations).
    step_ages: bool = True
    action_ages: bool = True
    # How far back the time since each browse action is read; beyond it, as "none" (docs/models.md,
    # "Time since each action, up to a horizon"): what "none" means then does not depend on how many
    # days of log precede a cut. A bucket edge of the features' action-age rule; None (the default,
    # which val and eval kept): all of it.
    action_age_horizon_hours: float | None = None
    early_fusion: bool = False  # one Bi-GRU over the timestamp-merged sequence ("merged")
    hidden_size: int = 32  # d of the Bi-GRU (section 6.1)
    reshape_dim: int = 64  # width of the FC after the concatenated embeddings (section 4.1)
    intra_view_attention: bool = True  # eq. (2)-(3); off: a_t uniform, v = h
    inter_view_attention: bool = True  # eq. (4)
    inter_view_pairs: tuple[tuple[str, str], ...] = INTER_VIEW_PAIRS
    rescale_intra_view: bool = True  # v_t = n a_t h_t (see module docstring); False: v_t = a_t h_t
    # Wide path (ours, docs/models.md "Wide context"): the context embedding (recency, cut hour,
    # time since each browse action) also reaches each task's logit through one linear layer, as
    # in wide & deep, so that timing the deep branches may not use well still counts on its own.
    wide_context: bool = False
    # Ordinal wide path (ours, docs/models.md "Wide context"): each recency and time-since-action
    # bucket id of the context read as a number (over its number of values), one linear term per
    # task. The buckets are ordered in time; one weight per column learns "more recent, likelier"
    # from a few hundred buyers, where an embedding row per bucket needs many (on the real slices
    # the recency of the last browse event alone, read this way, scored above every fitted model).
    wide_ordinal: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        for pair in self.inter_view_pairs:
            if len(pair) != 2 or pair[0] == pair[1] or any(v not in VIEWS for v in pair):
                raise DipnValidationError(f"inter_view_pairs: {pair} is not a pair of two views")
        if self.early_fusion and (set(self.views) != set(VIEWS) or self.inter_view_attention):
            raise DipnValidationError(
                "early_fusion merges all three views into one sequence: it needs views = "
                f"{VIEWS} and inter_view_attention=False"
            )
        if not (self.views or self.use_history or self.use_profile or self.use_context):
            raise DipnValidationError("the configuration uses no input at all")
        if self.hidden_size < 1 or self.reshape_dim < 1:
            raise DipnValidationError("hidden_size and reshape_dim must be >= 1")
        if self.action_age_horizon_hours is not None and not self.action_age_horizon_hours > 0:
            raise DipnValidationError(f"action_age_horizon_hours must be > 0 hours, got {self.action_age_horizon_hours}")
        if self.action_age_horizon_hours is not None and not (self.action_ages and "browse" in self.views):
            raise DipnValidationError("action_age_horizon_hours: this variant reads no time since a browse action "
                                      "(action_ages off or no browse view), so it has no horizon to apply")  # fmt: skip

    @property
    def sequences(self) -> tuple[str, ...]:
        """Sequence inputs that get their own FC + Bi-GRU + intra-view attention."""
        if self.early_fusion:
            return (MERGED,)
        return tuple(v for v in VIEWS if v in self.views)

    @property
    def pairs(self) -> tuple[tuple[str, str], ...]:
        """Inter-view pairs actually computed: both views present, attention on."""
        if not self.inter_view_attention or self.early_fusion:
            return ()
        return tuple(p for p in self.inter_view_pairs if p[0] in self.views and p[1] in self.views)

    @property
    def input_names(self) -> tuple[str, ...]:
        return tuple(n for n in INPUT_ORDER if n in self.sequences or n in self.statics)

    def restricted_to(self, available: Sequence[str]) -> DIPNConfig:
        """``ViewsConfig.restricted_to``; early fusion cannot drop a view."""
        if self.early_fusion and any(v not in available for v in self.views):
            raise DipnValidationError(f"early fusion needs all three views; the data has only {sorted(available)}")
        return super().restricted_to(available)


_FULL = DIPNConfig(step_ages=False, action_ages=False)  # the paper's DIPN: Table 3 columns (+ recency, cut hour)

# Every row of the paper's Tables 4, 5 and 6 (GBDT and RNN+DNN live in their own modules), each as
# published: no step ages and no action ages; where the paper reports each: dipn.presets. The
# default ``dipn`` is ours, the paper's DIPN with time at every step.
VARIANTS: dict[str, DIPNConfig] = {
    "dipn": DIPNConfig(),
    "dipn_paper": _FULL,
    "early_fusion": replace(_FULL, early_fusion=True, inter_view_attention=False),
    "no_attention": replace(_FULL, intra_view_attention=False, inter_view_attention=False),
    "no_inter_view": replace(_FULL, inter_view_attention=False),
    "no_intra_view": replace(_FULL, intra_view_attention=False),
    "no_multitask": replace(_FULL, tasks=("realtime",)),
    "no_multitask_longterm": replace(_FULL, tasks=("longterm",)),
    "no_profile": replace(_FULL, use_profile=False),
    "no_history": replace(_FULL, use_history=False),
    "no_browse": replace(_FULL, views=("swipe", "tap")),
    "no_swipe": replace(_FULL, views=("tap", "browse")),
    "no_tap": replace(_FULL, views=("swipe", "browse")),
    "only_profile": replace(_FULL, views=(), use_history=False),
    "only_history": replace(_FULL, views=(), use_profile=False),
    "only_browse": replace(_FULL, views=("browse",), use_history=False, use_profile=False),
    "only_swipe": replace(_FULL, views=("swipe",), use_history=False, use_profile=False),
    "only_tap": replace(_FULL, views=("tap",), use_history=False, use_profile=False),
    # What the public clickstream logs hold (dipn import): a browse view and derived history.
    "browse_history": DIPNConfig(views=("browse",), use_profile=False),
    "browse_history_paper": replace(_FULL, views=("browse",), use_profile=False),
    # Not the default: on held-out users val chose against it (docs/models.md, "Wide context").
    "browse_history_wide": DIPNConfig(views=("browse",), use_profile=False, wide_context=True),
}


# ---- DIPN's own blocks --------------------------------------------------------------------------
class IntraViewAttention(nn.Module):
    """eq. (2): a_t = softmax_t(h_t W_a h_n), h_n the last forward state; eq. (3): v_t = h_t a_t."""

    def __init__(self, hidden_size: int, rescale: bool) -> None:
        super().__init__()
        self.w_a = nn.Linear(hidden_size, 2 * hidden_size, bias=False)  # W_a in R^{2d x d}
        self.rescale = rescale

    def forward(self, h: Tensor, last_forward: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """Returns v (B, T, 2d) and the pooled sum_t a_t h_t (B, 2d)."""
        query = self.w_a(last_forward).unsqueeze(-1)  # (B, 2d, 1): W_a h_n
        scores = torch.matmul(h, query).squeeze(-1)  # (B, T): h_t W_a h_n, eq. (2)
        weights = masked_softmax(scores, mask)
        pooled = torch.matmul(weights.unsqueeze(1), h).squeeze(1)
        if self.rescale:
            weights = weights * mask.sum(dim=1, keepdim=True)
        return h * weights.unsqueeze(-1), pooled  # eq. (3)


def inter_view_attention(v_x: Tensor, mask_x: Tensor, v_y: Tensor, mask_y: Tensor, scale: float) -> Tensor:
    """eq. (4): IA(v_x, v_y) = A_x(v_y, v_x, v_x) * A_y(v_x, v_y, v_y), reduced to (B, 2d).

    A_x(v_y, v_x, v_x) = softmax(v_y v_x^T / sqrt(2d)) v_x: queries from y, keys masked to real
    steps of x; A_y symmetrically (the same score matrix, transposed). Row t of the product pairs
    query step t of each view; the mean runs over the rows where both views are real.
    """
    scores = torch.matmul(v_y, v_x.transpose(1, 2)) * scale  # (B, T_y, T_x)
    attended_x = torch.matmul(masked_softmax(scores, mask_x.unsqueeze(1)), v_x)  # (B, T_y, 2d)
    attended_y = torch.matmul(masked_softmax(scores.transpose(1, 2), mask_y.unsqueeze(1)), v_y)
    return masked_mean(attended_x * attended_y, mask_x * mask_y)


# ---- the model ---------------------------------------------------------------------------------
class DIPN(IntentModel):
    """DIPN or one of its variants, as ``config`` says; ``input_names`` are the groups it reads."""

    def __init__(self, config: DIPNConfig | None = None, feature_config: FeatureConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or DIPNConfig()
        self.feature_config = fc = feature_config or FeatureConfig()
        self.input_names = config.input_names
        self.tasks = config.tasks
        missing = [g for g in self._groups_needed() if g not in fc.groups]
        if missing:
            raise DipnValidationError(f"the feature config has no group(s) {[g.value for g in missing]}")
        d = config.hidden_size

        modelled = VIEWS if config.early_fusion else config.views
        self.embeddings = nn.ModuleDict(
            {g.value: group_embedding(fc, g, modelled, config.step_ages, config.action_ages,
                                     config.action_age_horizon_hours) for g in self._groups_needed()}
        )
        # Columns (into the sequence tensor) whose non-zero id marks a real step.
        self._mask_columns = {s: mask_columns(fc, s) for s in config.sequences}
        self._merged_slices = merged_layout(fc) if config.early_fusion else ()

        self.reshape = nn.ModuleDict(
            {
                s: nn.Sequential(nn.Linear(self._sequence_embedding_dim(s), config.reshape_dim), nn.ReLU())
                for s in config.sequences
            }
        )
        self.grus = nn.ModuleDict(
            {s: nn.GRU(config.reshape_dim, d, batch_first=True, bidirectional=True) for s in config.sequences}
        )
        self.intra_attention = nn.ModuleDict(
            {s: IntraViewAttention(d, config.rescale_intra_view) for s in config.sequences}
            if config.intra_view_attention
            else {}
        )
        self._scale = 1.0 / math.sqrt(2 * d)  # eq. (4): 1 / sqrt(2d)

        # per sequence: pooled attention output + [last forward, last backward]; per pair: pooled r
        head_in = 2 * (2 * d) * len(config.sequences) + 2 * d * len(config.pairs)
        head_in += sum(self.embeddings[s].output_dim for s in STATICS if s in self.input_names)
        self.head_input_dim = head_in
        self.heads = TaskHeads(head_in, config.head_hidden, config.dropout, config.tasks)
        wide = config.wide_context and "context" in self.input_names
        self.wide = nn.ModuleDict({t: nn.Linear(self.embeddings["context"].output_dim, 1) for t in config.tasks}
                                  if wide else {})  # fmt: skip
        ordinal = config.wide_ordinal and "context" in self.input_names
        self.ordinal = nn.ModuleDict({t: nn.Linear(len(fc.group(Group.CONTEXT)), 1) for t in config.tasks}
                                     if ordinal else {})  # fmt: skip
        if ordinal:  # saved with the weights: the TensorFlow re-expression reads the same scale
            self.register_buffer("ordinal_scale", ordinal_scale(fc, modelled, config.action_ages))

    def _groups_needed(self) -> tuple[Group, ...]:
        views = VIEWS if self.config.early_fusion else self.config.views
        return tuple(Group(g) for g in (*[v for v in VIEWS if v in views], *self.config.statics))

    def _sequence_embedding_dim(self, sequence: str) -> int:
        if sequence == MERGED:
            return sum(self.embeddings[v].output_dim for v in VIEWS)
        return self.embeddings[sequence].output_dim

    def _embed_sequence(self, sequence: str, ids: Tensor) -> Tensor:
        if sequence == MERGED:
            return torch.cat([self.embeddings[v](ids[..., a:b]) for v, a, b in self._merged_slices], dim=-1)
        return self.embeddings[sequence](ids)

    def _reshaped(self, sequence: str, ids: Tensor) -> Tensor:
        """Embeddings -> FC -> ReLU; when scoring (no autograd, not traced) with the FC folded into
        the tables (``embedded_and_projected``: the same function, a fraction of the work); a
        quantized FC (torch.ao, the int8 latency reference) keeps its own kernel."""
        fc = self.reshape[sequence][0]
        if sequence == MERGED or type(fc) is not nn.Linear or self.training or torch.is_grad_enabled() or exporting():
            return self.reshape[sequence](self._embed_sequence(sequence, ids))
        return torch.relu_(embedded_and_projected(self.embeddings[sequence], fc, ids))

    def _mask(self, sequence: str, ids: Tensor) -> Tensor:
        return step_mask(ids, *self._mask_columns[sequence])

    def encode_sequences(self, given: Mapping[str, Tensor]) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        """Embeddings -> FC (zeroed on padding) -> Bi-GRU, per sequence: outputs h (B, T, 2d), masks (B, T).

        The Bi-GRUs run as one stacked recurrence (``dipn.models.recurrence``) unless the model is
        being traced: exporters see ``nn.GRU``, one op each format maps to its own recurrence.
        """
        masks = {s: self._mask(s, given[s]) for s in self.config.sequences}
        x = {s: self._reshaped(s, given[s]) * masks[s].unsqueeze(-1) for s in masks}
        if exporting():
            return {s: self.grus[s](x[s])[0] for s in x}, masks
        return bidirectional_grus(self.grus, x), masks

    def logits(self, given: Mapping[str, Tensor]) -> tuple[Tensor, Tensor]:
        d = self.config.hidden_size
        features: list[Tensor] = []
        v: dict[str, Tensor] = {}
        outputs, masks = self.encode_sequences(given) if self.config.sequences else ({}, {})
        for sequence, h in outputs.items():
            mask = masks[sequence]
            if self.config.intra_view_attention:
                v[sequence], pooled = self.intra_attention[sequence](h, h[:, -1, :d], mask)
            else:
                v[sequence], pooled = h * mask.unsqueeze(-1), masked_mean(h, mask)
            features += [pooled, last_states(h, mask, d)]
        attend = inter_view_attention if exporting() else ragged_inter_view_attention
        for x, y in self.config.pairs:
            features.append(attend(v[x], masks[x], v[y], masks[y], self._scale))
        statics = {s: self.embeddings[s](given[s]) for s in STATICS if s in self.input_names}
        realtime, longterm = self.heads(torch.cat(features + list(statics.values()), dim=-1))
        # Wide terms per task, added to the deep logits: the context embedding (wide_context) and the
        # context's bucket ids as numbers (wide_ordinal).
        wide = []
        if self.wide:
            wide.append((self.wide, statics["context"]))
        if self.ordinal:
            wide.append((self.ordinal, given["context"].to(self.ordinal_scale.dtype) * self.ordinal_scale))
        for layers, x in wide:
            terms = {t: layer(x).squeeze(-1) for t, layer in layers.items()}
            realtime, longterm = realtime + terms.get("realtime", 0.0), longterm + terms.get("longterm", 0.0)
        return realtime, longterm


def ordinal_scale(feature_config: FeatureConfig, views: Sequence[str], action_ages: bool) -> Tensor:
    """Per context column, what its bucket id is multiplied by on the ordinal wide path: 1 / (its
    largest id) for the recency and time-since-action columns the model reads (ids 1..max map into
    (0, 1], later buckets larger), 0 for the rest (the cut hour is cyclic, not ordered; the columns
    of views the model does not read stay out, as in ``ContextEmbedding``)."""
    read = context_columns_read(feature_config, views, action_ages)
    specs = feature_config.group(Group.CONTEXT)
    return torch.tensor([1.0 / (spec.num_embeddings - 1) if keep and spec.kind in (Kind.RECENCY, Kind.SINCE) else 0.0
                         for keep, spec in zip(read, specs)], dtype=torch.float32)  # fmt: skip


__all__ = [
    "DIPN",
    "INTER_VIEW_PAIRS",
    "VARIANTS",
    "DIPNConfig",
    "IntraViewAttention",
    "inter_view_attention",
]
