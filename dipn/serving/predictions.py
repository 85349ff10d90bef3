"""Reading the scores ``dipn evaluate --predictions-out`` writes, the reference sample of a band.

``dipn evaluate`` writes one format: CSV with the header ``user_id,ts,p_realtime,p_longterm`` and a
row per cut, whatever the file's name (``val.parquet`` too holds CSV). This reads that file, also
gzip-compressed (polars decompresses it), and names what it cannot read instead of passing on a
parser's many-line complaint: a directory (the evaluation report of ``--out`` in particular),
Parquet, JSON (``metrics.json``), a zip archive (a torch checkpoint), other binary data, and text
whose header is not the predictions'.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dipn.serving.band import MIN_REFERENCE

HEADER = ("user_id", "ts", "p_realtime", "p_longterm")
WRITER = "dipn evaluate --predictions-out"


class PredictionsError(ValueError):
    """A file that is not, or does not hold usable, predictions; the message is one line."""


def read_predictions(path: Path, column: str = "p_realtime") -> tuple[np.ndarray, np.ndarray]:
    """(users, scores in [0, 1]) of a predictions CSV; ``PredictionsError`` naming what the file is
    when it is something else."""
    import polars as pl

    path = Path(path)
    _refuse_what_is_no_csv(path)
    try:
        frame = pl.read_csv(path, schema_overrides={"user_id": pl.String}, infer_schema_length=10_000)
    except (OSError, pl.exceptions.PolarsError) as exc:
        reason = (str(exc).strip().splitlines() or [""])[0]
        raise PredictionsError(f"{path}: cannot read it as a predictions CSV ({exc.__class__.__name__}: {reason}); "
                               f"{WRITER} writes one") from None  # fmt: skip
    missing = [c for c in ("user_id", column) if c not in frame.columns]
    if missing:
        raise PredictionsError(f"{path}: no column {', '.join(missing)} (columns: {', '.join(frame.columns)[:200]}); "
                               f"write it with {WRITER}")  # fmt: skip
    try:
        scores = frame[column].cast(pl.Float64).to_numpy()
    except pl.exceptions.PolarsError:
        raise PredictionsError(f"{path}: column {column} holds values that are no numbers") from None
    bad = ~np.isfinite(scores) | (scores < 0) | (scores > 1)
    if bad.any():
        raise PredictionsError(f"{path}: {int(bad.sum())} values of {column} are not probabilities in [0, 1] "
                               f"(first at data row {int(np.argmax(bad)) + 1})")
    if len(scores) < MIN_REFERENCE:
        raise PredictionsError(f"{path}: {len(scores)} scores; at least {MIN_REFERENCE} are needed")
    return frame["user_id"].to_numpy(), scores


def _refuse_what_is_no_csv(path: Path) -> None:
    """Name the file when its first bytes show it is no predictions CSV."""
    if path.is_dir():
        if (path / "metrics.json").is_file():
            raise PredictionsError(f"{path} is the evaluation report of dipn evaluate --out; give the file its "
                                   "--predictions-out wrote")
        raise PredictionsError(f"{path} is a directory; give the predictions CSV ({WRITER})")
    try:
        with path.open("rb") as file:
            head = file.read(4096)
    except OSError as exc:
        raise PredictionsError(f"{path}: cannot read it as a predictions CSV ({exc.strerror or exc})") from None
    kind = next((name for magic, name in _MAGIC if head.startswith(magic)), None)
    if kind == "gzip":
        return  # polars decompresses it; the header is checked after
    if kind is not None:
        raise PredictionsError(f"{path} is {kind}, not the predictions CSV {WRITER} writes (the only format it "
                               "writes, whatever the file's name)")
    if b"\0" in head:
        raise PredictionsError(f"{path} holds binary data, not the predictions CSV {WRITER} writes")
    if not head.strip():
        raise PredictionsError(f"{path} is empty; {WRITER} writes a header and a row per cut")
    if head.lstrip()[:1] in (b"{", b"["):
        raise PredictionsError(f"{path} is JSON, not the predictions CSV {WRITER} writes")
    header = head.split(b"\n", 1)[0].decode("utf-8", "replace").strip().lstrip("\ufeff")
    if "user_id" not in header.split(","):
        raise PredictionsError(f"{path}: its first line {header[:80]!r} is not the header of the predictions CSV "
                               f"({','.join(HEADER)}, as {WRITER} writes it)")


_MAGIC = ((b"PAR1", "a Parquet file"), (b"PK\x03\x04", "a zip archive (a torch checkpoint?)"),
          (b"\x1f\x8b", "gzip"), (b"\x89PNG", "a PNG image"), (b"\x93NUMPY", "a .npy array"))
