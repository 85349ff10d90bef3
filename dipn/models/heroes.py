"""HEROES (Jin et al., "Multi-Scale User Behavior Network for Entire Space Multi-Task Learning").

Only the abstract was available: "a multi-scale hierarchical network ... Hawkes process-based
recurrent units for multi-scale user behavior modeling in multi-task learning", on "the entire
space" (CTR and CVR jointly, as ESMM). Everything below the abstract's words is our design, stated
here and in docs/models.md:

Two time scales, per view (the views stay apart, as in DIPN), in one pass over the steps:
  * event level: a continuous-time GRU over the events of the current session. Between two
    events its state decays as a Hawkes process' excitation does, h <- h * exp(-beta * dt), with a
    learned rate beta > 0 per unit (softplus), dt the time since the previous event (decoded from
    the ids, ``dipn.models.event_time``); then the GRU update with the event.
  * session level: a second continuous-time GRU, with its own learned decay, updated once per
    session, when the next session starts, with the event-level state of the session just closed;
    the event-level state then restarts from zero.
  * a session is a run of consecutive events on the same page (the ``page`` column every view
    has): the one boundary all three views record (swipe gaps saturate at 10 s, tap has no time).
  * decay rates start spread over time scales (event level 1 s .. 10 min, session level 1 min ..
    1 day, log-spaced per unit) and are learned: the multi-scale part.
The per-view features are the final event-level and session-level states; with the history and
profile embeddings they feed two branches, "longterm" and "conditional", composed on the entire
space as ESMM composes CTR and CVR: p_longterm = sigmoid(l), p_realtime = p_longterm * p_cond, so
p_realtime <= p_longterm by construction (purchasing within the hour implies within the day). The
loss is DIPN's: BCE of p_realtime and of p_longterm against their labels on every sample.

Padding: on a padded step the input is zero, dt is zero and no session starts, and both states
are carried unchanged (left padding: they stay zero until the first real event), so padded ids
cannot reach the output. Export: the recurrence is a Python loop over the T steps with a fixed
graph (no data-dependent control flow); tracing unrolls it, so the ONNX graph has a few thousand
small ops (docs/models.md has the measured size and latency).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dipn.errors import DipnValidationError
from dipn.features.spec import FeatureConfig
from dipn.models.base import mlp_branch
from dipn.models.event_time import StepSeconds
from dipn.models.sources import BehaviourModel, SourcesConfig

_MIN_LOG_GAP = -16.0  # log(1 - p_realtime) floor: keeps the realtime logit finite when both p -> 1


@dataclass(frozen=True)
class HEROESConfig(SourcesConfig):
    window: int = 256  # most recent events of each view read (256: all of them)
    hidden_size: int = 32  # state of each level
    reshape_dim: int = 64  # FC after the embeddings, as DIPN's
    event_time_scales_s: tuple[float, float] = (1.0, 600.0)  # initial 1 / beta range, event level
    session_time_scales_s: tuple[float, float] = (60.0, 86_400.0)  # same, session level

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.window < 1 or self.hidden_size < 1 or self.reshape_dim < 1:
            raise DipnValidationError("window, hidden_size and reshape_dim must be >= 1")
        for low, high in (self.event_time_scales_s, self.session_time_scales_s):
            if not 0 < low <= high:
                raise DipnValidationError("time scales must be positive (low, high) pairs")


def _inverse_softplus(x: Tensor) -> Tensor:
    return x + torch.log(-torch.expm1(-x))


def _block_diagonal(blocks: Tensor, views: int, inputs: int, d: int) -> Tensor:
    """(K, in, 3d) per-view weights -> (K * in, 3 * K * d), view k's rows reaching only view k's
    columns; columns gate-major: [gate r of views 0..K-1 | gate z | gate n]. Built from the
    parameters by concatenation (sizes passed as ints, not read from shapes, so traces stay
    shape-free for CoreML), which the ONNX exporter folds into one constant matrix."""
    zeros = blocks.new_zeros(inputs, d)
    rows = [
        torch.cat([blocks[i, :, g * d : (g + 1) * d] if j == i else zeros for g in range(3) for j in range(views)], 1)
        for i in range(views)
    ]
    return torch.cat(rows, dim=0)


def _gate_major(bias: Tensor, views: int) -> Tensor:
    """(K, 3d) -> (3 * K * d), in the column order of ``_block_diagonal``."""
    return bias.reshape(views, 3, -1).transpose(0, 1).reshape(-1)


class ContinuousTimeGRU(nn.Module):
    """K GRU cells (one per view) whose states decay by exp(-beta * dt) before each update.

    The K cells run as one cell of width K * d with block-diagonal weights (views never mix): one
    2-D matmul per step serves every view, and stays a plain ``MatMul`` the int8 quantizer handles.
    States are (B, K * d), view-major. PyTorch's GRU equations and gate order (r, z, n;
    h' = (1 - z) * n + z * h).
    """

    def __init__(self, views: int, input_size: int, hidden_size: int, time_scales_s: tuple[float, float]) -> None:
        super().__init__()
        bound = 1.0 / math.sqrt(hidden_size)
        self.weight_ih = nn.Parameter(torch.empty(views, input_size, 3 * hidden_size).uniform_(-bound, bound))
        self.weight_hh = nn.Parameter(torch.empty(views, hidden_size, 3 * hidden_size).uniform_(-bound, bound))
        self.bias_ih = nn.Parameter(torch.empty(views, 3 * hidden_size).uniform_(-bound, bound))
        self.bias_hh = nn.Parameter(torch.empty(views, 3 * hidden_size).uniform_(-bound, bound))
        low, high = time_scales_s
        scales = torch.logspace(math.log10(low), math.log10(high), hidden_size)
        self.decay_rate = nn.Parameter(_inverse_softplus(1.0 / scales).repeat(views))  # (K * d,), view-major
        self.views, self.input_size, self.hidden_size = views, input_size, hidden_size

    def weights(self) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """(W_i, b_i, W_h, b_h) of the K cells as one block-diagonal cell; computed once per forward."""
        k, d = self.views, self.hidden_size
        return (_block_diagonal(self.weight_ih, k, self.input_size, d), _gate_major(self.bias_ih, k),
                _block_diagonal(self.weight_hh, k, d, d), _gate_major(self.bias_hh, k))  # fmt: skip

    def decay(self, dt: Tensor) -> Tensor:
        """(B, T, K) seconds -> (B, T, K * d) factors exp(-beta dt): the Hawkes kernel."""
        dt = dt.unsqueeze(-1).expand(-1, -1, -1, self.hidden_size).flatten(2)  # shape-free: traces cleanly
        return torch.exp(-F.softplus(self.decay_rate) * dt)

    def step(self, gates_in: Tensor, h: Tensor, weight_hh: Tensor, bias_hh: Tensor) -> Tensor:
        """One update: gates_in (B, 3Kd) = W_i x + b_i, h (B, Kd) already decayed."""
        width = self.views * self.hidden_size  # a constant, not h.shape: the trace stays shape-free
        gates_h = torch.matmul(h, weight_hh) + bias_hh
        r, z = torch.sigmoid(gates_in[:, : 2 * width] + gates_h[:, : 2 * width]).chunk(2, dim=-1)
        n = torch.tanh(gates_in[:, 2 * width :] + r * gates_h[:, 2 * width :])
        return n + z * (h - n)


class EntireSpaceHeads(nn.Module):
    """Two branches -> (logit_realtime, logit_longterm) with p_realtime = p_longterm * p_cond (ESMM).

    The realtime logit is logit(p_l p_c) = log(p_l p_c) - log(1 - p_l p_c), computed in log space,
    and capped at the longterm logit so that rounding can never order them the other way.
    """

    def __init__(self, in_dim: int, hidden: tuple[int, ...], dropout: float) -> None:
        super().__init__()
        self.longterm = mlp_branch(in_dim, hidden, dropout)
        self.conditional = mlp_branch(in_dim, hidden, dropout)

    def forward(self, features: Tensor) -> tuple[Tensor, Tensor]:
        logit_longterm = self.longterm(features).squeeze(-1)
        logit_conditional = self.conditional(features).squeeze(-1)
        log_p = -F.softplus(-logit_longterm) - F.softplus(-logit_conditional)  # log p_l + log p_c
        log_not_p = torch.log(torch.clamp(1.0 - torch.exp(log_p), min=math.exp(_MIN_LOG_GAP)))
        logit_realtime = torch.minimum(log_p - log_not_p, logit_longterm)
        return logit_realtime, logit_longterm


class HEROES(BehaviourModel):
    def __init__(self, config: HEROESConfig | None = None, feature_config: FeatureConfig | None = None) -> None:
        config = config or HEROESConfig()
        super().__init__(config, feature_config)
        k = len(self.views)
        self.reshape = nn.ModuleDict(
            {v: nn.Sequential(nn.Linear(self.embeddings[v].output_dim, config.reshape_dim), nn.ReLU()) for v in self.views}
        )
        self.times = nn.ModuleDict({v: StepSeconds(self.feature_config, v) for v in self.views})
        names = {v: [s.name for s in self.feature_config.group(v)] for v in self.views}
        self._page_columns = {v: names[v].index("page") for v in self.views}
        d = config.hidden_size
        self.event_level = ContinuousTimeGRU(k, config.reshape_dim, d, config.event_time_scales_s)
        self.session_level = ContinuousTimeGRU(k, d, d, config.session_time_scales_s)
        self.head_input_dim = 2 * d * k + self.static_dim
        self.heads = EntireSpaceHeads(self.head_input_dim, config.head_hidden, config.dropout)

    def session_starts(self, view: str, ids: Tensor, mask: Tensor) -> Tensor:
        """(B, T): 1 where a real event opens a session (first event, or the page changed)."""
        page = ids[..., self._page_columns[view]]
        same_page = torch.cat([torch.zeros_like(mask[:, :1]), (page[:, 1:] == page[:, :-1]).to(mask.dtype)], dim=1)
        previous_real = torch.cat([torch.zeros_like(mask[:, :1]), mask[:, :-1]], dim=1)
        return mask * (1.0 - previous_real * same_page)

    def encode(self, views: dict[str, Tensor], masks: dict[str, Tensor]) -> Tensor:
        d, k = self.config.hidden_size, len(views)
        x, dt, start, real = [], [], [], []
        for view, ids in views.items():
            ids, mask = ids[:, -self.config.window :], masks[view][:, -self.config.window :]
            x.append(self.reshape[view](self.embeddings[view](ids)) * mask.unsqueeze(-1))
            dt.append(self.times[view](ids, mask))
            start.append(self.session_starts(view, ids, mask))
            real.append(mask)

        def per_unit(flags: list[Tensor]) -> Tensor:  # K x (B, T) -> (B, T, K * d), view-major
            return torch.stack(flags, dim=-1).unsqueeze(-1).expand(-1, -1, -1, d).flatten(2)

        event_w_i, event_b_i, event_w_h, event_b_h = self.event_level.weights()
        session_w_i, session_b_i, session_w_h, session_b_h = self.session_level.weights()
        gates = torch.matmul(torch.cat(x, dim=-1), event_w_i) + event_b_i  # (B, T, 3Kd): all steps at once
        event_decay = self.event_level.decay(torch.stack(dt, dim=-1))
        session_decay = self.session_level.decay(torch.stack(dt, dim=-1))
        start_t, real_t = per_unit(start), per_unit(real)
        previous_real = torch.cat([torch.zeros_like(real_t[:, :1]), real_t[:, :-1]], dim=1)
        close_t = start_t * previous_real  # a session ends where another starts after a real event
        events = sessions = torch.zeros_like(gates[:, 0, : k * d])
        # Per-step slices taken once (unbind): indexing [:, t] inside the loop would make the
        # backward pass write a full-size gradient per step.
        steps = zip(*(x.unbind(1) for x in (gates, event_decay, session_decay, start_t, close_t, real_t)))
        for gates_in, event_keep, session_keep, starts, closes, is_real in steps:
            events = events * event_keep  # Hawkes decay over the gap since the previous event
            sessions = sessions * session_keep
            session_in = torch.matmul(events, session_w_i) + session_b_i
            closed = self.session_level.step(session_in, sessions, session_w_h, session_b_h)
            sessions = sessions + closes * (closed - sessions)  # the session just ended updates the upper level
            events = events * (1.0 - starts)  # a new session restarts the event level
            updated = self.event_level.step(gates_in, events, event_w_h, event_b_h)
            events = events + is_real * (updated - events)  # padded steps carry the state unchanged
        return torch.cat([events, sessions], dim=-1)


HEROES_VARIANTS: dict[str, HEROESConfig] = {
    "heroes": HEROESConfig(),
    # the last 64 events per view: a quarter of the unrolled steps, for a device that needs the latency
    "heroes_window64": HEROESConfig(window=64),
}
