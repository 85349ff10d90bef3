"""Samples on disk: encoded events once per view, and samples as windows into them.

A sample ("group" in the paper) is the last 256 events of each view up to a cut time, plus the
user's history and profile and two labels. Storing every window would repeat each event up to
256 times; we store each encoded event once (memory-mapped ``.npy``) and a sample as the bounds
of its window in each view. ``SampleStore.batch`` materializes left-padded tensors on demand.

Layout of a sample directory:
  dataset.json            index: shards, counts, label rates, split boundaries, build settings,
                          and what every other file holds (shape and dtype of each array, the
                          sha256 of features.json): a directory whose files do not match its
                          index (an interrupted rebuild, files copied from another build)
                          refuses to open instead of serving batches from a mix
  features.json           the feature manifest (vocabularies, bucket rules, tensor shapes)
  users.npy               user id strings, indexed by the user index used below
  shard-NNNNN/            one contiguous range of users
    {swipe,tap,browse}.npy      (events, width) int16 ids, sorted by user then time; the age
                                column (last) is padding here, filled at the cut
    {swipe,tap,browse}_ts.npy   (events,) int64 timestamps
    browse_stay.npy             (events,) int64 final stay ms (-1: page not left in the log); a
                                sample sees it only as far as its cut (``dipn.features.cut``)
    cut_user.npy cut_ts.npy     (samples,) int64
    bounds.npy                  (samples, 3, 2) int64: per view [lo, hi) rows of the window
    history.npy profile.npy     (samples, 6) int16
    labels.npy                  (samples, 2) uint8: realtime, longterm
    split.npy                   (samples,) uint8: 0 train, 1 val, 2 eval
    cut_type.npy                (samples,) uint8: 0 at an event, 1 at an idle moment
The step ages, the context group (recency of each view, hour of the cut, time since each browse
action) and the stays so far are computed from the windows when a batch is gathered, by the same
function the device calls when it scores (``dipn.features.inputs_at_cut``).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dipn.samples.cuts import CUT_TYPES, EVAL, TRAIN, VAL
from dipn.errors import DipnValidationError
from dipn.features import MERGED, STATIC_ENCODERS, TASKS, VIEWS, FeatureManifest, inputs_at_cut

STORE_FORMAT = 4  # 4: an age column per view, filled at the cut (issue 25); 3: the index describes every file
SPLITS = {"train": TRAIN, "val": VAL, "eval": EVAL}
SHARD_ARRAYS = (*VIEWS, *(f"{v}_ts" for v in VIEWS), "browse_stay", "bounds", "cut_user",
                "cut_ts", "history", "profile", "labels", "split", "cut_type")  # fmt: skip
_REBUILD = "rebuild it with dipn build-samples"
_BLOCK_ROWS = 1 << 18  # rows of ids compared at a time: a few MB of temporaries, whatever the store's size
_INDEX_FIELDS = {"shards": list, "files": dict, "events": dict, "views_present": list, "build": dict}


def describe_array(array: np.ndarray) -> dict[str, Any]:
    """What the index records of an array file, and ``open_array`` checks."""
    return {"shape": list(array.shape), "dtype": array.dtype.str}


def describe_files(root: Path, shards: list[str]) -> dict[str, Any]:
    """The index's record of every file (dataset.json "files"): the sha256 of features.json, the
    shape and dtype of users.npy and of each shard's arrays."""
    def array(path: Path) -> dict[str, Any]:
        return describe_array(np.load(path, mmap_mode="r"))

    return {"features.json": {"sha256": _sha256(root / "features.json")}, "users.npy": array(root / "users.npy"),
            **{f"{shard}/{name}.npy": array(root / shard / f"{name}.npy") for shard in shards for name in SHARD_ARRAYS}}  # fmt: skip


def _sha256(path: Path) -> str:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as exc:
        raise DipnValidationError(f"{path}: not readable ({exc.strerror or exc}); {_REBUILD}") from None


