"""Read raw event logs (CSV, JSON Lines, Parquet) and enforce the contracts of ``dipn.features.contract``.

A user feeds in one file per view; every problem is reported with the file,
the line (or Parquet row), the column and a short machine name of the broken rule, so the user
can fix the export instead of guessing. Validation is vectorized (Polars): every column is read
as text (or as the Parquet type), parsed with non-strict casts and compared; Python only looks at
the few bad rows it has to describe. Strict mode stops at the first bad row in file order; lenient
mode drops bad rows and counts them per rule.

Conventions: CSV lines are physical file lines (header = line 1); a CSV row whose schema columns
are all empty (a blank line) is skipped, not an error. JSON Lines records are numbered by their
physical line (blank lines skipped but counted). Parquet rows are 1-based. Empty strings are
nulls in every format; NaN and infinities are not numbers.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import polars as pl

from dipn.errors import DipnValidationError
from dipn.features.contract import CONDITIONAL_REQUIRED, ON_SCREEN, RAW_VIEWS, SCHEMAS, TIME_COLUMN, ColumnRule

Format = Literal["csv", "jsonl", "parquet"]

# Longest suffix first, so "swipe.csv.gz" is not taken for a ".gz" of something else.
SUFFIXES: dict[str, Format] = {
    ".csv.gz": "csv",
    ".csv": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".parquet": "parquet",
}

_ROW = "__row"  # 0-based record index in the reader's numbering (file order)
_PRESENT = "__present__"  # prefix of "the raw numeric field was not empty" flags
_DTYPES: dict[str, pl.DataType] = {"int": pl.Int64(), "float": pl.Float64(), "str": pl.String()}
_EXAMPLES = 5  # error messages kept in a lenient report

# Words for messages ("negative duration (-40); durations must be >= 0").
_NOUNS = {
    "ts": "timestamp", "as_of_ts": "timestamp", "duration_ms": "duration", "stay_ms": "stay time",
    "x": "coordinate", "y": "coordinate", "x0": "coordinate", "y0": "coordinate",
    "x1": "coordinate", "y1": "coordinate", "screen_w": "screen width", "screen_h": "screen height",
}  # fmt: skip


class RawDataError(DipnValidationError):
    """A raw file that breaks its view's contract, located as precisely as the format allows.

    ``rule`` is a short machine name (``negative``, ``off_screen``, ...) so callers can branch on
    it; ``str(error)`` is the sentence for a human: ``path, line N, column 'c': what; how to fix``.
    """

    def __init__(
        self,
        path: str | Path,
        detail: str,
        *,
        rule: str,
        line: int | None = None,
        column: str | None = None,
        unit: str = "line",
    ) -> None:
        self.path = Path(path)
        self.line = line
        self.column = column
        self.rule = rule
        self.detail = detail
        self.unit = unit
        super().__init__(_locate_text(path, line, column, unit) + ": " + detail)

    def __reduce__(self) -> tuple[Any, ...]:
        """Picklable despite keyword-only arguments (errors cross process pools)."""
        keywords = {"rule": self.rule, "line": self.line, "column": self.column, "unit": self.unit}
        return (_rebuild_error, (self.path, self.detail, keywords))


def _rebuild_error(path: Path, detail: str, keywords: dict[str, Any]) -> RawDataError:
    return RawDataError(path, detail, **keywords)


def _locate_text(path: str | Path, line: int | None, column: str | None, unit: str) -> str:
    parts = [str(path)]
    if line is not None:
        parts.append(f"{unit} {line}")
    if column is not None:
        parts.append(f"column {column!r}")
    return ", ".join(parts)


@dataclass
class ReadReport:
    """What a read did: rows seen, rows kept, rows dropped per rule and the first few reasons.

    ``rows_read`` counts records (blank CSV lines excluded), so
    ``rows_read == rows_kept + sum(dropped.values())``; each dropped row is counted once, under
    the first rule it breaks.
    """

    path: Path
    view: str
    rows_read: int
    rows_kept: int
    dropped: dict[str, int] = field(default_factory=dict)
    examples: list[str] = field(default_factory=list)
    blank_rows: int = 0

    def __str__(self) -> str:
        head = f"{self.path} ({self.view}): read {self.rows_read:,} rows, kept {self.rows_kept:,}"
        if self.dropped:
            rules = ", ".join(f"{rule}: {n:,}" for rule, n in sorted(self.dropped.items()))
            head += f", dropped {self.rows_read - self.rows_kept:,} ({rules})"
        if self.blank_rows:
            head += f", skipped {self.blank_rows:,} blank lines"
        return "\n".join([head, *(f"  e.g. {example}" for example in self.examples)])


@dataclass
class ReadResult:
    """A validated view: the canonical frame plus the report of what was dropped."""

    frame: pl.DataFrame
    report: ReadReport


@dataclass
class _Loaded:
    """A file's schema columns as raw values (text, or Parquet's own types) plus ``__row``."""

    frame: pl.DataFrame
    unit: str  # "line" or "row"
    locate: Callable[[Sequence[int]], dict[int, int]]  # record indices -> line / row numbers
    blank_rows: int = 0


@dataclass(frozen=True)
class _Check:
    """One rule on one column: a vectorized "row is bad" test and a sentence for a bad row."""

    rule: str
    column: str
    test: pl.Expr  # may be null where inputs are null; ``bad`` reads null as "fine"
    explain: Callable[[dict[str, Any]], str]  # raw row -> detail

    @property
    def bad(self) -> pl.Expr:
        return self.test.fill_null(False)


# ----------------------------------------------------------------------------- public API


def read_view(path: str | Path, view: str, *, lenient: bool = False) -> ReadResult:
    """Read one view's file, validate every row and return it in canonical form.

    Strict (default): raise ``RawDataError`` at the first bad row in file order. Lenient: drop bad
    rows and count them per rule; a missing required column or an unreadable file still raises,
    because then no row can be trusted. The frame has exactly the schema's columns, in order, with
    canonical dtypes, sorted stably by (user_id, time).
    """
    rules = _rules(view)
    checks = _checks(view, rules)
    loaded = _load(Path(path), rules)
    raw = _normalize(path, loaded.frame, rules)
    typed = _typed(raw, rules)
    bad = typed.select(pl.any_horizontal([c.bad for c in checks])).to_series()
    n_bad = int(bad.sum())
    report = ReadReport(Path(path), view, typed.height, typed.height - n_bad,
                        blank_rows=loaded.blank_rows)  # fmt: skip
    if n_bad:
        limit = _EXAMPLES if lenient else 1
        report.dropped, errors = _failures(path, raw, loaded, typed.filter(bad), checks, limit)
        if not lenient:
            raise errors[0]
        report.examples = [str(e) for e in errors]
    frame = typed.filter(~bad).select([pl.col(r.name).cast(_DTYPES[r.dtype]) for r in rules])
    return ReadResult(_sort(frame, view), report)


def read_dataset(
    directory: str | Path, *, lenient: bool = False, views: Iterable[str] | None = None
) -> dict[str, ReadResult]:
    """Read every view file (``swipe.csv``, ``tap.parquet``, ...) found in a directory.

    Views without a file are absent from the result (a dataset may lack, say, profiles); a
    directory with none of them, or two files for one view, is an error because the caller
    surely meant something else.
    """
    directory = Path(directory)
    wanted = tuple(RAW_VIEWS if views is None else views)
    for view in wanted:
        _rules(view)
    if not directory.is_dir():
        raise RawDataError(directory, "not a directory", rule="unreadable")
    files = view_files(directory, wanted)
    if not files:
        names = ", ".join(f"{v}.csv" for v in wanted)
        raise RawDataError(
            directory, f"no event files found; expected one or more of {names} "
            f"(or .csv.gz, .jsonl, .ndjson, .json, .parquet)", rule="no_views",
        )  # fmt: skip
    return {view: read_view(file, view, lenient=lenient) for view, file in files.items()}


def write_view(frame: pl.DataFrame, path: str | Path) -> Path:
    """Write a frame in the format named by the path's extension (to convert logs, or in tests)."""
    path = Path(path)
    fmt = _format_of(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "csv" and path.name.lower().endswith(".gz"):
        with gzip.open(path, "wb") as fh:
            frame.write_csv(fh)
    elif fmt == "csv":
        frame.write_csv(path)
    elif fmt == "jsonl":
        frame.write_ndjson(path)
    else:
        frame.write_parquet(path)
    return path


def present_columns(path: str | Path, view: str, found: Sequence[str]) -> list[str]:
    """The view's columns among ``found`` (a file's header); a missing required one raises."""
    return _present_columns(Path(path), _rules(view), found)


def judge_rows(
    raw: pl.DataFrame, view: str, path: str | Path, explained: int = _EXAMPLES
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Judge rows another engine read (Spark, a slice of a file at a time) by ``read_view``'s rules.

    ``raw`` holds the view's columns as read (text, or the format's own types) and ``__row``, a
    number increasing in file order. Returns the good rows in canonical form (``__row`` first)
    and the bad ones as ``__row``, ``rule``, ``column`` of the first rule each breaks, with a
    sentence (``detail``) for the first ``explained`` of them.
    """
    rules = _rules(view)
    checks = _checks(view, rules)
    raw = _normalize(path, raw, rules)
    typed = _typed(raw, rules)
    first = [pl.when(c.bad).then(pl.lit(i, dtype=pl.Int32)) for i, c in enumerate(checks)]
    which = typed.select(pl.coalesce(first)).to_series()
    is_bad = which.is_not_null()
    good = typed.filter(~is_bad).select([pl.col(_ROW), *[pl.col(r.name).cast(_DTYPES[r.dtype]) for r in rules]])
    broken = which.filter(is_bad).to_list()
    raw_bad = raw.filter(is_bad).head(explained).iter_rows(named=True)
    details = [checks[i].explain(row) for row, i in zip(raw_bad, broken, strict=False)]
    bad = pl.DataFrame({
        _ROW: raw[_ROW].filter(is_bad).cast(pl.Int64),
        "rule": [checks[i].rule for i in broken],
        "column": [checks[i].column for i in broken],
        "detail": details + [None] * (len(broken) - len(details)),
    }, schema={_ROW: pl.Int64, "rule": pl.String, "column": pl.String, "detail": pl.String})  # fmt: skip
    return good, bad


# ----------------------------------------------------------------------------- files


def _rules(view: str) -> tuple[ColumnRule, ...]:
    try:
        return SCHEMAS[view]
    except KeyError:
        raise DipnValidationError(f"unknown view {view!r}; expected one of {list(RAW_VIEWS)}") from None


def _format_of(path: Path) -> Format:
    name = path.name.lower()
    for suffix, fmt in SUFFIXES.items():
        if name.endswith(suffix):
            return fmt
    raise RawDataError(
        path, f"unsupported file type; use one of {', '.join(SUFFIXES)}", rule="unsupported_format"
    )


def view_files(directory: Path, views: Sequence[str]) -> dict[str, Path]:
    """view -> its one file; two supported files for a view, or only unsupported ones, raise."""
    entries = sorted(p for p in directory.iterdir() if p.is_file())
    files: dict[str, Path] = {}
    for view in views:
        claimed = [p for p in entries if p.name.lower() in {view + s for s in SUFFIXES}]
        if len(claimed) > 1:
            names = " and ".join(p.name for p in claimed)
            raise RawDataError(directory, f"{names} both hold the {view} view; keep one",
                               rule="ambiguous_view")  # fmt: skip
        others = [p for p in entries if p.name.lower().startswith(view + ".")]
        if not claimed and others:
            _format_of(others[0])  # raises: unsupported_format
        if claimed:
            files[view] = claimed[0]
    return files


def _load(path: Path, rules: Sequence[ColumnRule]) -> _Loaded:
    """Dispatch on the extension; any I/O or parse failure becomes an "unreadable" error."""
    fmt = _format_of(path)
    if not path.is_file():
        raise RawDataError(path, "no such file", rule="unreadable")
    if path.stat().st_size == 0:
        raise RawDataError(path, "the file is empty (not even a header)", rule="unreadable")
    loader = {"csv": _load_csv, "jsonl": _load_jsonl, "parquet": _load_parquet}[fmt]
    try:
        return loader(path, rules)
    except RawDataError:
        raise
    except (pl.exceptions.PolarsError, OSError, UnicodeDecodeError, ValueError) as exc:
        line, detail = _first_bad_line(path, fmt), f"cannot read as {fmt}: {_short(exc)}"
        if fmt == "csv" and line is not None:
            detail = "more fields than the header has columns; quote fields that contain commas"
        raise RawDataError(path, detail, rule="unreadable", line=line) from exc


def _short(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _present_columns(path: Path, rules: Sequence[ColumnRule], found: Sequence[str]) -> list[str]:
    """Schema columns the file has; a missing non-nullable one stops the read."""
    missing = [r.name for r in rules if not r.nullable and r.name not in found]
    if missing:
        named = ", ".join(repr(m) for m in missing)
        lower = {f.strip().lower(): f for f in found}
        near = [f"{lower[m]!r}" for m in missing if m in lower]
        hint = f" (found {', '.join(near)}; names are case-sensitive)" if near else ""
        plural = "s" if len(missing) > 1 else ""
        detail = f"missing required column{plural} {named}{hint}; columns found: {list(found)}"
        raise RawDataError(path, detail, rule="missing_column", column=missing[0])
    return [r.name for r in rules if r.name in found]


def _load_csv(path: Path, rules: Sequence[ColumnRule]) -> _Loaded:
    """All columns as text, so ids keep leading zeros and bad numbers can be reported verbatim."""
    lazy = pl.scan_csv(path, infer_schema=False)
    present = _present_columns(path, rules, lazy.collect_schema().names())
    frame = lazy.select(present).with_row_index(_ROW).collect()
    blank = pl.all_horizontal([pl.col(c).is_null() for c in present])
    blank_rows = int(frame.select(blank.sum()).item())
    if blank_rows:
        frame = frame.filter(~blank)
    return _Loaded(frame, "line", lambda rows: _csv_lines(path, rows), blank_rows)


def _load_jsonl(path: Path, rules: Sequence[ColumnRule]) -> _Loaded:
    """Values as text (numbers keep their digits); absent keys are told apart from nulls by name."""
    if path.name.lower().endswith(".json") and _first_byte(path) == b"[":
        raise RawDataError(path, "a JSON array; write one JSON object per line (JSON Lines)",
                           rule="unreadable", line=1)  # fmt: skip
    schema = {r.name: pl.String for r in rules}
    frame = pl.read_ndjson(path, schema=schema).with_row_index(_ROW)
    required = [r.name for r in rules if not r.nullable]
    all_null = [c for c in required if frame[c].null_count() == frame.height]
    if all_null:  # rare: read the bytes to tell "key never written" from "key always null"
        data = path.read_bytes()
        found = [r.name for r in rules if r.name not in all_null or f'"{r.name}"'.encode() in data]
        frame = frame.select(_present_columns(path, rules, found) + [_ROW])
    return _Loaded(frame, "line", lambda rows: _jsonl_lines(path, rows))


def _load_parquet(path: Path, rules: Sequence[ColumnRule]) -> _Loaded:
    present = _present_columns(path, rules, list(pl.read_parquet_schema(path)))
    frame = pl.read_parquet(path, columns=present).with_row_index(_ROW)
    return _Loaded(frame, "row", lambda rows: {r: r + 1 for r in rows})


def _first_byte(path: Path) -> bytes:
    with path.open("rb") as fh:
        return fh.read(4096).lstrip()[:1]


def _open_text(path: Path) -> io.TextIOBase:
    if path.name.lower().endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8-sig", errors="replace", newline="")
    return path.open("r", encoding="utf-8-sig", errors="replace", newline="")


def _csv_lines(path: Path, rows: Sequence[int]) -> dict[int, int]:
    """Record index -> physical line, from the newlines that end records.

    A newline ends a record unless an odd number of quotes precedes it (it sits in a quoted
    field), so line numbers come from counting bytes with numpy: a second per ~500 MB, against
    minutes for a Python CSV parser walking millions of rows to reach a late bad row.
    """
    wanted = sorted(set(rows))
    ends = _record_end_lines(path, wanted[-1] + 1 if wanted else 0)
    # ends[0] closes the header; data record k starts right after ends[k].
    return {k: int(ends[k]) + 1 for k in wanted if k < len(ends)}


def _record_end_lines(path: Path, count: int, chunk_size: int = 1 << 24) -> np.ndarray:
    """Physical line numbers of the first ``count`` record-ending newlines (header included)."""
    found: list[np.ndarray] = []
    lines_before, quotes_before, total = 0, 0, 0
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    with opener(path, "rb") as fh:
        while total < count and (chunk := fh.read(chunk_size)):
            data = np.frombuffer(chunk, dtype=np.uint8)
            newlines = np.flatnonzero(data == ord("\n"))
            quotes = np.flatnonzero(data == ord('"'))
            outside = (quotes_before + np.searchsorted(quotes, newlines)) % 2 == 0
            ends = lines_before + 1 + np.flatnonzero(outside)
            found.append(ends)
            total += len(ends)
            lines_before += len(newlines)
            quotes_before += len(quotes)
    return np.concatenate(found)[:count] if found else np.zeros(0, dtype=np.int64)


def _jsonl_lines(path: Path, rows: Sequence[int]) -> dict[int, int]:
    wanted, out, index = set(rows), {}, 0
    with path.open("rb") as fh:
        for line_number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            if index in wanted:
                out[index] = line_number
                if len(out) == len(wanted):
                    break
            index += 1
    return out


def _first_bad_line(path: Path, fmt: Format) -> int | None:
    """Where a file Polars refused to parse goes wrong (a ragged CSV line, a broken JSON line)."""
    try:
        if fmt == "csv":
            return _first_ragged_csv_line(path)
        if fmt == "jsonl":
            return _first_bad_json_line(path)
    except (OSError, csv.Error, UnicodeDecodeError):
        return None
    return None


def _first_ragged_csv_line(path: Path) -> int | None:
    """First line with more fields than the header (a Python scan: only for broken files)."""
    with _open_text(path) as fh:
        reader = csv.reader(fh)
        width = len(next(reader, []))
        previous = reader.line_num
        for fields in reader:
            if len(fields) > width:
                return previous + 1
            previous = reader.line_num
    return None


def _first_bad_json_line(path: Path) -> int | None:
    with path.open("rb") as fh:
        for line_number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError:
                return line_number
            if not isinstance(record, dict):
                return line_number
    return None


# ----------------------------------------------------------------------------- validation


def _normalize(path: str | Path, frame: pl.DataFrame, rules: Sequence[ColumnRule]) -> pl.DataFrame:
    """Every schema column present, as text or a number; absent nullable columns become nulls."""
    columns: list[pl.Expr] = [pl.col(_ROW)]
    for rule in rules:
        if rule.name not in frame.columns:
            columns.append(pl.lit(None, dtype=pl.String).alias(rule.name))
            continue
        dtype = frame.schema[rule.name]
        if dtype == pl.String or dtype.is_numeric():
            columns.append(pl.col(rule.name))
        elif isinstance(dtype, pl.Datetime) and rule.dtype == "int":  # Parquet timestamps
            columns.append(pl.col(rule.name).dt.epoch("ms"))
        elif dtype in (pl.Boolean, pl.Categorical, pl.Null) or isinstance(dtype, pl.Enum):
            columns.append(pl.col(rule.name).cast(pl.String))
        else:
            detail = f"values of type {dtype} cannot hold {rule.dtype} values"
            raise RawDataError(path, detail, rule="unreadable", column=rule.name)
    return frame.select(columns)


def _text(column: pl.Expr) -> pl.Expr:
    """Trimmed text with empty meaning absent (CSV writes nulls as empty fields)."""
    trimmed = column.str.strip_chars()
    return pl.when(trimmed != "").then(trimmed)


def _cleaned(raw: pl.DataFrame, rules: Sequence[ColumnRule]) -> pl.DataFrame:
    """Numbers given as text trimmed once (so parsing and "was there a value" share the work)."""
    text = [r.name for r in rules if r.dtype != "str" and raw.schema[r.name] == pl.String]
    return raw.with_columns([_text(pl.col(name)).alias(name) for name in text])


def _parse_float(column: pl.Expr, dtype: pl.DataType) -> pl.Expr:  # noqa: ARG001
    """Finite float or null; NaN and infinities count as "not a number"."""
    value = column.cast(pl.Float64, strict=False)
    return pl.when(value.is_finite()).then(value)


def _parse_int(column: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    """Int64 or null; "1.0" and 1e3 are whole numbers, "1.5" is not."""
    if dtype.is_integer():
        return column.cast(pl.Int64, strict=False)
    number = _parse_float(column, dtype)
    is_whole = (number == number.floor()) & (number.abs() < 2.0**63)
    whole = pl.when(is_whole).then(number.cast(pl.Int64))
    if dtype == pl.String:
        return pl.coalesce(column.cast(pl.Int64, strict=False), whole)
    return whole


def _parse_str(column: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    text = column if dtype == pl.String else column.cast(pl.String)
    return pl.when(text != "").then(text)


def _typed(raw: pl.DataFrame, rules: Sequence[ColumnRule]) -> pl.DataFrame:
    """Parsed values (null where absent or unparseable) and, for numbers, "was there a value"."""
    clean = _cleaned(raw, rules)
    out: list[pl.Expr] = [pl.col(_ROW)]
    for rule in rules:
        column, dtype = pl.col(rule.name), clean.schema[rule.name]
        if rule.dtype == "str":
            out.append(_parse_str(column, dtype).alias(rule.name))
            continue
        parse = _parse_int if rule.dtype == "int" else _parse_float
        out.append(parse(column, dtype).alias(rule.name))
        out.append(column.is_not_null().alias(_PRESENT + rule.name))
    return clean.select(out)


def _checks(view: str, rules: Sequence[ColumnRule]) -> list[_Check]:
    """All rules of a view in the order a row is judged: column by column, then across columns."""
    checks = [check for rule in rules for check in _column_checks(view, rule)]
    for when_view, when_column, equals, required in CONDITIONAL_REQUIRED:
        if when_view == view:
            checks += [_required_for(when_column, equals, name) for name in required]
    names = {r.name for r in rules}
    checks += [_on_screen(c, extent) for c, extent in ON_SCREEN if {c, extent} <= names]
    return checks


def _column_checks(view: str, rule: ColumnRule) -> list[_Check]:
    """Checks on one column, in the order a value is judged: parse, presence, range, set."""
    name, value = rule.name, pl.col(rule.name)
    checks: list[_Check] = []
    if rule.dtype == "str":
        missing = value.is_null()
        checks.append(_nul_character(name))
    else:
        present = pl.col(_PRESENT + name)
        checks.append(_not_a_number(view, rule, present & value.is_null()))
        missing = ~present
    if not rule.nullable:
        detail = f"missing value; {name!r} is required in every row"
        checks.append(_Check("missing_value", name, missing, lambda row: detail))
    if rule.minimum is not None:
        checks.append(_below_minimum(rule))
    if rule.allowed is not None:
        checks.append(_unknown_value(name, rule.allowed))
    return checks


def _nul_character(name: str) -> _Check:
    """Text goes into vocabularies that ship to phones, where a NUL ends a C string."""
    test = pl.col(name).str.contains("\0", literal=True).fill_null(False)

    def explain(row: dict[str, Any]) -> str:
        return f"{row[name]!r} holds a NUL character; {name!r} must be text without NUL"

    return _Check("nul_character", name, test, explain)


def _not_a_number(view: str, rule: ColumnRule, test: pl.Expr) -> _Check:
    name = rule.name
    unit = " of milliseconds" if TIME_COLUMN.get(view) == name else ""

    def explain(row: dict[str, Any]) -> str:
        if rule.dtype == "float":
            return f"{row[name]!r} is not a number"
        return f"{row[name]!r} is not a whole number{unit}; {name!r} must be an integer"

    return _Check("not_a_number", name, test, explain)


def _below_minimum(rule: ColumnRule) -> _Check:
    """Below the bound; "negative" when the bound is 0 (the common case users search for)."""
    name, minimum = rule.name, float(rule.minimum or 0)
    noun, test = _NOUNS.get(name, "count"), pl.col(name) < minimum

    def negative(row: dict[str, Any]) -> str:
        return f"negative {noun} ({row[name]}); {noun}s must be >= 0"

    def below(row: dict[str, Any]) -> str:
        return f"{noun} {row[name]} is below the minimum; {name!r} must be >= {minimum:g}"

    if minimum == 0:
        return _Check("negative", name, test, negative)
    return _Check("below_minimum", name, test, below)


def _unknown_value(name: str, allowed: tuple[str, ...]) -> _Check:
    test = pl.col(name).is_not_null() & ~pl.col(name).is_in(allowed)

    def explain(row: dict[str, Any]) -> str:
        return f"unknown {name} {row[name]!r}; expected one of {', '.join(allowed)}"

    return _Check("unknown_value", name, test, explain)


def _required_for(when_column: str, equals: str, name: str) -> _Check:
    test = (pl.col(when_column) == equals) & pl.col(name).is_null()
    detail = f"{when_column} {equals!r} rows need {name!r}, but it is empty"
    return _Check("missing_required_for_type", name, test, lambda row: detail)


def _on_screen(name: str, extent: str) -> _Check:
    def explain(row: dict[str, Any]) -> str:
        return f"{name} {row[name]} is off screen; it must be <= {extent} ({row[extent]})"

    return _Check("off_screen", name, pl.col(name) > pl.col(extent), explain)


def _failures(
    path: str | Path,
    raw: pl.DataFrame,
    loaded: _Loaded,
    bad_rows: pl.DataFrame,
    checks: Sequence[_Check],
    limit: int,
) -> tuple[dict[str, int], list[RawDataError]]:
    """Bad rows counted by the first rule each breaks, and errors for the first ``limit`` of them.

    Only bad rows get here, so this works on a small frame; messages quote the raw values.
    """
    first = [pl.when(c.bad).then(pl.lit(i, dtype=pl.Int32)) for i, c in enumerate(checks)]
    which = bad_rows.select(pl.coalesce(first)).to_series()
    counts: dict[str, int] = {}
    for index, n in which.value_counts().iter_rows():
        counts[checks[index].rule] = counts.get(checks[index].rule, 0) + n
    rows = bad_rows[_ROW].head(limit).to_list()
    places = loaded.locate(rows)
    raw_rows = {r[_ROW]: r for r in raw.filter(pl.col(_ROW).is_in(rows)).iter_rows(named=True)}
    errors = [
        RawDataError(path, checks[i].explain(raw_rows[row]), rule=checks[i].rule,
                     line=places.get(row), column=checks[i].column, unit=loaded.unit)
        for row, i in zip(rows, which.head(limit).to_list(), strict=True)
    ]  # fmt: skip
    return counts, errors


def _sort(frame: pl.DataFrame, view: str) -> pl.DataFrame:
    """Per-user time order; stable, so same-millisecond events keep their file order.

    Users are ranked through their distinct ids (far fewer than rows), so the row sort compares
    integers only: about twice as fast as a stable sort on the string column.
    """
    users = frame["user_id"].unique().sort()
    ranks = pl.int_range(len(users), eager=True, dtype=pl.UInt32)
    rank = frame["user_id"].replace_strict(users, ranks).alias("__user")
    time = [TIME_COLUMN[view]] if view in TIME_COLUMN else []
    keyed = frame.with_columns(rank, pl.int_range(pl.len(), dtype=pl.UInt32).alias(_ROW))
    return keyed.sort(["__user", *time, _ROW]).drop("__user", _ROW)
