"""Inter-view attention (eq. 4) computed over the real steps only, for training.

Why: the dense form (``dipn.models.dipn.inter_view_attention``) scores every query step against
every key step, (B, 256, 256) per pair, and masks the padding afterwards. Views are left-padded
and most are short (in the simulated data the median browse view holds 13 events of 256), so most
of those scores are multiplied by zero. Here the samples of a batch are sorted by how many rows
they need and cut into small chunks; each chunk is cut to the steps where it has real data:
  * rows (queries): from the chunk's earliest step where both views are real; any other row has
    weight 0 in the masked mean that reduces the pair;
  * keys of x (of y): from the chunk's earliest real step of x (of y); earlier keys are padding for
    every sample of the chunk, weight exp(-1e9) = 0 in the softmax.
The padding left inside a chunk is masked as in the dense form, so the result is the same function
(``tests/test_fast_paths.py`` pins it to the dense form); a chunk's score matrices are small
enough to stay in cache.

The chunk bounds depend on the data (Python ints read from the masks): a traced or exported graph
must not bake them in, so ``DIPN`` uses this only while not being traced (``exporting``).
"""

from __future__ import annotations

import torch
from torch import Tensor

from dipn.models.base import NEG

CHUNK = 8  # samples per chunk: smaller cuts more padding, larger has fewer, bigger products


def exporting() -> bool:
    """True while ``jit.trace``, the ONNX exporter or ``torch.export`` records a model: they must see
    the fixed graph (``nn.GRU``, dense attention), not the data-dependent fast path."""
    return torch.jit.is_tracing() or torch.onnx.is_in_onnx_export() or torch.compiler.is_exporting()


def _first_real(mask: Tensor) -> Tensor:
    """(B, T) -> (B,): index of the first real step, T for a view that is all padding."""
    return torch.where(mask.any(dim=1), mask.argmax(dim=1), mask.shape[1])


@torch.compiler.disable  # data-dependent shapes: run eagerly inside a compiled model
def ragged_inter_view_attention(v_x: Tensor, mask_x: Tensor, v_y: Tensor, mask_y: Tensor, scale: float) -> Tensor:
    """Same inputs and result as ``inter_view_attention``: (B, T, 2d) twice with their masks -> (B, 2d)."""
    batch, steps, width = v_x.shape
    both = mask_x * mask_y
    count = both.sum(dim=1, keepdim=True).clamp(min=1.0)
    first_x, first_y, first_row = (_first_real(m) for m in (mask_x, mask_y, both))
    # samples with padding after their first real step (not what the data holds; still handled)
    holes_x, holes_y = (((steps - first) - m.sum(dim=1) > 0).long() for first, m in ((first_x, mask_x), (first_y, mask_y)))
    order = torch.argsort(first_row, descending=True, stable=True)  # fewest rows first
    bounds = torch.stack([first_row, first_x, first_y, holes_x, holes_y])[:, order].tolist()
    bias_x, bias_y = (mask_x - 1.0) * -NEG, (mask_y - 1.0) * -NEG  # 0 on real steps, -1e9 on padding
    # One gather (index_select: several times faster than indexing with a tensor), then chunks as
    # splits: the gradient of a split is one concatenation, whereas slicing the whole batch per
    # chunk would make the backward pass fill a batch-sized zero tensor per slice.
    gathered = (t.index_select(0, order) for t in (v_x, v_y, bias_x, bias_y, both))
    chunks = zip(*(torch.split(t, CHUNK) for t in gathered))
    pooled = []
    for start, (x, y, b_x, b_y, w) in zip(range(0, batch, CHUNK), chunks):
        rows, keys_x, keys_y = (min(b[start : start + CHUNK]) for b in bounds[:3])
        if rows >= steps:  # no step where both views are real: the pair contributes zeros
            pooled.append(x.new_zeros(len(x), width))
            continue
        # One product scores every real step of y against every real step of x: A_x reads its
        # rows from ``rows`` on (softmax over x), A_y its columns (softmax over y), as the dense
        # form does with one score matrix and its transpose. Plain products per chunk: a chunk's
        # scores fit in cache, so they beat a fused attention kernel's masking overhead here.
        x, y = x[:, keys_x:], y[:, keys_y:]
        scores = torch.baddbmm(x.new_empty(len(x), y.shape[1], x.shape[1]), y, x.transpose(1, 2), beta=0.0, alpha=scale)
        to_x, to_y = scores[:, rows - keys_y :], scores[:, :, rows - keys_x :]
        # the padding bias only where a key of the chunk is padding (adding zeros changes nothing)
        if max(bounds[1][start : start + CHUNK]) > keys_x or any(bounds[3][start : start + CHUNK]):
            to_x = to_x + b_x[:, None, keys_x:]
        if max(bounds[2][start : start + CHUNK]) > keys_y or any(bounds[4][start : start + CHUNK]):
            to_y = to_y + b_y[:, keys_y:, None]
        attended_x = torch.bmm(to_x.softmax(dim=-1), x)
        attended_y = torch.bmm(to_y.softmax(dim=1).transpose(1, 2), y)
        pooled.append(torch.matmul(w[:, None, rows:], attended_x * attended_y).squeeze(1))
    return torch.cat(pooled).index_select(0, torch.argsort(order)) / count
