"""Training throughput per core, peak memory and arithmetic of every torch model, old code beside new.

    python -m benchmarks.train_speed                     # simulated samples, baseline 54134d8
    python -m benchmarks.train_speed --models dipn --batch-sizes 128 --threads 1 --windows 1   # a quick look

Each measurement is a worker process pinned with ``taskset`` to as many cores as it has threads.
The worker imports ``dipn`` either from a copy of the baseline revision's ``dipn/`` (``git
archive``, in a temporary directory) or from this tree, builds that code's own ``Trainer`` on the
same samples and steps it through ``Trainer.train_epoch``, the loop ``dipn train`` runs (batch
gathering, forward, backward, Adam; no checkpoints, no evaluation). After warm-up steps it times
``--windows`` windows of ``--steps`` steps, in wall time and in the CPU time of the process (all
its threads). Samples per core-second = samples / CPU seconds, the median window: what a core
does while it runs the job, which other jobs sharing the machine change far less than they change
wall time (they take turns on the cores; wall-clock samples/s is recorded beside it). Old and new
of a configuration run back to back, so the remaining effects of background load (caches,
memory bandwidth) hit both alike. Peak
memory is the worker's peak resident set (``ru_maxrss``: interpreter, torch, the model and the
step's working set).

Arithmetic: multiply-accumulates (MACs) per sample, counted by ``torch.utils.flop_counter`` over
one forward pass and over one training step (forward + backward) of the code path as it executes
(matrix products only; elementwise work, lookups and the optimizer are not counted). The fraction
of peak is (training MACs per sample x 2 x samples/s) over the FLOP/s of the cores used. The peak
per core is measured (the best of an fp32 2048^3 ``torch.mm`` on one pinned thread); the nominal
peak of the core is stated beside it as an assumption.

The profile (DIPN, batch 128, one thread; ``benchmarks/train_profile.py``) splits one step of
each code path by module, forward and backward together. The ablation row runs the old model
code with this tree's allocator setting (``dipn.training.runtime.keep_freed_memory``), to show how
much of the gain is the allocator and how much the model code, and the new code is also run
with ``--compile`` (``torch.compile``; its warm-up includes the compilation).
Threads (``--sections threads``): DIPN training and scoring (``dipn evaluate``'s ``predict``) with
1 thread, 2 and the code's default, on the machine as it is and with one competing CPU-bound
process, the code before issue 25 (``--threads-baseline-rev``) beside this tree; there every
worker and the competing process may use all cores, as a user's process and another job do. The
default must never be slower than 1 thread, idle or busy.

Writes benchmarks/results/train_speed.{json,md} (or under --out); a run of the threads section
alone writes train_speed_threads.{json,md}.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from benchmarks.train_profile import StepRunner

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
BASELINE_REV = "54134d8"  # main before issue 19: the code path this benchmark compares against
THREADS_BASELINE_REV = "350df9b"  # main before issue 25: the thread defaults and scoring it compares against
# DIPN, its Table 4 variants, the baseline and the alternatives, by preset name (``dipn.presets``)
MODELS = ("dipn", "early_fusion", "no_attention", "no_inter_view", "no_intra_view", "no_multitask", "rnn_dnn", "atrank",
          "rib", "heroes")  # fmt: skip


def model_and_variant(name: str) -> tuple[str, str | None]:
    """The --model and --variant of a preset, read in the parent only: workers run older code, whose
    ``dipn`` may not have this tree's preset table."""
    from dipn.presets import preset

    return preset(name).model, preset(name).config_name


