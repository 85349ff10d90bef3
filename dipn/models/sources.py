"""What the alternative behaviour models (ATRank, RIB, HEROES) share with DIPN's contract.

Each reads the same input groups as DIPN (views ``swipe``, ``tap``, ``browse`` of shape (B, T, F),
left-padded; ``history`` and ``profile`` of shape (B, F)), embeds them with the same tables
(``GroupEmbedding``), and returns (logit_realtime, logit_longterm). ``SourcesConfig`` is a
``ViewsConfig`` as DIPN's is (which groups, the task heads), so ``restricted_to`` drops groups a
dataset lacks the way DIPN does; ``BehaviourModel`` holds the plumbing: masks and the static
embeddings; the keyword ``forward``, input checks and positional wrapper are every model's
(``dipn.models.base.IntentModel``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Self

import torch
from torch import Tensor, nn

from dipn.errors import DipnValidationError
from dipn.features import TASKS, VIEWS
from dipn.features.spec import FeatureConfig, mask_column
from dipn.models.base import IntentModel, ViewsConfig, step_mask
from dipn.models.embeddings import group_embedding


@dataclass(frozen=True)
class SourcesConfig(ViewsConfig):
    """Input groups and heads (``ViewsConfig``), at least one view: the base of every alternative
    model's config. Their heads are fixed (both tasks), so they have no ``tasks`` switch."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.views:
            raise DipnValidationError(f"{type(self).__name__} models behaviour sequences: it needs at least one view")

    def restricted_to(self, available: Sequence[str]) -> Self:
        """This configuration without the groups a dataset lacks (public logs: browse + history)."""
        if not any(v in available for v in self.views):
            raise DipnValidationError(f"{type(self).__name__} needs a behaviour view; the data has {sorted(available)}")
        return super().restricted_to(available)


class BehaviourModel(IntentModel):
    """Base of ATRank, RIB, HEROES: embeddings per group, masks, static features, DIPN's I/O contract.

    ``embeddings`` holds one ``GroupEmbedding`` per input group (a subclass may swap a view's for a
    subset of its columns). A subclass builds its layers after ``super().__init__``, sets ``heads``
    (features -> the two logits) and implements ``encode(views, masks)`` -> (B, D) features of the
    behaviour sequences; the static embeddings are appended to them here.
    """

    tasks: tuple[str, ...] = TASKS

    def __init__(self, config: SourcesConfig, feature_config: FeatureConfig | None) -> None:
        super().__init__()
        self.config = config
        self.feature_config = fc = feature_config or FeatureConfig()
        self.input_names = config.input_names
        self.views = tuple(v for v in VIEWS if v in config.views)
        missing = [g for g in self.input_names if g not in {g.value for g in fc.groups}]
        if missing:
            raise DipnValidationError(f"the feature config has no group(s) {missing}")
        self._mask_columns = {v: mask_column(fc, v) for v in self.views}
        self.embeddings = nn.ModuleDict({g: group_embedding(fc, g, self.views) for g in self.input_names})
        self.heads: nn.Module

    @property
    def static_dim(self) -> int:
        """Width of the static embeddings (history, profile, context) the heads receive besides ``encode``'s output."""
        return sum(self.embeddings[s].output_dim for s in self.config.statics)

    def mask(self, view: str, ids: Tensor) -> Tensor:
        """(B, T) float: 1 on real steps (mask column non-zero), 0 on padding."""
        return step_mask(ids, self._mask_columns[view])

    def logits(self, given: Mapping[str, Tensor]) -> tuple[Tensor, Tensor]:
        views = {v: given[v] for v in self.views}
        masks = {v: self.mask(v, ids) for v, ids in views.items()}
        features = [self.encode(views, masks)]
        features += [self.embeddings[s](given[s]) for s in self.config.statics]
        return self.heads(torch.cat(features, dim=-1))

    def encode(self, views: dict[str, Tensor], masks: dict[str, Tensor]) -> Tensor:
        raise NotImplementedError
