"""Raw logs -> samples: encode every event once, cut, label, split by time, write shards."""

from __future__ import annotations

import datetime as dt
import json
import math
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from tqdm.auto import tqdm

from dipn.errors import DipnValidationError
from dipn.features import (
    SEQUENCE_ENCODERS,
    STATIC_ENCODERS,
    VIEWS,
    FeatureConfig,
    FeatureManifest,
    Kind,
    Vocabulary,
    previous_timestamps,
    vocab_key,
)
from dipn.features.columns import Factorized
from dipn.features.contract import SCHEMAS, TIME_COLUMN
from dipn.features.cut import raw_stays
from dipn.features.spec import BROWSE_ACTIONS, value_to_id
from dipn.logs.readers import read_dataset
from dipn.outputs import SAMPLES, replacing
from dipn.samples.cuts import (
    EVENT_CUT,
    HOUR_MS,
    IDLE_CUT,
    CutWindow,
    DrawPosition,
    IdleRule,
    cut_window,
    key_user,
    sample_cuts,
    user_time_key,
)
from dipn.samples.store import SPLITS, STORE_FORMAT, SampleStore, describe_files


# Polars frames of raw events -> the encoder's numpy columns.
def factorized(series: pl.Series) -> Factorized:
    """A string column as sorted distinct values plus codes; empty strings and nulls are absent."""
    s = series.cast(pl.Utf8)
    s = pl.select(pl.when(s == "").then(None).otherwise(s)).to_series()
    categories = s.drop_nulls().unique().sort().to_numpy().astype(str)
    codes = s.rank("dense").fill_null(0).cast(pl.Int64).to_numpy() - 1
    return Factorized(categories, codes)


def to_columns(frame: pl.DataFrame, view: str) -> dict[str, np.ndarray | Factorized]:
    """Columns of one view in the encoder's input form; numeric nulls become NaN."""
    out: dict[str, np.ndarray | Factorized] = {}
    for rule in SCHEMAS[view]:
        if rule.name == "user_id":
            continue
        series = frame[rule.name]
        if rule.dtype == "str":
            out[rule.name] = factorized(series)
        elif rule.dtype == "int" and not rule.nullable:
            out[rule.name] = series.cast(pl.Int64).to_numpy()
        else:
            out[rule.name] = series.cast(pl.Float64).fill_null(np.nan).to_numpy()
    return out


ENCODE_CHUNK_ROWS = 2_000_000
_BROWSE_TYPE = [s.name for s in FeatureConfig().group("browse")].index("type")
_PURCHASE_ID = int(value_to_id(BROWSE_ACTIONS.index("purchase")))


@dataclass(frozen=True)
class BuildConfig:
    """Sample-building settings; defaults follow the paper's section 6.1."""

    cuts_per_day: float = 28.0  # about 400 groups per user over 14 days
    eval_days: float = 1.0  # the last day is evaluation (test)
    val_days: float = 1.0  # the day before it is validation (early stopping, model choice)
    realtime_hours: float = 1.0
    longterm_hours: float = 24.0
    idle_timer_ms: int = 60_000  # idle cuts: where a timer trigger scores (dipn.samples.cuts)
    idle_limit_ms: int = 30 * 60_000
    idle_share: float | None = None  # None: as the timer would score them
    seed: int = 0
    users_per_shard: int = 5000
    lenient: bool = False
    utc_offset_minutes: int | None = None  # hour-of-day time zone; None: meta.json's, else UTC
    min_count: int = 1  # vocabularies keep values seen at least this often in the training logs; rarer -> OOV

    def __post_init__(self) -> None:
        spans = (self.cuts_per_day, self.eval_days, self.val_days, self.realtime_hours, self.longterm_hours)
        if not all(math.isfinite(x) for x in spans):
            raise DipnValidationError("cuts per day, eval and val days and label horizons must be finite numbers")
        if not (self.cuts_per_day > 0 and self.eval_days > 0 and self.val_days >= 0):
            raise DipnValidationError("cuts per day and eval days must be > 0, val days >= 0")
        if not 0 < self.realtime_hours <= self.longterm_hours:
            raise DipnValidationError(
                f"label horizons must satisfy 0 < realtime ({self.realtime_hours:g} h) <= longterm ({self.longterm_hours:g} h)"
            )
        if self.users_per_shard < 1:
            raise DipnValidationError("users per shard must be >= 1")
        if self.seed < 0:
            raise DipnValidationError(f"seed must be >= 0, got {self.seed}")
        if self.min_count < 1:
            raise DipnValidationError(f"min count must be >= 1, got {self.min_count}")
        if self.utc_offset_minutes is not None and not -24 * 60 < self.utc_offset_minutes < 24 * 60:
            raise DipnValidationError(f"utc offset must lie within 24 hours of UTC, got {self.utc_offset_minutes} min")
        IdleRule(self.idle_timer_ms, self.idle_limit_ms, self.idle_share)  # validates the idle settings

    @property
    def idle(self) -> IdleRule:
        return IdleRule(self.idle_timer_ms, self.idle_limit_ms, self.idle_share)

    @property
    def horizon_ms(self) -> int:
        """The longest label horizon: cuts stop this long before the logs end."""
        return int(max(self.realtime_hours, self.longterm_hours) * HOUR_MS)


