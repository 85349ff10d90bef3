"""Smoke tests of the issue-8 benchmark scripts on tiny settings: they run end to end and write their
results where they are told (a temporary directory, never benchmarks/results). Figures are not
asserted: benchmarks report, tests do not time."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.emulator import rootfs

ROOT = Path(__file__).resolve().parents[1]


def test_uplink_cost_compares_posted_scores_with_every_score_and_raw_events(tiny_bundle: Path, tmp_path: Path) -> None:
    from benchmarks import uplink_cost

    assert uplink_cost.main(["--users", "2", "--days", "1", "--density", "0.05", "--sim-bundle", str(tiny_bundle),
                             "--posts", "3", "--no-tail", "--out", str(tmp_path)]) == 0  # fmt: skip
    report = json.loads((tmp_path / "uplink_cost.json").read_text())
    assert report["post"]["request_bytes"] > report["post"]["body_bytes"] > 0  # headers are on the wire too
    (log,) = report["logs"]
    per_day = log["bytes_per_user_day"]
    assert per_day["every_score"] >= per_day["posted"] > 0 and per_day["raw_json"] > per_day["raw_zstd"] > 0
    assert log["decisions"]["decision_moments"] > 0 and log["scores_per_user_day"]["idle"] > 0
    assert "bytes per user-day" in (tmp_path / "uplink_cost.md").read_text()
    assert uplink_cost.main(["--render", "--out", str(tmp_path)]) == 0


def test_latency_reports_every_backend_at_one_and_two_threads(
    tiny_checkpoint: Path, tiny_samples: Path, tiny_bundle: Path, tmp_path: Path
) -> None:
    from benchmarks import latency

    argv = ["--checkpoint", str(tiny_checkpoint), "--samples", str(tiny_samples), "--bundle", str(tiny_bundle),
            "--rounds", "1", "--per-round", "2", "--out", str(tmp_path)]  # fmt: skip
    assert latency.main(argv) == 0
    report = json.loads((tmp_path / "latency.json").read_text())
    for run in report["runs"]:
        assert set(run["model"]) == {"PyTorch eager fp32", "PyTorch eager int8", "onnxruntime fp32", "onnxruntime int8",
                                     "LiteRT fp32", "LiteRT int8"}  # fmt: skip
        assert len(run["cpus_allowed"]) == run["threads"]  # pinned
        assert all("p50_ms" in e for e in run["event_to_score"].values()), run["event_to_score"]
    assert (tmp_path / "latency.png").stat().st_size > 0
    assert "cannot run off macOS" in (tmp_path / "latency.md").read_text()


def test_endpoint_load_runs_a_small_sweep_and_loses_nothing(tmp_path: Path) -> None:
    out = tmp_path / "endpoint_load.json"
    command = [sys.executable, "-m", "benchmarks.endpoint_load", "--seconds", "1", "--devices", "10",
               "--rate", "100", "--connections", "4", "--sweep", "1,4", "--out", str(out)]  # fmt: skip
    subprocess.run(command, check=True, capture_output=True, timeout=600, cwd=ROOT)
    report = json.loads(out.read_text())
    assert [p["connections"] for p in report["sweep"]] == [1, 4]
    assert all(p["statuses"] == {"200": p["posts_ok"]} for p in report["phases"] + report["sweep"])  # no 429s
    assert report["durability"]["acknowledged_lost"] == 0
    assert out.with_suffix(".png").stat().st_size > 0


def test_train_speed_runs_old_and_new_code_side_by_side(tmp_path: Path) -> None:
    """The baseline revision's own Trainer on samples it built, beside this tree's, with the ratio
    and the arithmetic (the smallest configuration: one model, one batch size, one step)."""
    from benchmarks import train_speed

    present = subprocess.run(["git", "cat-file", "-e", f"{train_speed.BASELINE_REV}^{{commit}}"], cwd=ROOT,
                             capture_output=True).returncode == 0  # fmt: skip
    if not present:
        pytest.skip(f"this checkout lacks the baseline revision {train_speed.BASELINE_REV} (a shallow clone)")
    argv = ["--sections", "models", "--models", "rnn_dnn", "--batch-sizes", "16", "--threads", "1", "--warmup", "1",
            "--steps", "1", "--windows", "1", "--out", str(tmp_path)]  # fmt: skip
    assert train_speed.main(argv) == 0
    report = json.loads((tmp_path / "train_speed.json").read_text())
    (row,) = report["runs"]
    assert row["old"]["samples_per_cpu_s"] > 0 and row["new"]["samples_per_cpu_s"] > 0
    assert row["ratio"] == row["new"]["samples_per_cpu_s"] / row["old"]["samples_per_cpu_s"]
    assert row["new"]["macs_per_sample"]["training"] > row["new"]["macs_per_sample"]["forward"] > 0
    assert "new / old" in (tmp_path / "train_speed.md").read_text()


def test_accuracy_checks_each_paper_ordering_from_the_paper_aucs() -> None:
    from benchmarks import accuracy

    checked = accuracy.claims()
    paper = {label: auc for label, _, _, auc in accuracy.ROWS}
    for task, better, worse, delta in checked:
        k = ("realtime", "longterm").index(task)
        if delta is not None:  # the paper ranks ``better`` above ``worse`` by ``delta``
            assert delta == paper[better][k] - paper[worse][k] > 0
    realtime = [(b, w) for t, b, w, _ in checked if t == "realtime"]
    assert ("DIPN paper-literal", "DIPN-no-intra-view-attention") in realtime and ("GBDT", "DIPN-early-fusion") in realtime
    assert {("DIPN", w) for w in ("GBDT", "GBDT+touch", "RNN+DNN")} <= {(b, w) for t, b, w, _ in checked if t == "longterm"}


def test_fake_cpu_files_describe_the_emulated_core(tmp_path: Path) -> None:
    """onnxruntime segfaults under qemu-user without these; the part number tells it the core."""
    rootfs.write_fake_cpu(tmp_path, rootfs.CORES["cortex-a76"])
    cpuinfo = (tmp_path / "proc/cpuinfo").read_text()
    assert cpuinfo.count("CPU part\t: 0xd0b") == 2 and "asimddp" in cpuinfo
    assert (tmp_path / "sys/devices/system/cpu/online").read_text() == "0-1\n"


def test_emulator_benchmark_agrees_with_the_host_and_counts_instructions(tiny_bundle: Path, tmp_path: Path) -> None:
    """About 4 minutes where `make emulator` has built the userlands; skipped (never downloaded) elsewhere."""
    reason = rootfs.not_built_reason()
    if reason:
        pytest.skip(f"emulator not built (this test never downloads it): {reason}")
    from benchmarks.emulator import bench

    argv = ["--bundle", str(tiny_bundle), "--repeat", "2", "--count-n", "1", "--artifacts", "model.int8.onnx",
            "--out", str(tmp_path)]  # fmt: skip
    assert bench.main(argv) == 0
    report = json.loads((tmp_path / "emulator.json").read_text())
    assert report["guest"]["machine"] == "aarch64"
    assert all(a["agrees"] for a in report["agreement"].values()), report["agreement"]
    assert report["guest"]["heavy_modules_imported"] == []
    for core in rootfs.CORES:
        assert report["instructions"]["guest"][core]["model.int8.onnx"]["per_inference"] > 0
    assert report["instructions"]["host"]["model.int8.onnx"]["per_inference"] > 0
    assert (tmp_path / "emulator.png").stat().st_size > 0


def test_accuracy_resumes_only_rows_of_the_same_settings_and_code(tmp_path: Path) -> None:
    """A killed run's finished rows are reused; a row trained by other code is trained again."""
    from benchmarks.accuracy import _previous_rows

    args = {"users": 2000, "only": ["DIPN"]}
    rows = [{"label": "DIPN", "git_revision": "abc1234"}, {"label": "GBDT+touch", "git_revision": "0ld0000"},
            {"label": "RIB"}]  # fmt: skip
    path = tmp_path / "accuracy.json"
    path.write_text(json.dumps({"args": args, "rows": rows}))
    assert list(_previous_rows(path, args | {"only": ["RIB"]}, "abc1234")) == ["DIPN"]
    assert _previous_rows(path, args | {"users": 500}, "abc1234") == {}
    assert _previous_rows(tmp_path / "absent.json", args, "abc1234") == {}


