"""The device wrapper on an emulated ARM64 phone CPU: do the artifacts run and agree, and what do they cost?

    python -m benchmarks.emulator.build      # once (make emulator)
    python -m benchmarks.emulator.bench      # runs/demo/bundle; writes benchmarks/results/emulator.{json,md,png}

Three measurements, each on the same bundle and the same golden inputs:
  1. agreement: ``guest.py runtime`` loads every ONNX and TFLite artifact through the wrapper's own
     path (signature, sha256, golden self-test) in the aarch64 Python 3.11 userland and on the
     host; their scores of the golden cases must agree within the bundle's tolerance. The Python
     3.9 userland scores the golden ids with tflite-runtime 2.13, what older apps ship;
  2. emulated wall time (QEMU TCG, ``-cpu cortex-a76``): reported with the host's time of the same
     code in the same run, because it is the emulator's speed, not a phone's;
  3. instructions per inference, which do not depend on the host's load: guest instructions
     counted by QEMU's ``libinsn`` plugin (for a Cortex-A53 and a Cortex-A76 CPU model, whose
     instruction sets make runtimes pick different kernels), host instructions by callgrind. Each
     is the difference between a run of ``2n`` or ``n`` inferences and one of 0, so loading and
     imports cancel out. Instructions / (IPC x clock) gives an estimated phone latency, with the
     IPC and clock stated as assumptions.
If the emulator is not built, this says why and exits 0 without writing results.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]

from benchmarks.emulator import rootfs
from benchmarks.emulator.report import render
from benchmarks.machine import machine_info

GUEST_SCRIPT = HERE / "guest.py"
DEVICE_PACKAGES = ("dipn", "mobile_demo")  # pure Python; the device imports no convert, and the guest has no torch


@dataclass(frozen=True)
class PhoneCore:
    """An assumed phone core for the latency estimate: instructions / (ipc x clock)."""

    name: str
    emulated_as: str  # key of rootfs.CORES: whose instruction set the count was taken on
    clock_ghz: float
    ipc: float
    ipc_range: tuple[float, float]
    example: str


PHONE_CORES = (
    # In-order, dual-issue; sustained IPC of NEON-heavy inference code is below 1.
    PhoneCore("Cortex-A53 (budget)", "cortex-a53", 1.8, 0.8, (0.5, 1.0),
              "Snapdragon 425/450/625-class budget phones (all cores A53), 2016-2020"),  # fmt: skip
    # Out-of-order, 4-wide decode; about 2 on NEON kernels.
    PhoneCore("Cortex-A76 (mid-range)", "cortex-a76", 2.4, 2.0, (1.5, 2.5),
              "big cores of Kirin 980, Snapdragon 855 (Kryo 485) and 720G (Kryo 465) phones, 2019-2021"),  # fmt: skip
)


def stage(land: rootfs.Userland, bundle: Path, public_key: Path | None) -> None:
    """Copy the current device code, the guest script, the bundle (and its signer's key) into the userland."""
    opt = land.path / "opt"
    for name in ("dipn", "bench", "bundle"):
        shutil.rmtree(opt / name, ignore_errors=True)
    ignore = shutil.ignore_patterns("__pycache__")
    for package in DEVICE_PACKAGES:
        shutil.copytree(ROOT / package, opt / "dipn" / package, ignore=ignore)
    (opt / "bench").mkdir()
    shutil.copy2(GUEST_SCRIPT, opt / "bench/guest.py")
    shutil.copytree(bundle, opt / "bundle")
    if public_key:
        shutil.copy2(public_key, opt / "bench/public.pem")


def guest_command(land: rootfs.Userland, core: rootfs.Core, args: list[str], insn_log: Path | None = None) -> list[str]:
    """qemu-aarch64 running guest.py in the userland; with ``insn_log``, the dynamically linked
    qemu with the instruction-count plugin (the static one cannot load plugins)."""
    command = ["qemu-aarch64-static"] if insn_log is None else [
        "qemu-aarch64", "-plugin", f"{rootfs.PLUGIN},inline=on", "-d", "plugin", "-D", str(insn_log)]  # fmt: skip
    return command + ["-cpu", core.qemu_cpu, "-L", str(land.path), "-E", "PYTHONPATH=/opt/site:/opt/dipn",
                      "-E", "PYTHONHASHSEED=0", str(land.path / land.interpreter.lstrip("/")),
                      "/opt/bench/guest.py", *args]  # fmt: skip


def clean_env() -> dict[str, str]:
    """The host's environment without anything that would point a Python at the host's packages."""
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}


