"""A training run's directory holds one run: a new run never lands on top of an earlier one.

Without this, ``dipn train --out`` over an earlier run would replace its best.pt with the new
run's and append the new epochs to its metrics.jsonl, a history of two runs read as one.
"""

from __future__ import annotations

from pathlib import Path

from dipn.errors import DipnValidationError
from dipn.outputs import TRAINING_RUN, existing_output, make_directory

# What a run writes (the checkpoints' .tmp: a save killed before its rename).
RUN_FILES = (*TRAINING_RUN.markers, "features.json", "last.pt.tmp", "best.pt.tmp")
# What a run has to show for itself: a run stopped before any of them (diverged at its first steps)
# is started over without --overwrite, as its error message suggests.
_RESULTS = ("last.pt", "best.pt", "metrics.jsonl", "gbdt.json")


def prepare_run_dir(out: Path, *, resume: bool = False, overwrite: bool = False) -> None:
    """Check ``out`` for a run: new (absent or empty), continued (``resume``: its last.pt) or
    replaced (``overwrite``: the earlier run's files are deleted first). Anything else is refused."""
    earlier = existing_output(out, TRAINING_RUN)
    if resume:
        if not (out / "last.pt").is_file():
            raise DipnValidationError(f"{out}: nothing to resume (no last.pt); start the run without --resume")
        return
    if earlier and not overwrite and any((out / name).exists() for name in _RESULTS):
        raise DipnValidationError(
            f"{out} holds a training run: --resume continues it, --overwrite replaces it, or give a new --out"
        )
    for name in RUN_FILES if earlier else ():
        (out / name).unlink(missing_ok=True)
    make_directory(out)  # a directory that cannot be made fails here, not after the first epoch
