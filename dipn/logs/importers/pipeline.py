"""Import a public log into our raw contract in two streaming passes over bounded memory.

Pass 1 reads each file in chunks of lines, checks and maps the rows (dropping and counting rows
that are malformed, have no counterpart, or fall outside the published window) and appends the
events to one of N temporary Arrow IPC files chosen by a hash of the user id, so that every user's
events, and every exact duplicate of a row, land in one partition. Pass 2 takes one partition at
a time: drops exact duplicates, fills item categories, sorts each user's events by time, derives
stay times and history snapshots, and appends them to ``browse.parquet`` and ``history.parquet``.
Memory therefore follows the chunk and partition sizes, not the size of the input.
"""

from __future__ import annotations

import json
import math
import os
import resource
import shutil
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
from pyarrow import ipc
from tqdm.auto import tqdm

from dipn import __version__
from dipn.logs.importers.base import EVENT_SCHEMA, LogFormat
from dipn.logs.importers.formats import FORMATS
from dipn.logs.importers.history import DAY_MS, snapshots
from dipn.logs.importers.layout import HASH, LINE, FileReport, read_rows
from dipn.logs.importers.lines import CHUNK_BYTES, check_readable, is_gzip
from dipn.logs.readers import SUFFIXES
from dipn.errors import DipnValidationError
from dipn.features.contract import RAW_VIEWS, SCHEMAS
from dipn.features.spec import BROWSE_ACTIONS
from dipn.outputs import RAW_LOGS, existing_output, replacing

STAY_CAP_MS = 30 * 60_000  # a browse event's stay: the gap to the user's next event, at most 30 min
PARTITION_BYTES = 16 << 20  # source text per partition; pass 2 holds one partition in memory
MAX_PARTITIONS = 2048  # one open file each; fewer if the open-file limit is lower
GZIP_RATIO = 5  # guessed text bytes per compressed byte, to size partitions of .gz inputs
OUTPUTS = ("browse.parquet", "history.parquet", "meta.json")
COMPRESSION = "zstd"

_ORDER, _FILE, _PART = "__order", "__file", "__part"
_LINE_BITS = 40  # __order = file index << 40 | line: file order across all inputs
_CARRIED = {**EVENT_SCHEMA, _ORDER: pl.Int64, HASH: pl.UInt64, _FILE: pl.UInt16}
# Low-cardinality text travels dictionary-encoded, to keep the temporary files small.
_COMPACT = {"action": pl.Enum(BROWSE_ACTIONS), "page": pl.Categorical()}
_ARROW = {"int": pa.int64(), "float": pa.float64(), "str": pa.string()}


@dataclass(frozen=True)
class ImportConfig:
    """How to import; the defaults suit a laptop and files of any size."""

    lenient: bool = False  # drop and count malformed rows instead of stopping at the first
    utc_offset_minutes: int | None = None  # the market's time zone; None: the format's own
    stay_cap_ms: int = STAY_CAP_MS
    # Keep this share of the users, all of their events: build-samples holds a whole log in
    # memory, and the full logs (Taobao: 100 M events) need more than a laptop has.
    users_fraction: float = 1.0
    chunk_bytes: int = CHUNK_BYTES
    partition_bytes: int = PARTITION_BYTES
    progress: bool = True

    def __post_init__(self) -> None:
        if not 0 < self.users_fraction <= 1:
            raise DipnValidationError(f"users_fraction must be in (0, 1], got {self.users_fraction}")


@dataclass
class ImportResult:
    """Where the output went, its meta.json content, and what happened to each input file."""

    out_dir: Path
    meta: dict[str, Any]
    files: list[FileReport] = field(default_factory=list)

    def __str__(self) -> str:
        m = self.meta
        rows = m["rows"]
        actions = ", ".join(f"{a} {n:,}" for a, n in rows["actions"].items())
        lines = [
            f"{m['format']}: {rows['browse']:,} browse events ({actions}) of {rows['users']:,} users, "
            f"{rows['history']:,} history snapshots -> {self.out_dir}",
            f"window {m['window']['start']} .. {m['window']['end']} (utc_offset_minutes "
            f"{m['utc_offset_minutes']}; samples may be cut before {m['window']['cut_end']})",
        ]
        if m["dropped"]:
            lines.append("dropped: " + ", ".join(f"{k} {n:,}" for k, n in m["dropped"].items()))
        lines += [str(f) for f in self.files if f.dropped]
        lines.append(f"imported in {m['import_seconds']:.1f} s")
        return "\n".join(lines)


