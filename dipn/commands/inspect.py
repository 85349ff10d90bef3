"""``dipn inspect``: show what the model sees, decoded back into words."""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path

import numpy as np

from dipn.commands.options import non_negative_int
from dipn.errors import DipnValidationError


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "inspect",
        help="print a sample's decoded events view by view, or summarize a raw log / manifest",
        description="PATH may be a sample directory (from build-samples): prints one sample's "
        "labels, history, profile and last events of each view, decoded through the feature "
        "manifest; a raw log directory (from simulate or import): summarizes each view's log; a raw "
        "log file (.csv/.jsonl/.parquet): prints its size and first rows; or a features.json "
        "manifest: prints the feature table.",
    )
    p.add_argument("path", type=Path)
    p.add_argument("--sample", type=non_negative_int, default=0, help="index of the sample within the split (default 0)")
    p.add_argument("--split", choices=["train", "val", "eval", "all"], default="all")
    p.add_argument("--events", type=non_negative_int, default=12, help="last events shown per view (default 12; 0 = all)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    path: Path = args.path
    if not path.exists():
        raise DipnValidationError(f"{path}: no such file or directory")
    if not (path.is_dir() or path.is_file()):  # a FIFO would block the read forever
        raise DipnValidationError(f"{path} is not a regular file (a FIFO, socket or device)")
    if path.is_dir() and not (path / "dataset.json").exists() and _holds_raw_logs(path):
        print(render_raw_dir(path))
    elif path.is_dir():
        print(render_sample(path, args.sample, args.split, args.events))
    elif path.name.endswith(".json"):
        print(render_manifest(path))
    else:
        print(render_raw(path))
    return 0


def _when(ms: int, utc_offset_minutes: int = 0) -> str:
    """A timestamp in the time zone the hour-of-day ids were made in, so the cut and the hours
    printed beside it agree."""
    zone = dt.timezone(dt.timedelta(minutes=utc_offset_minutes))
    text = dt.datetime.fromtimestamp(ms / 1000, zone).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    if not utc_offset_minutes:
        return text + "Z"
    sign, minutes = ("+" if utc_offset_minutes > 0 else "-"), abs(utc_offset_minutes)
    return f"{text} UTC{sign}{minutes // 60}" + (f":{minutes % 60:02d}" if minutes % 60 else "")


def _holds_raw_logs(path: Path) -> bool:
    from dipn.features.contract import RAW_VIEWS
    from dipn.logs.readers import view_files

    return bool(view_files(path, RAW_VIEWS))


def render_sample(root: Path, index: int, split: str, events: int) -> str:
    from dipn.samples.cuts import CUT_TYPES
    from dipn.samples.store import SPLITS, SampleStore
    from dipn.features import VIEWS
    from dipn.features.decode import describe
    from dipn.features.spec import mask_column

    store = SampleStore(root)
    pool = store.indices(None if split == "all" else split)
    if not 0 <= index < len(pool):
        raise DipnValidationError(f"sample {index} out of range: the {split} split has {len(pool)} samples")
    i = int(pool[index])
    b = store.batch(np.array([i]))
    manifest = store.manifest
    cfg = manifest.config
    user = store.users[int(b["user_index"][0])]
    split_name = {c: n for n, c in SPLITS.items()}[int(store.split[i])]
    cut_type = {c: n for n, c in CUT_TYPES.items()}[int(b["cut_type"][0])]
    hours = store.info["build"]
    out = [
        f"sample {i} ({split_name}), user {user}, cut at {_when(int(b['cut_ts'][0]), cfg.utc_offset_minutes)} "
        f"({cut_type})",
        f"labels: realtime ({hours['realtime_hours']:g} h) = {int(b['realtime'][0])}, "
        f"longterm ({hours['longterm_hours']:g} h) = {int(b['longterm'][0])}",
    ]
    for group in ("history", "profile", "context"):
        specs = cfg.group(group)
        row = b[group][0]
        out.append(f"{group}: " + ", ".join(f"{s.name}={describe(s, int(v), manifest)}" for s, v in zip(specs, row, strict=True)))
    for view in VIEWS:
        ids = b[view][0]
        real = ids[ids[:, mask_column(cfg, view)] != 0]
        shown = real if events == 0 else real[-events:]
        specs = cfg.group(view)
        out.append(f"\n{view}: {len(real)} real of {cfg.sequence_length} steps; last {len(shown)}:")
        table = [[s.name for s in specs]] + [[describe(s, int(v), manifest) for s, v in zip(specs, row, strict=True)] for row in shown]
        widths = [max(len(r[c]) for r in table) for c in range(len(specs))]
        out += ["  " + "  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)) for r in table]
    return "\n".join(out)


def render_manifest(path: Path) -> str:
    from dipn.features import FeatureManifest

    manifest = FeatureManifest.load(path)
    rows = [f"{'group':8s} {'feature':18s} {'kind':15s} {'vocab':>6s} {'rows':>6s} {'dim':>4s}"]
    for f in manifest.config.features:
        rows.append(f"{f.group.value:8s} {f.name:18s} {f.kind.value:15s} {f.vocab_size:6d} {f.num_embeddings:6d} {f.embed_dim:4d}")
    rows.append("vocabularies: " + ", ".join(f"{k} {len(v)}" for k, v in sorted(manifest.vocabularies.items())))
    return "\n".join(rows)


def render_raw(path: Path) -> str:
    import polars as pl

    from dipn.logs.readers import read_view
    from dipn.features.contract import RAW_VIEWS

    view = next((v for v in RAW_VIEWS if path.name.startswith(v)), None)
    if view is None:
        raise DipnValidationError(f"{path.name}: name a raw log swipe.*, tap.*, browse.*, history.* or profile.*")
    result = read_view(path, view, lenient=True)
    with pl.Config(tbl_rows=10, tbl_cols=20, tbl_width_chars=160):
        return f"{view} log {path}: {result.report}\n{result.frame.head(10)}"


def render_raw_dir(root: Path) -> str:
    """Each view's log in a raw directory: rows kept and refused (leniently read, so a bad row is
    counted, not fatal), users and the time span, in the time zone meta.json records."""
    from dipn.features.contract import TIME_COLUMN
    from dipn.logs.readers import read_dataset
    from dipn.samples.build import read_meta

    meta = read_meta(root) or {}
    offset = int(meta.get("utc_offset_minutes") or 0)
    out = [f"raw logs {root}" + (f" (hours in UTC{offset / 60:+g})" if offset else "")]
    for view, result in read_dataset(root, lenient=True).items():
        frame = result.frame
        line = f"{view:8s} {frame.height:>10,} rows, {frame['user_id'].n_unique():>8,} users"
        time_column = TIME_COLUMN.get(view)
        if time_column in frame.columns and frame.height:
            start, end = int(frame[time_column].min()), int(frame[time_column].max())
            line += f", {_when(start, offset)} .. {_when(end, offset)}"
        out.append(f"{line}; {result.report}")
    return "\n".join(out)