def build_samples(
    raw_dir: str | Path,
    out_dir: str | Path,
    config: BuildConfig = BuildConfig(),
    manifest: FeatureManifest | None = None,
    progress: bool = True,
    cuts_file: str | Path | None = None,
) -> dict[str, Any]:
    """Build a sample directory (see ``dipn.samples.store``) from a directory of raw logs.

    Vocabularies are built from the training part of the logs (events before the evaluation
    period) unless a manifest is given, e.g. to encode new logs for an existing model.
    ``cuts_file`` (CSV ``user_id, ts`` and optional ``split``) replaces the random cuts, so dipn
    is scored at exactly the moments another system was scored at. The directory is built beside
    ``out_dir`` and replaces it whole at the end (``dipn.outputs.replacing``): a kill leaves the
    previous samples, never a mix.
    """
    with replacing(Path(out_dir), SAMPLES) as staging:
        return _build(Path(raw_dir), staging, config, manifest, progress, cuts_file)


def _build(
    raw_dir: Path, out_dir: Path, config: BuildConfig, manifest: FeatureManifest | None, progress: bool,
    cuts_file: str | Path | None,
) -> dict[str, Any]:  # fmt: skip
    started = time.perf_counter()
    steps = tqdm(total=6, desc="build-samples", unit="step", disable=not progress)

    steps.set_postfix_str("reading")
    results = read_dataset(raw_dir, lenient=config.lenient)
    frames = {view: r.frame for view, r in results.items()}
    if not any(len(frames.get(v, ())) for v in VIEWS):
        raise DipnValidationError(f"{raw_dir}: no swipe, tap or browse events (no such log, or only a header)")
    read_reports = {view: str(r.report) for view, r in results.items()}
    steps.update()

    steps.set_postfix_str("indexing users")
    users = _all_users(frames)
    frames = {v: _with_user_index(f, users) for v, f in frames.items()}
    base_ms, last_ms = _time_range(frames)
    window, manifest, config = window_and_vocabularies(
        raw_dir, config, manifest, base_ms, last_ms, cuts_file is None, steps,
        lambda empty, eval_start_ms: build_vocabularies(frames, empty, eval_start_ms, config.min_count),
    )  # fmt: skip

    steps.set_postfix_str("encoding events")
    encoded = {v: encode_view(frames, v, manifest, base_ms) for v in VIEWS}
    steps.update()

    steps.set_postfix_str("cutting and labelling")
    if cuts_file is None:
        cuts, cut_report = random_cuts(encoded, window, config, base_ms), {}
    else:
        cuts, cut_report = given_cuts(Path(cuts_file), users, base_ms, last_ms, config)
    samples = assemble_samples(cuts, encoded, frames, manifest, len(users), window, config, base_ms)
    steps.update()

    steps.set_postfix_str("writing")
    manifest.save(out_dir / "features.json")
    np.save(out_dir / "users.npy", users)
    shards = _write_shards(out_dir, encoded, samples, len(users), config.users_per_shard)
    steps.update()
    steps.close()

    info = dataset_info(
        raw_dir, config, users=len(users), views_present=sorted(frames),
        events={v: int(len(encoded[v]["ids"])) for v in VIEWS}, window=window,
        read_reports=read_reports, cuts={"source": str(cuts_file) if cuts_file else "random", **cut_report},
        shards=shards,
    )  # fmt: skip
    return write_index(out_dir, info, started)