def test_accuracy_with_averaged_weights_trains_apart_and_says_so(tmp_path: Path) -> None:
    """--ema-decay and --embedding-dropout rows never reuse or overwrite the plain rows' models, and
    the section names them."""
    from benchmarks.accuracy import command, run_dir_of, runs_root

    plain, averaged = runs_root(tmp_path, None), runs_root(tmp_path, 0.995)
    assert plain == tmp_path / "runs" and averaged != plain
    assert run_dir_of(averaged, "dipn", None, 0) == averaged / "dipn-default" / "seed0"
    args = {"users": 2000, "days": 4, "seed": 0, "train_samples": 100000, "eval_samples": 10000, "epochs": 8,
            "patience": 2, "batch_size": 128, "lr": 0.002, "bootstrap": 200, "seeds": 2, "name": "x"}  # fmt: skip
    assert "--ema-decay 0.995" in command(args | {"ema_decay": 0.995}) and "--ema-decay" not in command(args)
    dropped = runs_root(tmp_path, None, 0.3)
    assert len({plain, averaged, dropped, runs_root(tmp_path, 0.995, 0.3)}) == 4 and runs_root(tmp_path, None, 0.0) == plain
    assert "--embedding-dropout 0.3" in command(args | {"embedding_dropout": 0.3})
    assert "--embedding-dropout" not in command(args | {"embedding_dropout": 0.0})
    done = subprocess.run([sys.executable, "-m", "benchmarks.accuracy", "--ema-decay", "1"], capture_output=True,
                          text=True, timeout=120)  # fmt: skip
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "ema_decay must be in (0, 1), got 1.0" in done.stderr.strip().splitlines()[-1]
