"""Output directories: a rebuild killed midway leaves the previous samples whole, a store whose files
are not the ones its index describes refuses to open, a killed conversion's leftovers go with the
next one, and no command writes into a directory of another kind (issue 17, items 11, 12, 15)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from dipn.cli import main as dipn_main
from dipn.samples.build import BuildConfig, build_samples
from dipn.samples.store import SampleStore
from dipn.errors import DipnValidationError

BUILD = BuildConfig(cuts_per_day=10, seed=3, val_days=0.5)
TRAIN = ["--max-steps", "2", "--batch-size", "16", "--max-train-samples", "32", "--max-eval-samples", "16",
         "--threads", "1", "--quiet"]  # fmt: skip


def _first_samples(root: Path) -> dict[str, np.ndarray]:
    store = SampleStore(root)
    return store.batch(np.arange(min(16, len(store))))


def _leftovers(parent: Path, name: str) -> list[Path]:
    """Directories a writer of ``parent/name`` put beside it (whatever it calls them; not its lock file)."""
    return [p for p in parent.glob(f".{name}?*") if p.is_dir()]


def _kill_when(process: subprocess.Popen, appeared: callable, timeout: float = 300) -> bool:
    """SIGKILL ``process`` as soon as ``appeared()``; False if it ended first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        if appeared():
            process.kill()
            process.wait()
            return True
        time.sleep(0.002)
    process.kill()
    process.wait()
    return False


