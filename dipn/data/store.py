"""Samples on disk: encoded events once per view, and samples as windows into them.

A sample ("group" in the paper) is the last 256 events of each view up to a cut time, plus the
user's history and profile and two labels. Storing every window would repeat each event up to
256 times; we store each encoded event once (memory-mapped ``.npy``) and a sample as the bounds
of its window in each view. ``SampleStore.batch`` materializes left-padded tensors on demand.

Layout of a sample directory:
  dataset.json            index: shards, counts, label rates, split boundaries, build settings
  features.json           the feature manifest (vocabularies, bucket rules, tensor shapes)
  users.npy               user id strings, indexed by the user index used below
  shard-NNNNN/            one contiguous range of users
    {swipe,tap,browse}.npy      (events, width) int16 ids, sorted by user then time
    {swipe,tap,browse}_ts.npy   (events,) int64 timestamps
    browse_stay.npy             (events,) int64 final stay ms (-1: page not left in the log); a
                                sample sees it only as far as its cut (``dipn.features.cut``)
    cut_user.npy cut_ts.npy     (samples,) int64
    bounds.npy                  (samples, 3, 2) int64: per view [lo, hi) rows of the window
    history.npy profile.npy     (samples, 6) int16
    labels.npy                  (samples, 2) uint8: realtime, longterm
    split.npy                   (samples,) uint8: 0 train, 1 val, 2 eval
    cut_type.npy                (samples,) uint8: 0 at an event, 1 at an idle moment
The context group (recency of each view, hour of the cut) is computed from the windows when a
batch is gathered, by the same function the device calls when it scores.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dipn.data.cuts import CUT_TYPES, EVAL, TRAIN, VAL
from dipn.errors import DipnValidationError
from dipn.features import SEQUENCE_GROUPS, FeatureManifest
from dipn.features.cut import browse_at_cut, context_ids

SEQUENCE_VIEWS = tuple(g.value for g in SEQUENCE_GROUPS)
STORE_FORMAT = 2  # 2: three splits, cut types, open-page stays, the context group
SPLITS = {"train": TRAIN, "val": VAL, "eval": EVAL}
LABELS = ("realtime", "longterm")


@dataclass
class Shard:
    """Memory-mapped arrays of one shard."""

    path: Path

    def __post_init__(self) -> None:
        def load(name: str) -> np.ndarray:
            return np.load(self.path / f"{name}.npy", mmap_mode="r")

        self.events = {v: load(v) for v in SEQUENCE_VIEWS}
        self.event_ts = {v: load(f"{v}_ts") for v in SEQUENCE_VIEWS}
        self.cut_user = load("cut_user")
        self.cut_ts = load("cut_ts")
        self.bounds = load("bounds")
        self.history = load("history")
        self.profile = load("profile")
        self.labels = load("labels")
        self.split = load("split")
        self.cut_type = load("cut_type")
        self.browse_stay = load("browse_stay")

    def __len__(self) -> int:
        return len(self.cut_ts)

    def window(self, view: str, rows: np.ndarray, length: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Left-padded ids (n, length, width), timestamps (n, length; padding = int64 min) and the
        event rows (n, length; padding = -1)."""
        v = SEQUENCE_VIEWS.index(view)
        lo, hi = self.bounds[rows, v, 0], self.bounds[rows, v, 1]
        pos = hi[:, None] - length + np.arange(length)[None, :]
        valid = pos >= lo[:, None]
        events, ts = self.events[view], self.event_ts[view]
        if len(events) == 0:
            return (np.zeros((len(rows), length, events.shape[1]), np.int32),
                    np.full((len(rows), length), np.iinfo(np.int64).min), np.full((len(rows), length), -1))  # fmt: skip
        safe = np.where(valid, pos, 0)
        ids = np.where(valid[..., None], events[safe], 0).astype(np.int32)
        times = np.where(valid, ts[safe], np.iinfo(np.int64).min)
        return ids, times, np.where(valid, pos, -1)