def import_logs(
    format_name: str,
    paths: Sequence[str | Path],
    out_dir: str | Path,
    config: ImportConfig = ImportConfig(),
) -> ImportResult:
    """Read a public log in its published layout and write browse.parquet, history.parquet and
    meta.json (see docs/data.md) into ``out_dir``, ready for ``dipn build-samples``.

    Strict (default): the first malformed row raises ``RawDataError`` naming file, line, column
    and rule, and nothing is written. Lenient: malformed rows are dropped and counted per rule.
    """
    started = time.perf_counter()
    if min(config.chunk_bytes, config.partition_bytes, config.stay_cap_ms) <= 0:
        raise DipnValidationError(f"chunk_bytes, partition_bytes and stay_cap_ms must be > 0: {config}")
    fmt = _format(format_name)
    sources = _sources(fmt, [Path(p) for p in paths])
    out_dir = Path(out_dir)
    _check_out_dir(out_dir)
    # Built beside out_dir, replacing its earlier import whole (its other files are kept): a kill
    # or a full disk leaves the previous import.
    with replacing(out_dir, RAW_LOGS) as staging:
        work = staging / ".dipn-import"
        run = _Run(fmt, sources, work, config)
        meta = run.execute()
        meta["import_seconds"] = round(time.perf_counter() - started, 2)
        (work / "meta.json").write_text(json.dumps(meta, indent=1) + "\n")
        for name in OUTPUTS:
            os.replace(work / name, staging / name)
        shutil.rmtree(work)
    return ImportResult(out_dir, meta, run.reports)


# ----------------------------------------------------------------------------- set-up


def _format(name: str) -> LogFormat:
    if name not in FORMATS:
        raise DipnValidationError(f"unknown log format {name!r}; expected one of {', '.join(FORMATS)}")
    return FORMATS[name]()


@dataclass(frozen=True)
class _Source:
    path: Path
    role: str
    index: int  # position among the inputs: file order of the rows


def _sources(fmt: LogFormat, paths: list[Path]) -> list[_Source]:
    if not paths:
        raise DipnValidationError(f"no input files given for {fmt.name}")
    seen: set[Path] = set()
    sources = []
    for index, path in enumerate(paths):
        check_readable(path)
        if path.resolve() in seen:
            raise DipnValidationError(f"{path} is given twice")
        seen.add(path.resolve())
        sources.append(_Source(path, fmt.role_of(path), index))
    if not any(s.role in fmt.event_roles for s in sources):
        raise DipnValidationError(
            f"no {' or '.join(fmt.event_roles)} file among the inputs of {fmt.name}: "
            + ", ".join(f"{s.path} ({s.role})" for s in sources)
        )
    return sources


def _check_out_dir(out_dir: Path) -> None:
    """Refuse a directory of another kind, or whose other raw files build-samples would mix with
    the import."""
    if not existing_output(out_dir, RAW_LOGS) and not out_dir.is_dir():
        return
    ours = {"browse.parquet", "history.parquet"}
    foreign = sorted(
        p.name for p in out_dir.iterdir()
        if p.is_file() and p.name.lower() not in ours
        and any(p.name.lower() == v + s for v in RAW_VIEWS for s in SUFFIXES)
    )  # fmt: skip
    if foreign:
        raise DipnValidationError(
            f"{out_dir} already holds {', '.join(foreign)}; build-samples would mix them with the "
            "imported log: import into an empty directory"
        )


def _partition_count(sources: list[_Source], config: ImportConfig) -> int:
    text = sum(s.path.stat().st_size * (GZIP_RATIO if is_gzip(s.path) else 1) for s in sources)
    soft_limit, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    most = MAX_PARTITIONS if soft_limit == resource.RLIM_INFINITY else min(MAX_PARTITIONS, soft_limit - 64)
    return max(1, min(most, math.ceil(text / config.partition_bytes)))


def _arrow_schema(view: str) -> pa.Schema:
    return pa.schema([pa.field(r.name, _ARROW[r.dtype], nullable=r.nullable) for r in SCHEMAS[view]])


# ----------------------------------------------------------------------------- the two passes


