"""Embedding layer of section 4.1: one table per feature of Table 3, concatenated per group.

Tables are declared TorchRec / DeepCTR style: one small typed record per feature
(``EmbeddingTableConfig``), built from ``dipn.features.spec`` and nothing else, so no vocabulary
size or embedding dim is typed twice. Id 0 is padding / "not applicable" everywhere and embeds to
a zero vector (``padding_idx=0``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from dipn.errors import DipnValidationError
from dipn.features.cut import context_columns_read
from dipn.features.spec import OOV_ID, PAD_ID, SEQUENCE_GROUPS, FeatureConfig, Group, Kind


@dataclass(frozen=True)
class EmbeddingTableConfig:
    """One embedding table: a feature of Table 3 and the column of its group's id tensor."""

    group: Group
    feature: str
    column: int
    num_embeddings: int  # padding + values (+ OOV for vocabularies)
    embedding_dim: int
    vocabulary: bool = False  # a vocabulary feature (page, button, category): id 1 is OOV

    @property
    def name(self) -> str:
        return f"{self.group.value}.{self.feature}"


def table_configs(feature_config: FeatureConfig, group: Group | str) -> tuple[EmbeddingTableConfig, ...]:
    """The tables of one group, in the column order of its tensor."""
    group = Group(group)
    return tuple(
        EmbeddingTableConfig(group, spec.name, column, spec.num_embeddings, spec.embed_dim, spec.kind is Kind.VOCABULARY)
        for column, spec in enumerate(feature_config.group(group))
    )


class GroupEmbedding(nn.Module):
    """(..., F) ids of one group -> (..., sum of embedding dims): per-feature lookups, concatenated."""

    def __init__(self, tables: tuple[EmbeddingTableConfig, ...]) -> None:
        super().__init__()
        if not tables:
            raise DipnValidationError("a group embedding needs at least one feature")
        columns = [t.column for t in tables]
        if columns != sorted(set(columns)) or columns[0] < 0:
            raise DipnValidationError("tables must be given in increasing column order")
        self.records = tables
        self.columns = tuple(columns)
        # One table per column, in column order: parameter "tables.<i>.weight", i = the column for
        # a whole group. (A dict keyed by feature name would collide with nn.Module attributes:
        # browse has a feature "type".)
        self.tables = nn.ModuleList(
            nn.Embedding(t.num_embeddings, t.embedding_dim, padding_idx=PAD_ID) for t in tables
        )
        self.width = len(tables)
        self.output_dim = sum(t.embedding_dim for t in tables)
        self._vocabulary_columns = tuple(t.vocabulary for t in tables)
        self.id_dropout = 0.0  # set for training by ``set_embedding_dropout``; never part of a saved model

    @classmethod
    def for_group(cls, feature_config: FeatureConfig, group: Group | str) -> GroupEmbedding:
        return cls(table_configs(feature_config, group))

    @classmethod
    def for_features(cls, feature_config: FeatureConfig, group: Group | str, features: Sequence[str]) -> GroupEmbedding:
        """Only some columns of a group (RIB's micro-behaviour tuple): the other columns get no table."""
        tables = table_configs(feature_config, group)
        unknown = sorted(set(features) - {t.feature for t in tables})
        if unknown:
            raise DipnValidationError(f"group {Group(group).value!r} has no feature(s) {unknown}")
        return cls(tuple(t for t in tables if t.feature in features))

    def forward(self, ids: Tensor) -> Tensor:
        lookups = []
        for column, table, vocabulary in zip(self.columns, self.tables, self._vocabulary_columns):
            column_ids = ids[..., column]
            if vocabulary and self.training and self.id_dropout > 0:
                column_ids = _dropped_to_oov(column_ids, self.id_dropout)
            lookups.append(table(column_ids))
        return torch.cat(lookups, dim=-1)

    def table(self, feature: str) -> nn.Embedding:
        """The embedding table of one feature, by its Table 3 name."""
        for record, table in zip(self.records, self.tables):
            if record.feature == feature:
                return table
        raise KeyError(f"no feature {feature!r} in this group")


