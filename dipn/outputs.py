"""Outputs: what kind each directory holds, and one way to write any of them, whole or not at all.

Each command writes one kind of directory and refuses a file, or a non-empty directory of
another kind, as its output: a slip in ``--out`` must not turn a training run into a sample
directory, nor put an evaluation report inside a signed bundle. Every output is built beside its
place, flushed to the disk (fsync) and renamed into place: a directory with ``replacing``, a
single file with ``writing_file`` (``write_bytes``, ``write_text``). A failure or a kill at any
moment leaves the previous output or the new one, never a mix and never a half-written file.

A lock file beside the output (``.NAME.lock``, released by the kernel when its holder dies) keeps
two writers apart and lets the next writer know that whatever a killed one left beside the output
(``.NAME.partial-*``, ``.NAME.previous``) is abandoned: it removes it, or puts the previous
directory back if the kill fell between the two renames of the swap.

What the disk refuses (full, a file too large, read-only, not a directory, no permission) is one
``DipnValidationError`` naming the output (``write_error``), not a traceback from whichever
library was writing.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from fnmatch import fnmatch
from pathlib import Path

from filelock import FileLock, Timeout

from dipn.errors import DipnValidationError

# What a disk, a quota, a mount or a path can refuse to a writer.
WRITE_ERRNOS = frozenset({errno.ENOSPC, errno.EFBIG, errno.EROFS, errno.EDQUOT, errno.ENOTDIR, errno.EACCES,
                          errno.EPERM, errno.EIO, errno.EISDIR, errno.ENOENT, errno.ENAMETOOLONG})  # fmt: skip
# Libraries that wrap the OSError (pyarrow, polars, matplotlib) keep the operating system's words.
_SHORT_WRITE = re.compile(r"\d+ requested and \d+ written")
_WRITE_WORDS = ("No space left on device", "File too large", "Read-only file system", "Disk quota exceeded")


@dataclass(frozen=True)
class OutputKind:
    """A kind of output directory, recognized by a file matching any one of its marker patterns.

    ``keeps_others``: a rewrite carries over the entries that are not the kind's own (a raw log
    directory may also hold the source files it was imported from); otherwise it replaces the
    directory whole.
    """

    name: str
    markers: tuple[str, ...]  # glob patterns
    keeps_others: bool = False

    @property
    def a_name(self) -> str:
        """The name with its indefinite article ("an evaluation report", "a bundle")."""
        return ("an " if self.name[0] in "aeiou" else "a ") + self.name

    def holds(self, directory: Path) -> bool:
        return any(next(directory.glob(marker), None) is not None for marker in self.markers)

    def owns(self, name: str) -> bool:
        return any(fnmatch(name, marker) for marker in self.markers)


SAMPLES = OutputKind("sample directory", ("dataset.json",))
TRAINING_RUN = OutputKind("training run", ("train_config.json", "last.pt", "best.pt", "metrics.jsonl", "gbdt.json"))
BUNDLE = OutputKind("bundle", ("manifest.json",))
RAW_LOGS = OutputKind("raw log directory", ("meta.json", "swipe.*", "tap.*", "browse.*", "history.*", "profile.*",
                                            "truth_*.parquet"), keeps_others=True)  # fmt: skip
EVALUATION = OutputKind("evaluation report", ("metrics.json",))
KEYS = OutputKind("key directory", ("*.key", "*.pub"))
DEMO = OutputKind("demo directory", ("demo.json", "endpoint.db"))
KINDS = (SAMPLES, TRAINING_RUN, BUNDLE, RAW_LOGS, EVALUATION, KEYS, DEMO)


def existing_output(out: Path, kind: OutputKind) -> bool:
    """Whether ``out`` holds an earlier output of ``kind`` (False: absent or an empty directory).

    Refuses a file and a non-empty directory that is not of ``kind``, naming what it holds.
    """
    out = Path(out)
    try:
        if not out.exists():
            return False
        if not out.is_dir():
            raise DipnValidationError(f"{out} is a file, not a directory: give a directory as the output {kind.name}")
        if kind.holds(out):
            return True
        if not any(out.iterdir()):
            return False
    except OSError as exc:  # a path through a file, no permission to look
        raise write_error(out, exc) from None
    other = next((k.a_name for k in KINDS if k is not kind and k.holds(out)), "other files")
    raise DipnValidationError(
        f"{out} holds {other}, not {kind.a_name}; refusing to write into it: give a new or empty directory"
    )


def refuse_kinds(out: Path, *kinds: OutputKind, role: str = "output") -> None:
    """Refuse ``out`` when it is, or lies directly in, a directory of one of ``kinds`` (an evaluation
    report inside a signed bundle would make devices refuse the bundle). Only the parent: further
    up, a home directory holding a ``meta.json`` is no raw log directory."""
    out = Path(out).absolute()
    for directory in (out, out.parent):
        try:
            if not directory.is_dir():
                continue
        except OSError:
            continue
        for kind in kinds:
            if kind.holds(directory):
                where = "is" if directory == out else f"lies inside {directory}, which is"
                raise DipnValidationError(f"{role} {out} {where} {kind.a_name}; refusing to write into it: "
                                          "give a directory of its own")  # fmt: skip


def write_error(path: Path, exc: BaseException) -> DipnValidationError:
    """The one line for a write the operating system refused."""
    reason = getattr(exc, "strerror", None) or str(exc).split("\n")[0][:200] or exc.__class__.__name__
    if _SHORT_WRITE.search(reason):
        reason = f"the disk took only part of a file: full, or a file size limit; {reason}"
    return DipnValidationError(f"{path}: cannot write it ({reason})")


def is_write_error(exc: BaseException) -> bool:
    """An OSError of a refused write, also when a library wraps it and keeps only the words."""
    if isinstance(exc, OSError) and exc.errno in WRITE_ERRNOS:
        return True
    if isinstance(exc, OSError) and exc.errno is None and _SHORT_WRITE.search(str(exc)):
        return True  # numpy's tofile: "281484 requested and 31936 written", the errno lost
    return isinstance(exc, (OSError, RuntimeError)) and any(words in str(exc) for words in _WRITE_WORDS)


def make_directory(path: Path) -> Path:
    """``mkdir -p`` with the refusal of the operating system as a one-line error naming the path."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DipnValidationError(f"{path}: cannot create the directory ({exc.strerror or exc})") from None
    return path


