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
    label: str = ""  # the row's name in benchmark tables (default: the preset's name)
    paper_auc: tuple[float | None, float | None] = (None, None)  # the paper's (real-time, long-term) AUC

    @property
    def title(self) -> str:
        return self.label or self.name

    @property
    def config_name(self) -> str | None:
        """The preset the model builds, None for its full configuration (the model's first preset)."""
        return None if self.name == self.model or self.variant is None else self.name

    @property
    def variant(self) -> str | None:
        """The --variant value: None for a GBDT row (it has no presets of its own)."""
        return None if self.model in GBDT_MODELS else self.name

    @property
    def is_torch(self) -> bool:
        return self.model in TORCH_MODELS


PRESETS: tuple[Preset, ...] = (
    Preset("gbdt", "gbdt", ("4", "GBDT"), "the paper's: browse + history + profile summaries", "GBDT", (0.7871, None)),
    Preset("gbdt_touch", "gbdt_touch", None, "ours: + swipe and tap summaries", "GBDT+touch"),
    Preset("rnn_dnn", "rnn_dnn", ("4", "RNN+DNN"), label="RNN+DNN", paper_auc=(0.7902, None)),
    Preset("rnn_dnn_gru", "rnn_dnn", None, "RNN+DNN with DIPN's GRU cell", "RNN+DNN (GRU)"),
    Preset("dipn", "dipn", None, "ours: DIPN with time at every step (step ages, time since each browse action)",
           "DIPN"),
    Preset("dipn_paper", "dipn", ("4", "DIPN"), "the paper's DIPN: Table 3 columns, no step or action ages",
           "DIPN paper-literal", (0.8429, 0.8276)),
    Preset("early_fusion", "dipn", ("4", "DIPN-early-fusion"), label="DIPN-early-fusion", paper_auc=(0.7708, None)),
    Preset("no_attention", "dipn", ("4", "DIPN-no-attention"), label="DIPN-no-attention", paper_auc=(0.8345, None)),
    Preset("no_inter_view", "dipn", ("4", "DIPN-no-inter-view-attention"), label="DIPN-no-inter-view-attention",
           paper_auc=(0.8367, None)),
    Preset("no_intra_view", "dipn", ("4", "DIPN-no-intra-view-attention"), label="DIPN-no-intra-view-attention",
           paper_auc=(0.8401, None)),
    Preset("no_multitask", "dipn", ("4, 5", "DIPN-no-multi-task (real-time)"),
           label="DIPN-no-multi-task (real-time task only)", paper_auc=(0.8371, None)),
    Preset("no_multitask_longterm", "dipn", ("5", "DIPN-no-multi-task (long-term)"),
           label="DIPN-no-multi-task (long-term task only)", paper_auc=(None, 0.8204)),
    *(Preset(f"no_{s}", "dipn", ("6", f"DIPN w/o {s}"), label=f"DIPN w/o {s}") for s in SOURCES),
    *(Preset(f"only_{s}", "dipn", ("6", f"DIPN w/ {s}"), label=f"DIPN w/ {s}") for s in SOURCES),
    Preset("browse_history", "dipn", None, "DIPN with time on what public logs hold: browse + history",
           "DIPN with time"),
    Preset("browse_history_paper", "dipn", None, "the paper's DIPN on what public logs hold: browse + history",
           "DIPN paper-literal (browse + history)"),
    Preset("browse_history_wide", "dipn", None, "browse_history plus a wide path: the context straight to each logit",
           "DIPN with time + wide context"),
    Preset("atrank", "atrank", None, "ATRank (Zhou et al., AAAI'18), docs/models.md", "ATRank"),
    Preset("rib", "rib", None, "RIB (Zhou et al., WSDM'18) over all three views", "RIB"),
    Preset("rib_browse", "rib", None, "RIB on the browse view only, the RIB paper's setting", "RIB (browse)"),
    Preset("heroes", "heroes", None, "HEROES (Jin et al., multi-scale behaviour network), docs/models.md", "HEROES"),
    Preset("heroes_window64", "heroes", None, "HEROES on the last 64 events per view, for latency",
           "HEROES (last 64 events)"),
)


def preset(name: str) -> Preset:
    """The preset called ``name`` (benchmarks list their rows by preset name)."""
    return next(p for p in PRESETS if p.name == name)


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