def worker(args: argparse.Namespace) -> dict[str, Any]:
    """One configuration of one code path, in this (pinned) process."""
    if args.keep_freed_memory:
        keep_freed_memory_of_this_tree()
    threads = args.threads or None  # 0: the code's own default
    from benchmarks.train_profile import StepRunner  # after the worker's path names its dipn

    runner = StepRunner(args.samples, args.model, args.variant, args.batch_size, threads, args.compile)
    if args.scoring:
        return scoring_worker(runner, args.scoring, args.windows)
    rss_start = _rss_mb()
    warmup_wall_s, _ = runner.steps(args.warmup)
    windows = [runner.steps(args.steps) for _ in range(args.windows)]
    samples = args.steps * args.batch_size
    out: dict[str, Any] = {"samples_per_s": statistics.median(samples / wall for wall, _ in windows),
                           "samples_per_cpu_s": statistics.median(samples / cpu for _, cpu in windows),
                           "windows_wall_cpu_s": windows,
                           "warmup_wall_s": warmup_wall_s, "rss_start_mb": rss_start, "peak_rss_mb": _peak_rss_mb(),
                           "cpus_allowed": sorted(os.sched_getaffinity(0)),
                           "threads_at_end": _torch_threads()}  # fmt: skip
    if args.macs:
        out["macs_per_sample"] = runner.macs_per_sample()
    if args.profile:
        out["profile_s"] = runner.profile()
    return out


def scoring_worker(runner: StepRunner, samples: int, windows: int) -> dict[str, Any]:
    """Samples per second of ``dipn evaluate``'s scoring (the code's own ``predict``, its default
    batch size and, unless ``--threads`` is given, its default threads) of the trainer's model on
    the first ``samples`` eval samples, ``windows`` times after one warm-up batch; what
    ``evaluate`` spends outside ``predict`` (bootstrap, plots) is not timed."""
    import torch

    try:
        from dipn.training.predict import predict
    except ImportError:  # before predict moved to dipn.training
        from dipn.evaluation.predict import predict
    trainer = runner.trainer
    model, store = trainer.model, trainer.store
    indices = store.indices("eval")[:samples]
    if runner.threads is None:
        try:  # what dipn evaluate does without --threads; older code left torch's default
            from dipn.evaluation.report import scoring_threads

            scoring_threads(model, None)
        except ImportError:
            torch.set_num_threads(len(os.sched_getaffinity(0)))
    predict(model, store, indices[:64])
    timed = []
    for _ in range(windows):
        wall, cpu = time.perf_counter(), time.process_time()
        predict(model, store, indices)
        timed.append((time.perf_counter() - wall, time.process_time() - cpu))
    return {"samples_per_s": statistics.median(len(indices) / w for w, _ in timed),
            "samples_per_cpu_s": statistics.median(len(indices) / c for _, c in timed),
            "windows_wall_cpu_s": timed, "samples": len(indices), "peak_rss_mb": _peak_rss_mb(),
            "cpus_allowed": sorted(os.sched_getaffinity(0)), "threads_at_end": _torch_threads()}  # fmt: skip


