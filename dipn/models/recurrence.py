"""Several bidirectional GRUs run as one recurrence, with a hand-written backward pass.

Why: ``nn.GRU`` on CPU runs each (sequence, direction) as its own loop, and autograd records about
a dozen nodes per step. DIPN has three views x two directions x 256 steps: some 18,000 small nodes
per training step, each costing more in dispatch than in arithmetic (a step of one direction is a
(B, 32) x (32, 96) product). The recurrences are independent, so here they advance side by side:
per step one batched product (K, B, d) x (K, d, 3d) and four fused gate operations, all written
into preallocated buffers. The backward pass is linear in the incoming gradient, so its
coefficients are computed for all steps at once and its loop is four operations per step (the
recurrent weight gradient accumulates in the loop; everything else is one tensor operation over
all steps).

Same parameters and the same function as ``nn.GRU(batch_first=True, bidirectional=True)``, one
layer, zero initial state: PyTorch's gate layout (rows r, z, n), ``n = tanh(W_in x + b_in + r *
(W_hn h + b_hn))``, ``h' = (1 - z) * n + z * h``; the backward direction reads the sequence from
its end. ``tests/test_models.py`` pins outputs and gradients to ``nn.GRU``'s.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn


class _StackedGRU(torch.autograd.Function):
    """K recurrences: input projections (T, K, B, 3d), weights (K, 3d, d), biases (K, 3d) -> states (T, K, B, d)."""

    @staticmethod
    def forward(ctx, projected: Tensor, w_hh: Tensor, b_hh: Tensor) -> Tensor:  # noqa: ANN001
        steps, k, batch, three_d = projected.shape
        d = three_d // 3
        w_t, bias = w_hh.transpose(1, 2), b_hh.unsqueeze(1)
        recurrent = projected.new_empty(steps, k, batch, three_d)  # W_hh h + b_hh, per step
        gates = projected.new_empty(steps, k, batch, 2 * d)  # r | z
        candidate = projected.new_empty(steps, k, batch, d)  # n
        states = projected.new_empty(steps, k, batch, d)
        h = projected.new_zeros(k, batch, d)
        for t in range(steps):
            gh = torch.baddbmm(bias, h, w_t, out=recurrent[t])
            rz = torch.add(projected[t, ..., : 2 * d], gh[..., : 2 * d], out=gates[t]).sigmoid_()
            n = torch.addcmul(projected[t, ..., 2 * d :], rz[..., :d], gh[..., 2 * d :], out=candidate[t]).tanh_()
            h = torch.lerp(n, h, rz[..., d:], out=states[t])  # n + z (h - n)
        ctx.save_for_backward(w_hh, recurrent, gates, candidate, states)
        return states

    @staticmethod
    def backward(ctx, grad_states: Tensor) -> tuple[Tensor, Tensor, Tensor]:  # noqa: ANN001
        w_hh, recurrent, gates, candidate, states = ctx.saved_tensors
        steps, k, batch, d = states.shape
        grad_states = grad_states.contiguous()
        r, z, n = gates[..., :d], gates[..., d:], candidate
        previous = torch.cat([torch.zeros_like(states[:1]), states[:-1]])
        # With c the gradient reaching h' at a step: dn_pre = c a, dz_pre = c b, dr_pre = c g.
        a = (1.0 - z) * (1.0 - n * n)
        b = (previous - n) * z * (1.0 - z)
        g = a * recurrent[..., 2 * d :] * r * (1.0 - r)
        per_gate = torch.stack([g, b, a * r], dim=-2)  # (T, K, B, 3, d): d(W_hh h + b_hh) = c * this
        incoming = torch.empty_like(states)  # c at every step
        grad_recurrent = torch.empty_like(recurrent)
        grad_w = torch.zeros_like(w_hh)
        carried = torch.zeros_like(states[0])
        for t in range(steps - 1, -1, -1):
            c = torch.add(carried, grad_states[t], out=incoming[t])
            dgh = torch.mul(per_gate[t], c.unsqueeze(-2), out=grad_recurrent[t].view(k, batch, 3, d)).view(k, batch, 3 * d)
            grad_w.baddbmm_(dgh.transpose(1, 2), previous[t])
            carried = torch.baddbmm(c * z[t], dgh, w_hh)
        grad_projected = torch.cat([grad_recurrent[..., : 2 * d], incoming * a], dim=-1)
        return grad_projected, grad_w, grad_recurrent.sum(dim=0).sum(dim=1)  # two passes: far faster than one over dims (0, 2)


def bidirectional_grus(grus: Mapping[str, nn.GRU], inputs: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """``{name: grus[name](inputs[name])[0]}`` (each (B, T, 2d)), all recurrences in one loop.

    The GRUs must share hidden size; inputs (B, T, in), batch and length shared, widths free.
    """
    names = tuple(grus)
    d = grus[names[0]].hidden_size
    projected, w_hh, b_hh = [], [], []
    for name in names:
        gru, x = grus[name], inputs[name]
        if not (gru.bidirectional and gru.batch_first and gru.num_layers == 1 and gru.bias and gru.hidden_size == d):
            raise ValueError(f"GRU {name!r}: bidirectional_grus runs one-layer, biased, batch-first Bi-GRUs of one width")
        weight = torch.cat([gru.weight_ih_l0, gru.weight_ih_l0_reverse])
        bias = torch.cat([gru.bias_ih_l0, gru.bias_ih_l0_reverse])
        both = nn.functional.linear(x.transpose(0, 1), weight, bias).unflatten(-1, (2, 3 * d))  # (T, B, 2, 3d)
        projected += [both[:, :, 0], both[:, :, 1].flip(0)]
        w_hh += [gru.weight_hh_l0, gru.weight_hh_l0_reverse]
        b_hh += [gru.bias_hh_l0, gru.bias_hh_l0_reverse]
    stacked = torch.stack(projected, dim=1)
    with torch.autocast(stacked.device.type, enabled=False):  # the recurrence stays fp32 under --amp
        states = _StackedGRU.apply(stacked.float(), torch.stack(w_hh).float(), torch.stack(b_hh).float())
    return {
        name: torch.cat([states[:, 2 * i].transpose(0, 1), states[:, 2 * i + 1].flip(0).transpose(0, 1)], dim=-1)
        for i, name in enumerate(names)
    }
