"""Published file layouts and the row checks that go with them (strict and lenient modes).

A layout names a file's comma-separated fields in their published order (or, for files with a
header, the names the header must hold). ``parse_rows`` splits a chunk of lines into fields,
judges every row with vectorized checks, and either raises a ``RawDataError`` for the first bad
row (strict) or drops the bad rows and counts them per rule (lenient), exactly as the raw readers
do: each dropped row is counted once, under the first rule it breaks, judged field by field in
published order. Only the fields an importer uses are checked; the others are carried unread.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import polars as pl

from dipn.logs.importers.lines import CHUNK_BYTES, LineChunk, first_line, line_chunks
from dipn.logs.readers import RawDataError

Parse = Literal["text", "int", "datetime"]
LINE = "__line"  # physical line number of a row
HASH = "__hash"  # hash of a row's text, to find exact duplicates
EXAMPLES = 5  # error messages kept per file in lenient mode


@dataclass(frozen=True)
class Field:
    """One published field. ``used`` fields are parsed and checked; the others are carried."""

    name: str
    parse: Parse = "text"
    used: bool = True
    required: bool = True
    allowed: tuple[str, ...] = ()  # closed set of values (event types)
    minimum: int | None = None  # for "int" ("datetime" values must not precede 1970)
    pattern: str | None = None  # regular expression a value must match in full
    formats: tuple[str, ...] = ()  # strptime formats for "datetime", tried in order (UTC)
    example: str = ""  # a valid value, quoted in messages


@dataclass(frozen=True)
class Layout:
    """A file's published layout: its role in the format and its fields."""

    role: str  # "events", "clicks", "buys", "item_properties", ...
    fields: tuple[Field, ...]
    header: bool  # does line 1 name the fields?
    rest_in_last: bool = False  # the last field takes the rest of the line (it may hold commas)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)


@dataclass
class FileReport:
    """What the import did with one input file; each dropped row is counted under one reason."""

    path: Path
    role: str
    rows_read: int = 0  # non-blank lines after the header
    rows_kept: int = 0  # rows that reached the output (after duplicates are removed)
    blank_lines: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    examples: list[str] = field(default_factory=list)

    def drop(self, reason: str, n: int) -> None:
        if n:
            self.dropped[reason] = self.dropped.get(reason, 0) + int(n)

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path), "role": self.role, "rows_read": self.rows_read,
            "rows_kept": self.rows_kept, "blank_lines": self.blank_lines,
            "dropped": dict(sorted(self.dropped.items())), "examples": self.examples,
        }  # fmt: skip

    def __str__(self) -> str:
        head = f"{self.path} ({self.role}): read {self.rows_read:,} rows, kept {self.rows_kept:,}"
        if self.dropped:
            reasons = ", ".join(f"{k}: {n:,}" for k, n in sorted(self.dropped.items()))
            head += f", dropped {sum(self.dropped.values()):,} ({reasons})"
        if self.blank_lines:
            head += f", skipped {self.blank_lines:,} blank lines"
        return "\n".join([head, *(f"  e.g. {e}" for e in self.examples)])


@dataclass(frozen=True)
class Positions:
    """Where each field sits in a line, from the published order or from the file's header."""

    index: dict[str, int]
    width: int  # number of fields a line must have
    data_starts_at: int  # lines to skip (the header)


def positions(path: Path, layout: Layout) -> Positions:
    """Field positions; for a layout with a header, read it and require every published name."""
    if not layout.header:
        return Positions({f.name: i for i, f in enumerate(layout.fields)}, len(layout.fields), 0)
    header = [name.strip().strip('"') for name in first_line(path).split(",")]
    missing = [n for n in layout.names if n not in header]
    if missing:
        named = ", ".join(repr(m) for m in missing)
        detail = (f"missing column{'s' if len(missing) > 1 else ''} {named} in the header; "
                  f"the {layout.role} layout is {', '.join(layout.names)}; found {header}")  # fmt: skip
        raise RawDataError(path, detail, rule="missing_column", line=1, column=missing[0])
    return Positions({name: header.index(name) for name in layout.names}, len(header), 1)


