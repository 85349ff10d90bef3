"""What every torch model of dipn shares: masked pooling, the two task heads and their loss, the
input check at the boundary, the positional wrapper exporters call, config (de)serialization and
size accounting.

DIPN (``dipn.models.dipn``), the RNN+DNN baseline and the alternative models ATRank, RIB and
HEROES all build on these, so that a comparison between them isolates the architecture: the same
masks, heads, loss and export path. Padding conventions (left padding, mask column non-zero on
real steps, a finite -1e9 for "minus infinity") are those of ``dipn.models.dipn``'s docstring.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Self

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dipn.errors import DipnValidationError
from dipn.features import MERGED, STATICS, TASKS, VIEWS
from dipn.features.spec import FeatureConfig, merged_layout
from dipn.models.embeddings import check_group_ids

NEG = -1e9  # finite "minus infinity": an all-padding row gives a uniform softmax, then * 0


# ---- masked pooling -----------------------------------------------------------------------------
def masked_softmax(scores: Tensor, mask: Tensor) -> Tensor:
    """Softmax over the last axis restricted to mask == 1; all-masked rows give zeros, not NaN."""
    weights = torch.softmax(scores.masked_fill(mask == 0, NEG), dim=-1)
    return weights * mask


def masked_mean(values: Tensor, mask: Tensor) -> Tensor:
    """(B, T, D), (B, T) -> (B, D): mean over the real steps, zeros for an all-padding row."""
    total = torch.matmul(mask.unsqueeze(1), values).squeeze(1)
    return total / mask.sum(dim=1, keepdim=True).clamp(min=1.0)


def last_states(outputs: Tensor, mask: Tensor, hidden_size: int) -> Tensor:
    """Bi-RNN outputs (B, T, 2d) -> (B, 2d): [forward state at step T-1, backward state at the
    first real step]; zeros for an all-padding view. Needs left padding (mask 0...0 1...1)."""
    forward_last = outputs[:, -1, :hidden_size] * mask[:, -1:]
    previous = torch.cat([torch.zeros_like(mask[:, :1]), mask[:, :-1]], dim=1)
    first_real = mask * (1.0 - previous)  # one-hot at the first real step
    backward_first = torch.matmul(first_real.unsqueeze(1), outputs[..., hidden_size:]).squeeze(1)
    return torch.cat([forward_last, backward_first], dim=-1)


# ---- heads and loss ----------------------------------------------------------------------------
def mlp_branch(in_dim: int, hidden: Sequence[int], dropout: float) -> nn.Sequential:
    """One task branch of section 4.4: fully connected layers -> one logit."""
    layers: list[nn.Module] = []
    for width in hidden:
        layers += [nn.Linear(in_dim, width), nn.ReLU()]
        if dropout:
            layers.append(nn.Dropout(dropout))
        in_dim = width
    layers.append(nn.Linear(in_dim, 1))
    return nn.Sequential(*layers)


class TaskHeads(nn.Module):
    """One branch per configured task; returns (logit_realtime, logit_longterm), zeros if absent."""

    def __init__(self, in_dim: int, hidden: Sequence[int], dropout: float, tasks: Sequence[str]) -> None:
        super().__init__()
        self.tasks = tuple(tasks)
        self.branches = nn.ModuleDict({t: mlp_branch(in_dim, hidden, dropout) for t in self.tasks})

    def forward(self, features: Tensor) -> tuple[Tensor, Tensor]:
        logits = {t: self.branches[t](features).squeeze(-1) for t in self.tasks}
        some = logits[self.tasks[0]]
        realtime = logits.get("realtime", torch.zeros_like(some))
        longterm = logits.get("longterm", torch.zeros_like(some))
        return realtime, longterm


def multitask_loss(
    logits: Sequence[Tensor],
    labels: Mapping[str, Tensor] | Sequence[Tensor],
    tasks: Sequence[str] = TASKS,
) -> Tensor:
    """eq. (5)-(6): L_global = L_short + L_long, each a mean BCE with logits; only ``tasks`` count.

    ``logits`` = (logit_realtime, logit_longterm) as returned by ``forward``; ``labels`` either a
    mapping with keys "realtime" / "longterm" or a pair in the same order. Labels are 0/1 floats.
    """
    if not tasks:
        raise DipnValidationError("multitask_loss needs at least one task")
    total = logits[0].new_zeros(())
    for task in tasks:
        index = TASKS.index(task)
        label = labels[task] if isinstance(labels, Mapping) else labels[index]
        total = total + F.binary_cross_entropy_with_logits(logits[index], label.to(logits[index].dtype))
    return total


class PositionalInputs(nn.Module):
    """``model(*tensors)`` in ``model.input_names`` order: what jit.trace and ONNX export call."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.input_names = tuple(model.input_names)

    def forward(self, *inputs: Tensor) -> tuple[Tensor, Tensor]:
        return self.model(**dict(zip(self.input_names, inputs)))