def embedded_and_projected(embedding: GroupEmbedding, linear: nn.Linear, ids: Tensor) -> Tensor:
    """``linear(embedding(ids))`` for scoring (no autograd, no id dropout): the linear layer folded
    into the tables, one summed lookup per step.

    Why: a sequence group embeds each of its columns separately, concatenates them (B, T, sum of
    dims) and multiplies by the reshape layer; per step that is a dozen small lookups, a copy and a
    product. The product distributes over the concatenation: W [e_1; ...; e_F] = sum_f W_f e_f, and
    W_f e_f is row ``id_f`` of the table E_f W_f^T, computed once per call (tables of hundreds to a
    few thousand rows). ``embedding_bag`` then sums F rows per step in one kernel. The same
    function; the sums run in another order (differences at float rounding, about 1e-6).
    """
    weight, start, tables, offsets = linear.weight, 0, [], []
    for record, table in zip(embedding.records, embedding.tables):
        tables.append(table.weight @ weight[:, start : start + record.embedding_dim].t())
        start += record.embedding_dim
    rows = torch.tensor([t.shape[0] for t in tables[:-1]], dtype=torch.int64, device=ids.device)
    offsets = torch.cat([rows.new_zeros(1), rows.cumsum(0)])
    columns = ids if embedding.columns == tuple(range(ids.shape[-1])) else ids[..., list(embedding.columns)]
    flat = (columns.long() + offsets).view(-1, len(tables))
    summed = nn.functional.embedding_bag(flat, torch.cat(tables), mode="sum")
    if linear.bias is not None:
        summed += linear.bias
    return summed.view(*ids.shape[:-1], weight.shape[0])


class ContextEmbedding(GroupEmbedding):
    """The context group (recency per view, cut hour, time since each browse action) with the columns
    the model does not read set to padding: a source ablation learns nothing from an absent view's
    timing, and a model without action ages (the paper-literal DIPN) nothing from them.

    With an action-age horizon, the time since each browse action is read only up to it: every id
    at or beyond the horizon reads as "none" (docs/models.md, "Time since each action, up to a
    horizon"). Why: "none" means "not in the browse window", and how far back the window reaches
    grows with the log (a cut on a log's second day cannot see a purchase three days before it),
    so on short logs the day-scale ids and "none" change meaning between the training days and
    the days scored. Up to a horizon that nearly every training cut observes, they do not. It is
    done in the weights, not the graph: in training those ids are looked up as "none" (their rows
    get no gradient), and ``tie_rows`` copies the "none" row into their rows after every step, so
    the scored model, the exported artifacts and the phone read them as "none" with the graph and
    the encoder contract unchanged."""

    def __init__(
        self,
        feature_config: FeatureConfig,
        views: Sequence[str],
        action_ages: bool = True,
        action_age_horizon_hours: float | None = None,
    ) -> None:
        super().__init__(table_configs(feature_config, Group.CONTEXT))
        keep = torch.tensor(context_columns_read(feature_config, views, action_ages), dtype=torch.int64)
        self.register_buffer("keep", keep, persistent=False)
        # Per column: the first id read as "none", and the "none" id (untied columns: never reached).
        first = [t.num_embeddings for t in self.records]
        none = [t.num_embeddings - 1 for t in self.records]
        if action_age_horizon_hours is not None:
            try:
                below = feature_config.action_age.values_below(action_age_horizon_hours * 3_600_000.0)
            except ValueError as exc:
                raise DipnValidationError(f"action_age_horizon_hours: {exc}") from None
            for i, spec in enumerate(feature_config.group(Group.CONTEXT)):
                if spec.kind is Kind.SINCE:
                    first[i] = below + 1  # ids are values + 1
        self.register_buffer("first_tied", torch.tensor(first, dtype=torch.int64), persistent=False)
        self.register_buffer("none_id", torch.tensor(none, dtype=torch.int64), persistent=False)
        self.ties = tuple((i, f, n) for i, (f, n) in enumerate(zip(first, none)) if f <= n)
        self.tie_rows()

    def forward(self, ids: Tensor) -> Tensor:
        ids = ids * self.keep.to(ids.dtype)
        if self.ties and self.training:
            ids = torch.where(ids >= self.first_tied.to(ids.dtype), self.none_id.to(ids.dtype), ids)
        return super().forward(ids)

    @torch.no_grad()
    def tie_rows(self) -> None:
        """Rows of the ids beyond the horizon := the "none" row (after every optimizer step)."""
        for column, first, none in self.ties:
            weight = self.tables[column].weight
            weight[first:none] = weight[none]