def read_meta(raw_dir: Path) -> dict[str, Any] | None:
    """The raw directory's ``meta.json`` (simulator or importer: time zone, day boundaries), if any."""
    path = raw_dir / "meta.json"
    if not path.exists():
        return None
    try:
        meta = json.loads(path.read_text())
        for key in ("start_ms", "cut_end_ms"):
            int(meta[key])
        for key in ("end_ms", "utc_offset_minutes"):  # optional
            int(meta.get(key, 0))
    except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
        raise DipnValidationError(f"{path}: not a readable meta.json with integer start_ms and cut_end_ms "
                                  f"(and end_ms, utc_offset_minutes if given) ({exc!r})") from None  # fmt: skip
    return meta


def build_window(base_ms: int, last_ms: int, config: BuildConfig, meta: dict[str, Any] | None,
                 drawn: bool = True) -> CutWindow:  # fmt: skip
    """The cut window and its train / val / eval days, whichever engine builds (``drawn``: random
    cuts, not a --cuts file)."""
    return cut_window(base_ms, last_ms, config.eval_days, meta, config.val_days, config.horizon_ms, drawn)


def window_and_vocabularies(
    raw_dir: Path, config: BuildConfig, manifest: FeatureManifest | None, base_ms: int, last_ms: int, drawn: bool,
    steps: tqdm, vocabularies: Callable[[FeatureManifest, int], FeatureManifest],
) -> tuple[CutWindow, FeatureManifest, BuildConfig]:
    """The steps both engines share once events are indexed: the cut window, the manifest (the
    engine's own vocabulary pass over the training period, unless one was given) and the config
    as applied, whose utc offset is the one the hour-of-day ids were made in (dataset.json records
    it, not the option's None)."""
    meta = read_meta(raw_dir)
    window = build_window(base_ms, last_ms, config, meta, drawn=drawn)
    steps.update()
    steps.set_postfix_str("vocabularies")
    if manifest is None:
        manifest = vocabularies(empty_manifest(config, meta), window.eval_start_ms)
    steps.update()
    return window, manifest, replace(config, utc_offset_minutes=manifest.config.utc_offset_minutes)


def empty_manifest(config: BuildConfig, meta: dict[str, Any] | None) -> FeatureManifest:
    """The manifest vocabularies are built into: the hour-of-day feature in the time zone the
    build config names, else the one the log's ``meta.json`` records, else UTC."""
    offset = config.utc_offset_minutes
    if offset is None:
        offset = int((meta or {}).get("utc_offset_minutes", 0))
    return FeatureManifest(FeatureConfig(utc_offset_minutes=offset))


def dataset_info(
    raw_dir: Path,
    config: BuildConfig,
    *,
    users: int,
    views_present: list[str],
    events: dict[str, int],
    window: CutWindow,
    read_reports: dict[str, str],
    cuts: dict[str, Any],
    shards: list[dict[str, Any]],
) -> dict[str, Any]:
    """The index of a sample directory (dataset.json), whichever engine built it."""
    return {
        "format": STORE_FORMAT,
        "source": str(raw_dir.resolve()),
        "build": asdict(config),
        "users": users,
        "views_present": views_present,
        "events": events,
        "window": {"start_ms": window.start_ms, "val_start_ms": window.val_start_ms,
                   "eval_start_ms": window.eval_start_ms, "end_ms": window.end_ms},  # fmt: skip
        "labels": {"realtime": f"purchase in (t, t + {config.realtime_hours:g} h]",
                   "longterm": f"purchase in (t, t + {config.longterm_hours:g} h]"},  # fmt: skip
        "read_reports": read_reports,
        "cuts": cuts,
        "shards": shards,
    }


def write_index(out_dir: Path, info: dict[str, Any], started: float) -> dict[str, Any]:
    """Write dataset.json, with what each file holds, then complete it with what the store reads
    back (split counts)."""
    info["files"] = describe_files(out_dir, [s["name"] for s in info["shards"]])
    (out_dir / "dataset.json").write_text(json.dumps(info, indent=1) + "\n")
    store = SampleStore(out_dir)
    info["splits"] = store.split_counts()
    info["groups_present"] = list(store.groups_present)
    info["build_seconds"] = round(time.perf_counter() - started, 2)
    (out_dir / "dataset.json").write_text(json.dumps(info, indent=1) + "\n")
    return info


