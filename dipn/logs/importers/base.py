"""What every importer provides: its files' layouts and the mapping of its rows onto browse events.

An importer turns parsed rows of its event files into *events*: one row per kept source row with
the columns ``EVENT_COLUMNS`` (``action`` null for a source event that has no counterpart in our
browse view; the pipeline drops and counts those). Formats whose categories live in side files,
or are a property of the item rather than of the row, read them in ``prepare`` (side files) or
``observe`` (a first look at every event) and fill them in ``resolve``, once per partition of
users, after duplicates are gone.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import polars as pl

from dipn.logs.importers.layout import Layout
from dipn.logs.readers import RawDataError

# The browse view's columns plus the item (for category look-ups), as the pipeline carries them.
EVENT_SCHEMA = {
    "user_id": pl.String, "ts": pl.Int64, "action": pl.String, "item": pl.String,
    "leaf_category": pl.String, "top_category": pl.String, "page": pl.String,
}  # fmt: skip
EVENT_COLUMNS = tuple(EVENT_SCHEMA)
# The browse page of a row whose log says nothing about the page it happened on.
PAGE_LOG = "Page_Log"

# (path, role) -> the good rows of that file, chunk by chunk, counted in its report.
RowReader = Callable[[Path, str], Iterator[pl.DataFrame]]


class LogFormat:
    """Base of the importers; one subclass per published data set."""

    name: str = ""
    title: str = ""  # the data set's public name
    utc_offset_minutes: int = 0  # the market's time zone: hour feature and snapshot days
    window_ms: tuple[int, int] | None = None  # a published window [start, end); else the data's span
    event_roles: tuple[str, ...] = ("events",)

    def role_of(self, path: Path) -> str:
        """Which of the format's files this is (events, clicks, buys, item_properties, ...)."""
        return "events"

    def layout(self, role: str) -> Layout:
        raise NotImplementedError

    def events(self, rows: pl.DataFrame, role: str) -> pl.DataFrame:
        """Parsed rows -> ``EVENT_COLUMNS`` (extra columns may follow, for ``observe``)."""
        raise NotImplementedError

    def prepare(self, side_files: dict[str, list[Path]], read: RowReader) -> None:
        """Read side files (item properties, category trees) before the event files."""
        if side_files:
            path = next(iter(side_files.values()))[0]
            raise RawDataError(path, f"{self.name} takes no {next(iter(side_files))} file", rule="unknown_file")

    def observe(self, events: pl.DataFrame) -> None:
        """See every event once (pass 1), e.g. to learn each item's category."""

    def resolve(self, events: pl.DataFrame) -> pl.DataFrame:
        """Fill what needs ``prepare`` or ``observe`` (pass 2, one partition of users at a time)."""
        return events

    def mapping(self) -> dict[str, Any]:
        """The mapping as recorded in meta.json (docs/data.md explains it)."""
        raise NotImplementedError


def constant(value: str | None) -> pl.Expr:
    return pl.lit(value, dtype=pl.String)
