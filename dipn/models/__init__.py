"""Models: DIPN and its variants (Tables 4-6), the RNN+DNN baseline (torch), the GBDT baseline.

``MODELS`` is an explicit dict of the torch models; ``build_model("dipn", "no_tap")`` builds one.
The GBDT baseline (``dipn.models.gbdt``) is not a torch model and is imported on its own, so that
importing this package does not pull in LightGBM.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from torch import nn

from dipn.errors import DipnValidationError
from dipn.features.spec import FeatureConfig
from dipn.models.dipn import (
    DIPN,
    PAPER_ROWS,
    TASKS,
    VARIANTS,
    DIPNConfig,
    PositionalInputs,
    build_dipn,
    multitask_loss,
    parameter_counts,
    size_estimate_mb,
)
from dipn.models.embeddings import EmbeddingTableConfig, GroupEmbedding, table_configs
from dipn.models.rnn_dnn import RNN_DNN_VARIANTS, RNNDNN, RNNDNNConfig, build_rnn_dnn

ModelBuilder = Callable[..., nn.Module]

# name -> builder(variant, feature_config); variant: a preset name, a config object, or None.
MODELS: dict[str, ModelBuilder] = {
    "dipn": build_dipn,
    "rnn_dnn": build_rnn_dnn,
}


def build_model(
    name: str,
    variant: str | DIPNConfig | RNNDNNConfig | None = None,
    feature_config: FeatureConfig | None = None,
) -> nn.Module:
    """``build_model("dipn")`` (full DIPN), ``build_model("dipn", "only_tap")``, ``build_model("rnn_dnn")``."""
    if name not in MODELS:
        raise DipnValidationError(f"unknown model {name!r}; known: {sorted(MODELS)}")
    return MODELS[name](variant, feature_config)


def build_model_for_data(
    name: str,
    variant: str | DIPNConfig | RNNDNNConfig | None,
    feature_config: FeatureConfig | None,
    available: Sequence[str],
) -> nn.Module:
    """The model to train on a dataset holding only the ``available`` input groups.

    A model's default configuration (no variant named) keeps the groups the data has, where the
    model's config can drop groups (``restricted_to``); a model or variant that needs an absent
    group is refused with the groups that are missing, rather than trained on inputs that are
    padding everywhere.
    """
    if variant is None:
        default = build_model(name, None, feature_config).config
        if hasattr(default, "restricted_to"):
            variant = default.restricted_to(available)
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
    "DIPN",
    "MODELS",
    "PAPER_ROWS",
    "RNNDNN",
    "RNN_DNN_VARIANTS",
    "TASKS",
    "VARIANTS",
    "DIPNConfig",
    "EmbeddingTableConfig",
    "GroupEmbedding",
    "PositionalInputs",
    "RNNDNNConfig",
    "build_model",
    "build_model_for_data",
    "multitask_loss",
    "parameter_counts",
    "size_estimate_mb",
    "table_configs",
]