def build_vocabularies(
    frames: dict[str, pl.DataFrame], manifest: FeatureManifest, before_ms: int, min_count: int = 1
) -> FeatureManifest:
    """Most frequent values of each vocabulary feature in the logs before ``before_ms`` (at least
    ``min_count`` events each), the tables sized to them."""
    vocabs = {}
    for spec in manifest.config.features:
        if spec.kind is not Kind.VOCABULARY:
            continue
        frame = frames.get(spec.group.value)
        counts: Counter[str] = Counter()
        if frame is not None:
            train = frame.filter(pl.col("ts") < before_ms)[spec.source].drop_nulls()
            vc = train.value_counts()
            counts = Counter(dict(zip(vc[spec.source].to_list(), vc["count"].to_list(), strict=True)))
        vocabs[vocab_key(spec)] = Vocabulary.build(counts, spec.vocab_size, min_count)
    return manifest.with_vocabularies(vocabs).sized_to_vocabularies()


def _all_users(frames: dict[str, pl.DataFrame]) -> np.ndarray:
    ids = pl.concat([f.select("user_id") for f in frames.values()])["user_id"].unique().sort()
    return ids.to_numpy().astype(str)


def _with_user_index(frame: pl.DataFrame, users: np.ndarray) -> pl.DataFrame:
    index = pl.Series(np.arange(len(users), dtype=np.int64))
    return frame.with_columns(
        pl.col("user_id").replace_strict(pl.Series(users), index, return_dtype=pl.Int64).alias("_uidx")
    )


def _time_range(frames: dict[str, pl.DataFrame]) -> tuple[int, int]:
    lo, hi = [], []
    for view, frame in frames.items():
        if view in TIME_COLUMN and len(frame):
            lo.append(int(frame[TIME_COLUMN[view]].min()))
            hi.append(int(frame[TIME_COLUMN[view]].max()))
    return min(lo), max(hi)


def encode_view(
    frames: dict[str, pl.DataFrame], view: str, manifest: FeatureManifest, base_ms: int
) -> dict[str, np.ndarray]:
    width = manifest.config.width(view)
    frame = frames.get(view)
    if frame is None or len(frame) == 0:
        empty = np.zeros(0, np.int64)
        out = {"ids": np.zeros((0, width), np.int16), "ts": empty, "user": empty, "keys": empty}
        return out | ({"stay": empty} if view == "browse" else {})
    user = frame["_uidx"].to_numpy()
    ts = frame["ts"].to_numpy().astype(np.int64)
    ids = np.empty((len(frame), width), np.int16)
    for lo, hi in _user_aligned_chunks(user, ENCODE_CHUNK_ROWS):  # bounds the encoder's temporaries
        part = frame.slice(lo, hi - lo)
        prev = previous_timestamps(ts[lo:hi], user[lo:hi])
        ids[lo:hi] = SEQUENCE_ENCODERS[view](to_columns(part, view), manifest, prev)
    out = {"ids": ids, "ts": ts, "user": user, "keys": user_time_key(user, ts, base_ms)}
    if view == "browse":  # the final stay; a sample sees it only as far as its cut (dipn.features.cut)
        out["stay"] = raw_stays(frame["action"].to_numpy(), frame["stay_ms"].cast(pl.Float64).to_numpy())
    return out


def _user_aligned_chunks(user: np.ndarray, rows: int) -> list[tuple[int, int]]:
    """Row ranges of about ``rows`` rows that never split a user (time gaps stay within a user)."""
    chunks, lo = [], 0
    while lo < len(user):
        hi = lo + rows
        if hi >= len(user):
            hi = len(user)
        else:
            start_of_user = int(np.searchsorted(user, user[hi], side="left"))
            hi = start_of_user if start_of_user > lo else int(np.searchsorted(user, user[lo], side="right"))
        chunks.append((lo, hi))
        lo = hi
    return chunks


def random_cuts(
    encoded: dict[str, dict[str, np.ndarray]],
    window: CutWindow,
    config: BuildConfig,
    base_ms: int,
    position: DrawPosition = DrawPosition(),
) -> dict[str, np.ndarray]:
    """Random cuts (section 6.1) of the encoded users; ``position`` places them in the dataset."""
    user = np.concatenate([encoded[v]["user"] for v in VIEWS])
    ts = np.concatenate([encoded[v]["ts"] for v in VIEWS])
    cut_user, cut_ts, cut_type = sample_cuts(user, ts, window, config.cuts_per_day, config.seed, position, config.idle)
    return {"user": cut_user, "ts": cut_ts, "keys": user_time_key(cut_user, cut_ts, base_ms), "cut_type": cut_type}