def tied_embeddings(model: nn.Module) -> tuple[ContextEmbedding, ...]:
    """The context embeddings of a model that tie rows (an action-age horizon): the trainer runs
    their ``tie_rows`` after each optimizer step, so scoring and checkpoints always hold tied rows."""
    return tuple(m for m in model.modules() if isinstance(m, ContextEmbedding) and m.ties)


def _dropped_to_oov(ids: Tensor, p: float) -> Tensor:
    """Known vocabulary ids read as OOV with probability ``p`` each (padding stays padding)."""
    drop = (torch.rand(ids.shape, device=ids.device) < p) & (ids > OOV_ID)
    return torch.where(drop, torch.full_like(ids, OOV_ID), ids)


def set_embedding_dropout(model: nn.Module, p: float) -> None:
    """Embedding dropout for training: each known page, button or category id of a batch is read as
    OOV with probability ``p``, so no row can carry a prediction alone (the category ids memorized
    shoppers on real logs) and the OOV row, which the frequency floor sends rare values to, trains.
    Only in training mode: scoring, export and the phone see the ids as given."""
    for module in model.modules():
        if isinstance(module, GroupEmbedding):
            module.id_dropout = p


def group_embedding(
    feature_config: FeatureConfig,
    group: Group | str,
    views: Sequence[str],
    step_ages: bool = True,
    action_ages: bool = True,
    action_age_horizon_hours: float | None = None,
) -> GroupEmbedding:
    """The embedding of one input group of a model that models ``views``; without ``step_ages`` a
    view's age column gets no table (the paper's Table 3 columns only), without ``action_ages`` the
    context's time since each browse action is read as padding, with ``action_age_horizon_hours``
    only up to that horizon (``ContextEmbedding``)."""
    group = Group(group)
    if group is Group.CONTEXT:
        return ContextEmbedding(feature_config, views, action_ages, action_age_horizon_hours)
    if group in SEQUENCE_GROUPS and not step_ages:
        ages = feature_config.at_cut_columns(group)
        return GroupEmbedding(tuple(t for t in table_configs(feature_config, group) if t.column not in ages))
    return GroupEmbedding.for_group(feature_config, group)


def check_group_ids(
    feature_config: FeatureConfig, group: Group | str, ids: np.ndarray | Tensor, batch_size: int | None = None
) -> None:
    """Validate one input group at the boundary: dtype, shape and id ranges, naming the culprit.

    Not called inside ``forward`` (that must stay free of data-dependent control flow); the
    training loop and the serving side call it on what they feed in.
    """
    group = Group(group)
    name = group.value
    arr = ids.detach().cpu().numpy() if isinstance(ids, Tensor) else np.asarray(ids)
    if not np.issubdtype(arr.dtype, np.integer):
        raise DipnValidationError(f"input {name!r} must hold integer ids, got dtype {arr.dtype}")
    width = feature_config.width(group)
    if group in SEQUENCE_GROUPS:
        expected = (feature_config.sequence_length, width)
        if arr.ndim != 3 or arr.shape[1:] != expected:
            raise DipnValidationError(
                f"input {name!r} must have shape (batch, {expected[0]}, {expected[1]}), got {arr.shape}"
            )
    elif arr.ndim != 2 or arr.shape[1] != width:
        raise DipnValidationError(f"input {name!r} must have shape (batch, {width}), got {arr.shape}")
    if batch_size is not None and arr.shape[0] != batch_size:
        raise DipnValidationError(
            f"input {name!r} has batch size {arr.shape[0]}, the other inputs {batch_size}"
        )
    for table in table_configs(feature_config, group):
        column = arr[..., table.column]
        if column.size and (column.min() < 0 or column.max() >= table.num_embeddings):
            raise DipnValidationError(
                f"input {name!r} column {table.column} ({table.feature}) has ids in "
                f"[{column.min()}, {column.max()}]; the table has {table.num_embeddings} rows "
                f"(0 = padding)"
            )
