"""Models: DIPN and its variants (Tables 4-6), the RNN+DNN baseline (torch), the GBDT baseline,
and the related behaviour models ATRank, RIB and HEROES as alternatives (docs/models.md).

``MODELS`` is an explicit dict of the torch models; ``build_model("dipn", "no_tap")`` builds one.
``PRESETS`` (``dipn.presets``) lists every trainable row of every model, GBDT included.
The GBDT baseline (``dipn.models.gbdt``) is not a torch model and is imported on its own, so that
importing this package does not pull in LightGBM.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from torch import nn

from dipn.errors import DipnValidationError
from dipn.features import TASKS
from dipn.features.spec import FeatureConfig
from dipn.models.atrank import ATRANK_VARIANTS, ATRank, ATRankConfig
from dipn.models.base import PositionalInputs, multitask_loss, parameter_counts, size_estimate_mb
from dipn.models.dipn import DIPN, VARIANTS, DIPNConfig
from dipn.models.embeddings import EmbeddingTableConfig, GroupEmbedding, table_configs
from dipn.models.heroes import HEROES, HEROES_VARIANTS, HEROESConfig
from dipn.models.rib import RIB, RIB_VARIANTS, RIBConfig
from dipn.models.rnn_dnn import RNN_DNN_VARIANTS, RNNDNN, RNNDNNConfig
from dipn.presets import PRESETS, Preset


@dataclass(frozen=True)
class TorchModel:
    """A torch model: its class, the config type a checkpoint is read back into, its named presets."""

    label: str
    cls: type[nn.Module]
    config: type
    presets: Mapping[str, Any]


MODELS: dict[str, TorchModel] = {
    "dipn": TorchModel("DIPN", DIPN, DIPNConfig, VARIANTS),
    "rnn_dnn": TorchModel("RNN+DNN", RNNDNN, RNNDNNConfig, RNN_DNN_VARIANTS),
    "atrank": TorchModel("ATRank", ATRank, ATRankConfig, ATRANK_VARIANTS),
    "rib": TorchModel("RIB", RIB, RIBConfig, RIB_VARIANTS),
    "heroes": TorchModel("HEROES", HEROES, HEROESConfig, HEROES_VARIANTS),
}
ModelConfig = DIPNConfig | RNNDNNConfig | ATRankConfig | RIBConfig | HEROESConfig
# name -> its config type: what a checkpoint's "model_config" dict is read back into.
MODEL_CONFIGS: dict[str, type] = {name: kind.config for name, kind in MODELS.items()}


def build_model(
    name: str,
    variant: str | ModelConfig | None = None,
    feature_config: FeatureConfig | None = None,
) -> nn.Module:
    """``build_model("dipn")`` (full DIPN), ``build_model("dipn", "only_tap")``, ``build_model("rnn_dnn")``,
    ``build_model("atrank")``, ``build_model("rib", "rib_browse")``, ``build_model("heroes")``, or
    ``build_model("dipn", DIPNConfig(hidden_size=8))``."""
    if name not in MODELS:
        raise DipnValidationError(f"unknown model {name!r}; known: {sorted(MODELS)}")
    kind = MODELS[name]
    if variant is None or isinstance(variant, kind.config):
        return kind.cls(variant, feature_config)
    if not isinstance(variant, str) or variant not in kind.presets:
        raise DipnValidationError(f"unknown {kind.label} variant {variant!r}; known: {sorted(kind.presets)}")
    return kind.cls(kind.presets[variant], feature_config)


def build_preset(preset: Preset, feature_config: FeatureConfig | None = None) -> nn.Module:
    """The torch model of a registry row (``dipn.presets``)."""
    return build_model(preset.model, preset.variant, feature_config)


def build_model_for_data(
    name: str,
    variant: str | ModelConfig | None,
    feature_config: FeatureConfig | None,
    available: Sequence[str],
    overrides: Mapping[str, object] | None = None,
) -> nn.Module:
    """The model to train on a dataset holding only the ``available`` input groups, with the
    ``overrides`` (e.g. ``{"dropout": 0.3}``) applied to its configuration.

    A model's default configuration (no variant named) keeps the groups the data has, where the
    model's config can drop groups (``restricted_to``); a model or variant that needs an absent
    group is refused with the groups that are missing, rather than trained on inputs that are
    padding everywhere.
    """
    if variant is None:
        variant = build_model(name, None, feature_config).config.restricted_to(available)
    if overrides:
        config = variant if variant is not None and not isinstance(variant, str) else build_model(name, variant, feature_config).config
        unknown = sorted(set(overrides) - {f.name for f in dataclasses.fields(config)})
        if unknown:
            raise DipnValidationError(f"model {name!r} has no setting {unknown}")
        variant = dataclasses.replace(config, **overrides)
    model = build_model(name, variant, feature_config)
    missing = [g for g in model.input_names if g not in available]
    if missing:
        raise DipnValidationError(
            f"model {name!r} (variant {variant if isinstance(variant, str) else 'given'}) reads "
            f"{list(model.input_names)} but the samples hold no {missing} (they have {sorted(available)}); "
            "train the default DIPN, which keeps the groups the data has, or a variant such as "
            "'browse_history' or 'only_browse'"
        )
    return model


__all__ = [
    "ATRANK_VARIANTS",
    "DIPN",
    "HEROES",
    "HEROES_VARIANTS",
    "MODELS",
    "MODEL_CONFIGS",
    "PRESETS",
    "RIB",
    "RIB_VARIANTS",
    "RNNDNN",
    "RNN_DNN_VARIANTS",
    "TASKS",
    "VARIANTS",
    "ATRank",
    "ATRankConfig",
    "DIPNConfig",
    "EmbeddingTableConfig",
    "HEROESConfig",
    "GroupEmbedding",
    "PositionalInputs",
    "Preset",
    "TorchModel",
    "RIBConfig",
    "RNNDNNConfig",
    "build_model",
    "build_preset",
    "build_model_for_data",
    "multitask_loss",
    "parameter_counts",
    "size_estimate_mb",
    "table_configs",
]