def run_json(command: list[str], timeout: float, env: dict[str, str] | None = None) -> dict[str, Any]:
    """The JSON line a guest.py run prints last."""
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env or clean_env())
    if done.returncode:
        raise RuntimeError(f"{' '.join(command[:3])} ... failed ({done.returncode}): {done.stderr.strip()[-1500:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def host_command(args: list[str]) -> list[str]:
    """guest.py on the host, pinned to one core like the 1-thread phone runs."""
    return ["taskset", "-c", "0", sys.executable, str(GUEST_SCRIPT), *args]


def host_env() -> dict[str, str]:
    return clean_env() | {"PYTHONPATH": str(ROOT), "PYTHONHASHSEED": "0"}


def agreement(host: dict[str, Any], guest: dict[str, Any], tolerance: dict[str, float]) -> dict[str, Any]:
    """Per artifact: the largest |guest - host| over the golden cases, and whether it is within tolerance."""
    out = {}
    for path, g in guest["artifacts"].items():
        h = host["artifacts"].get(path, {})
        if "scores" not in g or "scores" not in h:
            out[path] = {"agrees": False, "reason": g.get("error") or h.get("error") or "not scored"}
            continue
        diff = max(abs(a - b) for case in g["scores"] for a, b in zip(g["scores"][case], h["scores"][case]))
        out[path] = {"max_abs_diff_vs_host": diff, "tolerance": tolerance[g["precision"]],
                     "agrees": diff <= tolerance[g["precision"]]}  # fmt: skip
    return out


def count_guest(land: rootfs.Userland, core: rootfs.Core, artifact: str | None, repeat: int, tmp: Path) -> int:
    log = tmp / f"insn-{core.qemu_cpu}-{artifact}-{repeat}.log"
    run_json(guest_command(land, core, ["count", "/opt/bundle", *_count_args(artifact, repeat)], log), timeout=3600)
    match = re.search(r"insns: (\d+)", log.read_text())
    if not match:
        raise RuntimeError(f"no instruction count in {log}: {log.read_text()[-500:]}")
    return int(match.group(1))


def count_host(bundle: Path, artifact: str | None, repeat: int, tmp: Path) -> int:
    """Instructions of the host process under callgrind (no cache simulation: instructions only)."""
    out = tmp / f"callgrind-{artifact}-{repeat}.out"
    command = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable, str(GUEST_SCRIPT),
               "count", str(bundle), *_count_args(artifact, repeat)]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=3600, env=host_env())
    match = re.search(r"Collected : (\d+)", done.stderr)
    if done.returncode or not match:
        raise RuntimeError(f"callgrind failed ({done.returncode}): {done.stderr.strip()[-1500:]}")
    return int(match.group(1))


def _count_args(artifact: str | None, repeat: int) -> list[str]:
    return ["--artifact", artifact, "--repeat", str(repeat)] if artifact else []


def per_inference(baseline: int, counts: dict[int, int], n: int) -> dict[str, Any]:
    """Instructions per inference from the baseline (0 inferences) and runs of n and 2n: two differences."""
    first, second = (counts[n] - baseline) / n, (counts[2 * n] - counts[n]) / n
    mean = (first + second) / 2
    runs = {"0": baseline} | {str(k): v for k, v in counts.items()}
    return {"per_inference": mean, "spread": abs(first - second) / mean, "runs": runs}


def count_all(count: Any, artifacts: list[str], n: int, jobs: int) -> dict[str, Any]:
    """One baseline run and runs of n and 2n inferences per artifact, ``jobs`` side by side (counts
    do not depend on load); ``count(artifact, repeat)`` returns a run's instructions."""
    work: list[tuple[str | None, int]] = [(None, 0)] + [(a, k) for a in artifacts for k in (n, 2 * n)]
    with ThreadPoolExecutor(jobs) as pool:
        counts = dict(zip(work, pool.map(lambda w: count(*w), work)))
    baseline = counts.pop((None, 0))
    return {a: per_inference(baseline, {k: c for (a2, k), c in counts.items() if a2 == a}, n) for a in artifacts}


def instruction_counts(land: rootfs.Userland, bundle: Path, artifacts: list[str], n: int, jobs: int,
                       tmp: Path) -> dict[str, Any]:  # fmt: skip
    """Guest instructions per inference per emulated core and artifact, host ones by callgrind."""
    result: dict[str, Any] = {"guest": {}, "host": {}}
    for name, core in rootfs.CORES.items():
        rootfs.write_fake_cpu(land.path, core)  # runtimes read the core kind from here
        result["guest"][name] = count_all(lambda a, k, c=core: count_guest(land, c, a, k, tmp), artifacts, n, jobs)
        rounded = {a: round(v["per_inference"]) for a, v in result["guest"][name].items()}
        print(f"guest instructions per inference on {name}: {json.dumps(rounded)}", flush=True)
    rootfs.write_fake_cpu(land.path, rootfs.CORES["cortex-a76"])
    result["host"] = count_all(lambda a, k: count_host(bundle, a, k, tmp), artifacts, n, jobs)
    return result