class SampleStore:
    """Read side of a sample directory; cheap to open, batches gathered from memory maps."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        index = self.root / "dataset.json"
        if not index.exists():
            raise DipnValidationError(f"{self.root} is not a sample directory (no dataset.json)")
        self.info: dict[str, Any] = json.loads(index.read_text())
        if self.info.get("format") != STORE_FORMAT:
            raise DipnValidationError(f"{index}: unsupported sample format {self.info.get('format')}")
        self.manifest = FeatureManifest.load(self.root / "features.json")
        self.length = self.manifest.config.sequence_length
        self.shards = [Shard(self.root / s["name"]) for s in self.info["shards"]]
        self.offsets = np.cumsum([0] + [len(s) for s in self.shards])
        self.split = np.concatenate([np.asarray(s.split) for s in self.shards]) if self.shards else np.zeros(0, np.uint8)
        self.labels = np.concatenate([np.asarray(s.labels) for s in self.shards]) if self.shards else np.zeros((0, 2), np.uint8)
        self.cut_type = np.concatenate([np.asarray(s.cut_type) for s in self.shards]) if self.shards else np.zeros(0, np.uint8)

    def __len__(self) -> int:
        return int(self.offsets[-1])

    @property
    def groups_present(self) -> tuple[str, ...]:
        """Input groups the samples hold: views with at least one event, history and profile if
        given, the context group.

        The early-fusion input ``merged`` counts as present only when all three views are.
        """
        events = self.info.get("events", {})
        views = tuple(v for v in SEQUENCE_VIEWS if events.get(v, 0) > 0)
        statics = tuple(g for g in ("history", "profile") if g in self.info.get("views_present", ()))
        # the context group is computed at every cut, whatever the logs hold
        return views + statics + ("context",) + (("merged",) if len(views) == len(SEQUENCE_VIEWS) else ())

    @property
    def users(self) -> np.ndarray:
        return np.load(self.root / "users.npy")

    def indices(self, split: str | None = None) -> np.ndarray:
        """Global sample indices of a split ("train", "val", "eval") or of all samples."""
        if split is None:
            return np.arange(len(self))
        if split not in SPLITS:
            raise DipnValidationError(f"unknown split {split!r}; expected one of {list(SPLITS)}")
        return np.flatnonzero(self.split == SPLITS[split])

    def batch(self, indices: np.ndarray, *, merged: bool = False) -> dict[str, np.ndarray]:
        """Tensors for the given samples, in the given order (see the model's input contract).

        ``merged`` adds the early-fusion input: the last 256 events of all three views merged by
        timestamp, each row with its own view's columns and zeros in the others'.
        """
        indices = np.asarray(indices, dtype=np.int64)
        if len(indices) and (indices.min() < 0 or indices.max() >= len(self)):
            raise IndexError(f"sample index out of range 0..{len(self) - 1}")
        shard_of = np.searchsorted(self.offsets, indices, side="right") - 1
        parts: list[tuple[np.ndarray, dict[str, np.ndarray]]] = []
        for s in np.unique(shard_of):
            where = np.flatnonzero(shard_of == s)
            parts.append((where, self._shard_batch(int(s), indices[where] - self.offsets[s], merged)))
        out: dict[str, np.ndarray] = {}
        for where, part in parts:
            for key, value in part.items():
                if key not in out:
                    out[key] = np.empty((len(indices), *value.shape[1:]), dtype=value.dtype)
                out[key][where] = value
        return out

    def _shard_batch(self, s: int, rows: np.ndarray, merged: bool) -> dict[str, np.ndarray]:
        shard = self.shards[s]
        out: dict[str, np.ndarray] = {}
        times = {}
        cut_ts = np.asarray(shard.cut_ts[rows])
        for view in SEQUENCE_VIEWS:
            out[view], times[view], event_rows = shard.window(view, rows, self.length)
            if view == "browse" and len(shard.browse_stay):
                stay = np.asarray(shard.browse_stay)[np.maximum(event_rows, 0)]
                out[view] = browse_at_cut(out[view], times[view], stay, cut_ts, self.manifest)
        out["context"] = context_ids(cut_ts, {v: t[:, -1] for v, t in times.items()}, self.manifest)
        out["history"] = np.asarray(shard.history[rows], dtype=np.int32)
        out["profile"] = np.asarray(shard.profile[rows], dtype=np.int32)
        labels = np.asarray(shard.labels[rows], dtype=np.float32)
        out["realtime"], out["longterm"] = labels[:, 0], labels[:, 1]
        out["user_index"] = np.asarray(shard.cut_user[rows])
        out["cut_ts"] = cut_ts
        out["cut_type"] = np.asarray(shard.cut_type[rows])
        if merged:
            out["merged"] = merge_by_time([out[v] for v in SEQUENCE_VIEWS], [times[v] for v in SEQUENCE_VIEWS])
        return out

    def cuts(self, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(user index, cut time) of the given samples, without materializing their tensors."""
        indices = np.asarray(indices, dtype=np.int64)
        shard_of = np.searchsorted(self.offsets, indices, side="right") - 1
        users, times = np.empty(len(indices), np.int64), np.empty(len(indices), np.int64)
        for s in np.unique(shard_of):
            where = np.flatnonzero(shard_of == s)
            rows = indices[where] - self.offsets[s]
            users[where] = self.shards[s].cut_user[rows]
            times[where] = self.shards[s].cut_ts[rows]
        return users, times

    def split_counts(self) -> dict[str, dict[str, float]]:
        """Samples, label rates and cut types per split."""
        out = {}
        for name, code in SPLITS.items():
            sel = self.split == code
            n = int(sel.sum())
            rates = self.labels[sel].mean(axis=0) if n else np.zeros(2)
            types = {f"{t}_cuts": int((self.cut_type[sel] == c).sum()) for t, c in CUT_TYPES.items()}
            out[name] = {"samples": n, **{f"{lab}_rate": round(float(r), 4) for lab, r in zip(LABELS, rates, strict=True)},
                         **types}  # fmt: skip
        return out


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
