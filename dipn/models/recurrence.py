"""Several bidirectional GRUs run as one recurrence, with a hand-written backward pass.

Why: ``nn.GRU`` on CPU runs each (sequence, direction) as its own loop, and autograd records about
a dozen nodes per step. DIPN has three views x two directions x 256 steps: some 18,000 small nodes
per training step, each costing more in dispatch than in arithmetic (a step of one direction is a
(B, 32) x (32, 96) product). The recurrences are independent, so here they advance side by side:
per step one batched product (K, B, d) x (K, d, 3d) and a few gate operations written into
preallocated buffers, and the backward pass is written out by hand, a loop of small operations on
one step's slices (which stay in cache; the same arithmetic as one pass over all steps moves every
intermediate through memory) with no autograd node per step.

Same parameters and the same function as ``nn.GRU(batch_first=True, bidirectional=True)``, one
layer, zero initial state: PyTorch's gate layout (rows r, z, n), ``n = tanh(W_in x + b_in + r *
(W_hn h + b_hn))``, ``h' = (1 - z) * n + z * h``; the backward direction reads the sequence from
its end. ``tests/test_models.py`` pins outputs and gradients to ``nn.GRU``'s.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial

import torch
from torch import Tensor, nn


class _StackedGRU(torch.autograd.Function):
    """K recurrences side by side. Inputs: the input projections W_i x + b_i of every step, split
    into the r, z part (T, K, B, 2d) and the n part (T, K, B, d); recurrent weights (K, 3d, d) and
    biases (K, 3d). Output: the states (T, K, B, d)."""

    @staticmethod
    def forward(ctx, projected_rz: Tensor, projected_n: Tensor, w_hh: Tensor, b_hh: Tensor) -> Tensor:  # noqa: ANN001
        steps, k, batch, d = projected_n.shape
        w_t, bias = w_hh.transpose(1, 2), b_hh.unsqueeze(1)
        recurrent = projected_n.new_empty(steps, k, batch, 3 * d)  # W_hh h + b_hh, per step
        gates = projected_n.new_empty(steps, k, batch, 2 * d)  # r | z
        candidate = projected_n.new_empty(steps, k, batch, d)  # n
        states = projected_n.new_empty(steps, k, batch, d)
        h = projected_n.new_zeros(k, batch, d)
        for t in range(steps):
            gh = torch.baddbmm(bias, h, w_t, out=recurrent[t])
            rz = torch.add(projected_rz[t], gh[..., : 2 * d], out=gates[t]).sigmoid_()
            n = torch.addcmul(projected_n[t], rz[..., :d], gh[..., 2 * d :], out=candidate[t])
            n.mul_(2.0).sigmoid_().mul_(2.0).sub_(1.0)  # tanh(x) = 2 sigmoid(2x) - 1: torch's CPU tanh is 9x slower
            h = torch.lerp(n, h, rz[..., d:], out=states[t])  # n + z (h - n)
        ctx.save_for_backward(w_hh, recurrent, gates, candidate, states)
        return states

    @staticmethod
    def backward(ctx, grad_states: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:  # noqa: ANN001
        w_hh, recurrent, gates, candidate, states = ctx.saved_tensors
        steps, k, batch, d = states.shape
        grad_recurrent = torch.empty_like(recurrent)  # d(W_hh h + b_hh); its r, z part is d(projected_rz)
        grad_n = torch.empty_like(candidate)  # d(projected_n)
        grad_w = torch.zeros_like(w_hh)
        carried = torch.zeros_like(states[0])  # the gradient reaching h from the later steps
        zeros = torch.zeros_like(states[0])
        for t in range(steps - 1, -1, -1):
            r, z, n, gh_n = gates[t, ..., :d], gates[t, ..., d:], candidate[t], recurrent[t, ..., 2 * d :]
            previous = states[t - 1] if t else zeros
            c = carried + grad_states[t]
            dn = torch.addcmul(c, c, z, value=-1.0)  # c (1 - z)
            da_n = torch.addcmul(dn, dn * n, n, value=-1.0, out=grad_n[t])  # through tanh: dn (1 - n^2)
            da_r = da_n * gh_n * torch.addcmul(r, r, r, value=-1.0)  # through sigmoid: r (1 - r)
            da_z = c * (previous - n) * torch.addcmul(z, z, z, value=-1.0)
            g = torch.cat([da_r, da_z, da_n * r], dim=-1, out=grad_recurrent[t])  # contiguous pieces, one copy
            grad_w.baddbmm_(g.transpose(1, 2), previous)
            carried = torch.baddbmm(c * z, g, w_hh)
        return grad_recurrent[..., : 2 * d], grad_n, grad_w, grad_recurrent.sum(dim=0).sum(dim=1)


def _projections(grus: Mapping[str, nn.GRU], inputs: Mapping[str, Tensor], names: tuple[str, ...],
                 d: int) -> tuple[Tensor, Tensor]:  # fmt: skip
    """W_i x + b_i of every recurrence and step, split into the r, z part (T, K, B, 2d) and the n
    part (T, K, B, d), in the form whose gradient autograd computes cheaply."""
    rz, n = [], []
    for name in names:
        gru, x = grus[name], inputs[name]
        # One product for both directions, its columns ordered so that one split gives each part
        # (a split's gradient is one concatenation; slicing would zero-fill a full copy per slice).
        w_f, w_b, b_f, b_b = gru.weight_ih_l0, gru.weight_ih_l0_reverse, gru.bias_ih_l0, gru.bias_ih_l0_reverse
        weight = torch.cat([w_f[: 2 * d], w_b[: 2 * d], w_f[2 * d :], w_b[2 * d :]])
        bias = torch.cat([b_f[: 2 * d], b_b[: 2 * d], b_f[2 * d :], b_b[2 * d :]])
        parts = nn.functional.linear(x, weight, bias).transpose(0, 1).split([2 * d, 2 * d, d, d], dim=-1)
        rz_f, rz_b, n_f, n_b = parts  # (T, B, .) views; the stacks below copy them time-major
        rz += [rz_f, rz_b.flip(0)]  # the backward direction reads from the end
        n += [n_f, n_b.flip(0)]
    return torch.stack(rz, dim=1).float(), torch.stack(n, dim=1).float()  # (T, K, B, 2d), (T, K, B, d)


BLOCK = 8  # steps whose input projections are computed together when scoring (see _scoring_states)


def _scoring_states(grus: Mapping[str, nn.GRU], inputs: Mapping[str, Tensor], names: tuple[str, ...],
                    d: int) -> dict[str, Tensor]:  # fmt: skip
    """``bidirectional_grus``'s outputs without autograd to serve (scoring): the same recurrences,
    arranged so that what a step reads stays in cache.

    Why not ``_StackedGRU.forward``: it projects every step's input first, (T, K, B, 3d) that
    leaves the caches (75 MB at batch 128, fresh pages each batch) and is then streamed through
    once more, and it turns the inputs and states time-major and time-reversed with copies of
    the whole sequence. Here the input projections are computed ``BLOCK`` steps at a time into a
    buffer that stays in cache: each block of inputs is gathered time-major (for the backward
    direction from the end, so that a step reads both directions at one index), the states of a
    block go to the outputs ``(B, T, 2d)`` in one copy per direction, and nothing larger than a
    block is allocated besides the outputs.

    Arithmetic: the same gate operations as ``_StackedGRU.forward``; the n rows of the weights
    and biases are doubled beforehand (exact: a power of two), which gives ``2 (W_in x + b_in +
    r (W_hn h + b_hn))`` directly, the argument of tanh(x) = 2 sigmoid(2x) - 1, one operation
    fewer per step.
    """
    views, k = len(names), 2 * len(names)
    first = inputs[names[0]]
    batch, steps, device = first.shape[0], first.shape[1], first.device
    new = partial(torch.empty, dtype=torch.float32, device=device)
    scale = torch.ones(3 * d, dtype=torch.float32, device=device)
    scale[2 * d :] = 2.0
    w_ih = [grus[n].weight_ih_l0 for n in names] + [grus[n].weight_ih_l0_reverse for n in names]  # forward, backward
    b_ih = [grus[n].bias_ih_l0 for n in names] + [grus[n].bias_ih_l0_reverse for n in names]
    w_hh = [grus[n].weight_hh_l0 for n in names] + [grus[n].weight_hh_l0_reverse for n in names]
    b_hh = [grus[n].bias_hh_l0 for n in names] + [grus[n].bias_hh_l0_reverse for n in names]
    w_in = [(w.float() * scale[:, None]).t() for w in w_ih]
    b_in = [b.float() * scale for b in b_ih]
    w_t = (torch.stack(w_hh).float() * scale[:, None]).transpose(1, 2)  # (K, d, 3d)
    bias = (torch.stack(b_hh).float() * scale).unsqueeze(1)  # (K, 1, 3d)
    time_major = [inputs[n].float().transpose(0, 1) for n in names]  # (T, B, in) views
    order = torch.arange(steps, device=device)
    outputs = new(views, batch, steps, 2 * d)
    projected = new(k, BLOCK, batch, 3 * d)  # a block's W_i x + b_i; backward: its steps from the end
    block_inputs = [new(BLOCK, batch, x.shape[-1]) for x in time_major]
    states = [new(BLOCK, k, batch, d) for _ in range(2)]  # alternate blocks: the next reads the last state
    recurrent, rz, n = new(k, batch, 3 * d), new(k, batch, 2 * d), new(k, batch, d)
    h = torch.zeros(k, batch, d, dtype=torch.float32, device=device)
    for number, start in enumerate(range(0, steps, BLOCK)):
        end = min(start + BLOCK, steps)
        size = end - start
        for i, x in enumerate(time_major):
            for r, picked in ((i, order[start:end]), (views + i, order[steps - end : steps - start].flip(0))):
                block = torch.index_select(x, 0, picked, out=block_inputs[i][:size])
                torch.addmm(b_in[r], block.view(size * batch, -1), w_in[r], out=projected[r, :size].view(size * batch, 3 * d))
        held = states[number % 2]
        for j in range(size):
            step = projected[:, j]
            gh = torch.baddbmm(bias, h, w_t, out=recurrent)
            torch.add(step[..., : 2 * d], gh[..., : 2 * d], out=rz).sigmoid_()
            torch.addcmul(step[..., 2 * d :], rz[..., :d], gh[..., 2 * d :], out=n)
            n.sigmoid_().mul_(2.0).sub_(1.0)  # tanh of the undoubled argument
            h = torch.lerp(n, h, rz[..., d:], out=held[j])
        outputs[:, :, start:end, :d].copy_(held[:size, :views].permute(1, 2, 0, 3))
        outputs[:, :, steps - end : steps - start, d:].copy_(held[:size, views:].flip(0).permute(1, 2, 0, 3))
    return {name: outputs[i] for i, name in enumerate(names)}


@torch.compiler.disable  # a compiler would unroll the 256-step loops into one enormous graph
def bidirectional_grus(grus: Mapping[str, nn.GRU], inputs: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """``{name: grus[name](inputs[name])[0]}`` (each (B, T, 2d)), all recurrences in one loop.

    The GRUs must share hidden size; inputs (B, T, in), batch and length shared, widths free.
    """
    if not all(type(gru) is nn.GRU for gru in grus.values()):  # e.g. dynamically quantized: its own kernel
        return {name: gru(inputs[name])[0] for name, gru in grus.items()}
    names = tuple(grus)
    d = grus[names[0]].hidden_size
    for name, gru in grus.items():
        if not (gru.bidirectional and gru.batch_first and gru.num_layers == 1 and gru.bias and gru.hidden_size == d):
            raise ValueError(f"GRU {name!r}: bidirectional_grus runs one-layer, biased, batch-first Bi-GRUs of one width")
    w_hh = [w for name in names for w in (grus[name].weight_hh_l0, grus[name].weight_hh_l0_reverse)]
    b_hh = [b for name in names for b in (grus[name].bias_hh_l0, grus[name].bias_hh_l0_reverse)]
    if not (torch.is_grad_enabled() and any(t.requires_grad for t in (*w_hh, *inputs.values()))):
        with torch.autocast(inputs[names[0]].device.type, enabled=False):  # fp32 under --amp
            return _scoring_states(grus, inputs, names, d)
    rz, n = _projections(grus, inputs, names, d)
    with torch.autocast(inputs[names[0]].device.type, enabled=False):  # the recurrence stays fp32 under --amp
        states = _StackedGRU.apply(rz, n, torch.stack(w_hh).float(), torch.stack(b_hh).float())
    per_recurrence = states.unbind(dim=1)  # its gradient is one stack, not a zero-filled copy per slice
    return {
        name: torch.cat([per_recurrence[2 * i].transpose(0, 1), per_recurrence[2 * i + 1].flip(0).transpose(0, 1)], dim=-1)
        for i, name in enumerate(names)
    }
