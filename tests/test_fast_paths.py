"""The faster training code computes today's model: DIPN's outputs to 1e-5 of the code before issue 19
(saved by tests/reference/old_dipn_outputs.py), and each fast part equal to the part it replaces."""

from __future__ import annotations

import json
import math

import pytest
import torch
from torch import nn

from dipn.models import build_model
from dipn.models.dipn import inter_view_attention
from dipn.models.ragged_attention import CHUNK, ragged_inter_view_attention
from dipn.models.recurrence import BLOCK, bidirectional_grus

try:  # tests/ is not a package; pytest puts it on sys.path (or, as a package, its parent)
    from reference.old_dipn_outputs import FIXTURE, outputs
    from synthetic_batches import make_batch, model_inputs
except ImportError:  # pragma: no cover
    from tests.reference.old_dipn_outputs import FIXTURE, outputs
    from tests.synthetic_batches import make_batch, model_inputs

OLD = json.loads(FIXTURE.read_text())


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.mark.parametrize("variant", list(OLD["variants"]))
def test_dipn_training_outputs_match_the_code_before_issue_19_to_1e5(variant):
    """Same seeded weights, same batch, train mode: logits within 1e-5, loss and every parameter's
    gradient (sum, sum of absolute values) within 1e-5 relative."""
    old, new = OLD["variants"][variant], outputs(variant)
    torch.testing.assert_close(torch.tensor(new["logits"]), torch.tensor(old["logits"]), rtol=0, atol=1e-5)
    assert math.isclose(new["loss"], old["loss"], rel_tol=1e-5)
    assert new["grads"].keys() == old["grads"].keys()
    for name, (total, size) in old["grads"].items():
        scale = max(size, 1e-8)  # a sum near zero is compared on the scale of the gradient's magnitude
        assert abs(new["grads"][name][0] - total) <= 1e-5 * scale + 1e-7, name
        assert abs(new["grads"][name][1] - size) <= 1e-5 * scale + 1e-7, name


@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning")  # nn.GRU's own input-size checks
@pytest.mark.filterwarnings("ignore:.*torch.jit.*deprecated:DeprecationWarning")
def test_fast_and_traced_dipn_agree_in_eval_mode():
    """Eager eval (fast path) and the traced graph exporters see (nn.GRU, dense attention)."""
    torch.manual_seed(0)
    model = build_model("dipn").eval()
    feed = model_inputs(make_batch(batch_size=CHUNK + 3, seq_len=256, seed=4), model.input_names)
    wrapper = model.positional()
    with torch.no_grad():
        traced = torch.jit.trace(wrapper, tuple(feed[n] for n in model.input_names), check_trace=False)
        for fast, dense in zip(model(**feed), traced(*(feed[n] for n in model.input_names))):
            torch.testing.assert_close(fast, dense, rtol=0, atol=1e-5)


@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning")
@pytest.mark.filterwarnings("ignore:.*torch.jit.*deprecated:DeprecationWarning")
@pytest.mark.parametrize("variant", ["dipn", "dipn_paper", "early_fusion", "no_intra_view"])
def test_scoring_gives_the_scores_of_the_graph_exporters_see(variant):
    """What ``predict`` runs (no autograd: the FC folded into the tables, the recurrence in blocks,
    one score matrix per attention chunk) against the traced graph of the same model (per-column
    lookups and the FC, nn.GRU, dense attention), the old computation: the same scores to 1e-5.
    dipn_paper reads a subset of a view's columns (no step ages); early fusion keeps its own path."""
    torch.manual_seed(5)
    model = build_model("dipn", variant).eval()
    feed = model_inputs(make_batch(batch_size=2 * CHUNK + 5, seq_len=256, seed=6), model.input_names)
    with torch.no_grad():
        traced = torch.jit.trace(model.positional(), tuple(feed[n] for n in model.input_names), check_trace=False)
        dense = traced(*(feed[n] for n in model.input_names))
    with torch.inference_mode():
        scored = model(**feed)
    for fast, reference in zip(scored, dense):
        torch.testing.assert_close(torch.sigmoid(fast), torch.sigmoid(reference), rtol=0, atol=1e-5)
        torch.testing.assert_close(fast, reference, rtol=0, atol=1e-5)