def open_array(root: Path, name: str, files: dict[str, Any]) -> np.ndarray:
    """The memory map of the .npy file ``root/name``, which must be what the index says it is."""
    path = root / name
    try:
        array = np.load(path, mmap_mode="r")
    except FileNotFoundError:
        raise DipnValidationError(f"{path}: missing from the sample directory; {_REBUILD}") from None
    except Exception as exc:  # noqa: BLE001 - truncated, not a .npy of plain numbers, a damaged header (numpy
        # parses it with ast and tokenize, which fail in their own ways)
        reason = str(exc).splitlines()[0][:160] if str(exc) else exc.__class__.__name__
        raise DipnValidationError(f"{path}: not a readable .npy array ({reason}); {_REBUILD}") from None
    found, expected = describe_array(array), files.get(name)
    if found != expected:
        raise DipnValidationError(
            f"{path}: holds {found}, the index (dataset.json) says {expected}: the files are not the ones the "
            f"index describes (an interrupted rebuild, or files of another build); {_REBUILD}"
        )
    return array


def _check_manifest(root: Path, files: dict[str, Any]) -> None:
    features, entry = root / "features.json", files.get("features.json")
    if _sha256(features) != (entry.get("sha256") if isinstance(entry, dict) else None):
        raise DipnValidationError(
            f"{features}: not the feature manifest the samples were encoded with (its sha256 differs from the "
            f"index's): its vocabularies would not match the ids in the shards; {_REBUILD}"
        )


def _text(users: np.ndarray) -> bool:
    """Whether every id of a unicode array is text. numpy reads any 32-bit code unit; one outside
    Unicode (a flipped bit) becomes a Python string that breaks whatever prints or encodes it."""
    if users.dtype.kind != "U" or not users.size:
        return True
    codes = np.asarray(users).view(users.dtype.byteorder.replace("|", "=") + "u4")
    return bool(codes.max() <= 0x10FFFF and not ((codes >= 0xD800) & (codes <= 0xDFFF)).any())