def given_cuts(
    path: Path, users: np.ndarray, base_ms: int, last_ms: int, config: BuildConfig
) -> tuple[dict[str, np.ndarray], dict[str, int]]:
    """Cuts read from a CSV; cuts naming unknown users or preceding the logs are dropped, counted."""
    try:
        frame = pl.read_csv(path, schema_overrides={"user_id": pl.Utf8, "ts": pl.Int64})
    except (OSError, pl.exceptions.PolarsError) as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DipnValidationError(f"{path}: not a readable cuts CSV (user_id, ts[, split]): {first_line}") from None
    missing = {"user_id", "ts"} - set(frame.columns)
    if missing:
        raise DipnValidationError(f"{path}: missing column(s) {sorted(missing)}; expected user_id, ts[, split]")
    user_ids = frame["user_id"].to_numpy().astype(str)
    ts = frame["ts"].to_numpy()
    pos = np.searchsorted(users, user_ids)
    known = (pos < len(users)) & (users[np.minimum(pos, len(users) - 1)] == user_ids)
    in_range = ts >= base_ms
    keep = known & in_range
    report = {"given": len(frame), "dropped_unknown_user": int((~known).sum()),
              "dropped_before_logs": int((known & ~in_range).sum()),
              "label_window_beyond_logs": int((ts[keep] + config.longterm_hours * HOUR_MS > last_ms).sum())}  # fmt: skip
    if not keep.any():
        raise DipnValidationError(f"{path}: none of its {len(frame):,} cuts can be built: " + _why_no_cuts(known, ts, base_ms, last_ms))
    cut_user, cut_ts = pos[keep].astype(np.int64), ts[keep].astype(np.int64)
    cuts = {"user": cut_user, "ts": cut_ts, "keys": user_time_key(cut_user, cut_ts, base_ms)}
    if "split" in frame.columns:
        split = frame["split"].cast(pl.Utf8).to_numpy()[keep]
        bad = sorted(set(split.tolist()) - set(SPLITS))
        if bad:
            raise DipnValidationError(f"{path}: split must be one of {list(SPLITS)}, got {bad[:5]}")
        cuts["split"] = np.array([SPLITS[s] for s in split], dtype=np.uint8)
    return cuts, report


def _why_no_cuts(known: np.ndarray, ts: np.ndarray, base_ms: int, last_ms: int) -> str:
    if not len(known):
        return "the file holds no rows"
    if not known.any():
        return "no user_id of the file is a user of the logs"
    first = dt.datetime.fromtimestamp(base_ms / 1000, dt.UTC).isoformat()
    as_ms = ts[known] * 1000  # read as seconds, would the cuts fall inside the logs?
    seconds = bool(((as_ms >= base_ms) & (as_ms <= last_ms)).any())
    return (f"every cut of a known user precedes the logs' first event ({first})"
            + ("; ts looks like seconds, and --cuts takes integer milliseconds since the epoch" if seconds else ""))


def assemble_samples(
    cuts: dict[str, np.ndarray],
    encoded: dict[str, dict[str, np.ndarray]],
    frames: dict[str, pl.DataFrame],
    manifest: FeatureManifest,
    n_users: int,
    window: CutWindow,
    config: BuildConfig,
    base_ms: int,
) -> dict[str, np.ndarray]:
    keys, length = cuts["keys"], manifest.config.sequence_length
    at_event = np.zeros(len(keys), bool)
    user_first = user_time_key(cuts["user"], np.full(len(keys), base_ms), base_ms)
    bounds = np.zeros((len(keys), len(VIEWS), 2), np.int64)
    for v, view in enumerate(VIEWS):
        view_keys = encoded[view]["keys"]
        hi = np.searchsorted(view_keys, keys, side="right")
        lo = np.searchsorted(view_keys, user_first, side="left")
        bounds[:, v] = np.stack([np.maximum(lo, hi - length), hi], axis=-1)
        if len(view_keys):
            at_event |= (hi > 0) & (view_keys[np.maximum(hi - 1, 0)] == keys)
    labels = np.stack(
        [_purchase_within(keys, encoded, config.realtime_hours * HOUR_MS),
         _purchase_within(keys, encoded, config.longterm_hours * HOUR_MS)], axis=-1
    ).astype(np.uint8)  # fmt: skip
    return {
        "user": cuts["user"],
        "ts": cuts["ts"],
        "bounds": bounds,
        "history": _history_at(keys, frames.get("history"), manifest, base_ms),
        "profile": _profile_of(cuts["user"], frames.get("profile"), manifest, n_users),
        "labels": labels,
        "split": cuts["split"] if "split" in cuts else window.split_of(cuts["ts"]),
        # a given cut is an event cut when the user has an event at that very moment
        "cut_type": cuts["cut_type"] if "cut_type" in cuts else np.where(at_event, EVENT_CUT, IDLE_CUT).astype(np.uint8),
    }