class _Run:
    """One import: the reports per file, the partitions, the two passes and the summary."""

    def __init__(self, fmt: LogFormat, sources: list[_Source], work: Path, config: ImportConfig) -> None:
        self.fmt, self.sources, self.work, self.config = fmt, sources, work, config
        self.reports = [FileReport(s.path, s.role) for s in sources]
        self._report_of = {s.path: r for s, r in zip(sources, self.reports, strict=True)}
        event_sources = [s for s in sources if s.role in fmt.event_roles]
        self.partitions = _Partitions(work / "partitions", _partition_count(event_sources, config))
        given = config.utc_offset_minutes
        self.offset_minutes = fmt.utc_offset_minutes if given is None else given
        self.first_ts: int | None = None
        self.last_ts: int | None = None
        self.actions: Counter[str] = Counter()
        self.rows = {"browse": 0, "history": 0, "users": 0}

    def execute(self) -> dict[str, Any]:
        total = sum(s.path.stat().st_size for s in self.sources)
        with tqdm(total=total, unit="B", unit_scale=True, desc=f"import {self.fmt.name}",
                  disable=not self.config.progress) as bar:  # fmt: skip
            self._bar = bar
            side: dict[str, list[Path]] = {}
            for s in self.sources:
                if s.role not in self.fmt.event_roles:
                    side.setdefault(s.role, []).append(s.path)
            try:
                self.fmt.prepare(side, self._read)
                for s in self.sources:
                    if s.role in self.fmt.event_roles:
                        self._pass_one(s)
            finally:
                self.partitions.close()
        if self.first_ts is None or self.last_ts is None:
            raise DipnValidationError(f"no event left to import from {self._inputs()}; {self._dropped_text()}")
        self._pass_two()
        return self._meta()

    def _read(self, path: Path, role: str) -> Iterator[pl.DataFrame]:
        return read_rows(path, self.fmt.layout(role), self._report_of[path], lenient=self.config.lenient,
                         chunk_bytes=self.config.chunk_bytes, progress=self._bar.update)  # fmt: skip

    def _pass_one(self, source: _Source) -> None:
        report = self._report_of[source.path]
        for rows in self._read(source.path, source.role):
            events = self.fmt.events(rows, source.role).with_columns(
                (pl.lit(source.index << _LINE_BITS, pl.Int64) + rows[LINE]).alias(_ORDER),
                rows[HASH].alias(HASH),
                pl.lit(source.index, pl.UInt16).alias(_FILE),
            )
            unmapped = events["action"].is_null()
            report.drop("unmapped_event", int(unmapped.sum()))
            events = events.filter(~unmapped)
            if self.config.users_fraction < 1:
                n_before = events.height
                events = events.filter(sampled_users(events["user_id"], self.config.users_fraction))
                report.drop("user_not_sampled", n_before - events.height)
            if self.fmt.window_ms is not None:
                start, end = self.fmt.window_ms
                inside = pl.col("ts").is_between(start, end, closed="left").fill_null(False)
                n_before = events.height
                events = events.filter(inside)
                report.drop("out_of_window", n_before - events.height)
            if events.height == 0:
                continue
            self.fmt.observe(events)
            lo, hi = int(events["ts"].min()), int(events["ts"].max())  # type: ignore[arg-type]
            self.first_ts = lo if self.first_ts is None else min(self.first_ts, lo)
            self.last_ts = hi if self.last_ts is None else max(self.last_ts, hi)
            self.partitions.write(events.select(list(_CARRIED)).cast(_COMPACT))

    def _pass_two(self) -> None:
        browse_schema, history_schema = _arrow_schema("browse"), _arrow_schema("history")
        kept: Counter[int] = Counter()
        with (
            pq.ParquetWriter(self.work / "browse.parquet", browse_schema, compression=COMPRESSION) as browse,
            pq.ParquetWriter(self.work / "history.parquet", history_schema, compression=COMPRESSION) as history,
        ):  # fmt: skip
            parts = tqdm(self.partitions.read_all(), total=self.partitions.count, unit="part",
                         desc=f"import {self.fmt.name}: sort and write", disable=not self.config.progress)  # fmt: skip
            for frame in parts:
                frame = self._without_duplicates(frame)
                frame = by_user_and_time(self.fmt.resolve(frame))
                kept.update(dict(frame[_FILE].value_counts().iter_rows()))
                views = with_stay_times(frame, self.config.stay_cap_ms)
                snaps = snapshots(frame, self.offset_minutes, self._last_day())
                browse.write_table(_table(views, browse_schema))
                history.write_table(_table(snaps, history_schema))
                self.actions.update(dict(frame["action"].value_counts().iter_rows()))
                self.rows["browse"] += views.height
                self.rows["history"] += snaps.height
                self.rows["users"] += frame["user_id"].n_unique()
        for s, report in zip(self.sources, self.reports, strict=True):
            side_file = s.role not in self.fmt.event_roles  # its valid rows were all used
            report.rows_kept = report.rows_read - sum(report.dropped.values()) if side_file else kept.get(s.index, 0)

    def _last_day(self) -> int:
        """The market day of the window's last moment: no cut reads a later snapshot."""
        return (int(self._window()["end_ms"]) - 1 + self.offset_minutes * 60_000) // DAY_MS

    def _without_duplicates(self, frame: pl.DataFrame) -> pl.DataFrame:
        """Without the rows whose text and time equal an earlier row's: exact duplicates."""
        duplicate = duplicates(frame)
        if not duplicate.any():
            return frame
        for index, n in frame.filter(duplicate)[_FILE].value_counts().iter_rows():
            self.reports[index].drop("duplicate", n)
        return frame.filter(~duplicate)

    # ------------------------------------------------------------------------- summary

    def _window(self) -> dict[str, int | str]:
        if self.fmt.window_ms is not None:
            start, end = self.fmt.window_ms
            source = "published"
        else:
            start, end = int(self.first_ts or 0), int(self.last_ts or 0) + 1
            source = "data (first event .. last event)"
        return {"start_ms": start, "end_ms": end, "cut_end_ms": end - DAY_MS, "source": source}

    def _meta(self) -> dict[str, Any]:
        window = self._window()
        dropped: Counter[str] = Counter()
        for r in self.reports:
            dropped.update(r.dropped)
        local = timezone(timedelta(minutes=self.offset_minutes))
        iso = {k[:-3]: _iso(int(window[k]), local) for k in ("start_ms", "end_ms", "cut_end_ms")}
        return {
            "format": self.fmt.name,
            "title": self.fmt.title,
            "dipn_version": __version__,
            "start_ms": window["start_ms"],
            "cut_end_ms": window["cut_end_ms"],
            "end_ms": window["end_ms"],
            "utc_offset_minutes": self.offset_minutes,
            "window": {"start": iso["start"], "end": iso["end"], "cut_end": iso["cut_end"],
                       "source": window["source"], "events_first_ms": self.first_ts,
                       "events_last_ms": self.last_ts},  # fmt: skip
            "mapping": self.fmt.mapping(),
            "stay_ms": f"gap to the user's next imported event, capped at {self.config.stay_cap_ms} ms; "
            "browse rows only; null for a user's last event",
            "stay_cap_ms": self.config.stay_cap_ms,
            "history": "snapshots at 00:00 market time on the days a count changes (the day after an active day, "
                       "8 and 366 days after it); counts of the "
            "7 and 365 days before it, from this log only",
            "lenient": self.config.lenient,
            "rows": {
                "read": sum(r.rows_read for r in self.reports),
                "browse": self.rows["browse"],
                "history": self.rows["history"],
                "users": self.rows["users"],
                "actions": {a: self.actions.get(a, 0) for a in ("browse", "search", "collect", "cart", "purchase")},
            },
            "dropped": dict(sorted(dropped.items())),
            "sources": [r.as_dict() for r in self.reports],
            "partitions": self.partitions.count,
        }

    def _inputs(self) -> str:
        return ", ".join(str(s.path) for s in self.sources)

    def _dropped_text(self) -> str:
        dropped: Counter[str] = Counter()
        for r in self.reports:
            dropped.update(r.dropped)
        read = sum(r.rows_read for r in self.reports)
        reasons = ", ".join(f"{k} {n:,}" for k, n in sorted(dropped.items())) or "none"
        return f"read {read:,} rows, dropped {reasons}"


