"""Every trainable preset of every model in one table: what ``dipn train --help``, the benchmark
tables and the model tests list.

Plain data, no torch and no LightGBM, so that the command line can print its help without loading
a framework. A preset's name is what ``dipn train --variant`` takes (for the two GBDT rows, what
``--model`` takes). Each model module holds the configurations behind its names
(``dipn.models.dipn.VARIANTS``, ``RNN_DNN_VARIANTS``, ...; the GBDT rows in ``GBDT_MODELS``);
``tests/test_presets.py`` checks that both sides name the same presets.
"""

from __future__ import annotations

from dataclasses import dataclass

from dipn.features.spec import Group  # numpy only: the group names, declared once

TORCH_MODELS = ("dipn", "rnn_dnn", "atrank", "rib", "heroes")
GBDT_MODELS = ("gbdt", "gbdt_touch")
# The input sources of Table 6, in its order.
SOURCES = tuple(g.value for g in (Group.PROFILE, Group.HISTORY, Group.BROWSE, Group.SWIPE, Group.TAP))


@dataclass(frozen=True)
class Preset:
    """One row a user can train: a model, one of its configurations, where the paper reports it."""

    name: str
    model: str  # the --model value
    paper: tuple[str, str] | None = None  # (table, row) of the DIPN paper, None for rows it has not
    about: str = ""  # one line for rows the paper does not name

    @property
    def variant(self) -> str | None:
        """The --variant value: None for a GBDT row (it has no presets of its own)."""
        return None if self.model in GBDT_MODELS else self.name

    @property
    def is_torch(self) -> bool:
        return self.model in TORCH_MODELS


PRESETS: tuple[Preset, ...] = (
    Preset("gbdt", "gbdt", ("4", "GBDT"), "the paper's: browse + history + profile summaries"),
    Preset("gbdt_touch", "gbdt_touch", None, "ours: + swipe and tap summaries"),
    Preset("rnn_dnn", "rnn_dnn", ("4", "RNN+DNN")),
    Preset("rnn_dnn_gru", "rnn_dnn", None, "RNN+DNN with DIPN's GRU cell"),
    Preset("dipn", "dipn", None, "ours: DIPN with time at every step (step ages, time since each browse action)"),
    Preset("dipn_paper", "dipn", ("4", "DIPN"), "the paper's DIPN: Table 3 columns, no step or action ages"),
    Preset("early_fusion", "dipn", ("4", "DIPN-early-fusion")),
    Preset("no_attention", "dipn", ("4", "DIPN-no-attention")),
    Preset("no_inter_view", "dipn", ("4", "DIPN-no-inter-view-attention")),
    Preset("no_intra_view", "dipn", ("4", "DIPN-no-intra-view-attention")),
    Preset("no_multitask", "dipn", ("4, 5", "DIPN-no-multi-task (real-time)")),
    Preset("no_multitask_longterm", "dipn", ("5", "DIPN-no-multi-task (long-term)")),
    *(Preset(f"no_{s}", "dipn", ("6", f"DIPN w/o {s}")) for s in SOURCES),
    *(Preset(f"only_{s}", "dipn", ("6", f"DIPN w/ {s}")) for s in SOURCES),
    Preset("browse_history", "dipn", None, "DIPN with time on what public logs hold: browse + history"),
    Preset("browse_history_paper", "dipn", None, "the paper's DIPN on what public logs hold: browse + history"),
    Preset("browse_history_wide", "dipn", None, "browse_history plus a wide path: the context straight to each logit"),
    Preset("atrank", "atrank", None, "ATRank (Zhou et al., AAAI'18), docs/models.md"),
    Preset("rib", "rib", None, "RIB (Zhou et al., WSDM'18) over all three views"),
    Preset("rib_browse", "rib", None, "RIB on the browse view only, the RIB paper's setting"),
    Preset("heroes", "heroes", None, "HEROES (Jin et al., multi-scale behaviour network), docs/models.md"),
    Preset("heroes_window64", "heroes", None, "HEROES on the last 64 events per view, for latency"),
)


def presets_of(model: str) -> tuple[Preset, ...]:
    return tuple(p for p in PRESETS if p.model == model)


def models_help() -> str:
    """The --model help of ``dipn train``."""
    gbdt = [f"{p.name} ({p.about})" for p in PRESETS if p.model in GBDT_MODELS]
    return f"{', '.join(TORCH_MODELS)} (torch; docs/models.md) or LightGBM: {', '.join(gbdt)}"


def variants_help() -> str:
    """The --variant help of ``dipn train``: each torch model's presets; None is its full configuration."""
    parts = [f"{model}: {', '.join(p.name for p in presets_of(model))}" for model in TORCH_MODELS]
    return "a preset of the model; " + "; ".join(parts) + "; none: the model's full configuration"