def read_rows(
    path: Path,
    layout: Layout,
    report: FileReport,
    *,
    lenient: bool,
    chunk_bytes: int = CHUNK_BYTES,
    progress: Callable[[int], None] | None = None,
) -> Iterator[pl.DataFrame]:
    """The good rows of a file, chunk by chunk, in file order (see ``parse_rows``)."""
    where = positions(path, layout)
    chunks = line_chunks(path, chunk_bytes=chunk_bytes, skip_lines=where.data_starts_at, progress=progress)
    for chunk in chunks:
        rows = parse_rows(chunk, path, layout, where, report, lenient=lenient)
        if rows.height:
            yield rows


@dataclass(frozen=True)
class _Check:
    rule: str
    column: str | None
    bad: pl.Expr  # true for a row that breaks the rule
    explain: Callable[[dict[str, Any]], str]  # raw fields of the row -> sentence


def parse_rows(
    chunk: LineChunk, path: Path, layout: Layout, where: Positions, report: FileReport, *, lenient: bool
) -> pl.DataFrame:
    """Good rows of a chunk: the used fields parsed (text, Int64, or ms since the epoch), the
    physical line and a hash of the line's text. Bad rows raise (strict) or are counted."""
    frame = _split(chunk, layout, where)
    blank = frame["__blank"]
    n_blank = int(blank.sum())
    report.blank_lines += n_blank
    if n_blank:
        frame = frame.filter(~blank)
    report.rows_read += frame.height
    checks = _checks(layout, where.width)
    first_bad = pl.coalesce([pl.when(c.bad).then(pl.lit(i, pl.Int32)) for i, c in enumerate(checks)])
    frame = frame.with_columns(first_bad.alias("__rule"))
    bad = frame.filter(pl.col("__rule").is_not_null())
    if bad.height:
        _report_bad(bad, checks, path, layout, report, lenient=lenient)
        frame = frame.filter(pl.col("__rule").is_null())
    used = [f for f in layout.fields if f.used]
    return frame.select(LINE, HASH, *[pl.col(_value(f)).alias(f.name) for f in used])


def _split(chunk: LineChunk, layout: Layout, where: Positions) -> pl.DataFrame:
    """One row per line: its number, hash and text, each used field as trimmed text ("" -> null)
    and parsed (``__value_<name>``), and whether the line is blank or has too few / many fields.

    ``splitn`` into one field more than the layout has: a line with too many fields fills it.
    """
    n = where.width if layout.rest_in_last else where.width + 1
    parts = pl.DataFrame({"text": chunk.text}).select(
        pl.int_range(chunk.first_line, chunk.first_line + pl.len(), dtype=pl.Int64).alias(LINE),
        pl.col("text").hash(seed=0).alias(HASH),
        pl.col("text"),
        pl.col("text").str.splitn(",", n).alias("__parts"),
    ).unnest("__parts")
    field = [pl.col(f"field_{i}") for i in range(n)]
    blank = field[0].str.strip_chars() == ""
    if n > 1:
        blank = blank & field[1].is_null()
    too_many = pl.lit(False) if layout.rest_in_last else field[where.width].is_not_null()
    texts = [_blank_to_null(field[where.index[f.name]]).alias(f.name) for f in layout.fields if f.used]
    frame = parts.select(
        LINE, HASH, "text", blank.alias("__blank"),
        (field[where.width - 1].is_null() | too_many).alias("__field_count"), *texts,
    )  # fmt: skip
    parsed = [_parse(f).alias(_value(f)) for f in layout.fields if f.used and f.parse != "text"]
    return frame.with_columns(parsed)


def _value(f: Field) -> str:
    return f.name if f.parse == "text" else f"__value_{f.name}"


def _parse(f: Field) -> pl.Expr:
    """Int64, or ms since the epoch from the first strptime format that fits; null if neither."""
    value = pl.col(f.name)
    if f.parse == "int":
        return value.cast(pl.Int64, strict=False)
    parsed = [value.str.strptime(pl.Datetime("ms"), fmt, strict=False).dt.epoch("ms") for fmt in f.formats]
    return parsed[0] if len(parsed) == 1 else pl.coalesce(parsed)


