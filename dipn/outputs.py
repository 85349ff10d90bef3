"""Output directories: what kind each holds, and replacing one whole, never half.

Each command writes one kind of directory and refuses a file, or a non-empty directory of
another kind, as its output: a slip in ``--out`` must not turn a training run into a sample
directory. A directory a command rebuilds as a whole (samples, a bundle) is assembled in a
temporary directory beside it and renamed into place, so a kill at any moment leaves the old
directory or the new one, never a mix of both. A lock file beside the output (``.NAME.lock``,
released by the kernel when its holder dies) keeps two writers apart and lets the next writer
know that whatever a killed one left beside the output (``.NAME.partial-*``, ``.NAME.previous``)
is abandoned: it removes it, or puts the previous directory back if the kill fell between the two
renames of the swap.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock, Timeout

from dipn.errors import DipnValidationError


@dataclass(frozen=True)
class OutputKind:
    """A kind of output directory, recognized by a file matching any one of its marker patterns."""

    name: str
    markers: tuple[str, ...]  # glob patterns

    def holds(self, directory: Path) -> bool:
        return any(next(directory.glob(marker), None) is not None for marker in self.markers)


SAMPLES = OutputKind("sample directory", ("dataset.json",))
TRAINING_RUN = OutputKind("training run", ("train_config.json", "last.pt", "best.pt", "metrics.jsonl", "gbdt.json"))
BUNDLE = OutputKind("bundle", ("manifest.json",))
RAW_LOGS = OutputKind("raw log directory", ("meta.json", "swipe.*", "tap.*", "browse.*", "history.*", "profile.*"))
KINDS = (SAMPLES, TRAINING_RUN, BUNDLE, RAW_LOGS)


def existing_output(out: Path, kind: OutputKind) -> bool:
    """Whether ``out`` holds an earlier output of ``kind`` (False: absent or an empty directory).

    Refuses a file and a non-empty directory that is not of ``kind``, naming what it holds.
    """
    if not out.exists():
        return False
    if not out.is_dir():
        raise DipnValidationError(f"{out} is a file, not a directory: give a directory as the output {kind.name}")
    if kind.holds(out):
        return True
    if not any(out.iterdir()):
        return False
    other = next((f"a {k.name}" for k in KINDS if k.holds(out)), "other files")
    raise DipnValidationError(
        f"{out} holds {other}, not a {kind.name}; refusing to write into it: give a new or empty directory"
    )


def make_directory(path: Path) -> Path:
    """``mkdir -p`` with the refusal of the operating system as a one-line error naming the path."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DipnValidationError(f"{path}: cannot create the directory ({exc.strerror or exc})") from None
    return path


@contextmanager
def replacing(out: Path, kind: OutputKind) -> Iterator[Path]:
    """A fresh directory beside ``out`` to build a ``kind`` in; it replaces ``out`` whole when the
    block completes, and is removed when the block raises (``out`` stays as it was)."""
    out = Path(out).resolve()
    existing_output(out, kind)
    make_directory(out.parent)
    lock = FileLock(out.parent / f".{out.name}.lock", timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise DipnValidationError(f"{out}: another process is writing it (it holds {lock.lock_file})") from None
    try:
        _recover(out)
        staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
        staging.chmod(0o755)  # mkdtemp makes it private; outputs are meant to be read and copied
        try:
            yield staging
            _swap(staging, out)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    finally:
        lock.release()


def _previous(out: Path) -> Path:
    return out.with_name(f".{out.name}.previous")


def _recover(out: Path) -> None:
    """Under the lock: what a killed writer left beside ``out`` is abandoned."""
    for partial in out.parent.glob(f".{out.name}.partial-*"):
        shutil.rmtree(partial, ignore_errors=True)
    previous = _previous(out)
    if previous.exists():
        if out.exists():
            shutil.rmtree(previous)
        else:  # killed between the two renames of ``_swap``: the old output is the last whole one
            previous.rename(out)


def _swap(staging: Path, out: Path) -> None:
    if out.exists():
        out.rename(_previous(out))
        staging.rename(out)
        shutil.rmtree(_previous(out))
    else:
        staging.rename(out)
