"""Renderers of what commands print, shared by the command that owns the data and ``dipn demo``,
which prints the same views on its way through the pipeline; commands do not import each other.

``format_summary``: a sample build (``build-samples``); ``render_sample``: one decoded sample
(``inspect``); ``describe_model``: the model a training config builds (``train --dry-run``);
``when``: a timestamp in the time zone the hour-of-day ids were made in.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from dipn.errors import DipnValidationError

if TYPE_CHECKING:
    from dipn.samples.store import SampleStore
    from dipn.training.config import TrainConfig


def when(ms: int, utc_offset_minutes: int = 0) -> str:
    """A timestamp in the time zone the hour-of-day ids were made in, so the cut and the hours
    printed beside it agree."""
    zone = dt.timezone(dt.timedelta(minutes=utc_offset_minutes))
    try:
        text = dt.datetime.fromtimestamp(ms / 1000, zone).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    except (ValueError, OverflowError, OSError):  # a damaged store's time: shown as it is, not a crash
        return f"{ms} ms since 1970 (outside the calendar)"
    if not utc_offset_minutes:
        return text + "Z"
    sign, minutes = ("+" if utc_offset_minutes > 0 else "-"), abs(utc_offset_minutes)
    return f"{text} UTC{sign}{minutes // 60}" + (f":{minutes % 60:02d}" if minutes % 60 else "")


def format_summary(info: dict) -> str:
    """A build's summary (``dataset.json``'s info): users, events, samples and label rates per split."""
    lines = [f"users: {info['users']}   events: " + ", ".join(f"{v} {n:,}" for v, n in info["events"].items())]
    hours = (info["build"]["realtime_hours"], info["build"]["longterm_hours"])
    for split, s in info["splits"].items():
        lines.append(
            f"{split:5s}: {s['samples']:>9,} samples ({s['event_cuts']:,} at events, {s['idle_cuts']:,} idle)"
            f"   realtime ({hours[0]:g} h) rate {s['realtime_rate']:.3f}   longterm ({hours[1]:g} h) rate {s['longterm_rate']:.3f}"
        )
    lines.append(f"built in {info['build_seconds']:.1f} s")
    for view, report in info.get("read_reports", {}).items():
        if "dropped" in report and "dropped: {}" not in report:
            lines.append(f"{view}: {report}")
    return "\n".join(lines)


def render_sample(root: Path, index: int, split: str, events: int) -> str:
    """One sample of a store, decoded through its manifest: labels, history, profile and the last
    ``events`` events of each view (0: all)."""
    from dipn.features import VIEWS
    from dipn.features.decode import describe
    from dipn.features.spec import mask_column
    from dipn.samples.cuts import CUT_TYPES
    from dipn.samples.store import SPLITS, SampleStore

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
        f"sample {i} ({split_name}), user {user}, cut at {when(int(b['cut_ts'][0]), cfg.utc_offset_minutes)} "
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


def describe_model(config: TrainConfig, store: SampleStore) -> str:
    """The model a training config builds on a store: its inputs, parameters by component, sizes, vocabulary tables."""
    from dipn.models import build_model_for_data, parameter_counts, size_estimate_mb

    model = build_model_for_data(config.model, config.variant, store.manifest.config, store.groups_present)
    counts = parameter_counts(model)
    total = sum(counts.values())
    lines = [f"model {config.model} / variant {config.variant or 'default'}; inputs {', '.join(model.input_names)}",
             f"{'component':28s} {'parameters':>12s} {'share':>7s}"]  # fmt: skip
    lines += [f"{k:28s} {v:12,d} {v / total:7.1%}" for k, v in counts.items()]
    sizes = size_estimate_mb(model)
    lines.append(f"{'total':28s} {total:12,d}")
    lines.append(f"size: fp32 {sizes['fp32_mb']:.2f} MB, int8 estimate {sizes['int8_mb']:.2f} MB")
    lines += vocabulary_lines(model, store.manifest)
    lines.append("training config: " + json.dumps(config.to_dict()))
    lines.append(f"samples: {store.split_counts()}")
    return "\n".join(lines)


def vocabulary_lines(model, manifest) -> list[str]:  # noqa: ANN001
    """The vocabulary tables the model holds: rows against the values built and Table 3's cap, so a
    reader sees that the tables are sized to the data (docs/models.md, "Embedding tables")."""
    from torch import nn

    from dipn.features import Kind, vocab_key
    from dipn.features.spec import TABLE3

    cap = {vocab_key(s): s.vocab_size for s in TABLE3}
    lines = []
    for name, module in model.named_modules():
        for record, table in zip(getattr(module, "records", ()), getattr(module, "tables", ())):
            spec = manifest.config.spec(record.group, record.feature)
            if spec.kind is Kind.VOCABULARY and isinstance(table, nn.Embedding):
                key = vocab_key(spec)
                lines.append(f"  {name}.{record.feature}: {table.num_embeddings:,} rows x {table.embedding_dim} = "
                             f"{len(manifest.vocabularies.get(key, ())):,} values + padding + OOV (Table 3 cap "
                             f"{cap.get(key, spec.vocab_size):,})")  # fmt: skip
    return ["vocabulary tables:"] + lines if lines else []