@pytest.mark.parametrize("widths", [(64,), (64, 65, 66)])
def test_stacked_recurrence_matches_nn_gru_forward_and_backward(widths):
    torch.manual_seed(1)
    grus = nn.ModuleDict({f"s{i}": nn.GRU(w, 8, batch_first=True, bidirectional=True) for i, w in enumerate(widths)})
    x = {f"s{i}": torch.randn(5, 40, w, requires_grad=True) for i, w in enumerate(widths)}
    weights = {n: torch.randn(5, 40, 16) for n in x}  # a loss that weighs every output differently
    reference = {n: grus[n](x[n])[0] for n in x}
    stacked = bidirectional_grus(grus, x)
    for n in x:
        torch.testing.assert_close(stacked[n], reference[n], rtol=0, atol=1e-6)
    leaves = [*grus.parameters(), *x.values()]
    expected = torch.autograd.grad(sum((reference[n] * weights[n]).sum() for n in x), leaves)
    got = torch.autograd.grad(sum((stacked[n] * weights[n]).sum() for n in x), leaves)
    for a, b in zip(got, expected):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("steps", [1, BLOCK, 2 * BLOCK + 3])
def test_scoring_recurrence_matches_nn_gru_in_blocks_of_steps(steps):
    """Without autograd the recurrence runs in blocks of BLOCK steps (the backward direction reading
    each block from the end): any length, a last block cut short, widths of their own."""
    torch.manual_seed(3)
    widths = (64, 65, 66)
    grus = nn.ModuleDict({f"s{i}": nn.GRU(w, 8, batch_first=True, bidirectional=True) for i, w in enumerate(widths)})
    x = {f"s{i}": torch.randn(5, steps, w) for i, w in enumerate(widths)}
    with torch.inference_mode():
        scored = bidirectional_grus(grus, x)
        for n in x:
            torch.testing.assert_close(scored[n], grus[n](x[n])[0], rtol=0, atol=1e-6)


def _left_padded(lengths: list[int], steps: int, width: int, holes: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    mask = (torch.arange(steps)[None, :] >= steps - torch.tensor(lengths)[:, None]).float()
    if holes:  # not what the data holds, but the ragged form must not rely on contiguous real steps
        mask = mask * (torch.rand(mask.shape) > 0.2)
    return (torch.randn(len(lengths), steps, width) * mask[..., None]).requires_grad_(), mask


@pytest.mark.parametrize("holes", [False, True])
def test_ragged_inter_view_attention_matches_the_dense_form(holes):
    """Several chunks; long, short and empty views on either side; both views empty in a whole chunk."""
    torch.manual_seed(2)
    steps = 48
    lengths_x = [48, 3, 0, 17, 48, 1, 30, 0, 5, 48, 0, 0, 0, 0, 0, 0, 0, 0, 9, 2]
    lengths_y = [2, 48, 0, 0, 40, 1, 7, 12, 0, 48, 0, 0, 0, 0, 0, 0, 0, 0, 0, 33]
    v_x, mask_x = _left_padded(lengths_x, steps, 16, holes)
    v_y, mask_y = _left_padded(lengths_y, steps, 16, holes)
    scale = 1 / math.sqrt(16)
    dense = inter_view_attention(v_x, mask_x, v_y, mask_y, scale)
    ragged = ragged_inter_view_attention(v_x, mask_x, v_y, mask_y, scale)
    torch.testing.assert_close(ragged, dense, rtol=0, atol=1e-6)
    weights = torch.randn_like(dense)
    for a, b in zip(torch.autograd.grad((ragged * weights).sum(), (v_x, v_y)),
                    torch.autograd.grad((dense * weights).sum(), (v_x, v_y))):  # fmt: skip
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6)