# ---- inputs and configs -------------------------------------------------------------------------
def check_inputs(feature_config: FeatureConfig, input_names: Sequence[str], inputs: Mapping[str, Any]) -> None:
    """Shared by every torch model: each needed input present, well shaped, ids in range."""
    missing = [n for n in input_names if inputs.get(n) is None]
    if missing:
        raise DipnValidationError(f"missing input(s) {missing}; the model uses {tuple(input_names)}")
    batch = len(inputs[input_names[0]])
    for name in input_names:
        if name != MERGED:
            check_group_ids(feature_config, name, inputs[name], batch)
            continue
        ids = inputs[name]
        layout = merged_layout(feature_config)
        width = layout[-1][2]
        shape = tuple(ids.shape)
        if len(shape) != 3 or shape[1:] != (feature_config.sequence_length, width) or shape[0] != batch:
            raise DipnValidationError(
                f"input 'merged' must have shape ({batch}, {feature_config.sequence_length}, {width}), got {shape}"
            )
        for view, start, stop in layout:
            check_group_ids(feature_config, view, ids[..., start:stop], batch)


class IntentModel(nn.Module):
    """What every torch model offers besides ``forward``: the boundary check of a batch and the
    positional form exporters trace. Subclasses set ``feature_config`` and ``input_names``."""

    feature_config: FeatureConfig
    input_names: tuple[str, ...]

    def forward(
        self,
        swipe: Tensor | None = None,
        tap: Tensor | None = None,
        browse: Tensor | None = None,
        history: Tensor | None = None,
        profile: Tensor | None = None,
        merged: Tensor | None = None,
        context: Tensor | None = None,
    ) -> tuple[Tensor, Tensor]:
        """Ids (int32 or int64) -> (logit_realtime, logit_longterm), each (B,); inputs the model does
        not read are ignored. One keyword signature for every model, so that any of them scores a
        batch dict of the sample store or the device, and traces through ``positional``."""
        given = {"swipe": swipe, "tap": tap, "browse": browse, "history": history, "profile": profile,
                 MERGED: merged, "context": context}  # fmt: skip
        missing = [n for n in self.input_names if given[n] is None]
        if missing:
            raise DipnValidationError(f"{type(self).__name__} needs input(s) {missing}; it reads {self.input_names}")
        return self.logits({n: given[n] for n in self.input_names})

    def logits(self, inputs: Mapping[str, Tensor]) -> tuple[Tensor, Tensor]:
        """The model itself, on exactly the inputs of ``input_names``."""
        raise NotImplementedError

    def check_inputs(self, inputs: Mapping[str, Any]) -> None:
        """Validate a batch at the boundary (names, shapes, id ranges), naming what is wrong."""
        check_inputs(self.feature_config, self.input_names, inputs)

    def positional(self) -> PositionalInputs:
        return PositionalInputs(self)


class ConfigDict:
    """``to_dict`` / ``from_dict`` of a frozen config dataclass: a checkpoint stores its model's
    config as a dict by field name and reads it back with these."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        """Inverse of ``to_dict``, also after a JSON round trip (lists back to tuples)."""
        return config_from_dict(cls, data)


@dataclass(frozen=True)
class InputsConfig(ConfigDict):
    """The static input groups a torch model reads and the shape of its heads: the fields every
    model's config starts with (DIPN, RNN+DNN, ATRank, RIB, HEROES), so that each reads, checks and
    drops the groups a dataset lacks (``restricted_to``) the same way. Each model adds what is its
    own; the views it reads are ``views``: a field of ``ViewsConfig``, a constant of RNN+DNN's."""

    use_history: bool = True
    use_profile: bool = True
    use_context: bool = True  # recency of each view and the cut's hour (docs/models.md, "Recency")
    head_hidden: tuple[int, ...] = (128, 64)  # each branch: FC layers before the logit
    dropout: float = 0.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.dropout < 1.0:
            raise DipnValidationError("dropout must be in [0, 1)")

    @property
    def statics(self) -> tuple[str, ...]:
        """The static inputs used, in ``STATICS`` order."""
        return tuple(s for s, used in zip(STATICS, (self.use_history, self.use_profile, self.use_context), strict=True) if used)

    @property
    def input_names(self) -> tuple[str, ...]:
        """The groups a device feeds: the views in ``VIEWS`` order, then the statics."""
        return tuple(v for v in VIEWS if v in self.views) + self.statics  # type: ignore[attr-defined]

    def statics_kept(self, available: Sequence[str]) -> dict[str, bool]:
        """The ``use_*`` switches of this config with the groups ``available`` lacks turned off."""
        return {f"use_{g}": getattr(self, f"use_{g}") and g in available for g in STATICS}

    def restricted_to(self, available: Sequence[str]) -> Self:
        """This configuration without the static groups the data lacks (public logs have no profile)."""
        return replace(self, **self.statics_kept(available))