def _blank_to_null(column: pl.Expr) -> pl.Expr:
    trimmed = column.str.strip_chars()
    return pl.when(trimmed != "").then(trimmed)


def _checks(layout: Layout, width: int) -> list[_Check]:
    """Rules in the order a row is judged: its field count, then each used field in order."""
    checks = [_field_count(layout, width)]
    for f in layout.fields:
        if f.used:
            checks += _field_checks(f)
    return checks


def _field_count(layout: Layout, width: int) -> _Check:
    names = ", ".join(layout.names)

    def explain(row: dict[str, Any]) -> str:
        found = row["text"].count(",") + 1
        expected = f"{'at least ' if layout.rest_in_last else ''}{width}"
        return (f"expected {expected} comma-separated fields ({names}), found {found}; "
                "fields of this layout are never quoted")  # fmt: skip

    return _Check("field_count", None, pl.col("__field_count"), explain)


def _field_checks(f: Field) -> list[_Check]:
    """Checks on one field, in the order a value is judged: presence, parse, range, set."""
    name, value, parsed = f.name, pl.col(f.name), pl.col(_value(f))
    present = value.is_not_null()
    like = f" like {f.example!r}" if f.example else ""
    checks: list[_Check] = []
    if f.required:
        detail = f"missing value; {name!r} is required in every row"
        checks.append(_Check("missing_value", name, ~present, lambda row: detail))
    if f.parse == "int":
        whole = f"{name!r} must be an integer"
        checks.append(_Check("not_a_number", name, present & parsed.is_null(),
                             lambda row: f"{row[name]!r} is not a whole number; {whole}"))  # fmt: skip
        if f.minimum is not None:
            checks.append(_below_minimum(name, parsed, f.minimum))
    if f.parse == "datetime":
        checks.append(_Check("not_a_timestamp", name, present & parsed.is_null(),
                             lambda row: f"{row[name]!r} is not a timestamp{like}"))  # fmt: skip
        early = "times must not precede 1970-01-01 00:00 UTC"
        checks.append(_Check("negative", name, parsed < 0, lambda row: f"{row[name]!r} is too early; {early}"))
    if f.pattern is not None:
        fits = value.str.contains(f"^(?:{f.pattern})$")
        checks.append(_Check("unknown_value", name, present & ~fits,
                             lambda row: f"unknown {name} {row[name]!r}; expected a value{like}"))  # fmt: skip
    if f.allowed:
        expected = f"expected one of {', '.join(f.allowed)}"
        checks.append(_Check("unknown_value", name, present & ~value.is_in(f.allowed),
                             lambda row: f"unknown {name} {row[name]!r}; {expected}"))  # fmt: skip
    return [_Check(c.rule, c.column, c.bad.fill_null(False), c.explain) for c in checks]


def _below_minimum(name: str, parsed: pl.Expr, minimum: int) -> _Check:
    """"negative" when the bound is 0, as in the raw readers (the case users search for)."""
    bad = parsed < minimum
    if minimum == 0:
        return _Check("negative", name, bad, lambda row: f"negative {name} ({row[name]}); {name!r} must be >= 0")
    return _Check("below_minimum", name, bad,
                  lambda row: f"{name} {row[name]} is below the minimum; {name!r} must be >= {minimum}")  # fmt: skip


def _report_bad(
    bad: pl.DataFrame, checks: list[_Check], path: Path, layout: Layout, report: FileReport, *, lenient: bool
) -> None:
    for index, n in bad["__rule"].value_counts().iter_rows():
        report.drop(checks[index].rule, n)
    room = EXAMPLES - len(report.examples) if lenient else 1
    for row in bad.head(max(room, 0)).iter_rows(named=True):
        check = checks[row["__rule"]]
        detail = check.explain(row)
        if row[LINE] == 1 and not layout.header:
            detail += "; this layout has no header line"
        error = RawDataError(path, detail, rule=check.rule, line=row[LINE], column=check.column)
        if not lenient:
            raise error
        report.examples.append(str(error))
