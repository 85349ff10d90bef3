"""Single-inference latency on the host by backend, precision and thread count, and a new event's way to its score.

    python -m benchmarks.latency             # runs/demo: checkpoint, samples, bundle
    python -m benchmarks.latency --rounds 3 --per-round 5 --out /tmp/latency   # a quick look

For 1 and 2 threads, a worker process pinned with ``taskset`` to as many cores times every
backend (PyTorch eager, onnxruntime, LiteRT) at fp32 and int8, batch 1, on real eval samples, in
interleaved rounds so that background load hits all of them alike; the speed-up over PyTorch eager
fp32 is taken from the same rounds. The same worker then times ``IntentScorer`` from one new raw
event to its score (sanitize, encode, buffer, model) with a full 256-event history, for each backend
the wrapper offers. CoreML predicts only on macOS: it is listed, not timed. The 1-minute load
average is recorded at the start and the end: on a shared machine the figures are upper bounds.
Writes benchmarks/results/latency.{json,md,png} (or under --out).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

from benchmarks.machine import machine_info, machine_line

REFERENCE = "PyTorch eager fp32"  # a label of convert.reference.torch_calls
THREADS = (1, 2)


def worker(args: argparse.Namespace) -> dict[str, Any]:
    """One thread count, in this (pinned) process: model latencies, then event -> score."""
    from benchmarks.emulator.guest import event_to_score
    from convert.reference import TorchReference, torch_calls
    from convert.signature import model_inputs
    from dipn.bundle.manifest import load_bundle
    from dipn.bundle.runners import run_one_calls
    from dipn.bundle.timing import interleaved, percentiles
    from dipn.samples.store import SampleStore

    bundle = load_bundle(args.bundle)
    calls = torch_calls(args.checkpoint, args.threads) | run_one_calls(bundle, args.threads)
    store = SampleStore(args.samples)
    inputs = model_inputs(store, store.indices("eval")[: args.per_round], _input_names(args.bundle))
    per_round = min(args.per_round, len(next(iter(inputs.values()))))
    times = interleaved(calls, inputs, args.rounds, per_round)
    golden = json.loads((args.bundle / "golden.json").read_text())
    events = {fmt: event_to_score(args.bundle, golden, backend, args.rounds * per_round, args.public_key, args.threads)
              for fmt, backend in (("torch", TorchReference(args.checkpoint)), ("onnx", "onnx"), ("tflite", "tflite"))}
    return {"threads": args.threads, "cpus_allowed": sorted(os.sched_getaffinity(0)),
            "model": {k: percentiles(v) for k, v in times.items()}, "event_to_score": events}  # fmt: skip


def _input_names(bundle: Path) -> list[str]:
    return [i["name"] for i in json.loads((bundle / "manifest.json").read_text())["inputs"]]


def run_pinned(args: argparse.Namespace, threads: int) -> dict[str, Any]:
    """The worker for ``threads`` threads, pinned to as many cores."""
    cores = ",".join(str(c) for c in sorted(os.sched_getaffinity(0))[:threads])
    command = ["taskset", "-c", cores, sys.executable, "-m", "benchmarks.latency", "--worker", "--threads", str(threads),
               "--checkpoint", str(args.checkpoint), "--samples", str(args.samples), "--bundle", str(args.bundle),
               "--rounds", str(args.rounds), "--per-round", str(args.per_round)]  # fmt: skip
    if args.public_key:
        command += ["--public-key", str(args.public_key)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=3600, cwd=ROOT)
    if done.returncode:
        raise RuntimeError(f"latency worker ({threads} threads) failed: {done.stderr.strip()[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def markdown(report: dict[str, Any], plot_name: str) -> str:
    load = report["load_average_start"][0], report["load_average_end"][0]
    lines = [
        "## Host latency by backend, precision and threads (issue 8)",
        "",
        f"Command: `{report['command']}`  ",
        f"Machine: {machine_line(report['machine'])}; 1-minute load average {load[0]:.1f} at the start, "
        f"{load[1]:.1f} at the end, on {report['machine']['cores']} cores (above 0 means others were running: "
        "upper bounds)  ",
        f"Model: `{report['checkpoint']}`, bundle `{report['bundle']}`; batch 1, 3 x 256 steps, real eval samples; "
        f"{report['rounds']} interleaved rounds x {report['per_round']} samples per backend and thread count. "
        "Speed-up = PyTorch eager fp32 p50 / this p50, same threads, same rounds.",
        "",
        "| backend | precision | threads | p50 ms | p90 ms | p99 ms | speed-up vs PyTorch eager fp32 |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for run in report["runs"]:
        reference = run["model"][REFERENCE]["p50_ms"]
        for label, s in run["model"].items():
            backend, precision = label.rsplit(" ", 1)
            lines.append(f"| {backend} | {precision} | {run['threads']} | {s['p50_ms']:.2f} | {s['p90_ms']:.2f} | "
                         f"{s['p99_ms']:.2f} | {reference / s['p50_ms']:.1f}x |")  # fmt: skip
    lines.append("| CoreML | fp32, int8 | - | cannot run off macOS (`model.mlpackage` predicts only on macOS) "
                 "| | | |")  # fmt: skip
    lines += [
        "",
        "New raw event -> score through `IntentScorer` (check, sanitize, encode with the training encoder, append to the "
        "ring buffer, run the model on the full 256-event window), the bundle's default artifact per backend:",
        "",
        "| backend | artifact | threads | p50 ms | p90 ms |",
        "| --- | --- | ---: | ---: | ---: |",
    ]
    for run in report["runs"]:
        for fmt, e in run["event_to_score"].items():
            if "error" in e:
                lines.append(f"| {fmt} | {e['error']} | {run['threads']} | - | - |")
            else:
                lines.append(f"| {e['runtime']} | `{e['artifact']}` | {run['threads']} | {e['p50_ms']:.2f} | "
                             f"{e['p90_ms']:.2f} |")  # fmt: skip
    lines += ["", "Target (docs/design.md): int8, 1 thread, p50 <= 2 ms on the host. Phones: see the ARM64 "
              "emulation section (instruction counts and estimated phone latency).", "",
              f"![latency by backend]({plot_name})", ""]  # fmt: skip
    return "\n".join(lines) + "\n"


def plot(report: dict[str, Any], path: Path) -> None:
    """p50 bars (p99 as the whisker top) per backend and precision, one group per thread count."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    labels = list(report["runs"][0]["model"])
    fig, ax = plt.subplots(figsize=(8, 3.8))
    width = 0.8 / len(report["runs"])
    x = np.arange(len(labels))
    for i, run in enumerate(report["runs"]):
        p50 = np.array([run["model"][k]["p50_ms"] for k in labels])
        p99 = np.array([run["model"][k]["p99_ms"] for k in labels])
        ax.bar(x + (i - (len(report["runs"]) - 1) / 2) * width, p50, width, yerr=[np.zeros_like(p50), p99 - p50],
               capsize=3, label=f"{run['threads']} thread{'s' if run['threads'] > 1 else ''} (p50, whisker p99)")
    ax.set_xticks(x, [k.replace(" ", "\n", 1) for k in labels], fontsize=8)
    ax.set_ylabel("ms per inference (batch 1)")
    ax.set_yscale("log")
    ax.yaxis.set_major_locator(matplotlib.ticker.LogLocator(base=10, subs=(1, 2, 5)))
    ax.yaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
    ax.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_title("Host latency by backend and precision", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", type=Path, default=ROOT / "runs/demo/run/best.pt")
    parser.add_argument("--samples", type=Path, default=ROOT / "runs/demo/samples")
    parser.add_argument("--bundle", type=Path, default=ROOT / "runs/demo/bundle")
    parser.add_argument("--public-key", type=Path, help="the bundle signer's key (default: keys/*.pub beside it)")
    parser.add_argument("--rounds", type=int, default=10, help="interleaved timing rounds")
    parser.add_argument("--per-round", type=int, default=30, help="distinct samples per backend per round")
    parser.add_argument("--threads", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=HERE / "results", help="results directory")
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args)))
        return 0
    for path in (args.checkpoint, args.samples, args.bundle / "manifest.json"):
        if not path.exists():
            print(f"{path} is missing: run `make demo` first, or pass --checkpoint/--samples/--bundle", file=sys.stderr)
            return 2
    args.public_key = args.public_key or next(iter(sorted((args.bundle.parent / "keys").glob("*.pub"))), None)
    load_start = os.getloadavg()
    runs = [run_pinned(args, threads) for threads in THREADS if threads <= len(os.sched_getaffinity(0))]
    command = " ".join(["python -m benchmarks.latency", *(sys.argv[1:] if argv is None else argv)])
    report = {"command": command, "machine": machine_info(),
              "load_average_start": load_start, "load_average_end": os.getloadavg(),
              "checkpoint": _shown(args.checkpoint), "bundle": _shown(args.bundle), "rounds": args.rounds,
              "per_round": args.per_round, "runs": runs}  # fmt: skip
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "latency.json").write_text(json.dumps(report, indent=1) + "\n")
    plot(report, args.out / "latency.png")
    (args.out / "latency.md").write_text(markdown(report, "latency.png"))
    print((args.out / "latency.md").read_text())
    return 0


def _shown(path: Path) -> str:
    return str(path.resolve().relative_to(ROOT)) if path.resolve().is_relative_to(ROOT) else str(path)


if __name__ == "__main__":
    sys.exit(main())
