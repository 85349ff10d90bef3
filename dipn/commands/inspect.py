"""``dipn inspect``: show what the model sees, decoded back into words."""

from __future__ import annotations

import argparse
from pathlib import Path

from dipn.commands.options import non_negative_int
from dipn.commands.render import render_sample, when
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


def _holds_raw_logs(path: Path) -> bool:
    from dipn.features.contract import RAW_VIEWS
    from dipn.logs.readers import view_files

    return bool(view_files(path, RAW_VIEWS))


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

    from dipn.features.contract import RAW_VIEWS
    from dipn.logs.readers import read_view

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
            line += f", {when(start, offset)} .. {when(end, offset)}"
        out.append(f"{line}; {result.report}")
    return "\n".join(out)