def check_output_file(path: Path, role: str = "output") -> Path:
    """Refuse, before any work, a file output that cannot be one: a directory, a FIFO or a device
    (``/dev/full``), a path through a file, a directory that cannot be made or written."""
    path = Path(path)
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        mode = None
    except OSError as exc:
        raise write_error(path, exc) from None
    if mode is not None and stat.S_ISDIR(mode):
        raise DipnValidationError(f"{role} {path} is a directory; give a file path")
    if mode is not None and not stat.S_ISREG(mode):
        raise DipnValidationError(f"{role} {path} is not a regular file (a FIFO, socket or device); give a file path")
    make_directory(path.parent)
    if not os.access(path.parent, os.W_OK):
        raise DipnValidationError(f"{role} {path}: cannot write in {path.parent} (read-only or no permission)")
    return path


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_tree(root: Path) -> None:
    """Flush every file and directory under ``root`` before it is renamed into place: a rename
    that reaches the disk before the data would leave a whole-looking output of empty files."""
    for directory, _, files in os.walk(root):
        for name in files:
            if not os.path.islink(os.path.join(directory, name)):
                _fsync(Path(directory) / name)
        _fsync(Path(directory))


@contextmanager
def writing_file(path: Path, mode: int | None = None, overwrite: bool = True) -> Iterator[Path]:
    """A temporary path beside ``path`` to write the file at; it replaces ``path`` (flushed, then
    renamed) when the block completes, and is removed when the block raises. ``mode``: create the
    file with these permissions (a private key: 0o600), never wider for a moment. Without
    ``overwrite`` an existing ``path`` is refused, also one that appears meanwhile (a hard link
    puts the file in place only where there is none)."""
    path = Path(path)
    check_output_file(path)
    _remove_abandoned(path)
    try:
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.partial-{os.getpid()}-", dir=path.parent)
    except OSError as exc:
        raise write_error(path, exc) from None
    tmp = Path(name)
    try:
        os.fchmod(fd, mode if mode is not None else 0o666 & ~_umask())
        os.close(fd)
        yield tmp
        _fsync(tmp)
        if overwrite:
            os.replace(tmp, path)
        else:
            os.link(tmp, path)
            tmp.unlink()
        _fsync(path.parent)
    except FileExistsError:
        tmp.unlink(missing_ok=True)
        raise DipnValidationError(f"{path} already exists; refusing to overwrite it") from None
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        if is_write_error(exc):
            raise write_error(path, exc) from None
        raise


