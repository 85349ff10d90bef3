"""``check_model``: the contract every torch model of dipn keeps, checked on one preset.

After DeepCTR-Torch's ``tests/utils.py``: one helper that each model's test calls, so a new model
or preset is held to everything at once instead of to the tests someone remembered to copy.
What it checks, on short random sequences (every model is length-agnostic):
  * shapes: two finite (B,) logits for int32 and int64 ids; a single-task preset returns zeros for
    the other task and its loss ignores that task's labels;
  * padding invariance: ids written into padded steps change no score, a real step does;
  * all-padding views: finite outputs and finite gradients;
  * a few optimizer steps on a tiny batch lower the loss well below its start, and every
    parameter takes part in the graph;
  * the config survives a JSON round trip, and a checkpoint saved and loaded scores the same;
  * the positional wrapper traced by ``torch.jit.trace`` (what the exporters see) matches eager
    mode on another batch size and other padding.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from dipn.features import MERGED, TASKS, VIEWS
from dipn.features.manifest import FeatureManifest
from dipn.features.spec import FeatureConfig, mask_columns
from dipn.models import MODEL_CONFIGS, Preset, build_preset, multitask_loss
from dipn.training import checkpoint

try:  # tests/ is not a package; pytest puts it on sys.path (or, as a package, its parent)
    from synthetic_batches import labels, make_batch, model_inputs
except ImportError:  # pragma: no cover
    from tests.synthetic_batches import labels, make_batch, model_inputs

SHORT = FeatureConfig(sequence_length=32)


def upper_bounds(name: str, fc: FeatureConfig) -> list[int]:
    groups = VIEWS if name == MERGED else (name,)
    return [s.num_embeddings for g in groups for s in fc.group(g)]


def build(preset: Preset, fc: FeatureConfig = SHORT, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_preset(preset, fc).eval()


def check_model(preset: Preset, tmp_path: Path, fc: FeatureConfig = SHORT) -> None:
    model = build(preset, fc)
    # seed 6: every sequence input, the merged one too, has padded steps (check_padding_invariance)
    batch = make_batch(batch_size=6, seq_len=fc.sequence_length, seed=6, feature_config=fc)
    check_shapes(model, batch)
    check_padding_invariance(model, batch)
    check_all_padding(model, batch)
    check_round_trips(preset, model, batch, tmp_path)
    check_trace(model, fc)
    check_learns(build(preset, fc).train(), fc)


def check_shapes(model: torch.nn.Module, batch: dict[str, np.ndarray]) -> None:
    size = len(batch["realtime"])
    for dtype in (torch.int32, torch.int64):
        with torch.no_grad():
            logits = model(**model_inputs(batch, model.input_names, dtype))
        assert len(logits) == 2 and all(x.shape == (size,) and torch.isfinite(x).all() for x in logits)
    for absent in (t for t in TASKS if t not in model.tasks):  # single-task: the other logit is zeros
        other = TASKS.index(absent)
        assert torch.equal(logits[other], torch.zeros(size))
        y = labels(batch)
        flipped = dict(y, **{absent: 1.0 - y[absent]})
        assert torch.equal(multitask_loss(logits, y, model.tasks), multitask_loss(logits, flipped, model.tasks))


def check_padding_invariance(model: torch.nn.Module, batch: dict[str, np.ndarray]) -> None:
    fc = model.feature_config
    inputs = model_inputs(batch, model.input_names)
    sequences = [n for n in model.input_names if n in (*VIEWS, MERGED)]
    rng = np.random.default_rng(7)
    perturbed = dict(inputs)
    for name in sequences:
        ids = inputs[name].clone()
        columns = list(mask_columns(fc, name))
        padded = (ids[..., columns] == 0).all(dim=-1)
        assert padded.any()
        for column, upper in enumerate(upper_bounds(name, fc)):
            if column not in columns:
                noise = torch.as_tensor(rng.integers(1, upper, size=tuple(padded.shape)))
                ids[..., column] = torch.where(padded, noise, ids[..., column])
        perturbed[name] = ids
    with torch.no_grad():
        before, after = model(**inputs), model(**perturbed)
        assert all(torch.equal(a, b) for a, b in zip(before, after, strict=True))
        if sequences:  # the converse: a real step does count (its event type, read by every model)
            name = sequences[0]
            column = mask_columns(fc, name)[0]
            ids = inputs[name].clone()
            ids[:, -1, column] = ids[:, -1, column] % (upper_bounds(name, fc)[column] - 1) + 1
            moved = model(**dict(inputs, **{name: ids}))
            assert not all(torch.equal(a, b) for a, b in zip(before, moved, strict=True))


def check_all_padding(model: torch.nn.Module, batch: dict[str, np.ndarray]) -> None:
    model.train()
    inputs = model_inputs(batch, model.input_names)
    inputs = {n: torch.zeros_like(x) if n in (*VIEWS, MERGED) else x for n, x in inputs.items()}
    model.zero_grad()
    logits = model(**inputs)
    assert all(torch.isfinite(x).all() for x in logits)
    multitask_loss(logits, labels(batch), model.tasks).backward()
    bad = [n for n, p in model.named_parameters() if p.grad is not None and not torch.isfinite(p.grad).all()]
    assert not bad, f"non-finite gradients in {bad}"
    model.zero_grad()
    model.eval()


def check_round_trips(preset: Preset, model: torch.nn.Module, batch: dict[str, np.ndarray], tmp_path: Path) -> None:
    config = model.config
    assert MODEL_CONFIGS[preset.model].from_dict(json.loads(json.dumps(config.to_dict()))) == config
    path = checkpoint.save(tmp_path / f"{preset.name}.pt", {
        "model_name": preset.model, "model_config": checkpoint.model_config_dict(model),
        "model_state": model.state_dict(), "feature_manifest": FeatureManifest(model.feature_config).to_dict()})  # fmt: skip
    loaded, _, _ = checkpoint.load_model(path)
    inputs = model_inputs(batch, model.input_names)
    with torch.no_grad():
        for a, b in zip(model(**inputs), loaded(**inputs), strict=True):
            assert torch.equal(a, b)


def check_trace(model: torch.nn.Module, fc: FeatureConfig) -> None:
    names = model.input_names
    example = model_inputs(make_batch(batch_size=2, seq_len=fc.sequence_length, seed=11, feature_config=fc), names,
                           torch.int32)  # fmt: skip
    # Another batch size and other padding: nothing data- or shape-dependent may be baked in.
    other = model_inputs(make_batch(batch_size=3, seq_len=fc.sequence_length, seed=12, feature_config=fc,
                                    empty_view="browse"), names, torch.int32)  # fmt: skip
    with torch.no_grad():
        traced = torch.jit.trace(model.positional(), tuple(example[n] for n in names), check_trace=False)
        for a, b in zip(traced(*(other[n] for n in names)), model(**other), strict=True):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def check_learns(model: torch.nn.Module, fc: FeatureConfig, steps: int = 30) -> None:
    batch = make_batch(batch_size=8, seq_len=fc.sequence_length, seed=3, feature_config=fc)
    inputs, targets = model_inputs(batch, model.input_names, torch.int32), labels(batch)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(steps):
        optimizer.zero_grad()
        loss = multitask_loss(model(**inputs), targets, model.tasks)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert all(np.isfinite(losses)) and losses[-1] < 0.7 * losses[0], losses
    outside = [n for n, p in model.named_parameters() if p.grad is None]
    assert not outside, f"parameters outside the graph: {outside}"
