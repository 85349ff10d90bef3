"""A model's inputs at a cut, assembled in one place: the sample store, the golden cases and the
device all call ``inputs_at_cut``, so a sample cut at t and a phone scoring at t see the same ids.

Each caller gathers the left-padded windows of the views its own way (memory maps, a list of raw
events, ring buffers); what the cut time decides (``dipn.features.cut``), the static groups and the
early-fusion view are added here.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from dipn.features.contract import VIEW_COLUMNS
from dipn.features.cut import browse_at_cut, context_ids, last_action_ts, step_ages
from dipn.features.encoders import STATIC_ENCODERS
from dipn.features.manifest import FeatureManifest
from dipn.features.spec import MERGED, VIEWS


def left_pad(rows: np.ndarray, length: int, fill: int = 0) -> np.ndarray:
    """The last ``length`` rows, oldest first, after ``fill`` rows up to ``length`` (a sequence
    input's layout: the most recent event last)."""
    rows = np.asarray(rows)[-length:] if length else np.asarray(rows)[:0]
    out = np.full((length, *rows.shape[1:]), fill, dtype=rows.dtype)
    out[length - len(rows) :] = rows
    return out


def static_ids(group: str, values: Mapping[str, float], manifest: FeatureManifest) -> np.ndarray:
    """One user's history counts or profile levels (raw contract fields; a missing one 0) -> (1, F)
    int32 ids."""
    columns = {name: np.array([values.get(name, 0)]) for name in VIEW_COLUMNS[group] if name != "user_id"}
    return STATIC_ENCODERS[group](columns, manifest).astype(np.int32)


def merge_by_time(views: list[np.ndarray], times: list[np.ndarray]) -> np.ndarray:
    """Early fusion (paper 4.2): align the views by timestamp and keep the last ``length`` steps."""
    n, length = views[0].shape[:2]
    widths = [v.shape[2] for v in views]
    total = sum(widths)
    blocks = []
    col = 0
    for v, w in zip(views, widths, strict=True):
        block = np.zeros((n, length, total), dtype=np.int32)
        block[:, :, col : col + w] = v
        blocks.append(block)
        col += w
    stacked = np.concatenate(blocks, axis=1)
    ts = np.concatenate(times, axis=1)
    order = np.argsort(ts, axis=1, kind="stable")[:, -length:]
    return np.take_along_axis(stacked, order[:, :, None], axis=1)


def inputs_at_cut(
    windows: Mapping[str, np.ndarray],
    times: Mapping[str, np.ndarray],
    browse_stay: np.ndarray | None,
    cut_ts: np.ndarray,
    statics: Mapping[str, np.ndarray],
    manifest: FeatureManifest,
    merged: bool = False,
) -> dict[str, np.ndarray]:
    """Every input group of n cuts at ``cut_ts`` (n,).

    ``windows``: left-padded ids (n, T, F) of the views read, rows as the view's encoder wrote them
    (the at-cut columns still padding; a view not read: absent, no event); ``times``: their
    timestamps (n, T), ``NO_EVENT_TS`` on padding; ``browse_stay``: the browse events' stays as
    logged (n, T; ``dipn.features.cut.raw_stays``), None when there is none to cut; ``statics``: the
    history and profile ids. ``merged`` adds the early-fusion view (all three views must be given).

    What the cut decides, in this order: each step's age (t - ts), the stay so far of a browse page
    still open at t, then the context group: each view's recency, the hour of t and the time since
    the last browse event of each action in the browse window. Everything is read from the windows
    and t: a device needs no state besides its ring buffers of ids, timestamps and stays.
    """
    out = {view: step_ages(view, ids, times[view], cut_ts, manifest) for view, ids in windows.items()}
    if "browse" in out and browse_stay is not None:
        out["browse"] = browse_at_cut(out["browse"], times["browse"], browse_stay, cut_ts, manifest)
    actions = last_action_ts(out["browse"], times["browse"], manifest.config) if "browse" in out else None
    last = {view: stamps[:, -1] for view, stamps in times.items()}
    out["context"] = context_ids(cut_ts, last, manifest, actions)
    out.update(statics)
    if merged:
        out[MERGED] = merge_by_time([out[v] for v in VIEWS], [times[v] for v in VIEWS])
    return out