def keep_freed_memory_of_this_tree() -> None:
    """Apply this tree's allocator setting in a process whose ``dipn`` is another revision's."""
    path = ROOT / "dipn/training/runtime.py"
    spec = importlib.util.spec_from_file_location("dipn_runtime_of_this_tree", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.keep_freed_memory()


def peak_worker() -> dict[str, float]:
    """Best fp32 GEMM FLOP/s of one thread: the practical peak of a core."""
    import torch

    torch.set_num_threads(1)
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    a @ b
    best = min(_timed(lambda: a @ b) for _ in range(7))
    return {"sgemm_gflops": 2 * 2048**3 / best / 1e9}


def _timed(call: Any) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def _torch_threads() -> int:
    import torch

    return torch.get_num_threads()


def _uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ---- the driver ------------------------------------------------------------------------------------
def run_worker(args: argparse.Namespace, code: Path, threads: int, extra: list[str], busy: bool | None = None,
               settings: dict[str, int] | None = None) -> dict[str, Any]:  # fmt: skip
    """One measurement in a fresh worker process pinned to ``threads`` cores; ``busy`` (the threads
    section): every worker may use all cores, as a user's process does, 0 threads is the code's
    default, and when ``busy`` is true one competing CPU-bound process, unpinned like another job
    on a shared machine, runs meanwhile."""
    allowed = sorted(os.sched_getaffinity(0))
    cores = ",".join(str(c) for c in (allowed if busy is not None else allowed[:threads]))
    settings = settings or {"warmup": args.warmup, "steps": args.steps, "windows": args.windows}
    # The worker imports dipn from ``code`` (an older revision's dipn/ or this tree) and benchmarks
    # from this tree: the module runs from "/" with exactly those two on its path.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(dict.fromkeys([str(code), str(ROOT)]))}
    command = ["taskset", "-c", cores, sys.executable, "-m", "benchmarks.train_speed", "--worker", "--code", str(code),
               "--samples", str(args.samples_of[code]), "--threads", str(threads),
               *(f"--{k}={v}" for k, v in settings.items()), *extra]  # fmt: skip
    competitor = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if busy else None
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=3600, cwd="/", env=env)
    finally:
        if competitor is not None:
            competitor.kill()
            competitor.wait()
    if done.returncode:
        raise RuntimeError(f"worker {' '.join(command[3:])} failed:\n{done.stderr.strip()[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def thread_runs(args: argparse.Namespace, codes: dict[str, Path]) -> list[dict[str, Any]]:
    """DIPN training (batch 128) and scoring (``dipn evaluate``'s ``predict``) with 1 thread, 2 and
    the code's default, on the machine as it is ("idle") and with one competing CPU-bound process
    ("busy"), old code (``--threads-baseline-rev``) and new. The whole grid runs ``--thread-rounds``
    times; within a round the thread counts of one column run back to back, so a ratio of two
    counts compares cells minutes apart at most, and the spread of the per-round ratios says how
    much the machine's other load moved them. Odd rounds run the counts in reverse order: a cell
    that always ran first (a cooler cache, a competitor just started, the load of the previous
    cell's last seconds) would otherwise carry that edge into every ratio. A cell's figures are the
    median over the windows of all its rounds. Training runs enough steps for ``adapt_threads`` to check its choice within
    the timed windows when ``--thread-warmup`` + windows x steps exceeds its first period."""
    counts = [c for c in args.thread_counts if c <= len(os.sched_getaffinity(0))]
    training = {"warmup": args.thread_warmup, "steps": args.thread_steps, "windows": args.windows}
    runs: dict[tuple[str, int, str], list[dict[str, Any]]] = {}
    for number in range(args.thread_rounds):
        for task in ("training", "scoring"):
            for code in ("old", "new"):
                for busy in (False, True):
                    for count in counts if number % 2 == 0 else counts[::-1]:
                        extra = ["--model", "dipn", "--batch-size", "128"]
                        extra += ["--scoring", str(args.scoring_samples)] if task == "scoring" else []
                        cell = f"{code}_{'busy' if busy else 'idle'}"
                        result = run_worker(args, codes[code], count, extra, busy, None if task == "scoring" else training)
                        result["samples_per_window"] = result.get("samples") or args.thread_steps * 128
                        runs.setdefault((task, count, cell), []).append(result)
                        print(f"round {number + 1} {task:8s} {cell:8s} threads {count or 'default'!s:7s}: "
                              f"{result['samples_per_s']:7.1f}/s ({result['samples_per_cpu_s']:7.1f} per core-second)",
                              flush=True)  # fmt: skip
    rows = []
    for task in ("training", "scoring"):
        for count in counts:
            row: dict[str, Any] = {"task": task, "threads": count or "default"}
            for cell in ("old_idle", "old_busy", "new_idle", "new_busy"):
                row[cell] = merged_rounds(runs[(task, count, cell)])
            rows.append(row)
    return rows


def merged_rounds(results: list[dict[str, Any]]) -> dict[str, Any]:
    """One cell's rounds: samples/s and per core-second as the median over all their windows, each
    round's own figures and the threads the default ended with in each."""
    windows = [(r["samples_per_window"], wall, cpu) for r in results for wall, cpu in r["windows_wall_cpu_s"]]
    return {"samples_per_s": statistics.median(n / wall for n, wall, _ in windows),
            "samples_per_cpu_s": statistics.median(n / cpu for n, _, cpu in windows),
            "windows_wall_cpu_s": [[wall, cpu] for _, wall, cpu in windows],
            "rounds": [{k: r[k] for k in ("samples_per_s", "samples_per_cpu_s", "threads_at_end")} for r in results],
            "threads_at_end": results[-1]["threads_at_end"], "peak_rss_mb": max(r["peak_rss_mb"] for r in results),
            "cpus_allowed": results[-1]["cpus_allowed"]}  # fmt: skip


def baseline_tree(rev: str, into: Path) -> Path:
    """``dipn/`` of revision ``rev`` extracted under ``into``, importable as ``dipn``."""
    archive = subprocess.run(["git", "archive", rev, "dipn"], cwd=ROOT, capture_output=True, check=True).stdout
    into.mkdir(parents=True)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def simulated_samples(into: Path, code: Path) -> Path:
    """The demo's data (300 shoppers, 3 days, density 1.0: ``dipn demo`` defaults) as ``code`` builds it.

    Each code path reads samples its own revision simulated and built: the sample store's format
    moved on after the baseline (format 2 -> 3, same inputs), and an old reader refuses the new one."""
    env = {**os.environ, "PYTHONPATH": str(code)}
    raw, samples = into / "raw", into / "samples"
    for command in (["simulate", "--users", "300", "--days", "3", "--seed", "0", "--out", str(raw), "--quiet"],
                    ["build-samples", str(raw), "--out", str(samples), "--quiet"]):  # fmt: skip
        subprocess.run([sys.executable, "-m", "dipn.cli", *command], env=env, check=True, capture_output=True,
                       cwd="/")  # fmt: skip
    return samples


def nominal_peak() -> dict[str, Any]:
    """The core's nominal fp32 peak from ``lscpu``, with the assumptions it takes."""
    info = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    fields = dict(line.split(":", 1) for line in info.splitlines() if ":" in line)
    fields = {k.strip(): v.strip() for k, v in fields.items()}
    flags = fields.get("Flags", "").split()
    lanes = 16 if "avx512f" in flags else 8 if "avx2" in flags else 4
    mhz = float(fields.get("CPU max MHz") or fields.get("CPU MHz") or float(fields.get("BogoMIPS", "0")) / 2)
    fma_units = 2
    gflops = lanes * 2 * fma_units * mhz / 1e3
    return {"model": fields.get("Model name", "?"), "family": fields.get("CPU family", "?"), "lanes_fp32": lanes,
            "fma_units": fma_units, "mhz": mhz, "gflops": gflops,
            "assumption": f"{fma_units} FMA units x {lanes} fp32 lanes x 2 FLOP x {mhz:.0f} MHz (clock: lscpu "
                          f"{'max MHz' if fields.get('CPU max MHz') else 'BogoMIPS / 2, the TSC rate'}; "
                          "a core may boost above it)"}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=Path, help="sample directory (default: simulate the demo's data)")
    parser.add_argument("--baseline-rev", default=BASELINE_REV, help="git revision of the old code path")
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--batch-sizes", nargs="+", type=int, default=[128, 256])
    parser.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    parser.add_argument("--steps", type=int, default=2, help="steps per timed window")
    parser.add_argument("--windows", type=int, default=3, help="timed windows (samples/s = their median)")
    parser.add_argument("--threads-baseline-rev", default=THREADS_BASELINE_REV,
                        help="git revision of the old code in the threads and scoring section")
    parser.add_argument("--thread-warmup", type=int, default=14, help="untimed training steps in the threads section")
    parser.add_argument("--thread-steps", type=int, default=6, help="training steps per window in the threads section")
    parser.add_argument("--scoring-samples", type=int, default=1024, help="eval samples per scoring window")
    parser.add_argument("--thread-counts", nargs="+", type=int, default=[1, 2, 0],
                        help="threads of the threads section (0: the code's default)")
    parser.add_argument("--thread-rounds", type=int, default=3,
                        help="times the threads section's grid runs (the spread of its per-round ratios: the noise)")
    parser.add_argument("--sections", nargs="+", default=["models", "threads"], choices=["models", "threads"],
                        help="models: the table per model, batch and threads; threads: 1, 2 and default threads "
                             "on an idle and a busy machine, training and scoring")
    parser.add_argument("--out", type=Path, default=HERE / "results", help="results directory")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--peak-worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--code", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    parser.add_argument("--variant", help=argparse.SUPPRESS)
    parser.add_argument("--batch-size", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--macs", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--profile", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--keep-freed-memory", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--compile", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--scoring", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.peak_worker:
        print(json.dumps(peak_worker()))
        return 0
    if args.worker:
        args.threads = args.threads[0]
        print(json.dumps(worker(args)))
        return 0
    from benchmarks.machine import machine_info

    available = len(os.sched_getaffinity(0))
    threads = [t for t in args.threads if t <= available]
    command = " ".join(["python -m benchmarks.train_speed", *(sys.argv[1:] if argv is None else argv)])
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="dipn-train-speed-") as tmp:
        work = Path(tmp)
        codes = {"old": baseline_tree(args.baseline_rev, work / "old"), "new": ROOT}
        thread_codes = {"old": baseline_tree(args.threads_baseline_rev, work / "threads-old"), "new": ROOT}
        paths = {"old": codes["old"], "threads-old": thread_codes["old"], "new": ROOT}
        args.samples_of = {path: (args.samples or simulated_samples(work / name, path)).resolve()
                           for name, path in paths.items()}  # fmt: skip
        peak = json.loads(subprocess.run(["taskset", "-c", str(sorted(os.sched_getaffinity(0))[0]), sys.executable,
                                          "-m", "benchmarks.train_speed", "--peak-worker"], capture_output=True,
                                         text=True, check=True, cwd=ROOT).stdout.strip().splitlines()[-1])  # fmt: skip
        load_start, uptime_start = os.getloadavg(), _uptime()
        runs = []
        for label in args.models if "models" in args.sections else ():
            model, variant = model_and_variant(label)
            for batch in args.batch_sizes:
                for count in threads:
                    row: dict[str, Any] = {"label": label, "model": model, "variant": variant, "batch_size": batch,
                                           "threads": count}  # fmt: skip
                    first = batch == args.batch_sizes[0] and count == threads[0]
                    for code, path in codes.items():
                        extra = ["--model", model, "--batch-size", str(batch)] + (["--variant", variant] if variant else [])
                        extra += ["--macs"] if first else []
                        extra += ["--profile"] if first and label == "dipn" and batch == 128 and count == 1 else []
                        row[code] = run_worker(args, path, count, extra)
                    if label == "dipn" and batch == 128 and count == 1:
                        extra = ["--model", model, "--batch-size", str(batch)]
                        row["old_with_allocator"] = run_worker(args, codes["old"], count, [*extra, "--keep-freed-memory"])
                        row["new_compiled"] = run_worker(args, codes["new"], count, [*extra, "--compile"])
                    row["ratio"] = row["new"]["samples_per_cpu_s"] / row["old"]["samples_per_cpu_s"]
                    runs.append(row)
                    print(f"{label:14s} batch {batch:3d} threads {count}: old {row['old']['samples_per_cpu_s']:7.1f} "
                          f"new {row['new']['samples_per_cpu_s']:7.1f} samples per core-second ({row['ratio']:.2f}x)",
                          flush=True)  # fmt: skip
        threads_section = thread_runs(args, thread_codes) if "threads" in args.sections else []
        load_end, uptime_end = os.getloadavg(), _uptime()
    report = {"command": command, "machine": machine_info(), "baseline_rev": args.baseline_rev,
              "threads_baseline_rev": args.threads_baseline_rev, "uptime_start": uptime_start, "uptime_end": uptime_end,
              "threads_settings": {"training_warmup": args.thread_warmup, "training_steps": args.thread_steps,
                                   "windows": args.windows, "scoring_samples": args.scoring_samples,
                                   "rounds": args.thread_rounds},
              "threads": threads_section,
              "samples": str(args.samples) if argv and "--samples" in argv else "simulated: 300 users x 3 days, density 1.0",
              "load_average_start": load_start, "load_average_end": load_end, "minutes": (time.time() - started) / 60,
              "peak": {"measured_sgemm_gflops_per_core": peak["sgemm_gflops"], "nominal": nominal_peak()},
              "settings": {"warmup": args.warmup, "steps": args.steps, "windows": args.windows},
              "runs": runs}  # fmt: skip
    args.out.mkdir(parents=True, exist_ok=True)
    name = "train_speed" if "models" in args.sections else "train_speed_threads"  # a threads-only run keeps the table
    (args.out / f"{name}.json").write_text(json.dumps(report, indent=1) + "\n")
    from benchmarks.train_speed_report import markdown

    (args.out / f"{name}.md").write_text(markdown(report))
    print((args.out / f"{name}.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
