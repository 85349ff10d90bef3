"""The emulator benchmark's Markdown section and plot, from its JSON report (figures are never typed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from benchmarks.machine import machine_line


def render(report: dict[str, Any], plot_path: Path) -> str:
    plot(report, plot_path)
    v, guest, host = report["versions"], report["guest"], report["host"]
    site = v["bookworm_userland"]["wheels"]
    legacy = v["bullseye_userland"]["wheels"]
    load = report["load_average_start"][0], report["load_average_end"][0]
    lines = [
        "## ARM64 device emulation (issue 8)",
        "",
        f"Command: `{report['command']}` ({report['seconds']} s)  ",
        f"Machine: {machine_line(report['machine'])}; 1-minute load average {load[0]:.1f} at the start, "
        f"{load[1]:.1f} at the end  ",
        f"Bundle: `{report['bundle']}` ({report['model_version']}, "
        f"{'signature checked in the guest' if report['signed'] else 'loaded unsigned'})  ",
        f"Emulator: {v['qemu']}, user mode, `-cpu cortex-a76` for wall time; Debian arm64 userlands built by "
        "`python -m benchmarks.emulator.build`  ",
        f"Guest (bookworm, Python {guest['python']}): numpy {site['numpy']}, onnxruntime {site['onnxruntime']}, "
        f"ai-edge-litert {site['ai-edge-litert']} (the newest with an aarch64 wheel for Python 3.11), cryptography "
        f"{site['cryptography']}. Host: numpy {v['host']['numpy']}, onnxruntime {v['host']['onnxruntime']}, "
        f"ai-edge-litert {v['host']['ai-edge-litert']}  ",
        f"Legacy guest (bullseye, Python {report['tflite_runtime']['python']}): tflite-runtime "
        f"{legacy['tflite-runtime']}, numpy {legacy['numpy']}",
        "",
        "### Do the artifacts run and agree on ARM64?",
        "",
        "Each artifact is loaded by the device wrapper's own path (signature, sha256, golden self-test) in the "
        "emulated userland; 'vs host' is the largest score difference over the bundle's golden cases between the "
        "emulated run and the host's run of the same code. Wall times: batch 1, 1 thread, median of "
        f"{host['artifacts'][next(iter(host['artifacts']))].get('inference', {}).get('runs', '-')} runs. "
        "**Emulated time is QEMU's speed, not a phone's** (see instructions below).",
        "",
        "| artifact | guest runtime | self-test max diff | vs host max diff | tolerance | agrees | host p50 ms | "
        "emulated p50 ms | emulated / host |",
        "| --- | --- | ---: | ---: | ---: | --- | ---: | ---: | ---: |",
    ]
    for path, g in guest["artifacts"].items():
        agree = report["agreement"][path]
        if "error" in g:
            lines.append(f"| `{path}` | refused | - | - | - | no: {g['error']} | - | - | - |")
            continue
        h = host["artifacts"][path]["inference"]["p50_ms"]
        e = g["inference"]["p50_ms"]
        lines.append(f"| `{path}` | {g['runtime']} | {g['self_test']['max_abs_diff']:.1e} | "
                     f"{agree.get('max_abs_diff_vs_host', float('nan')):.1e} | {agree.get('tolerance', '-')} | "
                     f"{'yes' if agree['agrees'] else 'NO'} | {h:.2f} | {e:.0f} | {e / h:.0f}x |")  # fmt: skip
    for fmt, g in guest["event_to_score"].items():
        h = host["event_to_score"].get(fmt, {})
        if "error" in g or "p50_ms" not in h:
            lines.append(f"| IntentScorer {fmt}: new event -> score | {g.get('error', 'not run on host')} "
                         "| | | | | | | |")  # fmt: skip
            continue
        lines.append(f"| IntentScorer `{g['artifact']}`: new event -> score (sanitize, encode, score) | "
                     f"{g['runtime']} | - | - | - | - | {h['p50_ms']:.2f} | {g['p50_ms']:.0f} | "
                     f"{g['p50_ms'] / h['p50_ms']:.0f}x |")  # fmt: skip
    for path, row in report["tflite_runtime"]["artifacts"].items():
        if "error" in row:
            lines.append(f"| `{path}` (golden ids) | {report['tflite_runtime']['runtime']} | refused: {row['error']} "
                         "| | | | | | |")  # fmt: skip
            continue
        ok = row["golden_max_abs_diff"] <= row["tolerance"]
        lines.append(f"| `{path}` (golden ids) | {report['tflite_runtime']['runtime']} | "
                     f"{row['golden_max_abs_diff']:.1e} | - | {row['tolerance']} | {'yes' if ok else 'NO'} | - | "
                     f"{row['inference']['p50_ms']:.0f} | - |")  # fmt: skip
    heavy = guest.get("heavy_modules_imported", [])
    lines += ["", f"Heavy modules imported by the device side in the guest: {heavy or 'none'} (the userland has no "
              "torch, TensorFlow or server stack installed)."]  # fmt: skip
    lines += instruction_section(report)
    lines += ["", f"![estimated phone latency]({plot_path.name})", ""]
    return "\n".join(lines) + "\n"


def instruction_section(report: dict[str, Any]) -> list[str]:
    counts = report["instructions"]
    cores = list(counts["guest"])
    n = next(iter(next(iter(counts["guest"].values())).values()))["runs"]
    lines = [
        "",
        "### Instructions per inference (load-independent)",
        "",
        "Guest: aarch64 instructions executed, counted by QEMU's `libinsn` TCG plugin, under each CPU model (its "
        "instruction set decides which kernels the runtimes pick: no dot product on the A53). Host: x86-64 "
        "instructions by `valgrind --tool=callgrind`. Every run loads all artifacts and warms each up once, then "
        f"runs k more inferences of one, k in {', '.join(n)}; a figure is the mean of the two differences (0 to n, "
        "n to 2n) per inference, and 'spread' their relative difference.",
        "",
        "| artifact | " + " | ".join(f"guest {c} M (spread)" for c in cores) + " | host x86-64 M (spread) |",
        "| --- | " + " | ".join("---:" for _ in cores) + " | ---: |",
    ]
    for artifact in counts["host"]:
        cells = [f"{counts['guest'][c][artifact]['per_inference'] / 1e6:.1f} "
                 f"({100 * counts['guest'][c][artifact]['spread']:.2f}%)" for c in cores]  # fmt: skip
        host = counts["host"][artifact]
        cells.append(f"{host['per_inference'] / 1e6:.1f} ({100 * host['spread']:.2f}%)")
        lines.append(f"| `{artifact}` | " + " | ".join(cells) + " |")
    lines += [
        "",
        "### Estimated phone latency (ESTIMATE: instructions / (IPC x clock), not a measurement)",
        "",
        "IPC and clock are assumptions, stated here; the range uses the IPC range. Memory stalls, thermal "
        "throttling, the little cores and other apps are not modelled. The paper reports 20-50 ms per prediction "
        "on 2018 phones.",
        "",
        "| phone core (assumed) | clock GHz | IPC (range) | artifact | guest M instructions | estimated ms "
        "(range) |",
        "| --- | ---: | --- | --- | ---: | --- |",
    ]
    ipc_range = {c["name"]: c["ipc_range"] for c in report["phone_cores"]}
    for row in report["phone_estimates"]:
        low, high = ipc_range[row["core"]]
        lines.append(f"| {row['core']}: {row['example']} | {row['clock_ghz']} | {row['ipc']} ({low}-{high}) | "
                     f"`{row['artifact']}` | {row['instructions'] / 1e6:.1f} | **{row['estimate_ms']:.1f}** "
                     f"({row['range_ms'][0]:.1f}-{row['range_ms'][1]:.1f}) |")  # fmt: skip
    return lines


def plot(report: dict[str, Any], path: Path) -> None:
    """Estimated milliseconds per inference by artifact and phone core, with the IPC range as error bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    rows = report["phone_estimates"]
    cores = list(dict.fromkeys(r["core"] for r in rows))
    artifacts = list(dict.fromkeys(r["artifact"] for r in rows))
    fig, ax = plt.subplots(figsize=(7.5, 3.8))
    width = 0.8 / len(cores)
    x = np.arange(len(artifacts))
    for i, core in enumerate(cores):
        mine = {r["artifact"]: r for r in rows if r["core"] == core}
        est = np.array([mine[a]["estimate_ms"] for a in artifacts])
        err = np.array([[est[j] - mine[a]["range_ms"][0], mine[a]["range_ms"][1] - est[j]]
                        for j, a in enumerate(artifacts)]).T  # fmt: skip
        ax.bar(x + (i - (len(cores) - 1) / 2) * width, est, width, yerr=err, capsize=3, label=core)
    ax.axhspan(20, 50, color="grey", alpha=0.15, label="paper: 20-50 ms (2018 phones)")
    ax.set_xticks(x, artifacts, fontsize=8)
    ax.set_ylabel("estimated ms per inference")
    ax.set_title("ESTIMATE from emulated instruction counts (batch 1, 1 thread)", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
