"""Every writer writes whole or not at all (issue 27, item 1): each command that writes is killed at
several points of a rewrite over an earlier output, and run on a disk that refuses its writes
(RLIMIT_FSIZE: "File too large"; a full tmpfs: "No space left on device"). The earlier output stays
as it was and usable, the next run succeeds and leaves nothing beside it, and a refused write is
one ``dipn: error:`` line naming the output.

Real processes, real SIGKILLs: ``dipn.cli`` as the ``dipn`` command runs it.
"""

from __future__ import annotations

import hashlib
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from dipn.samples.store import SampleStore
from tests.test_importers import REES46_HEADER

ROOT = Path(__file__).parents[1]
TRAIN = ["--batch-size", "16", "--max-train-samples", "64", "--max-eval-samples", "16", "--threads", "1", "--quiet"]


def _command(argv: list[str]) -> list[str]:
    return [sys.executable, "-m", "dipn.cli", *argv]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONDONTWRITEBYTECODE": "1"}


def snapshot(path: Path) -> dict[str, str]:
    """sha256 of every file under ``path`` (or of ``path`` itself), by relative name."""
    if path.is_file():
        return {path.name: hashlib.sha256(path.read_bytes()).hexdigest()}
    return {str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(path.rglob("*")) if p.is_file()}  # fmt: skip


def leftovers(out: Path) -> list[Path]:
    """What a writer of ``out`` put beside it (or inside a run directory) that is not an output: its
    partial files and directories, a previous directory; its lock file is not one."""
    near = [*out.parent.glob(f".{out.name}.*"), *(out.glob(".*.partial-*") if out.is_dir() else [])]
    return [p for p in near if not p.name.endswith(".lock")]


@dataclass
class Rewrite:
    """A command that rewrites ``out``; ``usable`` checks an output it left (raises if not)."""

    name: str
    out: Path
    argv: list[str]
    usable: Callable[[Path], None]