def test_a_rebuild_killed_midway_leaves_the_previous_samples_whole_and_the_next_build_cleans_up(
    tiny_raw: Path, tmp_path: Path
) -> None:
    out = tmp_path / "samples"
    build_samples(tiny_raw, out, BUILD, progress=False)
    index, batch = (out / "dataset.json").read_text(), _first_samples(out)
    # Other cuts, one shard per user: about 900 files to write, so the kill lands among them.
    rebuild = [sys.executable, "-m", "dipn.cli", "build-samples", str(tiny_raw), "--out", str(out),
               "--cuts-per-day", "6", "--seed", "9", "--val-days", "0.5", "--users-per-shard", "1", "--quiet"]  # fmt: skip
    process = subprocess.Popen(rebuild, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def writing_shards() -> bool:  # in place (before issue 17) or beside the output
        return (out / "shard-00003").exists() or any((p / "shard-00003").exists() for p in _leftovers(tmp_path, "samples"))

    assert _kill_when(process, writing_shards), "the rebuild ended before it wrote its shards"
    assert (out / "dataset.json").read_text() == index
    for name, values in _first_samples(out).items():
        np.testing.assert_array_equal(values, batch[name], err_msg=name)
    assert _leftovers(tmp_path, "samples"), "the kill fell after the build; nothing was tested"

    build_samples(tiny_raw, out, BuildConfig(cuts_per_day=6, seed=9, val_days=0.5, users_per_shard=1), progress=False)
    assert not _leftovers(tmp_path, "samples")
    assert len(SampleStore(out).shards) > 1


def test_a_store_whose_files_are_not_the_ones_its_index_describes_refuses_to_open(
    tiny_raw: Path, tiny_samples: Path, tmp_path: Path
) -> None:
    other = tmp_path / "other"
    build_samples(tiny_raw, other, BuildConfig(cuts_per_day=5, seed=4, val_days=0.5), progress=False)
    mixed = tmp_path / "mixed"

    def fresh_copy() -> Path:
        shutil.rmtree(mixed, ignore_errors=True)
        shutil.copytree(tiny_samples, mixed)
        return mixed

    manifest = json.loads((fresh_copy() / "features.json").read_text())
    manifest["vocabularies"]["swipe.page"][0] = "Page_Renamed"  # a new vocabulary over the old shards
    (mixed / "features.json").write_text(json.dumps(manifest))
    with pytest.raises(DipnValidationError, match="not the feature manifest the samples were encoded with"):
        SampleStore(mixed)
    for name in ("shard-00000/labels.npy", "shard-00000/cut_ts.npy", "shard-00000/bounds.npy"):
        (fresh_copy() / name).write_bytes((other / name).read_bytes())  # a shard file of another build
        with pytest.raises(DipnValidationError, match="not the ones the index describes"):
            SampleStore(mixed)
    SampleStore(fresh_copy())  # the unmixed copy opens


def test_train_refuses_an_earlier_run_unless_resumed_or_overwritten(
    tiny_samples: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    run = tmp_path / "run"
    train = ["train", str(tiny_samples), "--out", str(run), *TRAIN]
    assert dipn_main(train) == 0
    best, metrics = (run / "best.pt").read_bytes(), (run / "metrics.jsonl").read_text()
    capsys.readouterr()
    assert dipn_main(train) == 2
    assert "holds a training run: --resume continues it, --overwrite replaces it" in capsys.readouterr().err
    assert (run / "best.pt").read_bytes() == best and (run / "metrics.jsonl").read_text() == metrics
    assert dipn_main([*train, "--overwrite", "--seed", "5"]) == 0
    assert (run / "best.pt").read_bytes() != best
    assert len((run / "metrics.jsonl").read_text().splitlines()) == len(metrics.splitlines())  # one run's epochs
    assert dipn_main([*train, "--resume", "--max-steps", "4"]) == 0  # a resumed run extends its own history
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 2 * len(metrics.splitlines())


def test_no_command_writes_into_a_directory_of_another_kind(
    tiny_raw: Path, tiny_samples: Path, tiny_checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    run = tiny_checkpoint.parent
    features = (run / "features.json").read_bytes()
    before = sorted(p.name for p in run.iterdir())
    assert dipn_main(["build-samples", str(tiny_raw), "--out", str(run), "--quiet"]) == 2
    assert "holds a training run, not a sample directory" in capsys.readouterr().err
    assert dipn_main(["simulate", "--users", "3", "--days", "1", "--out", str(run), "--quiet"]) == 2
    assert "holds a training run, not a raw log directory" in capsys.readouterr().err
    index = (tiny_samples / "dataset.json").read_bytes()
    assert dipn_main(["train", str(tiny_samples), "--out", str(tiny_samples), *TRAIN]) == 2
    assert "holds a sample directory, not a training run" in capsys.readouterr().err
    assert (run / "features.json").read_bytes() == features and sorted(p.name for p in run.iterdir()) == before
    assert (tiny_samples / "dataset.json").read_bytes() == index
    assert not list(tiny_samples.glob("*.pt"))
    elsewhere = tmp_path / "notes"
    elsewhere.mkdir()
    (elsewhere / "todo.txt").write_text("keep me")
    assert dipn_main(["build-samples", str(tiny_raw), "--out", str(elsewhere), "--quiet"]) == 2
    assert "holds other files, not a sample directory" in capsys.readouterr().err
    assert [p.name for p in elsewhere.iterdir()] == ["todo.txt"]


def test_a_killed_conversion_leaves_a_partial_bundle_that_the_next_conversion_removes(
    tiny_checkpoint: Path, tiny_samples: Path, tmp_path: Path
) -> None:
    pytest.importorskip("onnx")
    out = tmp_path / "bundle"
    args = [str(tiny_checkpoint), "--samples", str(tiny_samples), "--out", str(out), "--to", "onnx",
            "--quantize", "none", "--parity-samples", "16", "--max-auc-drop", "0.5", "--quiet"]  # fmt: skip
    process = subprocess.Popen([sys.executable, "-m", "dipn.cli", "convert", *args],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    assert _kill_when(process, lambda: any((p / "model.onnx").exists() for p in _leftovers(tmp_path, "bundle")))
    assert _leftovers(tmp_path, "bundle") and not out.exists()
    assert dipn_main(["convert", *args]) == 0
    assert not _leftovers(tmp_path, "bundle") and (out / "manifest.json").is_file()


def test_a_second_writer_of_an_output_is_refused_while_the_first_holds_it(tiny_raw: Path, tmp_path: Path) -> None:
    from filelock import FileLock

    out = tmp_path / "samples"
    with FileLock(tmp_path / ".samples.lock", timeout=0):  # what a build in progress holds
        with pytest.raises(DipnValidationError, match="another process is writing it"):
            build_samples(tiny_raw, out, BUILD, progress=False)
    assert not out.exists() and not _leftovers(tmp_path, "samples")
    build_samples(tiny_raw, out, BUILD, progress=False)
    assert SampleStore(out).split_counts()["train"]["samples"] > 0