def duplicates(frame: pl.DataFrame) -> pl.Series:
    """True for a row whose line text (64-bit hash; the text holds the user) and time equal an
    earlier row's. One 64-bit key finds the candidates fast; a candidate counts only if an
    earlier row has its very hash and time, so a false match needs two different lines with the
    same time and the same 64-bit hash."""
    key = pl.col(HASH) ^ pl.col("ts").reinterpret(signed=False)
    candidate = frame.select(~key.is_first_distinct()).to_series()
    if not candidate.any():
        return candidate
    rows = pl.int_range(pl.len(), dtype=pl.UInt32).alias("__row")
    candidates = frame.select(rows, HASH, "ts").filter(candidate)
    firsts = frame.select(HASH, "ts").filter(~candidate & pl.col(HASH).is_in(candidates[HASH].implode()))
    confirmed = candidates.join(firsts.unique(), on=[HASH, "ts"], how="semi")["__row"].to_numpy()
    mask = np.zeros(frame.height, dtype=bool)
    mask[confirmed] = True
    return pl.Series("duplicate", mask)


def sampled_users(user_ids: pl.Series, fraction: float) -> pl.Series:
    """True for the users of a fixed pseudo-random ``fraction``, the same in every file and chunk
    (a hash of the id; stable for a given Polars version)."""
    return (user_ids.hash(seed=2) % 1_000_000) < round(fraction * 1_000_000)


