"""What the value checks of a sample store cost when it opens (issue 27, item 2).

    python -m benchmarks.store_open [--users 300 --days 3 --repeats 15]

Builds a demo-size sample directory (``dipn demo``'s defaults: 300 shoppers, 3 days, density 1;
kept in --work for reruns), then opens it ``--repeats`` times with warm page caches and reports
the median time to open, and how much of it the value checks (``Shard.check_values``: ids against
the vocabularies, windows, labels, codes, user indices) take, as a share of the open and per
million stored events. Writes benchmarks/results/store_open.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

from benchmarks.machine import machine_info, machine_line


def build(work: Path, users: int, days: int) -> Path:
    from dipn.logs.simulation import SimulationConfig, simulate
    from dipn.samples.build import BuildConfig, build_samples

    raw, samples = work / f"raw-{users}-{days}", work / f"samples-{users}-{days}"
    if not (raw / "meta.json").exists():
        simulate(SimulationConfig(users=users, days=days, seed=0, density=1.0), raw, progress=False)
    if not (samples / "dataset.json").exists():
        build_samples(raw, samples, BuildConfig(seed=0), progress=False)
    return samples


def measure(samples: Path, repeats: int) -> dict[str, float]:
    from dipn.samples.store import SampleStore

    store = SampleStore(samples)  # warms the page cache
    opens, checks = [], []
    for _ in range(repeats):
        started = time.perf_counter()
        store = SampleStore(samples)
        opens.append(time.perf_counter() - started)
        started = time.perf_counter()
        for shard in store.shards:
            shard.check_values(store.manifest, len(store.users))
        checks.append(time.perf_counter() - started)
    events = sum(len(shard.events[v]) for shard in store.shards for v in shard.events)
    return {"samples": len(store), "events": events, "shards": len(store.shards),
            "open_ms_median": 1000 * statistics.median(opens), "checks_ms_median": 1000 * statistics.median(checks),
            "checks_share_of_open": statistics.median(checks) / statistics.median(opens),
            "checks_ms_per_million_events": 1000 * statistics.median(checks) / (events / 1e6)}  # fmt: skip


def markdown(report: dict) -> str:
    r = report["result"]
    return "\n".join([
        "# Opening a sample store: the cost of its value checks",
        "",
        f"`{report['command']}` on {machine_line(report['machine'])}; load average at the start: "
        f"{report['load_average']}.",
        "",
        "| samples | events | shards | open (median) | value checks (median) | share of the open | per million events |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        f"| {r['samples']:,} | {r['events']:,} | {r['shards']} | {r['open_ms_median']:.1f} ms | "
        f"{r['checks_ms_median']:.1f} ms | {r['checks_share_of_open']:.0%} | {r['checks_ms_per_million_events']:.1f} ms |",
        "",
        f"Warm page cache, median of {report['repeats']} opens. The checks read every id, window, label and code "
        "of the store once, vectorized over the memory maps.",
    ])  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=300)
    parser.add_argument("--days", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--work", type=Path, default=Path("runs/bench-store-open"))
    parser.add_argument("--out", type=Path, default=HERE / "results")
    args = parser.parse_args(argv)
    load = os.getloadavg()
    samples = build(args.work, args.users, args.days)
    report = {"command": "python -m benchmarks.store_open " + " ".join(argv if argv is not None else sys.argv[1:]),
              "machine": machine_info(), "load_average": " ".join(f"{x:.2f}" for x in load),
              "repeats": args.repeats, "result": measure(samples, args.repeats)}  # fmt: skip
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "store_open.json").write_text(json.dumps(report, indent=1) + "\n")
    text = markdown(report)
    (args.out / "store_open.md").write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
