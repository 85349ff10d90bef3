"""A text file as chunks of physical lines: bounded memory, exact line numbers, a byte count.

The published logs are plain comma-separated text without quoting, so a line is a record. Reading
bytes ourselves (rather than through a CSV parser) keeps every physical line, blank ones included,
so an error can name the line a user sees in an editor; each chunk becomes one Polars string
column without a Python loop (the line boundaries are found with numpy and handed to Arrow).
"""

from __future__ import annotations

import gzip
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import polars as pl
import pyarrow as pa

from dipn.logs.readers import RawDataError

CHUNK_BYTES = 8 << 20  # text per chunk; the chunk's frames take some 30 times this in memory
_BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True)
class LineChunk:
    r"""Consecutive physical lines of a file, each with its line ending (\n or \r\n; the last
    line of a file gets a \n if it has none, so equal lines are equal strings)."""

    text: pl.Series  # one string per line ("\n" for a blank line)
    first_line: int  # 1-based physical line number of text[0]


def is_gzip(path: Path) -> bool:
    return path.name.lower().endswith(".gz")


def open_binary(path: Path) -> tuple[BinaryIO, BinaryIO]:
    """(stream of the file's text bytes, the raw file whose position measures progress)."""
    raw = path.open("rb")
    if is_gzip(path):
        return gzip.GzipFile(fileobj=raw, mode="rb"), raw  # type: ignore[return-value]
    return raw, raw


def first_line(path: Path) -> str:
    """The first line (a header), without its line ending; "" for an empty file."""
    stream, raw = open_binary(path)
    with raw, stream:
        line = stream.readline()
    return _decode(line.removeprefix(_BOM)).rstrip("\r\n")


def line_chunks(
    path: Path,
    *,
    chunk_bytes: int = CHUNK_BYTES,
    skip_lines: int = 0,
    progress: Callable[[int], None] | None = None,
) -> Iterator[LineChunk]:
    """Every physical line of ``path`` after the first ``skip_lines``, in chunks of about
    ``chunk_bytes``; ``progress`` is called with the bytes of the file (compressed bytes for
    .gz) consumed since its last call."""
    stream, raw = open_binary(path)
    with raw, stream:
        carry, line, position, first = b"", 1, 0, True
        while True:
            block = stream.read(chunk_bytes)
            if first:
                block, first = block.removeprefix(_BOM), False
            data = carry + block
            if not data:
                break
            cut = len(data) if not block else data.rfind(b"\n") + 1
            if cut == 0:  # a line longer than a chunk: keep reading until it ends
                carry = data
                continue
            body, carry = data[:cut], data[cut:]
            if not body.endswith(b"\n"):
                body += b"\n"
            text = _lines(path, body)
            if skip_lines:
                dropped = min(skip_lines, len(text))
                text, line, skip_lines = text.slice(dropped), line + dropped, skip_lines - dropped
            if len(text):
                yield LineChunk(text, line)
            line += len(text)
            if progress is not None:
                now = raw.tell()
                progress(now - position)
                position = now
            if not block:
                break


def _lines(path: Path, body: bytes) -> pl.Series:
    """Bytes ending with a newline -> one string per line, newline included."""
    buf = np.frombuffer(body, dtype=np.uint8)
    ends = np.flatnonzero(buf == ord("\n")) + 1
    offsets = np.r_[0, ends].astype(np.int64)
    array = pa.LargeStringArray.from_buffers(
        len(ends), pa.py_buffer(offsets.tobytes()), pa.py_buffer(body)
    )
    try:
        array.validate(full=True)
    except pa.ArrowInvalid:  # not UTF-8: keep the lines, replace the bad bytes
        lines = [_decode(body[a:b]) for a, b in zip(offsets[:-1], offsets[1:], strict=True)]
        return pl.Series(lines, dtype=pl.String)
    return pl.Series(array)


def _decode(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")


def check_readable(path: Path) -> None:
    """A missing, unreadable or empty file is one error, before any row is looked at."""
    if path.is_dir():
        raise RawDataError(path, "a directory; give the data set's files", rule="unreadable")
    if not path.is_file():
        raise RawDataError(path, "no such file", rule="unreadable")
    if path.stat().st_size == 0:
        raise RawDataError(path, "the file is empty", rule="unreadable")
    try:
        stream, raw = open_binary(path)
        with raw, stream:
            stream.read(1)
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise RawDataError(path, f"cannot read: {exc}", rule="unreadable") from exc
