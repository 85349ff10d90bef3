"""Raw logs read by Spark, each row judged by the default reader's own rules.

Spark parses the files in parallel (the directory must be one the driver lists and every
executor reads under the same path); the judging runs in the Python workers through ``dipn.logs.readers.judge_rows``, so both engines accept, reject and
explain the same rows. Spark does not know line numbers: a refused row is named by file, column
and value, and the default engine run on that one file gives its line.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl
import pyarrow as pa

from dipn.logs.readers import SUFFIXES, RawDataError, ReadReport, judge_rows, present_columns, view_files
from dipn.features.contract import RAW_VIEWS, SCHEMAS

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

ROW, VIEW = "__row", "__view"  # file order within a view; the view a row belongs to
BAD_COLUMNS = ("__rule", "__column", "__detail")  # null on good rows
_ARROW = {"int": pa.int64(), "float": pa.float64(), "str": pa.string()}
_EXAMPLES = 5


def read_validated(spark: SparkSession, raw_dir: Path) -> tuple[DataFrame, dict[str, Path]]:
    """All views in one frame: canonical columns (null where another view's), ``__view``,
    ``__row`` and, on rows that break a rule, the rule, the column and a sentence."""
    if not raw_dir.is_dir():
        raise RawDataError(raw_dir, "not a directory", rule="unreadable")
    files = view_files(raw_dir, RAW_VIEWS)
    if not files:
        raise RawDataError(raw_dir, f"no event files found; expected one or more of "
                           f"{', '.join(f'{v}.csv' for v in RAW_VIEWS)} (or .jsonl, .parquet)", rule="no_views")  # fmt: skip
    frames = [_judged(spark, path, view) for view, path in files.items()]
    union = frames[0]
    for frame in frames[1:]:
        union = union.unionByName(frame, allowMissingColumns=True)
    return union, files


def read_reports(
    judged: DataFrame, files: dict[str, Path]
) -> tuple[dict[str, ReadReport], list[RawDataError]]:
    """What the default reader reports per view (rows read, kept, dropped per rule, examples), and
    the first refused row of each view with refusals, in view order: the strict mode's error."""
    from pyspark.sql import functions as F

    reports = {view: ReadReport(path, view, 0, 0) for view, path in files.items()}
    for row in judged.groupBy(VIEW, "__rule").count().collect():
        report = reports[row[VIEW]]
        report.rows_read += row["count"]
        if row["__rule"] is None:
            report.rows_kept += row["count"]
        else:
            report.dropped[row["__rule"]] = row["count"]
    errors = []
    for view, report in reports.items():
        if report.dropped:
            bad = judged.filter((F.col(VIEW) == view) & F.col("__detail").isNotNull())
            first = [RawDataError(report.path, r["__detail"], rule=r["__rule"], column=r["__column"])
                     for r in bad.orderBy(ROW).limit(_EXAMPLES).collect()]  # fmt: skip
            report.examples = [str(e) for e in first]
            errors.append(first[0])
    return reports, errors


def _judged(spark: SparkSession, path: Path, view: str) -> DataFrame:
    from pyspark.sql import functions as F

    raw = _read(spark, path, view)
    present = present_columns(path, view, raw.columns)
    raw = raw.select(*present).withColumn(ROW, F.monotonically_increasing_id())
    schema = _arrow_schema(view)
    ddl = ", ".join(f"`{f.name}` {_ddl(f.type)}" for f in schema)
    return raw.mapInArrow(_judge_batches(view, str(path), schema), ddl).withColumn(VIEW, F.lit(view))


def _read(spark: SparkSession, path: Path, view: str) -> DataFrame:
    """Every column as text for CSV and JSON Lines (as the default reader does), Parquet as typed."""
    name = path.name.lower()
    fmt = next(f for suffix, f in SUFFIXES.items() if name.endswith(suffix))
    if fmt == "parquet":
        return spark.read.parquet(str(path))
    if fmt == "csv":
        return spark.read.options(header=True, inferSchema=False, escape='"', encoding="UTF-8").csv(str(path))
    text = ", ".join(f"`{r.name}` string" for r in SCHEMAS[view])
    return spark.read.schema(text).json(str(path))


def _arrow_schema(view: str) -> pa.Schema:
    fields = [pa.field(ROW, pa.int64())] + [pa.field(r.name, _ARROW[r.dtype]) for r in SCHEMAS[view]]
    return pa.schema(fields + [pa.field(name, pa.string()) for name in BAD_COLUMNS])


def _ddl(kind: pa.DataType) -> str:
    return {pa.int64(): "bigint", pa.float64(): "double", pa.string(): "string"}[kind]


def _judge_batches(view: str, path: str, schema: pa.Schema):  # noqa: ANN202 (a Spark map function)
    """The function each Python worker runs over its slice of one view's file."""

    def judge(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            good, bad = judge_rows(pl.from_arrow(batch), view, path)
            bad = bad.rename({"rule": "__rule", "column": "__column", "detail": "__detail"})
            both = pl.concat([good, bad], how="diagonal_relaxed") if len(bad) else good
            table = both.to_arrow()
            columns = [table[f.name].cast(f.type) if f.name in table.column_names
                       else pa.nulls(len(table), f.type) for f in schema]  # fmt: skip
            yield from pa.Table.from_arrays(columns, schema=schema).to_batches()

    return judge