def _remove_abandoned(path: Path) -> None:
    """The temporary files of writers of ``path`` that were killed (their process is gone)."""
    for partial in path.parent.glob(f".{path.name}.partial-*-*"):
        pid = partial.name[len(f".{path.name}.partial-"):].split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            partial.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def write_bytes(path: Path, data: bytes, mode: int | None = None, overwrite: bool = True) -> Path:
    with writing_file(path, mode, overwrite) as tmp:
        tmp.write_bytes(data)
    return path


def write_text(path: Path, text: str, mode: int | None = None, overwrite: bool = True) -> Path:
    return write_bytes(path, text.encode(), mode, overwrite)


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


@contextmanager
def replacing(out: Path, kind: OutputKind) -> Iterator[Path]:
    """A fresh directory beside ``out`` to build a ``kind`` in; it replaces ``out`` whole (every
    file flushed first) when the block completes, and is removed when the block raises (``out``
    stays as it was). For a kind that ``keeps_others``, the entries of ``out`` that are not the
    kind's own are carried over as hard links: no copy, and the previous directory keeps them
    until the swap."""
    out = Path(out).absolute()
    existing_output(out, kind)
    make_directory(out.parent)
    lock = _lock(out)
    try:
        _recover(out)
        try:
            staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
        except OSError as exc:
            raise write_error(out, exc) from None
        staging.chmod(0o755)  # mkdtemp makes it private; outputs are meant to be read and copied
        try:
            if kind.keeps_others and out.is_dir():
                _link_others(out, staging, kind)
            yield staging
            _fsync_tree(staging)
            _swap(staging, out)
        except BaseException as exc:
            shutil.rmtree(staging, ignore_errors=True)
            if is_write_error(exc):
                raise write_error(out, exc) from None
            raise
    finally:
        lock.release()


def staged(path: Path, out: Path, staging: Path) -> Path:
    """Where to write ``path`` while ``out`` is built in ``staging``: inside it if ``path`` lies in
    ``out`` (the swap would otherwise remove it), else ``path`` itself."""
    path, out = Path(path).absolute(), Path(out).absolute()
    return staging / path.relative_to(out) if path.is_relative_to(out) else path


def _lock(out: Path) -> FileLock:
    path = out.parent / f".{out.name}.lock"
    try:  # a directory where no file can be made (/proc, read-only) is that, not a lock someone holds
        path.touch(exist_ok=True)
    except OSError as exc:
        raise write_error(out, exc) from None
    lock = FileLock(path, timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise DipnValidationError(f"{out}: another process is writing it (it holds {lock.lock_file})") from None
    return lock


def _link_others(out: Path, staging: Path, kind: OutputKind) -> None:
    for entry in out.iterdir():
        if kind.owns(entry.name):
            continue
        target = staging / entry.name
        if entry.is_dir() and not entry.is_symlink():
            shutil.copytree(entry, target, symlinks=True, copy_function=os.link)
        elif entry.is_symlink():
            os.symlink(os.readlink(entry), target)
        else:
            os.link(entry, target)


def _previous(out: Path) -> Path:
    return out.with_name(f".{out.name}.previous")


def _recover(out: Path) -> None:
    """Under the lock: what a killed writer left beside ``out`` is abandoned."""
    for partial in out.parent.glob(f".{out.name}.partial-*"):
        if partial.is_dir():
            shutil.rmtree(partial, ignore_errors=True)
        else:
            partial.unlink(missing_ok=True)
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
        _fsync(out.parent)
        shutil.rmtree(_previous(out))
    else:
        staging.rename(out)
        _fsync(out.parent)
