"""RNN+DNN baseline (paper section 6.1, after Sheil et al. [19]).

A bidirectional RNN over the browse-interactive view only; its final states are concatenated with
the user history and profile embeddings and fed through fully connected layers (the "DNN"), one
branch per task. The cell is an LSTM by default, as in [19] (the paper: "a bi-directional LSTM is
used in [19, 25]"); ``cell="gru"`` swaps in DIPN's cell. Embeddings, the FC "reshape", padding
masks, final states, heads and loss are DIPN's (``dipn.models.base``), so the comparison isolates
the inputs and the attention layer. Same forward / loss contract as DIPN: keyword inputs, returns
(logit_realtime, logit_longterm), inputs it does not use are ignored.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor, nn

from dipn.errors import DipnValidationError
from dipn.features.spec import FeatureConfig, Group, mask_column
from dipn.models.base import IntentModel, TaskHeads, TasksConfig, last_states, step_mask
from dipn.models.embeddings import group_embedding

_CELLS = {"lstm": nn.LSTM, "gru": nn.GRU}


@dataclass(frozen=True)
class RNNDNNConfig(TasksConfig):
    """The inputs and heads every model has (``TasksConfig``), on the browse view alone, and the cell."""

    views: ClassVar[tuple[str, ...]] = ("browse",)  # [19] models the browse sequence only: not a choice
    cell: str = "lstm"
    hidden_size: int = 32
    reshape_dim: int = 64

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.cell not in _CELLS:
            raise DipnValidationError(f"cell must be one of {sorted(_CELLS)}, got {self.cell!r}")

RNN_DNN_VARIANTS: dict[str, RNNDNNConfig] = {
    "rnn_dnn": RNNDNNConfig(),
    "rnn_dnn_gru": RNNDNNConfig(cell="gru"),
}


class RNNDNN(IntentModel):
    def __init__(self, config: RNNDNNConfig | None = None, feature_config: FeatureConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or RNNDNNConfig()
        self.feature_config = fc = feature_config or FeatureConfig()
        self.tasks = config.tasks
        self.input_names = config.input_names
        self.statics = config.statics
        d = config.hidden_size
        self.embeddings = nn.ModuleDict({g: group_embedding(fc, g, ("browse",)) for g in self.input_names})
        self._mask_column = mask_column(fc, Group.BROWSE)
        self.reshape = nn.Sequential(nn.Linear(self.embeddings["browse"].output_dim, config.reshape_dim), nn.ReLU())
        self.rnns = nn.ModuleDict(
            {"browse": _CELLS[config.cell](config.reshape_dim, d, batch_first=True, bidirectional=True)}
        )
        head_in = 2 * d + sum(self.embeddings[g].output_dim for g in self.statics)
        self.head_input_dim = head_in
        self.heads = TaskHeads(head_in, config.head_hidden, config.dropout, config.tasks)

    def logits(self, inputs: Mapping[str, Tensor]) -> tuple[Tensor, Tensor]:
        """browse (B, T, 7) and the history (B, 6), profile (B, 6) and context (B, 8) it uses."""
        browse = inputs["browse"]
        mask = step_mask(browse, self._mask_column)
        x = self.reshape(self.embeddings["browse"](browse)) * mask.unsqueeze(-1)
        h, _ = self.rnns["browse"](x)
        features = [last_states(h, mask, self.config.hidden_size), *(self.embeddings[g](inputs[g]) for g in self.statics)]
        return self.heads(torch.cat(features, dim=-1))