def by_user_and_time(events: pl.DataFrame) -> pl.DataFrame:
    """Each user's events together, by time, same-time events in file order.

    Sorting on a 64-bit hash of the user id is twice as fast as on the id itself; should two ids
    of the partition share a hash (odds about users**2 / 2**65), sort on the ids.
    """
    keyed = events.with_columns(pl.col("user_id").hash(seed=1).alias("__user"))
    if keyed["__user"].n_unique() != keyed["user_id"].n_unique():
        return events.sort("user_id", "ts", _ORDER)
    return keyed.sort("__user", "ts", _ORDER).drop("__user")


def with_stay_times(events: pl.DataFrame, cap_ms: int) -> pl.DataFrame:
    """Browse view rows of events sorted by user then time: a browse event stays until the user's
    next event, at most ``cap_ms``; other actions and a user's last event have no stay time."""
    same_user = pl.col("user_id").shift(-1) == pl.col("user_id")
    gap = pl.when(same_user).then(pl.col("ts").shift(-1) - pl.col("ts"))
    stay = pl.when(pl.col("action") == "browse").then(gap.clip(upper_bound=cap_ms).cast(pl.Float64))
    return events.select(
        "user_id", "ts", "action", "leaf_category", "top_category", "page", stay.alias("stay_ms")
    )


def _table(frame: pl.DataFrame, schema: pa.Schema) -> pa.Table:
    return frame.select(schema.names).to_arrow().cast(schema)


def _iso(ms: int, zone: timezone) -> str:
    moment = datetime.fromtimestamp(ms / 1000, tz=zone)
    return moment.isoformat(timespec="seconds" if ms % 1000 == 0 else "milliseconds")


class _Partitions:
    """N append-only Arrow IPC files of events (zstd), a user's events all in one of them."""

    def __init__(self, directory: Path, count: int) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.directory, self.count = directory, count
        self._schema = pl.DataFrame(schema=_CARRIED).cast(_COMPACT).to_arrow().schema
        self._files: dict[int, Any] = {}
        self._writers: dict[int, ipc.RecordBatchStreamWriter] = {}

    def _path(self, part: int) -> Path:
        return self.directory / f"part-{part:05d}.arrows"

    def write(self, events: pl.DataFrame) -> None:
        if self.count == 1:
            self._append(0, events)
            return
        keyed = events.with_columns((pl.col("user_id").hash(seed=0) % self.count).alias(_PART))
        for (part,), piece in keyed.partition_by(_PART, as_dict=True, include_key=False).items():
            self._append(int(part), piece)  # type: ignore[arg-type]

    def _append(self, part: int, piece: pl.DataFrame) -> None:
        if part not in self._writers:
            self._files[part] = self._path(part).open("wb")
            options = ipc.IpcWriteOptions(compression="zstd")
            self._writers[part] = ipc.new_stream(self._files[part], self._schema, options=options)
        self._writers[part].write_table(piece.to_arrow().cast(self._schema))

    def close(self) -> None:
        for part, writer in self._writers.items():
            writer.close()
            self._files[part].close()
        self._writers.clear()

    def read_all(self) -> Iterator[pl.DataFrame]:
        """Each partition in turn (file order of its rows), deleted once read."""
        for part in range(self.count):
            path = self._path(part)
            if not path.exists():
                continue
            frame = pl.read_ipc_stream(path).rechunk().cast({name: pl.String for name in _COMPACT})
            path.unlink()
            yield frame