def read_index(root: Path) -> dict[str, Any]:
    """dataset.json, checked for the format and the fields a store needs."""
    index = root / "dataset.json"
    if not index.is_file():
        raise DipnValidationError(f"{root} is not a sample directory (no dataset.json)")
    try:
        info = json.loads(index.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DipnValidationError(f"{index}: not readable JSON ({exc}); {_REBUILD}") from None
    if not isinstance(info, dict):
        raise DipnValidationError(f"{index}: not a sample index (a JSON object); {_REBUILD}")
    if info.get("format") != STORE_FORMAT:
        raise DipnValidationError(f"{index}: sample format {info.get('format')!r}, this dipn reads "
                                  f"{STORE_FORMAT}; {_REBUILD}")  # fmt: skip
    for name, kind in _INDEX_FIELDS.items():
        if not isinstance(info.get(name), kind):
            raise DipnValidationError(f"{index}: no {kind.__name__} {name!r}; {_REBUILD}")
    if not all(isinstance(shard, dict) and isinstance(shard.get("name"), str) for shard in info["shards"]):
        raise DipnValidationError(f"{index}: a shard entry without its name; {_REBUILD}")
    for shard in info["shards"]:
        if not _plain_name(shard["name"]):
            raise DipnValidationError(f"{index}: shard {shard['name']!r} is not a directory inside the sample "
                                      f"directory (a plain name such as shard-00000); {_REBUILD}")  # fmt: skip
    if not all(v in VIEWS and _count(n) for v, n in info["events"].items()):
        raise DipnValidationError(f"{index}: 'events' must count each view's events (a view: a whole number "
                                  f">= 0), got {str(info['events'])[:120]}; {_REBUILD}")  # fmt: skip
    if not all(isinstance(v, str) for v in info["views_present"]):
        raise DipnValidationError(f"{index}: 'views_present' must list view names; {_REBUILD}")
    hours = [info["build"].get(k) for k in ("realtime_hours", "longterm_hours")]
    if not all(isinstance(h, (int, float)) and not isinstance(h, bool) and 0 < h < math.inf for h in hours):
        raise DipnValidationError(f"{index}: 'build' must hold the label horizons (realtime_hours, longterm_hours: "
                                  f"positive numbers); {_REBUILD}")  # fmt: skip
    return info


def _plain_name(name: str) -> bool:
    return bool(name) and name not in (".", "..") and not name.startswith(".") and "/" not in name \
        and "\\" not in name and "\0" not in name


def _count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _check_ids(ids: np.ndarray, specs: tuple, refuse: Callable[[str], DipnValidationError]) -> None:
    """Every column's ids inside its feature's embedding table: one comparison per id, read as
    unsigned so that a negative id is a huge one, in blocks over the memory map."""
    if len(ids) == 0:
        return
    unsigned = ids.view(np.dtype(ids.dtype.str.replace("i", "u")))
    limits = np.array([spec.num_embeddings for spec in specs])
    limits = limits.astype(unsigned.dtype) if limits.max() <= np.iinfo(unsigned.dtype).max else limits
    for start in range(0, len(ids), _BLOCK_ROWS):
        block = unsigned[start : start + _BLOCK_ROWS]
        if (block >= limits).any():
            column = int(np.flatnonzero((block >= limits).any(axis=0))[0])
            values = ids[start : start + _BLOCK_ROWS, column]
            raise refuse(f"column {specs[column].name} holds ids {int(values.min())}..{int(values.max())}, its "
                         f"vocabulary has {specs[column].num_embeddings} (from features.json)")


@dataclass
class Shard:
    """Memory-mapped arrays of one shard, each checked against the index's record of it."""

    root: Path
    name: str
    files: dict[str, Any]  # dataset.json "files"

    def __post_init__(self) -> None:
        def load(array: str) -> np.ndarray:
            found = open_array(self.root, f"{self.name}/{array}.npy", self.files)
            if found.dtype.kind not in "iu":
                raise DipnValidationError(f"{self.root / self.name / array}.npy: holds {found.dtype}, not whole "
                                          f"numbers; {_REBUILD}")  # fmt: skip
            return found

        self.events = {v: load(v) for v in VIEWS}
        self.event_ts = {v: load(f"{v}_ts") for v in VIEWS}
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

    def check_values(self, manifest: FeatureManifest, users: int) -> None:
        """Refuse values the store would index with or read as codes, vectorized over the memory
        maps: ids inside their embedding tables, windows inside the event arrays, labels, split
        and cut-type codes, user indices. A bit flipped in a shard is caught here, not as an
        IndexError in the middle of an evaluation or, worse, as silent garbage in training."""
        samples, cfg = len(self.cut_ts), manifest.config

        def refuse(array: str, what: str) -> DipnValidationError:
            return DipnValidationError(f"{self.root / self.name / array}.npy: {what}; {_REBUILD}")

        per_sample = {"cut_user": (), "bounds": (len(VIEWS), 2), "labels": (len(TASKS),), "split": (),
                      "cut_type": (), **{g: (len(cfg.group(g)),) for g in STATIC_ENCODERS}}  # fmt: skip
        for name, tail in per_sample.items():
            if getattr(self, name).shape != (samples, *tail):
                raise refuse(name, f"shape {getattr(self, name).shape}, expected ({samples}, {tail}) for {samples} samples")
        sizes = []
        for view in VIEWS:
            events = self.events[view]
            if events.ndim != 2 or events.shape[1] != len(cfg.group(view)) or self.event_ts[view].shape != events.shape[:1]:
                raise refuse(view, f"shape {events.shape}, {len(cfg.group(view))} columns and one timestamp per row expected")
            _check_ids(events, cfg.group(view), lambda what, v=view: refuse(v, what))
            sizes.append(len(events))
        if self.browse_stay.shape != self.events["browse"].shape[:1]:
            raise refuse("browse_stay", "not one stay per browse event")
        for group in STATIC_ENCODERS:
            _check_ids(getattr(self, group), cfg.group(group), lambda what, g=group: refuse(g, what))
        if samples == 0:
            return
        bounds = np.asarray(self.bounds)
        lo, hi = bounds[..., 0], bounds[..., 1]
        if not ((lo >= 0) & (lo <= hi) & (hi <= np.asarray(sizes)[None, :])).all():
            raise refuse("bounds", "a window outside its view's events (bounds must satisfy 0 <= lo <= hi <= events)")
        if self.labels.max() > 1:
            raise refuse("labels", f"a label of {int(self.labels.max())}; labels are 0 or 1")
        for name, codes in (("split", SPLITS.values()), ("cut_type", CUT_TYPES.values())):
            unknown = np.setdiff1d(np.unique(getattr(self, name)), list(codes))
            if len(unknown):
                raise refuse(name, f"unknown code(s) {unknown[:5].tolist()}; known: {sorted(codes)}")
        if self.cut_user.min() < 0 or self.cut_user.max() >= users:
            raise refuse("cut_user", f"a user index outside users.npy's {users} users")

    def window(self, view: str, rows: np.ndarray, length: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Left-padded ids (n, length, width), timestamps (n, length; padding = int64 min) and the
        event rows (n, length; padding = -1)."""
        v = VIEWS.index(view)
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
        self.info: dict[str, Any] = read_index(self.root)
        files = self.info["files"]
        _check_manifest(self.root, files)
        self.manifest = FeatureManifest.load(self.root / "features.json")
        self.length = self.manifest.config.sequence_length
        self._users = open_array(self.root, "users.npy", files)
        self.shards = [Shard(self.root, s["name"], files) for s in self.info["shards"]]
        if self._users.ndim != 1 or self._users.dtype.kind not in "US":
            raise DipnValidationError(f"{self.root / 'users.npy'}: not a list of user ids; {_REBUILD}")
        if not _text(self._users):
            raise DipnValidationError(f"{self.root / 'users.npy'}: holds a user id that is not text (a code point "
                                      f"outside Unicode: a damaged file); {_REBUILD}")  # fmt: skip
        for shard in self.shards:
            shard.check_values(self.manifest, len(self._users))
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
        views = tuple(v for v in VIEWS if events.get(v, 0) > 0)
        statics = tuple(g for g in ("history", "profile") if g in self.info.get("views_present", ()))
        # the context group is computed at every cut, whatever the logs hold
        return views + statics + ("context",) + ((MERGED,) if len(views) == len(VIEWS) else ())

    @property
    def users(self) -> np.ndarray:
        return np.asarray(self._users)

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
        windows, times = {}, {}
        cut_ts = np.asarray(shard.cut_ts[rows])
        stay = None
        for view in VIEWS:
            windows[view], times[view], event_rows = shard.window(view, rows, self.length)
            if view == "browse" and len(shard.browse_stay):
                stay = np.asarray(shard.browse_stay)[np.maximum(event_rows, 0)]
        statics = {group: np.asarray(getattr(shard, group)[rows], dtype=np.int32) for group in STATIC_ENCODERS}
        out = inputs_at_cut(windows, times, stay, cut_ts, statics, self.manifest, merged)
        labels = np.asarray(shard.labels[rows], dtype=np.float32)
        out["realtime"], out["longterm"] = labels[:, 0], labels[:, 1]
        out["user_index"] = np.asarray(shard.cut_user[rows])
        out["cut_ts"] = cut_ts
        out["cut_type"] = np.asarray(shard.cut_type[rows])
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
            out[name] = {"samples": n, **{f"{lab}_rate": round(float(r), 4) for lab, r in zip(TASKS, rates, strict=True)},
                         **types}  # fmt: skip
        return out

