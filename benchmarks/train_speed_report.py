"""The Markdown section of ``benchmarks/train_speed.py``: from its JSON report, nothing typed by hand."""

from __future__ import annotations

from typing import Any

from benchmarks.machine import machine_line
from benchmarks.train_profile import grouped

TOP_MODULES = 6


def markdown(report: dict[str, Any]) -> str:
    lines = _models(report) if report["runs"] else []
    lines += _threads(report) if report.get("threads") else []
    return "\n".join(lines) + "\n"


def _models(report: dict[str, Any]) -> list[str]:
    peak = report["peak"]
    core = peak["measured_sgemm_gflops_per_core"]
    nominal = peak["nominal"]
    load = report["load_average_start"][0], report["load_average_end"][0]
    s = report["settings"]
    lines = [
        "## Training speed: the code before issue 19 beside this one",
        "",
        f"Command: `{report['command']}` ({report['minutes']:.0f} min)  ",
        f"Machine: {machine_line(report['machine'])}; 1-minute load average {load[0]:.1f} at the start, "
        f"{load[1]:.1f} at the end (above 0: other jobs shared the cores)  ",
        f"Old: `dipn/` of {report['baseline_rev']}; new: this tree. Data: {report['samples']}. Each cell is a "
        f"worker pinned to as many cores as threads, stepping that code's own `Trainer.train_epoch`; "
        f"{s['warmup']} warm-up steps, then the median of {s['windows']} windows of {s['steps']} steps. "
        "Samples per core-second = samples / CPU seconds of the worker (all its threads), robust to other jobs "
        "taking turns on the cores; wall-clock samples/s beside it. Old and new of a row ran back to back. "
        "Peak MB: the worker's peak resident set.",
        "",
        "| model | batch | threads | old samples per core-s | new samples per core-s | new / old | "
        "old samples/s (wall) | new samples/s (wall) | old peak MB | new peak MB |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in report["runs"]:
        old, new = r["old"], r["new"]
        lines.append(f"| {r['label']} | {r['batch_size']} | {r['threads']} | {old['samples_per_cpu_s']:,.1f} | "
                     f"{new['samples_per_cpu_s']:,.1f} | {r['ratio']:.2f}x | {old['samples_per_s']:,.1f} | "
                     f"{new['samples_per_s']:,.1f} | {old['peak_rss_mb']:,.0f} | {new['peak_rss_mb']:,.0f} |")  # fmt: skip
    lines += _ablation(report)
    lines += [
        "",
        f"Arithmetic (batch {report['runs'][0]['batch_size']}, as each code path executes; matrix products only). "
        f"Peak per core: {core:.0f} GFLOP/s measured (best fp32 2048^3 `torch.mm`, one pinned thread); nominal "
        f"{nominal['gflops']:.0f} GFLOP/s assumed for this {nominal['model']} (family {nominal['family']}): "
        f"{nominal['assumption']}. Fraction of peak = training MACs per sample x 2 x samples per core-second / "
        "peak per core, at that batch and 1 thread.",
        "",
        "| model | old MACs/sample forward | old MACs/sample training | new MACs/sample forward | "
        "new MACs/sample training | old % of measured peak | new % of measured peak | new % of nominal peak |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in report["runs"]:
        if "macs_per_sample" not in r["new"]:
            continue
        m = {c: r[c]["macs_per_sample"] for c in ("old", "new")}
        used = {c: m[c]["training"] * 2 * r[c]["samples_per_cpu_s"] / 1e9 for c in ("old", "new")}
        lines.append(f"| {r['label']} | {_mega(m['old']['forward'])} | {_mega(m['old']['training'])} | "
                     f"{_mega(m['new']['forward'])} | {_mega(m['new']['training'])} | {used['old'] / core:.1%} | "
                     f"{used['new'] / core:.1%} | {used['new'] / nominal['gflops']:.1%} |")  # fmt: skip
    lines += _profile(report)
    return lines


def _mega(macs: float) -> str:
    return f"{macs / 1e6:,.1f} M"


def _ablation(report: dict[str, Any]) -> list[str]:
    rows = [r for r in report["runs"] if "old_with_allocator" in r]
    out = []
    for r in rows:
        old, alloc, new = (r[k]["samples_per_cpu_s"] for k in ("old", "old_with_allocator", "new"))
        compiled = r["new_compiled"]
        out += ["", f"Where the gain comes from ({r['label']}, batch {r['batch_size']}, {r['threads']} thread): old "
                f"code {old:,.1f} samples per core-second; old model code with the new allocator setting {alloc:,.1f} "
                f"({alloc / old:.2f}x); all of the new code {new:,.1f} ({new / old:.2f}x); the new code with "
                f"`--compile` {compiled['samples_per_cpu_s']:,.1f} ({compiled['samples_per_cpu_s'] / old:.2f}x; its "
                f"warm-up, compilation included, took {compiled['warmup_wall_s']:.0f} s against "
                f"{r['new']['warmup_wall_s']:.0f} s eager)."]  # fmt: skip
    return out


def _profile(report: dict[str, Any]) -> list[str]:
    rows = [r for r in report["runs"] if "profile_s" in r["new"]]
    out = []
    for r in rows:
        tables = {c: grouped(r[c]["profile_s"]) for c in ("old", "new")}
        totals = {c: sum(t.values()) for c, t in tables.items()}
        out += ["", f"Profile of one step ({r['label']}, batch {r['batch_size']}, {r['threads']} thread; "
                "`torch.profiler`, self time by module, forward and backward together; the profiler's own cost "
                "inflates steps of many small operators):", "",
                "| old: module | ms | share | new: module | ms | share |", "| --- | ---: | ---: | --- | ---: | ---: |"]  # fmt: skip
        old, new = (list(tables[c].items())[:TOP_MODULES] for c in ("old", "new"))
        for i in range(TOP_MODULES):
            cells = []
            for c, items in (("old", old), ("new", new)):
                cells += [items[i][0], f"{items[i][1] * 1e3:,.0f}", f"{items[i][1] / totals[c]:.0%}"] if i < len(items) else ["", "", ""]
            out.append("| " + " | ".join(cells) + " |")
        out.append(f"| step | {totals['old'] * 1e3:,.0f} | | step | {totals['new'] * 1e3:,.0f} | |")
    return out


def _threads(report: dict[str, Any]) -> list[str]:
    """Wall-clock samples/s of DIPN training and scoring with 1, 2 and the default threads, idle and
    busy, old and new code; the default against 1 thread as a ratio of the same column."""
    t = report["threads_settings"]
    rows = report["threads"]
    lines = [
        "", "## Threads on an idle and a busy machine: the code before issue 25 beside this one", "",
        f"Command: `{report['command']}`  ",
        f"Machine: {machine_line(report['machine'])}  ",
        f"`uptime` at the start: `{report['uptime_start']}`; at the end: `{report['uptime_end']}`  ",
        f"Old: `dipn/` of {report['threads_baseline_rev']}; new: this tree. DIPN, simulated data as above. Training: "
        f"batch 128, {t['training_warmup']} warm-up steps, then {t['windows']} windows of "
        f"{t['training_steps']} steps of `Trainer.train_epoch`. Scoring: the code's own `predict` (what `dipn "
        f"evaluate` runs, at its default batch size) over {t['scoring_samples']:,} eval samples, {t['windows']} "
        f"passes after a warm-up batch. The grid ran {t.get('rounds', 1)} time(s), the thread counts of a column "
        "back to back within a round, in reverse order in every second round; a cell is the median over the "
        "windows of all its rounds. Every worker may use all cores, as a user's process does; "
        "\"default\" is the code's own choice (old: training from the idle cores at the start, scoring torch's "
        "default of all cores; new: `dipn.training.runtime.adapt_threads`, from one thread). Busy: one CPU-bound process "
        "(`while True: pass`, unpinned, like another job) runs while the worker runs. \"idle\" is the machine as "
        "the other jobs on it left it (see `uptime`). Figures are wall-clock samples/s (what a user waits for), "
        "samples per core-second in brackets.",
        "",
        "| task | threads | old idle | old busy | new idle | new busy |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]
    cells = ("old_idle", "old_busy", "new_idle", "new_busy")
    for r in rows:
        lines.append(f"| {r['task']} | {r['threads']} | " + " | ".join(
            f"{r[c]['samples_per_s']:,.1f} ({r[c]['samples_per_cpu_s']:,.1f})" for c in cells) + " |")  # fmt: skip
    lines += ["", "Default threads against 1 thread, same column: wall-clock samples/s (1.00x or more: the default "
              "never lost), and in brackets samples per core-second (what the cells cost in CPU, far less moved by "
              "the other jobs' share of the cores than wall time):", "",
              "| task | old idle | old busy | new idle | new busy |", "| --- | ---: | ---: | ---: | ---: |"]  # fmt: skip
    for task in dict.fromkeys(r["task"] for r in rows):
        one = next(r for r in rows if r["task"] == task and r["threads"] == 1)
        default = next(r for r in rows if r["task"] == task and r["threads"] == "default")
        lines.append(f"| {task} | " + " | ".join(
            f"{default[c]['samples_per_s'] / one[c]['samples_per_s']:.2f}x "
            f"({default[c]['samples_per_cpu_s'] / one[c]['samples_per_cpu_s']:.2f}x)" for c in cells) + " |")  # fmt: skip
    spread = [(task, c, ratios) for task in dict.fromkeys(r["task"] for r in rows)
              for c in cells if (ratios := _round_ratios(rows, task, c))]  # fmt: skip
    if spread and len(spread[0][2]) > 1:
        lines += ["", "The same ratio in each round (wall-clock; the spread is the noise of the machine's other load):",
                  "", "| task | " + " | ".join(c.replace("_", " ") for c in cells) + " |",
                  "| --- |" + " ---: |" * len(cells)]  # fmt: skip
        for task in dict.fromkeys(task for task, _, _ in spread):
            lines.append(f"| {task} | " + " | ".join(
                ", ".join(f"{x:.2f}" for x in ratios) for t, _, ratios in spread if t == task) + " |")  # fmt: skip
    ended = [f"{r['task']} {c.replace('_', ' ')} "
             + "/".join(str(x["threads_at_end"]) for x in r[c].get("rounds", [r[c]]))
             for r in rows if r["threads"] == "default" for c in cells if "threads_at_end" in r[c]]  # fmt: skip
    if ended:
        lines += ["", "Threads the default ran with at the end of its cell (each round): " + ", ".join(ended) + "."]
    scoring = next((r for r in rows if r["task"] == "scoring" and r["threads"] == 1), None)
    if scoring:
        lines += ["", f"Scoring speed of `dipn evaluate` (DIPN, 1 thread, idle column): old "
                  f"{scoring['old_idle']['samples_per_cpu_s']:,.0f}, new {scoring['new_idle']['samples_per_cpu_s']:,.0f} "
                  f"samples per core-second ({scoring['new_idle']['samples_per_cpu_s'] / scoring['old_idle']['samples_per_cpu_s']:.2f}x)."]  # fmt: skip
    return lines


def _round_ratios(rows: list[dict[str, Any]], task: str, cell: str) -> list[float]:
    """Default threads against 1 thread in each round of one task and column (wall-clock samples/s)."""
    one = next((r for r in rows if r["task"] == task and r["threads"] == 1), None)
    default = next((r for r in rows if r["task"] == task and r["threads"] == "default"), None)
    if one is None or default is None or "rounds" not in one[cell]:
        return []
    return [d["samples_per_s"] / o["samples_per_s"] for d, o in zip(default[cell]["rounds"], one[cell]["rounds"])]