def phone_estimates(counts: dict[str, Any]) -> list[dict[str, Any]]:
    """Estimated phone milliseconds per inference: instructions / (IPC x clock), with the IPC range."""
    rows = []
    for core in PHONE_CORES:
        for artifact, c in counts["guest"][core.emulated_as].items():
            insns = c["per_inference"]
            rows.append({"core": core.name, "example": core.example, "clock_ghz": core.clock_ghz, "ipc": core.ipc,
                         "artifact": artifact, "instructions": insns,
                         "estimate_ms": insns / (core.ipc * core.clock_ghz * 1e6),
                         "range_ms": [insns / (core.ipc_range[1] * core.clock_ghz * 1e6),
                                      insns / (core.ipc_range[0] * core.clock_ghz * 1e6)]})  # fmt: skip
    return rows


def versions() -> dict[str, Any]:
    def first_line(command: list[str]) -> str:
        done = subprocess.run(command, capture_output=True, text=True)
        return (done.stdout or done.stderr).strip().splitlines()[0]

    from importlib import metadata

    return {"qemu": first_line(["qemu-aarch64-static", "--version"]), "valgrind": first_line(["valgrind", "--version"]),
            "host": {p: metadata.version(p) for p in ("numpy", "onnxruntime", "ai-edge-litert")},
            "bookworm_userland": rootfs.bookworm().built(), "bullseye_userland": rootfs.bullseye().built()}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bundle", type=Path, default=ROOT / "runs/demo/bundle")
    parser.add_argument("--public-key", type=Path, help="the signer's public key (default: keys/ beside the bundle)")
    parser.add_argument("--repeat", type=int, default=20, help="timed inferences per artifact, host and emulated")
    parser.add_argument("--count-n", type=int, default=20, help="count runs of 0, n and 2n inferences")
    parser.add_argument("--artifacts", help="comma-separated artifacts to count (default: all that load)")
    parser.add_argument("--jobs", type=int, default=2, help="instruction-count runs side by side")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results", help="results directory")
    args = parser.parse_args(argv)
    reason = rootfs.not_built_reason()
    if reason:
        print(f"emulator benchmark skipped: {reason}")
        return 0
    if not (args.bundle / "manifest.json").exists():
        print(f"no bundle at {args.bundle}: run `make demo` first, or pass --bundle", file=sys.stderr)
        return 2
    public_key = args.public_key or next(iter(sorted((args.bundle.parent / "keys").glob("*.pub"))), None)
    started, load_start = time.perf_counter(), os.getloadavg()
    modern, legacy = rootfs.bookworm(), rootfs.bullseye()
    for land in (modern, legacy):
        stage(land, args.bundle, public_key)
        rootfs.write_fake_cpu(land.path, rootfs.CORES["cortex-a76"])
    manifest = json.loads((args.bundle / "manifest.json").read_text())
    tolerance = json.loads((args.bundle / manifest["golden"]).read_text())["tolerance"]
    key_args = ["--public-key", "/opt/bench/public.pem"] if public_key else []
    print("host run ...", flush=True)
    host_key = ["--public-key", str(public_key)] if public_key else []
    host = run_json(host_command(["runtime", str(args.bundle), "--repeat", str(args.repeat), *host_key]), 1800,
                    host_env())  # fmt: skip
    print("emulated run (cortex-a76, wall time) ...", flush=True)
    a76 = rootfs.CORES["cortex-a76"]
    guest = run_json(guest_command(modern, a76, ["runtime", "/opt/bundle", "--repeat", str(args.repeat), *key_args]),
                     7200)  # fmt: skip
    print("tflite-runtime in the Python 3.9 userland ...", flush=True)
    legacy_report = run_json(guest_command(legacy, a76, ["golden", "/opt/bundle", "--repeat", str(args.repeat)]), 7200)
    artifacts = [path for path, row in guest["artifacts"].items() if "error" not in row
                 and (not args.artifacts or path in args.artifacts.split(","))]  # fmt: skip
    print(f"instruction counts of {artifacts} ...", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        counts = instruction_counts(modern, args.bundle, artifacts, args.count_n, args.jobs, Path(tmp))
    report = {
        "command": " ".join(["python -m benchmarks.emulator.bench", *(sys.argv[1:] if argv is None else argv)]),
        "machine": machine_info(), "load_average_start": load_start, "load_average_end": os.getloadavg(),
        "seconds": round(time.perf_counter() - started), "bundle": str(args.bundle),
        "model_version": manifest.get("model_version"), "signed": public_key is not None,
        "versions": versions(), "host": host, "guest": guest, "tflite_runtime": legacy_report,
        "agreement": agreement(host, guest, tolerance), "instructions": counts,
        "phone_estimates": phone_estimates(counts), "phone_cores": [vars(c) for c in PHONE_CORES],
    }  # fmt: skip
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "emulator.json").write_text(json.dumps(report, indent=1, default=str) + "\n")
    (args.out / "emulator.md").write_text(render(report, args.out / "emulator.png"))
    print((args.out / "emulator.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