def _kill_at(argv: list[str], seconds: float) -> float | None:
    """Run, SIGKILL after ``seconds``: None; or the run's time if it ended first (it must have succeeded)."""
    started = time.perf_counter()
    process = subprocess.Popen(_command(argv), env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        process.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        return None
    assert process.returncode == 0, process.stderr.read().decode()
    return time.perf_counter() - started


def _run(argv: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(_command(argv), env=_env(), capture_output=True, text=True, timeout=600, **kwargs)


def kill_at_several_points(rewrite: Rewrite, points: tuple[float, ...] = (0.5, 0.75, 0.95)) -> int:
    """Time one whole rewrite, then kill others at these fractions of its time; after each kill the
    output is usable: the earlier one, or the new one whole. Returns the kills that landed."""
    started = time.perf_counter()
    done = _run(rewrite.argv)
    assert done.returncode == 0, done.stderr
    whole = time.perf_counter() - started
    rewrite.usable(rewrite.out)
    landed = 0
    for fraction in points:
        for _ in range(4):  # a run that ended before its kill was faster than the timed one (a machine
            ended = _kill_at(rewrite.argv, fraction * whole)  # shared with other jobs): again at its pace
            rewrite.usable(rewrite.out)  # the earlier output, untouched, or (killed after the swap) the new one
            if ended is None:
                landed += 1
                break
            whole = min(whole, ended)
    done = _run(rewrite.argv)  # the next run recovers whatever a killed one left
    assert done.returncode == 0, done.stderr
    rewrite.usable(rewrite.out)
    assert not leftovers(rewrite.out), leftovers(rewrite.out)
    return landed


# ---------------------------------------------------------------------------- what each command leaves


def raw_logs_usable(out: Path) -> None:
    import pyarrow.parquet as pq

    meta = json.loads((out / "meta.json").read_text())
    for view, rows in meta["rows"].items():
        if (out / f"{view}.parquet").exists():
            assert pq.read_metadata(out / f"{view}.parquet").num_rows == rows, view


def samples_usable(out: Path) -> None:
    store = SampleStore(out)
    store.batch(np.arange(min(len(store), 64)))


def run_usable(out: Path) -> None:
    from dipn.training import checkpoint

    checkpoints = sorted(out.glob("*.pt"))
    assert checkpoints
    for path in checkpoints:
        checkpoint.load_model(path)
    for line in (out / "metrics.jsonl").read_text().splitlines() if (out / "metrics.jsonl").exists() else []:
        json.loads(line)


def evaluation_usable(out: Path) -> None:
    assert json.loads((out / "metrics.json").read_text())["tasks"]
    for png in ("reliability.png", "scores.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    lines = (out / "predictions.csv").read_text().splitlines()
    assert lines[0] == "user_id,ts,p_realtime,p_longterm" and len(lines) > 1


def bundle_usable(out: Path) -> None:
    from dipn.bundle.manifest import load_bundle
    from dipn.bundle.trust import check_no_unlisted_files

    check_no_unlisted_files(load_bundle(out))


def keys_usable(out: Path) -> None:
    from convert.signing import load_private_key
    from dipn.bundle.trust import load_public_key

    for key in out.glob("*.key"):
        load_private_key(key)
    for pub in out.glob("*.pub"):
        load_public_key(pub)


def rees46_log(path: Path, events: int = 40_000) -> Path:
    rng = np.random.default_rng(0)
    kinds = np.array(["view"] * 17 + ["cart", "purchase"])
    with path.open("w") as f:
        f.write(REES46_HEADER + "\n")
        for i in range(events):
            day, second = 1 + i * 30 // events, int(rng.integers(0, 86_400))
            f.write(f"2019-10-{day:02d} {second // 3600:02d}:{second // 60 % 60:02d}:{second % 60:02d} UTC,"
                    f"{rng.choice(kinds)},{rng.integers(1, 500)},{rng.integers(1, 40)},cat.sub,brand,1.0,"
                    f"{rng.integers(1, 300)},s\n")  # fmt: skip
    return path


# ---------------------------------------------------------------------------- kills


def test_a_killed_simulation_leaves_the_previous_logs(tmp_path: Path) -> None:
    out = tmp_path / "raw"
    assert _run(["simulate", "--users", "40", "--days", "1", "--seed", "1", "--density", "0.2", "--out", str(out),
                 "--quiet"]).returncode == 0  # fmt: skip
    (tmp_path / "raw" / "notes.txt").write_text("kept")  # not the simulator's: carried over
    rewrite = Rewrite("simulate", out, ["simulate", "--users", "400", "--days", "2", "--seed", "2", "--density",
                                        "0.3", "--out", str(out), "--quiet"], raw_logs_usable)  # fmt: skip
    assert kill_at_several_points(rewrite) >= 2
    assert (out / "notes.txt").read_text() == "kept"


def test_a_killed_import_leaves_the_previous_import(tmp_path: Path) -> None:
    log = rees46_log(tmp_path / "2019-Oct.csv")
    out = tmp_path / "imported"
    rewrite = Rewrite("import", out, ["import", "rees46", str(log), "--out", str(out), "--quiet"], raw_logs_usable)
    assert kill_at_several_points(rewrite) >= 2
    assert log.exists()


def test_a_killed_sample_build_leaves_the_previous_samples(tiny_raw: Path, tmp_path: Path) -> None:
    out = tmp_path / "samples"
    rewrite = Rewrite("build-samples", out, ["build-samples", str(tiny_raw), "--out", str(out), "--cuts-per-day", "20",
                                             "--users-per-shard", "2", "--val-days", "0.5", "--quiet"],
                      samples_usable)  # fmt: skip
    assert kill_at_several_points(rewrite) >= 2


def test_a_killed_training_run_leaves_checkpoints_that_load_and_resume(tiny_samples: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert _run(["train", str(tiny_samples), "--out", str(out), "--max-steps", "2", *TRAIN]).returncode == 0
    rewrite = Rewrite("train", out, ["train", str(tiny_samples), "--out", str(out), "--resume", "--epochs", "6",
                                     "--checkpoint-every", "1", *TRAIN], run_usable)  # fmt: skip
    assert kill_at_several_points(rewrite) >= 2


def test_a_killed_evaluation_leaves_the_previous_report(tiny_checkpoint: Path, tiny_samples: Path, tmp_path: Path) -> None:
    out = tmp_path / "evaluation"
    rewrite = Rewrite("evaluate", out, ["evaluate", str(tiny_checkpoint), str(tiny_samples), "--split", "train", "--out",
                                        str(out), "--predictions-out", str(out / "predictions.csv")],
                      evaluation_usable)  # fmt: skip
    assert kill_at_several_points(rewrite) >= 2


@pytest.mark.slow  # test_outputs.py kills a conversion in the quick suite; this one kills it at several points
def test_a_killed_conversion_leaves_the_previous_bundle(tiny_checkpoint: Path, tiny_samples: Path, tmp_path: Path) -> None:
    pytest.importorskip("onnx")
    out = tmp_path / "bundle"
    rewrite = Rewrite("convert", out, ["convert", str(tiny_checkpoint), "--samples", str(tiny_samples), "--out",
                                       str(out), "--to", "onnx", "--quantize", "none", "--parity-samples", "16",
                                       "--max-auc-drop", "0.5", "--quiet"], bundle_usable)  # fmt: skip
    assert kill_at_several_points(rewrite, (0.5, 0.8, 0.95)) >= 2


def test_a_killed_keygen_leaves_no_empty_key_and_the_next_run_completes_the_pair(tmp_path: Path) -> None:
    out = tmp_path / "keys"
    for n, fraction in enumerate((0.5, 0.8, 0.9, 0.95, 0.98, 1.0)):
        started = time.perf_counter()
        assert _run(["keygen", "--out", str(out), "--name", f"timing{n}"]).returncode == 0
        whole = time.perf_counter() - started
        _kill_at(["keygen", "--out", str(out), "--name", f"k{n}"], fraction * whole)  # landed or not: both are fine
        key, pub = out / f"k{n}.key", out / f"k{n}.pub"
        assert not key.exists() or key.stat().st_size > 0
        keys_usable(out)
        if not (key.exists() and pub.exists()):  # killed before the pair was whole: the next run completes it
            done = _run(["keygen", "--out", str(out), "--name", f"k{n}"])
            assert done.returncode == 0, done.stderr
        keys_usable(out)
        assert key.stat().st_mode & 0o777 == 0o600 and pub.exists()
    assert not [p for p in out.iterdir() if "partial" in p.name]  # each rerun removed its killed writer's file


# ---------------------------------------------------------------------------- refused writes


def _limited(limit: int) -> Callable[[], None]:
    return lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))


def _refused(argv: list[str], out: Path, limit: int, words: str = "File too large") -> None:
    """Run with files capped at ``limit`` bytes: one line naming ``out``; ``out`` as it was; nothing beside it."""
    before = snapshot(out) if out.exists() else None
    done = _run(argv, preexec_fn=_limited(limit))
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("dipn: error: ") and words in last and out.name in last, last
    assert (snapshot(out) if out.exists() else None) == before
    assert not leftovers(out), leftovers(out)


def test_a_file_too_large_is_one_line_naming_the_output_and_the_previous_output_stays(
    tiny_raw: Path, tiny_samples: Path, tiny_checkpoint: Path, tmp_path: Path
) -> None:
    raw = tmp_path / "raw"
    assert _run(["simulate", "--users", "20", "--days", "1", "--density", "0.1", "--out", str(raw), "--quiet"]).returncode == 0
    _refused(["simulate", "--users", "60", "--days", "2", "--density", "0.2", "--out", str(raw), "--quiet"], raw, 64_000)

    imported = tmp_path / "imported"
    log = rees46_log(tmp_path / "2019-Oct.csv", 4000)
    _refused(["import", "rees46", str(log), "--out", str(imported), "--quiet"], imported, 20_000)

    samples = tmp_path / "samples"
    shutil.copytree(tiny_samples, samples)
    _refused(["build-samples", str(tiny_raw), "--out", str(samples), "--seed", "5", "--quiet"], samples, 64_000,
             "cannot write it")  # numpy loses the errno of a short write

    run = tmp_path / "run"
    _refused(["train", str(tiny_samples), "--out", str(run), "--max-steps", "1", *TRAIN], run / "last.pt", 1_000_000)

    evaluation = tmp_path / "evaluation"
    assert _run(["evaluate", str(tiny_checkpoint), str(tiny_samples), "--out", str(evaluation)]).returncode == 0
    _refused(["evaluate", str(tiny_checkpoint), str(tiny_samples), "--out", str(evaluation)], evaluation, 8_000)
    predictions = tmp_path / "predictions.csv"
    _refused(["evaluate", str(tiny_checkpoint), str(tiny_samples), "--out", str(tmp_path / "ev2"),
              "--predictions-out", str(predictions)], predictions, 1_500)  # written before the report

    keys = tmp_path / "keys"
    _refused(["keygen", "--out", str(keys)], keys / "dipn-signing.key", 50)
    assert not list(keys.glob("dipn-signing.*"))


def _in_a_small_tmpfs(script: str, size: str, tmp_path: Path) -> subprocess.CompletedProcess:
    """Run a Python ``script`` in a private mount namespace where ``tmp_path / 'small'`` is a tmpfs
    of ``size``: a full disk without touching the machine's."""
    small = tmp_path / "small"
    small.mkdir()
    driver = tmp_path / "driver.py"
    driver.write_text(script)
    shell = f"mount -t tmpfs -o size={size} tmpfs {small} && exec {sys.executable} {driver} {small}"
    return subprocess.run(["unshare", "-rm", "sh", "-c", shell], env=_env(), capture_output=True, text=True, timeout=600)


def test_a_full_disk_is_one_line_and_the_previous_output_stays(tiny_samples: Path, tmp_path: Path) -> None:
    if shutil.which("unshare") is None or subprocess.run(["unshare", "-rm", "true"], capture_output=True).returncode:
        pytest.skip("no unprivileged mount namespace here for a small tmpfs")
    script = f'''
import hashlib, json, subprocess, sys
from pathlib import Path
small = Path(sys.argv[1])
def dipn(*argv):
    return subprocess.run([sys.executable, "-m", "dipn.cli", *argv], capture_output=True, text=True)
def snap(path):
    return {{str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(path.rglob("*")) if p.is_file()}}
results = {{}}
raw = small / "raw"
first = dipn("simulate", "--users", "10", "--days", "1", "--density", "0.1", "--out", str(raw), "--quiet")
before = snap(raw)
second = dipn("simulate", "--users", "400", "--days", "2", "--out", str(raw), "--quiet")
results["simulate"] = [first.returncode, second.returncode, second.stderr, snap(raw) == before,
                       sorted(p.name for p in small.iterdir())]
run = small / "run"
third = dipn("train", "{tiny_samples}", "--out", str(run), "--max-steps", "1", *{TRAIN!r})
results["train"] = [third.returncode, third.stderr, sorted(p.name for p in run.iterdir())]
print(json.dumps(results))
'''
    done = _in_a_small_tmpfs(script, "2m", tmp_path)
    if done.returncode and "mount" in done.stderr:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()[:200]}")
    results = json.loads(done.stdout.strip().splitlines()[-1])
    first, second, err, intact, names = results["simulate"]
    assert first == 0 and second == 2 and intact, err
    last = err.strip().splitlines()[-1]
    assert "Traceback" not in err and last.startswith("dipn: error: ") and "No space left on device" in last, err
    assert "raw" in last and names == [".raw.lock", "raw"], names
    status, err, files = results["train"]
    assert status == 2 and "Traceback" not in err and "No space left on device" in err.strip().splitlines()[-1], err
    assert not [f for f in files if f.endswith(".pt") or "partial" in f], files
