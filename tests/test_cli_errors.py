"""Every subcommand, run on a corpus of bad inputs, answers with one line ``dipn: error: ...`` (or
argparse's ``dipn CMD: error: ...``) and exit status 2, never a traceback (issue 17, items 14, 15).

The corpus is built once from the session's tiny dataset. Cases run in-process through
``dipn.cli.main``, as the ``dipn`` entry point does; a few run as real processes as well, to show
that stderr holds no traceback. The error boundary in ``dipn.cli`` catches ``DipnValidationError``
only: each case passes because the file or option is checked where it is read.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from dipn.cli import main as dipn_main
from dipn.cli import make_parser
from dipn.samples.build import BuildConfig, build_samples
from dipn.training import checkpoint
from dipn.training.config import TrainConfig

ERROR_LINE = re.compile(r"^dipn( [a-z-]+)?: error: ")
QUICK_TRAIN = ["--batch-size", "16", "--max-train-samples", "32", "--max-eval-samples", "16", "--threads", "1",
               "--quiet"]  # fmt: skip
BROWSE_HEADER = "user_id,ts,action,leaf_category,top_category,page,stay_ms\n"


class Corpus:
    """Bad inputs beside good ones: ``bad(name)`` is a path made by one of the builders below."""

    def __init__(self, root: Path, raw: Path, samples: Path, checkpoint: Path) -> None:
        self.root, self.raw, self.samples, self.checkpoint = root, raw, samples, checkpoint

    def path(self, name: str) -> str:
        return str(self.root / name)

    def copy(self, source: Path, name: str) -> Path:
        target = self.root / name
        shutil.copytree(source, target)
        return target


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory, tiny_raw: Path, tiny_samples: Path, tiny_checkpoint: Path) -> Corpus:
    c = Corpus(tmp_path_factory.mktemp("bad-inputs"), tiny_raw, tiny_samples, tiny_checkpoint)
    root, shard = c.root, "shard-00000"
    (root / "a_file").write_text("not a directory\n")
    header_only = root / "raw-header-only"
    header_only.mkdir()
    (header_only / "browse.csv").write_text(BROWSE_HEADER)
    (header_only / "tap.csv").write_text("user_id,ts,event,page,button\n")
    (c.copy(tiny_raw, "raw-meta-not-json") / "meta.json").write_text("{start_ms: 1")
    meta = json.loads((tiny_raw / "meta.json").read_text()) | {"utc_offset_minutes": "UTC+8"}
    (c.copy(tiny_raw, "raw-meta-bad-offset") / "meta.json").write_text(json.dumps(meta))
    short = root / "raw-short"
    short.mkdir()
    (short / "browse.csv").write_text(BROWSE_HEADER + "u1,1000,browse,L1,T1,P1,10\nu1,7200000,purchase,L1,T1,P1,10\n")
    nul = root / "raw-nul"
    nul.mkdir()
    (nul / "browse.csv").write_text(BROWSE_HEADER + "".join(
        f"u{i % 5},{1000 + i * 3_600_000},browse,L\0{i % 3},T1,P1,10\n" for i in range(100)))  # fmt: skip
    labels = c.copy(tiny_samples, "samples-truncated") / shard / "labels.npy"
    labels.write_bytes(labels.read_bytes()[:200])
    (c.copy(tiny_samples, "samples-missing-shard-file") / shard / "cut_ts.npy").unlink()
    shutil.rmtree(c.copy(tiny_samples, "samples-missing-shard") / shard)
    (c.copy(tiny_samples, "samples-index-not-json") / "dataset.json").write_text("{")
    (c.copy(tiny_samples, "samples-index-a-list") / "dataset.json").write_text("[]")
    (c.copy(tiny_samples, "samples-manifest-a-list") / "features.json").write_text("[]")
    (c.copy(tiny_samples, "samples-garbage-array") / shard / "split.npy").write_bytes(b"garbage" * 20)
    (c.copy(tiny_samples, "samples-no-users") / "users.npy").unlink()
    (root / "manifest-a-list.json").write_text("[]")
    manifest = json.loads((tiny_samples / "features.json").read_text())
    del manifest["rules"]
    (root / "manifest-incomplete.json").write_text(json.dumps(manifest))
    build_samples(tiny_raw, root / "samples-no-train", BuildConfig(eval_days=3, val_days=0.5), progress=False)
    (root / "garbage.pt").write_bytes(b"\x00garbage" * 100)
    (root / "empty.pt").write_bytes(b"")
    (root / "truncated.pt").write_bytes(tiny_checkpoint.read_bytes()[:5000])
    checkpoint.save(root / "incomplete.pt", {"metrics": {}})  # whole and digested, but no model in it
    run = c.copy(tiny_checkpoint.parent, "run-truncated-last")
    (run / "last.pt").write_bytes((run / "last.pt").read_bytes()[:5000])
    c.copy(tiny_checkpoint.parent, "run")
    (root / "config-string-epochs.json").write_text('{"epochs": "5"}')
    (root / "config-not-an-object.json").write_text("[1]")
    (root / "db-dir").mkdir()
    _issue_27_corpus(c)
    return c


def _issue_27_corpus(c: Corpus) -> None:
    """Damaged stores and checkpoints, outputs of another kind, a FIFO (issue 27)."""
    import numpy as np

    root, shard = c.root, "shard-00000"
    os.mkfifo(root / "fifo")
    (root / "raw-fifo").mkdir()
    os.mkfifo(root / "raw-fifo" / "swipe.csv")
    (root / "bundle-like").mkdir()
    (root / "bundle-like" / "manifest.json").write_text("{}")  # what dipn takes for a bundle

    def damaged(name: str, array: str, change: Callable[[np.ndarray], None]) -> None:
        path = c.copy(c.samples, name) / shard / f"{array}.npy"
        values = np.load(path)
        change(values)
        np.save(path, values)

    damaged("samples-bounds-bitflip", "bounds", lambda a: a.__setitem__((0, 0, 1), 4611686018427388069))
    damaged("samples-ids-out-of-range", "swipe", lambda a: a.__setitem__((0, 0), 30000))
    damaged("samples-labels-127", "labels", lambda a: a.__setitem__((0, 0), 127))
    damaged("samples-split-127", "split", lambda a: a.__setitem__(0, 127))
    index_of = {"samples-events-many": lambda i: i["events"].__setitem__("swipe", "many"),
                "samples-shard-outside": lambda i: i["shards"][0].__setitem__("name", "../outside_shard")}  # fmt: skip
    for name, change in index_of.items():
        index = c.copy(c.samples, name) / "dataset.json"
        info = json.loads(index.read_text())
        change(info)
        index.write_text(json.dumps(info))
    shutil.copytree(c.samples / shard, root / "outside_shard")
    data = bytearray(c.checkpoint.read_bytes())
    data[len(data) // 2] ^= 0x10  # one bit in the middle: inside the weights
    (root / "bitflip.pt").write_bytes(bytes(data))
    state = torch.load(c.checkpoint, weights_only=True)
    state.pop(checkpoint.DIGEST)
    next(v for v in state["model_state"].values() if v.is_floating_point()).view(-1)[0] = float("nan")
    torch.save({**state, checkpoint.DIGEST: checkpoint.content_digest(state)}, root / "nan.pt")


def _main(argv: list[str], capsys: pytest.CaptureFixture) -> tuple[int, str]:
    try:
        status = dipn_main(argv)
    except SystemExit as exc:  # argparse's own one-line errors
        status = exc.code
    return status, capsys.readouterr().err


Case = Callable[[Corpus], list[str]]


def _train(samples: str | None, *extra: str) -> Case:
    """``dipn train`` on the named bad samples (None: the good ones) into a new run directory."""
    return lambda c: ["train", c.path(samples) if samples else str(c.samples), "--out", c.path("new-run"),
                      *QUICK_TRAIN, *extra]  # fmt: skip


# (subcommand, what is wrong, argv, the words the one line must hold)
CASES: list[tuple[str, str, Case, str]] = [
    ("simulate", "--out is a file", lambda c: ["simulate", "--users", "3", "--out", c.path("a_file"), "--quiet"],
     "is a file, not a directory"),
    ("simulate", "--density nan", lambda c: ["simulate", "--density", "nan", "--out", c.path("sim")],
     "must be a finite number"),
    ("import", "--out is a file", lambda c: ["import", "rees46", c.path("raw-short/browse.csv"), "--out",
                                             c.path("a_file"), "--quiet"], "is a file, not a directory"),
    ("import", "a header of another layout", lambda c: ["import", "rees46", c.path("raw-header-only/browse.csv"),
                                                         "--out", c.path("imported"), "--quiet"], "missing columns"),
    ("import", "an empty file", lambda c: ["import", "retailrocket", c.path("empty.pt"), "--out", c.path("imported"),
                                           "--quiet"], "the file is empty"),
    ("build-samples", "header-only files", lambda c: ["build-samples", c.path("raw-header-only"), "--out",
                                                      c.path("s1"), "--quiet"], "only a header"),
    ("build-samples", "meta.json not JSON", lambda c: ["build-samples", c.path("raw-meta-not-json"), "--out",
                                                       c.path("s2"), "--quiet"], "not a readable meta.json"),
    ("build-samples", "meta.json with a text offset", lambda c: ["build-samples", c.path("raw-meta-bad-offset"),
                                                                 "--out", c.path("s3"), "--quiet"], "utc_offset_minutes"),
    ("build-samples", "logs shorter than the label horizon", lambda c: ["build-samples", c.path("raw-short"), "--out",
                                                                        c.path("s4"), "--quiet"], "label horizon"),
    ("build-samples", "--out is a file", lambda c: ["build-samples", str(c.raw), "--out", c.path("a_file"), "--quiet"],
     "is a file, not a directory"),
    ("build-samples", "--manifest not a manifest", lambda c: ["build-samples", str(c.raw), "--out", c.path("s5"),
                                                              "--manifest", c.path("manifest-a-list.json"), "--quiet"],
     "not a feature manifest"),
    ("build-samples", "--manifest incomplete", lambda c: ["build-samples", str(c.raw), "--out", c.path("s6"),
                                                          "--manifest", c.path("manifest-incomplete.json"), "--quiet"],
     "not a complete feature manifest"),
    ("build-samples", "--idle-timer-seconds nan", lambda c: ["build-samples", str(c.raw), "--out", c.path("s7"),
                                                             "--idle-timer-seconds", "nan"], "must be a finite number"),
    ("build-samples", "--seed -1", lambda c: ["build-samples", str(c.raw), "--out", c.path("s8"), "--seed", "-1",
                                              "--quiet"], "--seed: must be in 0.."),
    ("build-samples", "a NUL in a category", lambda c: ["build-samples", c.path("raw-nul"), "--out", c.path("s9"),
                                                        "--quiet"], "holds a NUL character"),
    ("inspect", "a truncated shard", lambda c: ["inspect", c.path("samples-truncated")], "not a readable .npy array"),
    ("inspect", "a missing shard file", lambda c: ["inspect", c.path("samples-missing-shard-file")],
     "missing from the sample directory"),
    ("inspect", "dataset.json a list", lambda c: ["inspect", c.path("samples-index-a-list")], "not a sample index"),
    ("inspect", "features.json not a manifest", lambda c: ["inspect", c.path("manifest-incomplete.json")],
     "not a complete feature manifest"),
    ("inspect", "--events -1", lambda c: ["inspect", str(c.samples), "--events", "-1"], "must be >= 0"),
    ("train", "a truncated shard", _train("samples-truncated"), "not a readable .npy array"),
    ("train", "a missing shard", _train("samples-missing-shard"), "missing from the sample directory"),
    ("train", "dataset.json not JSON", _train("samples-index-not-json"), "not readable JSON"),
    ("train", "features.json a list", _train("samples-manifest-a-list"), "not the feature manifest"),
    ("train", "a garbage array", _train("samples-garbage-array"), "not a readable .npy array"),
    ("train", "an empty train split", _train("samples-no-train"), "split is empty"),
    ("train", "--lr nan", _train(None, "--lr", "nan"), "lr must be a finite number"),
    ("train", "--max-steps -5", _train(None, "--max-steps", "-5"), "max_steps must be >= 1"),
    ("train", "--patience -1", _train(None, "--patience", "-1"), "patience must be >= 1"),
    ("train", "--config with a string", lambda c: [*_train(None)(c), "--config", c.path("config-string-epochs.json")],
     "epochs must be int"),
    ("train", "--config not an object", lambda c: [*_train(None)(c), "--config", c.path("config-not-an-object.json")],
     "a JSON object"),
    ("train", "--out is a file", lambda c: ["train", str(c.samples), "--out", c.path("a_file"), *QUICK_TRAIN],
     "is a file, not a directory"),
    ("train", "--resume with another variant", lambda c: ["train", str(c.samples), "--out", c.path("run"), "--resume",
                                                          "--variant", "no_tap", *QUICK_TRAIN],
     "another model configuration"),
    ("train", "--resume a truncated last.pt", lambda c: ["train", str(c.samples), "--out", c.path("run-truncated-last"),
                                                         "--resume", *QUICK_TRAIN], "not a readable checkpoint"),
    ("train", "--resume with nothing to resume", lambda c: ["train", str(c.samples), "--out", c.path("run-none"),
                                                            "--resume", *QUICK_TRAIN], "nothing to resume"),
    ("evaluate", "a garbage checkpoint", lambda c: ["evaluate", c.path("garbage.pt"), str(c.samples)],
     "not a readable checkpoint"),
    ("evaluate", "an empty checkpoint", lambda c: ["evaluate", c.path("empty.pt"), str(c.samples)],
     "not a readable checkpoint"),
    ("evaluate", "a truncated checkpoint", lambda c: ["evaluate", c.path("truncated.pt"), str(c.samples)],
     "not a readable checkpoint"),
    ("evaluate", "a checkpoint without a model", lambda c: ["evaluate", c.path("incomplete.pt"), str(c.samples)],
     "not a complete dipn checkpoint"),
    ("evaluate", "samples without users.npy", lambda c: ["evaluate", str(c.checkpoint), c.path("samples-no-users"),
                                                         "--out", c.path("ev")], "users.npy: missing"),
    ("evaluate", "--out is a file", lambda c: ["evaluate", str(c.checkpoint), str(c.samples), "--out",
                                               c.path("a_file")], "is a file"),
    ("evaluate", "--batch-size 0", lambda c: ["evaluate", str(c.checkpoint), str(c.samples), "--batch-size", "0"],
     "must be >= 1"),
    ("keygen", "--out is a file", lambda c: ["keygen", "--out", c.path("a_file")], "cannot create the directory"),
    ("convert", "a garbage checkpoint", lambda c: ["convert", c.path("garbage.pt"), "--samples", str(c.samples),
                                                   "--out", c.path("b1")], "not a readable checkpoint"),
    ("convert", "a truncated shard", lambda c: ["convert", str(c.checkpoint), "--samples", c.path("samples-truncated"),
                                                "--out", c.path("b2")], "not a readable .npy array"),
    ("convert", "--out is a file", lambda c: ["convert", str(c.checkpoint), "--samples", str(c.samples), "--out",
                                              c.path("a_file")], "is a file, not a directory"),
    ("convert", "--threads 0", lambda c: ["convert", str(c.checkpoint), "--samples", str(c.samples), "--out",
                                          c.path("b3"), "--threads", "0"], "--threads must be >= 1"),
    ("serve", "an unsupported database", lambda c: ["serve", "--db", "mysql://x/y", "--migrate-only"],
     "unsupported database"),
    ("coupon-report", "a directory for a database", lambda c: ["coupon-report", "--db", f"sqlite:///{c.path('db-dir')}"],
     "cannot open it as a database file"),
    ("coupon-report", "nothing listening at --url", lambda c: ["coupon-report", "--url", "http://127.0.0.1:9",
                                                               "--campaign", "1"], "no answer"),
    ("band", "no predictions file", lambda c: ["band", c.path("missing.csv"), "--grant-rate", "0.1"],
     "cannot read it as a predictions CSV"),
    ("demo", "--out is a file", lambda c: ["demo", "--out", c.path("a_file")], "cannot create the directory"),
    ("demo", "--users 0", lambda c: ["demo", "--out", c.path("demo"), "--users", "0"], "--users: must be in 1.."),
    ("check-port", "a directory that is no bundle", lambda c: ["check-port", c.path("db-dir"), c.path("a_file")],
     "not a bundle"),
    ("shop", "a directory that is no bundle", lambda c: ["shop", "--bundle", c.path("db-dir"), "--public-key",
                                                         c.path("a_file"), "--endpoint", "http://127.0.0.1:9"],
     "not a bundle"),
    ("shop", "an empty --enroll-token-file", lambda c: ["shop", "--bundle", c.path("db-dir"), "--public-key",
                                                        c.path("a_file"), "--endpoint", "http://127.0.0.1:9",
                                                        "--enroll-token-file", c.path("empty.pt")],
     "--enroll-token-file file"),
    ("shop", "a missing --enroll-token-file", lambda c: ["shop", "--bundle", c.path("db-dir"), "--public-key",
                                                         c.path("a_file"), "--endpoint", "http://127.0.0.1:9",
                                                         "--enroll-token-file", c.path("missing-token")],
     "cannot read it"),
]  # fmt: skip


def _evaluate(checkpoint_name: str | None, samples: str | None, *extra: str) -> Case:
    return lambda c: ["evaluate", c.path(checkpoint_name) if checkpoint_name else str(c.checkpoint),
                      c.path(samples) if samples else str(c.samples), *extra]  # fmt: skip


def _sample_args(samples: str) -> Case:
    return lambda c: [str(c.checkpoint), c.path(samples), "--out", c.path("ev-" + samples)]


# Issue 27's findings, grouped by the mechanism that fixed each class: (mechanism, command, what is
# wrong, argv, the words the one line must hold). Each failed on the code before the issue: a
# traceback, a hang, a write where it does not belong, or silent garbage.
ISSUE_27: list[tuple[str, str, str, Case, str]] = [
    # one kind per output directory, checked before any work (dipn.outputs.existing_output, refuse_kinds)
    ("kinds", "evaluate", "--out a bundle", _evaluate(None, None, "--out", "{root}/bundle-like"),
     "holds a bundle, not an evaluation report"),
    ("kinds", "evaluate", "--out inside a bundle", _evaluate(None, None, "--out", "{root}/bundle-like/ev"),
     "which is a bundle"),
    ("kinds", "evaluate", "--out a sample directory", _evaluate(None, None, "--out", "{samples}"),
     "holds a sample directory"),
    ("kinds", "evaluate", "--predictions-out inside samples", _evaluate(None, None, "--out", "{root}/ev-p",
                                                                         "--predictions-out", "{samples}/p.csv"),
     "which is a sample directory"),
    ("kinds", "demo", "--out a sample directory", lambda c: ["demo", "--out", str(c.samples)],
     "holds a sample directory, not a demo directory"),
    ("kinds", "keygen", "--out a bundle", lambda c: ["keygen", "--out", c.path("bundle-like")], "is a bundle"),
    # a name is a plain file name (dipn.commands.options.plain_name)
    ("names", "keygen", "--name ../escaped", lambda c: ["keygen", "--out", c.path("keys"), "--name", "../escaped"],
     "must be a plain file name"),
    ("names", "keygen", "--name ''", lambda c: ["keygen", "--out", c.path("keys"), "--name", ""],
     "must be a plain file name"),
    ("names", "keygen", "--name with a newline", lambda c: ["keygen", "--out", c.path("keys"), "--name", "a\nb"],
     "must be a plain file name"),
    ("names", "keygen", "--name sub/dir", lambda c: ["keygen", "--out", c.path("keys"), "--name", "sub/dir"],
     "must be a plain file name"),
    # what the system refuses to a writer is one line naming the path (dipn.outputs.write_error)
    ("writes", "simulate", "--out through a file", lambda c: ["simulate", "--users", "3", "--out",
                                                              c.path("a_file/x"), "--quiet"], "a_file"),
    ("writes", "simulate", "--out /proc/x", lambda c: ["simulate", "--users", "3", "--out", "/proc/x", "--quiet"],
     "/proc/x: cannot write it"),
    ("writes", "evaluate", "--out through a file", _evaluate(None, None, "--out", "{root}/a_file/e"), "a_file"),
    ("writes", "evaluate", "--out /proc/x", _evaluate(None, None, "--out", "/proc/x"), "/proc/x"),
    ("writes", "evaluate", "--predictions-out /dev/full", _evaluate(None, None, "--out", "{root}/ev-full",
                                                                    "--predictions-out", "/dev/full"),
     "is not a regular file"),
    ("writes", "evaluate", "--predictions-out through a file",
     _evaluate(None, None, "--out", "{root}/ev-pf", "--predictions-out", "{root}/a_file/p.csv"), "a_file"),
    ("writes", "convert", "--out /proc/x", lambda c: ["convert", str(c.checkpoint), "--samples", str(c.samples),
                                                      "--out", "/proc/x"], "/proc/x: cannot write it"),
    # ranges, devices, Spark masters and regular files checked while parsing (dipn.commands.options)
    ("parsing", "import", "--utc-offset-minutes 10**20", lambda c: ["import", "rees46", c.path("raw-short/browse.csv"),
                                                                    "--out", c.path("i1"), "--utc-offset-minutes",
                                                                    str(10**20)], "--utc-offset-minutes: must be in"),
    ("parsing", "import", "--utc-offset-minutes -99999999",
     lambda c: ["import", "rees46", c.path("raw-short/browse.csv"), "--out", c.path("i2"), "--utc-offset-minutes",
                "-99999999"], "--utc-offset-minutes: must be in"),
    ("parsing", "import", "--stay-cap-minutes 1e300", lambda c: ["import", "rees46", c.path("raw-short/browse.csv"),
                                                                 "--out", c.path("i3"), "--stay-cap-minutes", "1e300"],
     "--stay-cap-minutes: must be in"),
    ("parsing", "import", "a FIFO for a log file", lambda c: ["import", "rees46", c.path("fifo"), "--out", c.path("i4")],
     "is not a regular file"),
    ("parsing", "build-samples", "--master bogus://x", lambda c: ["build-samples", str(c.raw), "--out", c.path("s10"),
                                                                  "--engine", "spark", "--master", "bogus://x"],
     "not a Spark master URL"),
    ("parsing", "build-samples", "--manifest a FIFO", lambda c: ["build-samples", str(c.raw), "--out", c.path("s11"),
                                                                 "--manifest", c.path("fifo")], "is not a regular file"),
    ("parsing", "build-samples", "a FIFO among the raw logs", lambda c: ["build-samples", c.path("raw-fifo"), "--out",
                                                                         c.path("s12"), "--quiet"],
     "no event files found"),  # a FIFO is no log file: never opened, so never blocks
    ("parsing", "train", "--device bogus", _train(None, "--device", "bogus"), "not a device torch knows"),
    ("parsing", "train", "--seed 2**70", _train(None, "--seed", str(2**70)), "--seed: must be in"),
    ("parsing", "train", "--config a FIFO", _train(None, "--config", "{root}/fifo"), "is not a regular file"),
    ("parsing", "evaluate", "a FIFO for the checkpoint", _evaluate("fifo", None), "is not a regular file"),
    ("parsing", "demo", "--phones 0", lambda c: ["demo", "--out", c.path("d1"), "--phones", "0"], "--phones: must be in"),
    ("parsing", "demo", "--phones -1", lambda c: ["demo", "--out", c.path("d2"), "--phones", "-1"],
     "--phones: must be in"),
    ("parsing", "demo", "--phone-events -1", lambda c: ["demo", "--out", c.path("d3"), "--phone-events", "-1"],
     "--phone-events: must be in"),
    ("parsing", "simulate", "--users 10**12", lambda c: ["simulate", "--users", str(10**12), "--out", c.path("sim2")],
     "--users: must be in"),
    # a sample store checks what it holds on open (dipn.samples.store)
    ("samples", "evaluate", "a bit-flipped bounds.npy", _evaluate(None, "samples-bounds-bitflip"),
     "a window outside its view's events"),
    ("samples", "train", "a bit-flipped bounds.npy", _train("samples-bounds-bitflip"), "a window outside"),
    ("samples", "train", "ids beyond the vocabulary", _train("samples-ids-out-of-range"), "its vocabulary has"),
    ("samples", "evaluate", "ids beyond the vocabulary", _evaluate(None, "samples-ids-out-of-range"),
     "its vocabulary has"),
    ("samples", "inspect", "ids beyond the vocabulary", lambda c: ["inspect", c.path("samples-ids-out-of-range")],
     "its vocabulary has"),
    ("samples", "evaluate", "a label of 127", _evaluate(None, "samples-labels-127"), "labels are 0 or 1"),
    ("samples", "train", "a split code of 127", _train("samples-split-127"), "unknown code(s) [127]"),
    ("samples", "inspect", "dataset.json events of text", lambda c: ["inspect", c.path("samples-events-many")],
     "'events' must count each view's events"),
    ("samples", "inspect", "a shard outside the directory", lambda c: ["inspect", c.path("samples-shard-outside")],
     "is not a directory inside the sample directory"),
    # a checkpoint carries a digest of its contents and finite weights (dipn.training.checkpoint)
    ("checkpoints", "evaluate", "a byte flipped in the middle", _evaluate("bitflip.pt", None), "damaged"),
    ("checkpoints", "evaluate", "NaN weights", _evaluate("nan.pt", None), "weights are not finite"),
    ("checkpoints", "convert", "NaN weights", lambda c: ["convert", c.path("nan.pt"), "--samples", str(c.samples),
                                                         "--out", c.path("b4")], "weights are not finite"),
    # training that diverges stops at its step (dipn.training.loop.Trainer.require_finite)
    ("divergence", "train", "--lr 1e308", lambda c: ["train", str(c.samples), "--out", c.path("run-lr"), *QUICK_TRAIN,
                                                     "--lr", "1e308"], "training diverged at step 1"),
]  # fmt: skip


def _filled(argv: list[str], c: Corpus) -> list[str]:
    return [a.format(root=c.root, samples=c.samples) if "{" in a else a for a in argv]


@pytest.mark.parametrize(("mechanism", "command", "wrong", "argv", "words"), ISSUE_27,
                         ids=[f"{m}: {c}: {w}" for m, c, w, _, _ in ISSUE_27])  # fmt: skip
def test_each_finding_of_issue_27_is_one_line_and_exit_status_2(
    corpus: Corpus, mechanism: str, command: str, wrong: str, argv: Case, words: str, capsys: pytest.CaptureFixture
) -> None:
    before = sorted(p.name for p in corpus.root.iterdir())
    status, err = _main(_filled(argv(corpus), corpus), capsys)
    last = err.strip().splitlines()[-1] if err.strip() else ""
    assert status == 2 and "Traceback" not in err, err
    assert ERROR_LINE.match(last) and words in last, last
    leftovers = [p for p in corpus.root.iterdir() if p.name not in before and p.name.startswith(".")]
    assert all(p.suffix == ".lock" for p in leftovers), leftovers  # a writer's lock file, nothing half-written


def test_a_diverging_run_writes_no_checkpoint(corpus: Corpus, capsys: pytest.CaptureFixture) -> None:
    run = corpus.root / "diverged"
    assert dipn_main(["train", str(corpus.samples), "--out", str(run), *QUICK_TRAIN, "--lr", "1e308"]) == 2
    assert "lower --lr" in capsys.readouterr().err
    assert not list(run.glob("*.pt")) and not list(run.glob(".*partial*"))
    again = ["train", str(corpus.samples), "--out", str(run), *QUICK_TRAIN, "--max-steps", "2", "--lr", "1e-3"]
    assert dipn_main(again) == 0  # what the line suggests works as it is, no --overwrite needed
    assert (run / "best.pt").is_file()


def test_the_keygen_name_and_the_bundle_stay_untouched(corpus: Corpus) -> None:
    """The refusals above wrote nothing: no key outside --out, nothing in the bundle or samples."""
    assert not (corpus.root / "escaped.key").exists() and not list(corpus.root.glob("*.key"))
    assert [p.name for p in (corpus.root / "bundle-like").iterdir()] == ["manifest.json"]
    assert not list(corpus.samples.glob("*.png")) and not (corpus.samples / "p.csv").exists()


@pytest.mark.parametrize(("command", "wrong", "argv", "words"), CASES, ids=[f"{c}: {w}" for c, w, _, _ in CASES])
def test_a_bad_input_is_one_line_and_exit_status_2(
    corpus: Corpus, command: str, wrong: str, argv: Case, words: str, capsys: pytest.CaptureFixture
) -> None:
    status, err = _main(argv(corpus), capsys)
    last = err.strip().splitlines()[-1] if err.strip() else ""
    assert status == 2 and "Traceback" not in err, err
    assert ERROR_LINE.match(last) and words in last, last


def test_the_corpus_runs_every_subcommand() -> None:
    subcommands = next(a for a in make_parser()._actions if isinstance(a, argparse._SubParsersAction))
    assert {command for command, *_ in CASES} == set(subcommands.choices)


IN_A_PROCESS = [("build-samples", "header-only files"), ("train", "a truncated shard"),
                ("evaluate", "a garbage checkpoint"), ("train", "--lr nan")]  # fmt: skip


@pytest.mark.parametrize("index", [i for i, (command, wrong, *_) in enumerate(CASES) if (command, wrong) in IN_A_PROCESS])
def test_a_real_process_prints_no_traceback(corpus: Corpus, index: int) -> None:
    _, _, argv, words = CASES[index]
    done = subprocess.run([sys.executable, "-m", "dipn.cli", *argv(corpus)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert words in done.stderr.strip().splitlines()[-1]


@pytest.mark.parametrize("options", [
    {"max_steps": -5}, {"patience": -1}, {"patience": 0}, {"lr": float("nan")}, {"lr": float("inf")}, {"lr": 0.0},
    {"adam_eps": float("nan")}, {"beta1": 1.0}, {"epochs": 0}, {"batch_size": -1}, {"seed": -1}, {"threads": 0},
    {"max_train_samples": -3}, {"max_eval_samples": 0}, {"checkpoint_every": 0}, {"epochs": "5"}, {"lr": True},
    {"variant": 3}, {"lr": 10**400},
])  # fmt: skip
def test_nonsensical_training_options_are_refused_naming_the_option(options: dict) -> None:
    from dipn.errors import DipnValidationError

    (name,) = options
    with pytest.raises(DipnValidationError, match=name):
        TrainConfig.from_dict(TrainConfig().to_dict() | options)
    assert TrainConfig(lr=1, max_steps=3, variant="no_tap").lr == 1  # JSON's 1 for 1.0 is fine


def test_the_cli_catches_nothing_but_dipns_own_errors() -> None:
    """The boundary is narrow: a bug still shows its traceback."""
    import ast

    import dipn.cli

    tree = ast.parse(Path(dipn.cli.__file__).read_text())
    caught = {ast.unparse(h.type) for h in ast.walk(tree) if isinstance(h, ast.ExceptHandler)}
    assert caught == {"DipnValidationError", "KeyboardInterrupt"}


# ---- issue 27, item 5: the endpoint's arguments (a garbage or unreachable --db, ids beyond 64 bits) ------------
# Appended as one block (the endpoint's part of the corpus): each was a traceback.

OPEN_ON_LOOPBACK = ["--insecure-open-operator-routes", "--insecure-open-enrollment"]  # past the token checks


@pytest.fixture(scope="module")
def endpoint_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from dipn.serving.server import migrate_database

    root = tmp_path_factory.mktemp("endpoint-args")
    (root / "garbage.db").write_bytes(b"this is not a SQLite database\n" * 200)
    migrate_database(f"sqlite:///{root}/empty.db")
    return root


ENDPOINT_CASES: list[tuple[str, Callable[[Path], list[str]], str]] = [
    ("serve --db a garbage file", lambda r: ["serve", "--db", f"sqlite:///{r}/garbage.db", *OPEN_ON_LOOPBACK],
     "cannot use it as a database (file is not a database)"),
    ("serve --db an unreachable PostgreSQL", lambda r: ["serve", "--db", "postgresql://nobody@127.0.0.1:1/x",
                                                        *OPEN_ON_LOOPBACK], "cannot use it as a database"),
    ("serve --workers 0", lambda r: ["serve", "--workers", "0", "--db", f"sqlite:///{r}/empty.db", *OPEN_ON_LOOPBACK],
     "--workers: workers must be an integer in [1, 1024], got 0"),
    ("serve --port 65536", lambda r: ["serve", "--port", "65536", "--db", f"sqlite:///{r}/empty.db", *OPEN_ON_LOOPBACK],
     "--port: port must be an integer in [1, 65535], got 65536"),
    ("serve --signature-window 0", lambda r: ["serve", "--signature-window", "0", "--migrate-only", "--db",
                                              f"sqlite:///{r}/empty.db"], "--signature-window: signature_window_ms must"),
    ("serve --migrate-only on a garbage file", lambda r: ["serve", "--migrate-only", "--db", f"sqlite:///{r}/garbage.db"],
     "cannot use it as a database"),
    ("coupon-report --db a garbage file", lambda r: ["coupon-report", "--db", f"sqlite:///{r}/garbage.db"],
     "cannot use it as a database"),
    ("coupon-report --campaign 2**63", lambda r: ["coupon-report", "--db", f"sqlite:///{r}/empty.db", "--campaign",
                                                  str(2**63)], "no campaign 9223372036854775808"),
    ("coupon-report --campaign 2**64", lambda r: ["coupon-report", "--db", f"sqlite:///{r}/empty.db", "--campaign",
                                                  str(2**64)], "no campaign 18446744073709551616"),
]  # fmt: skip


@pytest.mark.parametrize(("wrong", "argv", "words"), ENDPOINT_CASES, ids=[w for w, _, _ in ENDPOINT_CASES])
def test_the_endpoints_bad_arguments_are_one_line(endpoint_corpus: Path, wrong: str, argv: Callable[[Path], list[str]],
                                                  words: str, capsys: pytest.CaptureFixture) -> None:
    status, err = _main(argv(endpoint_corpus), capsys)
    assert status == 2 and "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and ERROR_LINE.match(lines[0]) and words in lines[0], err


def test_an_unreachable_postgresql_is_one_line_from_a_real_process() -> None:
    done = subprocess.run([sys.executable, "-m", "dipn.cli", "serve", "--db", "postgresql://nobody@127.0.0.1:1/x",
                           *OPEN_ON_LOOPBACK], capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.strip().splitlines() == [done.stderr.strip()] and "127.0.0.1" in done.stderr