def _purchase_within(keys: np.ndarray, encoded: dict, horizon_ms: float) -> np.ndarray:
    """Whether the user purchases in (t, t + horizon] (eq. 5-6 labels)."""
    browse = encoded["browse"]
    is_purchase = browse["ids"][:, _BROWSE_TYPE] == _PURCHASE_ID
    pkeys = browse["keys"][is_purchase]
    after = np.searchsorted(pkeys, keys, side="right")
    upto = np.searchsorted(pkeys, keys + np.int64(horizon_ms), side="right")
    return upto > after


def _history_at(
    keys: np.ndarray, frame: pl.DataFrame | None, manifest: FeatureManifest, base_ms: int
) -> np.ndarray:
    """The latest history snapshot taken at or before each cut; padding when there is none."""
    out = np.zeros((len(keys), manifest.config.width("history")), np.int16)
    if frame is None or len(frame) == 0:
        return out
    frame = frame.filter(pl.col("as_of_ts") >= base_ms).sort(["_uidx", "as_of_ts"])
    hkeys = user_time_key(frame["_uidx"].to_numpy(), frame["as_of_ts"].to_numpy(), base_ms)
    ids = STATIC_ENCODERS["history"](to_columns(frame, "history"), manifest)
    pos = np.searchsorted(hkeys, keys, side="right") - 1
    ok = (pos >= 0) & (key_user(hkeys[np.maximum(pos, 0)]) == key_user(keys))
    out[ok] = ids[pos[ok]]
    return out


def _profile_of(
    cut_user: np.ndarray, frame: pl.DataFrame | None, manifest: FeatureManifest, n_users: int
) -> np.ndarray:
    per_user = np.zeros((n_users, manifest.config.width("profile")), np.int16)
    if frame is not None and len(frame):
        per_user[frame["_uidx"].to_numpy()] = STATIC_ENCODERS["profile"](to_columns(frame, "profile"), manifest)
    return per_user[cut_user]


def _write_shards(
    out_dir: Path, encoded: dict, samples: dict[str, np.ndarray], n_users: int, users_per_shard: int
) -> list[dict[str, Any]]:
    shards = []
    for s, first in enumerate(range(0, max(n_users, 1), users_per_shard)):
        last = min(first + users_per_shard, n_users)
        sel = (samples["user"] >= first) & (samples["user"] < last)
        part = {k: v[sel] for k, v in samples.items()}
        events = {}
        for v, view in enumerate(VIEWS):
            lo, hi = np.searchsorted(encoded[view]["user"], [first, last])
            events[view] = {k: encoded[view][k][lo:hi] for k in ("ids", "ts", "stay") if k in encoded[view]}
            part["bounds"][:, v] -= lo
        shards.append(write_shard(out_dir, s, (first, last), events, part))
    return shards


def write_shard(
    out_dir: Path, index: int, users: tuple[int, int], events: dict, samples: dict[str, np.ndarray]
) -> dict[str, Any]:
    """One shard directory: the encoded events of users [first, last) and their samples, whose
    bounds count rows of this shard's event arrays. Returns the shard's entry of dataset.json."""
    path = out_dir / f"shard-{index:05d}"
    path.mkdir(exist_ok=True)
    for view in VIEWS:
        np.save(path / f"{view}.npy", events[view]["ids"])
        np.save(path / f"{view}_ts.npy", events[view]["ts"])
    np.save(path / "browse_stay.npy", events["browse"]["stay"])
    np.save(path / "bounds.npy", samples["bounds"])
    np.save(path / "cut_user.npy", samples["user"])
    np.save(path / "cut_ts.npy", samples["ts"])
    for name in ("history", "profile", "labels", "split", "cut_type"):
        np.save(path / f"{name}.npy", samples[name])
    return {"name": path.name, "users": [users[0], users[1]], "samples": int(len(samples["ts"]))}
