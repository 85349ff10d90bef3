"""Random but valid encoded batches, shaped like the data loader's output.

Each view holds the last ``seq_len`` events, LEFT-padded with all-zero rows (most recent event in
the last row); lengths vary per sample, and one view of sample 0 is entirely padding. Ids respect
Table 3's table sizes, the mask column is non-zero exactly on real steps, and fields that do not
apply (tap position of a swipe, button of a page tap) are sometimes 0, as the encoder writes them.
``merged`` interleaves the three views by random timestamps (early fusion input).
"""

from __future__ import annotations

import numpy as np
import torch

from dipn.features.spec import CUT_GROUPS, MASK_FEATURE, SEQUENCE_GROUPS, STATIC_GROUPS, FeatureConfig, merged_layout

VIEWS = tuple(g.value for g in SEQUENCE_GROUPS)
STATICS = tuple(g.value for g in (*STATIC_GROUPS, *CUT_GROUPS))


def _random_events(rng: np.random.Generator, fc: FeatureConfig, view: str, n: int) -> np.ndarray:
    """n real events of one view: every column a valid id, the mask column never 0."""
    columns = []
    for spec in fc.group(view):
        ids = rng.integers(0, spec.num_embeddings, size=n)
        if spec.name == MASK_FEATURE[spec.group]:
            ids = rng.integers(1, spec.num_embeddings, size=n)
        columns.append(ids)
    return np.stack(columns, axis=-1).astype(np.int32) if n else np.zeros((0, fc.width(view)), np.int32)


def _left_pad(events: np.ndarray, seq_len: int) -> np.ndarray:
    out = np.zeros((seq_len, events.shape[1]), np.int32)
    events = events[-seq_len:]
    if len(events):
        out[seq_len - len(events) :] = events
    return out


def make_batch(
    batch_size: int = 4,
    seq_len: int = 256,
    seed: int = 0,
    feature_config: FeatureConfig | None = None,
    empty_view: str | None = "tap",
) -> dict[str, np.ndarray]:
    """A batch dict of int32 id arrays (swipe, tap, browse, merged, history, profile, context) and float32
    labels (realtime, longterm). ``seq_len`` must match ``feature_config.sequence_length``."""
    fc = feature_config or FeatureConfig(sequence_length=seq_len)
    if fc.sequence_length != seq_len:
        raise ValueError("seq_len and feature_config.sequence_length differ")
    rng = np.random.default_rng(seed)
    views: dict[str, list[np.ndarray]] = {v: [] for v in VIEWS}
    merged = []
    for i in range(batch_size):
        # Lengths from "a handful" to "more than the window", so some views are truncated.
        lengths = {v: int(rng.integers(1, 2 * seq_len)) if rng.random() < 0.5 else int(rng.integers(1, 8)) for v in VIEWS}
        if i == 0 and empty_view is not None:
            lengths[empty_view] = 0
        events = {v: _random_events(rng, fc, v, lengths[v]) for v in VIEWS}
        for v in VIEWS:
            views[v].append(_left_pad(events[v], seq_len))
        # Early fusion: merge by timestamp, each row keeps its own view's columns.
        layout = merged_layout(fc)
        rows, stamps = [], []
        for v, start, stop in layout:
            block = np.zeros((lengths[v], layout[-1][2]), np.int32)
            block[:, start:stop] = events[v]
            rows.append(block)
            stamps.append(np.sort(rng.random(lengths[v])))
        order = np.argsort(np.concatenate(stamps), kind="stable")
        merged.append(_left_pad(np.concatenate(rows)[order], seq_len))
    batch = {v: np.stack(views[v]) for v in VIEWS}
    batch["merged"] = np.stack(merged)
    for group in STATICS:
        specs = fc.group(group)
        batch[group] = np.stack(
            [rng.integers(1, s.num_embeddings, size=batch_size) for s in specs], axis=-1
        ).astype(np.int32)
    batch["realtime"] = rng.integers(0, 2, size=batch_size).astype(np.float32)
    batch["longterm"] = np.maximum(batch["realtime"], rng.integers(0, 2, size=batch_size)).astype(np.float32)
    return batch


def plant_signal(batch: dict[str, np.ndarray], seed: int = 0) -> dict[str, np.ndarray]:
    """Replace the labels by an easy, learnable function of the ids (plus 10 % label noise):
    realtime <- the most recent browse action is a cart (id 4) or the user has many purchases this
    year; longterm <- realtime, or many tap events in the last 32 steps."""
    rng = np.random.default_rng(seed)
    out = dict(batch)
    last_browse_type = batch["browse"][:, -1, 0]
    purchases_year = batch["history"][:, 5]
    realtime = (last_browse_type == 4) | (purchases_year > 70)
    recent_taps = (batch["tap"][:, -32:, 0] != 0).sum(axis=1)
    longterm = realtime | (recent_taps > 24)
    flip = rng.random(len(realtime)) < 0.1
    out["realtime"] = (realtime ^ flip).astype(np.float32)
    out["longterm"] = (longterm ^ flip).astype(np.float32)
    return out


def model_inputs(batch: dict[str, np.ndarray], names: tuple[str, ...], dtype: torch.dtype = torch.int64) -> dict[str, torch.Tensor]:
    return {n: torch.as_tensor(batch[n]).to(dtype) for n in names}


def labels(batch: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    return {t: torch.as_tensor(batch[t]) for t in ("realtime", "longterm")}