@dataclass(frozen=True)
class ViewsConfig(InputsConfig):
    """An ``InputsConfig`` whose behaviour views are a choice (DIPN and the alternative models)."""

    views: tuple[str, ...] = VIEWS  # behaviour sequences used (Table 6 source ablations)

    def __post_init__(self) -> None:
        super().__post_init__()
        unknown = [v for v in self.views if v not in VIEWS]
        if unknown or len(set(self.views)) != len(self.views):
            raise DipnValidationError(f"views must be distinct names from {VIEWS}, got {self.views}")

    def restricted_to(self, available: Sequence[str]) -> Self:
        """This configuration reading only the ``available`` input groups (a source ablation).

        A dataset imported from a public log has no swipe, tap or profile: training on all-padding
        inputs would spend parameters on nothing, so the model drops the absent groups (Table 6)
        and its ``input_names`` say which groups a device must feed.
        """
        return replace(self, views=tuple(v for v in self.views if v in available), **self.statics_kept(available))


@dataclass(frozen=True)
class TasksConfig(InputsConfig):
    """An ``InputsConfig`` whose heads are one independent branch per task (DIPN, RNN+DNN): a
    single-task variant (``tasks`` of one element) builds one branch (``TaskHeads``)."""

    tasks: tuple[str, ...] = TASKS  # ("realtime",) or ("longterm",): no multi-task

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.tasks or any(t not in TASKS for t in self.tasks) or len(set(self.tasks)) != len(self.tasks):
            raise DipnValidationError(f"tasks must be a non-empty subset of {TASKS}, got {self.tasks}")


def step_mask(ids: Tensor, *columns: int) -> Tensor:
    """(B, T) float: 1 on the real steps of a sequence input (any of its mask ``columns`` non-zero,
    ``dipn.features.spec.mask_column``; several for the merged view), 0 on padding."""
    real = ids[..., columns[0]] != 0
    for column in columns[1:]:
        real = real | (ids[..., column] != 0)
    return real.to(torch.float32)


def config_from_dict(cls: type, data: Mapping[str, Any]) -> Any:
    """A frozen config dataclass from a dict, lists (from JSON) turned back into tuples."""
    extra = set(data) - {f.name for f in fields(cls)}
    if extra:
        raise DipnValidationError(f"unknown {cls.__name__} field(s): {sorted(extra)}")

    def tuples(value: Any) -> Any:
        return tuple(tuples(v) for v in value) if isinstance(value, list | tuple) else value

    return cls(**{k: tuples(v) for k, v in data.items()})


# ---- size accounting ----------------------------------------------------------------------------
def parameter_counts(model: nn.Module) -> dict[str, int]:
    """Parameters by component: "embeddings.<group>" per group, then each top-level module
    (DIPN: reshape = the FC after the embeddings, grus, intra_attention, heads). Sums to the total."""
    counts: dict[str, int] = {}
    for name, parameter in model.named_parameters():
        parts = name.split(".")
        key = ".".join(parts[:2]) if parts[0] == "embeddings" else parts[0]
        counts[key] = counts.get(key, 0) + parameter.numel()
    return counts


def size_estimate_mb(model: nn.Module) -> dict[str, float]:
    """fp32 size, and an int8 estimate in the ONNX Runtime dynamic-quantization style: embedding and
    Linear weight matrices at 1 byte plus an fp32 scale per output channel; RNN weights and all
    biases stay fp32 (ORT has no GRU/LSTM quantization). Graph overhead is not included."""
    fp32 = int8 = 0
    for module in model.modules():
        own = list(module.named_parameters(recurse=False))
        for name, parameter in own:
            n = parameter.numel()
            fp32 += 4 * n
            if isinstance(module, nn.Embedding | nn.Linear) and name == "weight":
                int8 += n + 4 * parameter.shape[0]
            else:
                int8 += 4 * n
    return {"fp32_mb": fp32 / 1e6, "int8_mb": int8 / 1e6}
