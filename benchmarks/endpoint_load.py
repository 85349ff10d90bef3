"""Throughput and latency of signed score posts on loopback (the target: >= 2,000 score
posts/s on 2 cores, p99 <= 50 ms, zero acknowledged writes lost). Figures, not asserts.

The server runs as ``python -m dipn.cli serve`` (= ``dipn serve``) with N uvicorn workers; the load
comes from a separate process: plain asyncio sockets over keep-alive connections, sending posts
signed in advance (one fresh nonce each), so the load generator spends little CPU of the two
cores. Two phases: a closed loop (each connection sends its next post when the last is answered:
the peak rate), then an open loop at a fixed rate (posts are due on a schedule; latency counts
from when a post was due, so a stalled server is not hidden). Afterwards the database must hold
every score the server acknowledged. With --crash the server is killed (SIGKILL) in the middle
of the closed loop, restarted, and every acknowledged score must still be there. Then a closed
loop per concurrency of --sweep gives throughput and latency against the number of connections
(endpoint_load.png). The server runs with its per-device rate limit off (``--rate-limit 0``): the
load comes from a few hundred devices posting far faster than any phone would.

With --compare-ref REV the endpoint of an earlier commit (its tree from ``git archive``) runs
beside this one, each on its own database, and open loops at --rate alternate between the two
(old, new, then new, old, ...) for --compare-rounds rounds: on a machine other work is loading,
only such a comparison within one run says what a change did.

    python -m benchmarks.endpoint_load --workers 2 --seconds 15 --rate 2000
    python -m benchmarks.endpoint_load --db postgresql://...   # an existing PostgreSQL
    python -m benchmarks.endpoint_load --compare-ref 350df9b --sweep '' --seconds 10
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from benchmarks.machine import machine_info, machine_line
from dipn import wire
from dipn.serving.client import DeviceClient
from dipn.serving.server import free_port

RESULTS = Path(__file__).parent / "results"


def start_server(db_url: str, port: int, workers: int, tree: Path | None = None) -> subprocess.Popen:
    """``dipn serve`` of this tree, or of ``tree`` (an earlier commit's, for --compare-ref)."""
    env = dict(os.environ)
    tree = tree or Path(__file__).resolve().parents[1]
    env["PYTHONPATH"] = str(tree)  # and the working directory: ``python -m`` puts it first on sys.path
    open_flags = ["--insecure-open-operator-routes"]
    help_text = subprocess.run([sys.executable, "-m", "dipn.cli", "serve", "--help"], capture_output=True, text=True,
                               env=env, cwd=tree).stdout  # fmt: skip
    if "--insecure-open-enrollment" in help_text:  # earlier trees had open enrollment by default
        open_flags.append("--insecure-open-enrollment")
    process = subprocess.Popen(
        [sys.executable, "-m", "dipn.cli", "serve", "--db", db_url, "--port", str(port), "--workers", str(workers),
         "--rate-limit", "0", *open_flags],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env, cwd=tree,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited: {process.stderr.read()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError("server did not come up in 60 s")


def presign(devices: list[DeviceClient], count: int, scores_per_post: int, port: int) -> list[bytes]:
    """``count`` raw HTTP requests, each a signed post of fresh scores with its own nonce."""
    requests = []
    base_ts = wire.now_ms()
    for i in range(count):
        device = devices[i % len(devices)]
        ts = base_ts + (i // len(devices)) * scores_per_post
        scores = [device.score("bench-1", 0.05 + (i % 90) / 100, 0.5, ts + k) for k in range(scores_per_post)]
        body = wire.encode_scores(scores)
        headers = wire.signed_headers(device.device_id, device.secret, "POST", "/scores", body)
        head = (f"POST /scores HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\ncontent-type: application/json\r\n"
                f"content-length: {len(body)}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n")
        requests.append(head.encode() + body)
    return requests


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    return status, await reader.readexactly(length)


async def _drive(port: int, requests: list[bytes], connections: int, rate: float, seconds: float) -> dict:
    """Send until ``seconds`` pass or requests run out; ``rate`` 0 is a closed loop."""
    next_index = 0
    latencies, statuses, acked = [], {}, []
    start = time.perf_counter()
    stop_at = start + seconds

    def count(status) -> None:  # noqa: ANN001
        statuses[status] = statuses.get(status, 0) + 1

    async def connection() -> None:
        nonlocal next_index
        while time.perf_counter() < stop_at and next_index < len(requests):
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                count("connect_refused")
                await asyncio.sleep(0.05)
                continue
            try:
                while next_index < len(requests):
                    index = next_index
                    next_index += 1
                    due = start + index / rate if rate else time.perf_counter()
                    if due >= stop_at:
                        return
                    if due > time.perf_counter():
                        await asyncio.sleep(due - time.perf_counter())
                    writer.write(requests[index])
                    status, _body = await _read_response(reader)
                    latencies.append(time.perf_counter() - due)
                    count(status)
                    if status == 200:
                        acked.append(index)
            except (ConnectionError, asyncio.IncompleteReadError):
                count("connection_lost")  # the post in flight is not acknowledged
            finally:
                writer.close()

    await asyncio.gather(*(connection() for _ in range(connections)))
    elapsed = time.perf_counter() - start
    return {"latencies": latencies, "statuses": statuses, "acked": acked, "elapsed": elapsed}


def _load_process(port: int, requests: list[bytes], connections: int, rate: float, seconds: float, out) -> None:  # noqa: ANN001
    cpu_start = time.process_time()
    result = asyncio.run(_drive(port, requests, connections, rate, seconds))
    result["load_cpu_s"] = time.process_time() - cpu_start
    out.send(result)


def run_phase(port: int, requests: list[bytes], connections: int, rate: float, seconds: float,
              during=None) -> dict:  # noqa: ANN001 (a callback run while the load runs)
    receive, send = mp.get_context("spawn").Pipe(duplex=False)
    process = mp.get_context("spawn").Process(target=_load_process,
                                              args=(port, requests, connections, rate, seconds, send))
    process.start()
    if during:
        during()
    result = receive.recv()
    process.join()
    return result


def server_cpu_seconds(server: subprocess.Popen) -> float:
    """user + system CPU of the server and its worker processes so far (from /proc)."""
    pids = [server.pid, *map(int, subprocess.run(["pgrep", "-P", str(server.pid)], capture_output=True,
                                                 text=True).stdout.split())]
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime in clock ticks
    return total / os.sysconf("SC_CLK_TCK")


def summarize(name: str, result: dict, scores_per_post: int, server_cpu_s: float) -> dict:
    lat = sorted(result["latencies"])
    ok = result["statuses"].get(200, 0)

    def pct(q: float) -> float:
        return round(1000 * lat[min(len(lat) - 1, int(q * len(lat)))], 2) if lat else float("nan")

    return {
        "phase": name, "posts_ok": ok, "statuses": {str(k): v for k, v in result["statuses"].items()},
        "seconds": round(result["elapsed"], 2), "posts_per_s": round(ok / result["elapsed"], 1),
        "scores_per_s": round(ok * scores_per_post / result["elapsed"], 1),
        "p50_ms": pct(0.50), "p90_ms": pct(0.90), "p99_ms": pct(0.99), "max_ms": pct(1.0),
        "load_generator_cpu_s": round(result["load_cpu_s"], 2),
        "server_cpu_s": round(server_cpu_s, 2),
        # What two fully available cores would sustain at this CPU cost per post:
        "server_cpu_ms_per_post": round(1000 * server_cpu_s / ok, 3) if ok else None,
        "posts_per_s_per_2_cores_from_cpu": round(2 * ok / server_cpu_s, 1) if server_cpu_s else None,
    }


def count_stored(db_url: str, requests_acked: int, scores_per_post: int) -> dict:
    from sqlalchemy import func, select

    from dipn.serving.db import make_engine
    from dipn.serving.tables import scores

    engine = make_engine(db_url, pool_size=1)
    with engine.connect() as conn:
        stored = conn.execute(select(func.count()).select_from(scores)).scalar()
    engine.dispose()
    return {"acknowledged_scores": requests_acked * scores_per_post, "stored_scores": stored,
            "acknowledged_lost": max(0, requests_acked * scores_per_post - stored)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", help="database URL (default: a fresh SQLite file in a temporary directory)")
    parser.add_argument("--postgres", action="store_true", help="start a throwaway PostgreSQL (initdb) and use it")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=15.0, help="length of each phase")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--rate", type=float, default=2000.0, help="posts/s of the open-loop phase")
    parser.add_argument("--devices", type=int, default=500)
    parser.add_argument("--scores-per-post", type=int, default=1)
    parser.add_argument("--crash", action="store_true", help="SIGKILL the server mid-run; check nothing acked is lost")
    parser.add_argument("--sweep", default="1,4,16,64,128",
                        help="connection counts of the throughput-vs-concurrency closed loops ('' for none)")
    parser.add_argument("--compare-ref", metavar="REV",
                        help="also run the endpoint of this git revision and alternate open loops between the two")
    parser.add_argument("--compare-rounds", type=int, default=3, help="open loops per endpoint with --compare-ref")
    parser.add_argument("--out", type=Path, default=RESULTS / "endpoint_load.json")
    args = parser.parse_args()

    tmp = tempfile.TemporaryDirectory()
    postgres = None
    if args.postgres:
        from dipn.serving.pgtemp import TempPostgres, postgres_unavailable

        if postgres_unavailable():
            raise SystemExit(f"--postgres: {postgres_unavailable()}")
        postgres = TempPostgres()
        args.db = postgres.start()
    db_url = args.db or f"sqlite:///{tmp.name}/load.db"
    try:
        comparison = compare(args, db_url, Path(tmp.name)) if args.compare_ref else None
        return run_benchmark(args, db_url, comparison)
    finally:
        if postgres:
            postgres.stop()


def other_database(db_url: str, name: str, tmp: Path) -> str:
    """A second empty database beside ``db_url``: a SQLite file in ``tmp``, or a new PostgreSQL database."""
    if db_url.startswith("sqlite"):
        return f"sqlite:///{tmp}/{name}.db"
    import psycopg

    server = db_url.rsplit("/", 1)[0]
    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")  # a fixed name of this script, not input
    return f"{server}/{name}"


def compare(args: argparse.Namespace, db_url: str, tmp: Path) -> dict:
    """Open loops at ``args.rate`` alternating between the endpoint of ``args.compare_ref`` and this one."""
    old_tree = tmp / "old-tree"
    old_tree.mkdir()
    root = Path(__file__).resolve().parents[1]
    archive = subprocess.run(["git", "-C", str(root), "archive", args.compare_ref], capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(old_tree)], input=archive.stdout, check=True)
    count = int(args.rate * args.seconds * 1.05)
    servers, devices = {}, {}
    uptime_before = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    try:
        for name, tree in (("old", old_tree), ("new", None)):
            port = free_port()
            servers[name] = (start_server(other_database(db_url, f"compare_{name}", tmp), port, args.workers, tree),
                             port)
            http = httpx.Client(base_url=f"http://127.0.0.1:{port}")
            devices[name] = [DeviceClient.register("", f"load-user-{i}", http=http) for i in range(args.devices)]
        phases: dict[str, list[dict]] = {"old": [], "new": []}
        for round_ in range(args.compare_rounds):
            for name in (("old", "new") if round_ % 2 == 0 else ("new", "old")):
                server, port = servers[name]
                print(f"{name} ({args.compare_ref if name == 'old' else 'this tree'}), round {round_ + 1}: "
                      f"signing {count} posts ...", flush=True)  # signed just before: timestamps stay fresh
                requests = presign(devices[name], count, args.scores_per_post, port)
                cpu = server_cpu_seconds(server)
                result = run_phase(port, requests, args.connections, args.rate, args.seconds)
                phases[name].append(summarize(f"{name}, round {round_ + 1}", result, args.scores_per_post,
                                              server_cpu_seconds(server) - cpu))
                print(json.dumps(phases[name][-1]), flush=True)
    finally:
        for server, _ in servers.values():
            _kill_tree(server, graceful=True)

    def median(name: str, key: str) -> float:
        values = [p[key] for p in phases[name] if p[key] is not None]
        return float(statistics.median(values)) if values else float("nan")

    summary = {name: {key: median(name, key) for key in ("posts_per_s", "p50_ms", "p90_ms", "p99_ms",
                                                         "server_cpu_ms_per_post")} for name in phases}  # fmt: skip
    return {"ref": args.compare_ref, "rate": args.rate, "rounds": args.compare_rounds, "phases": phases,
            "median": summary, "p99_old_over_new": round(summary["old"]["p99_ms"] / summary["new"]["p99_ms"], 2),
            "cpu_per_post_old_over_new": round(summary["old"]["server_cpu_ms_per_post"]
                                               / summary["new"]["server_cpu_ms_per_post"], 2),
            "uptime": uptime_before}


def run_benchmark(args: argparse.Namespace, db_url: str, comparison: dict | None = None) -> int:
    port = free_port()
    server = start_server(db_url, port, args.workers)
    report: dict = {"db": db_url.split("://")[0], "workers": args.workers, "connections": args.connections,
                    "scores_per_post": args.scores_per_post, "cpus": os.cpu_count(), "phases": []}
    if comparison:
        report["comparison"] = comparison
    try:
        http = httpx.Client(base_url=f"http://127.0.0.1:{port}")
        devices = [DeviceClient.register("", f"load-user-{i}", http=http) for i in range(args.devices)]
        budget = int(max(args.rate, 6000) * args.seconds * 1.2)
        print(f"signing {budget + int(args.rate * args.seconds * 1.05) + 1} posts ...", flush=True)
        closed = presign(devices, budget, args.scores_per_post, port)
        opened = presign(devices, int(args.rate * args.seconds * 1.05) + 1, args.scores_per_post, port)
        acked = 0

        def crash_and_restart() -> None:
            nonlocal server
            time.sleep(args.seconds / 2)
            _kill_tree(server)
            server = start_server(db_url, port, args.workers)

        cpu = server_cpu_seconds(server)
        result = run_phase(port, closed, args.connections, 0.0, args.seconds, crash_and_restart if args.crash else None)
        cpu = server_cpu_seconds(server) - (0.0 if args.crash else cpu)
        report["phases"].append(summarize("closed loop" + (" (server killed mid-run)" if args.crash else ""),
                                          result, args.scores_per_post, cpu))
        acked += len(result["acked"])
        print(json.dumps(report["phases"][-1]), flush=True)
        if args.rate > 0:
            cpu = server_cpu_seconds(server)
            result = run_phase(port, opened, args.connections, args.rate, args.seconds)
            cpu = server_cpu_seconds(server) - cpu
            report["phases"].append(summarize(f"open loop at {args.rate:.0f} posts/s", result, args.scores_per_post,
                                              cpu))
            acked += len(result["acked"])
            print(json.dumps(report["phases"][-1]), flush=True)
        report["sweep"] = []
        for connections in [int(c) for c in args.sweep.split(",") if c.strip()]:
            requests = presign(devices, budget, args.scores_per_post, port)
            cpu = server_cpu_seconds(server)
            result = run_phase(port, requests, connections, 0.0, args.seconds)
            report["sweep"].append(summarize(f"closed loop, {connections} connections", result, args.scores_per_post,
                                             server_cpu_seconds(server) - cpu) | {"connections": connections})
            acked += len(result["acked"])
            print(json.dumps(report["sweep"][-1]), flush=True)
    finally:
        _kill_tree(server, graceful=True)
    report["durability"] = count_stored(db_url, acked, args.scores_per_post)
    print(json.dumps(report["durability"]))
    report["command"] = "python -m benchmarks.endpoint_load " + " ".join(sys.argv[1:])
    report["load_average_1min_at_end"] = os.getloadavg()[0]
    report["machine"] = machine_info()
    report["uptime_at_end"] = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    if report["sweep"]:
        plot_sweep(report, args.out.with_suffix(".png"))
    args.out.with_suffix(".md").write_text(markdown(report, args.out.with_suffix(".png").name))
    print(f"wrote {args.out} and {args.out.with_suffix('.md')}")
    return 0


def markdown(report: dict, plot_name: str) -> str:
    lines = [
        f"# Score posts on loopback, {report['db']} (target: >= 2,000 posts/s on 2 cores, "
        "p99 <= 50 ms, no acknowledged write lost)", "",
        f"`{report['command']}`: {report['db']}, {report['workers']} uvicorn workers, {report['connections']} "
        f"connections, {report['scores_per_post']} score(s) per signed post, {report['cpus']} cores shared with "
        f"the load generator and with whatever else runs (1-minute load average at the end: "
        f"{report['load_average_1min_at_end']:.1f}). 'From CPU' = what two free cores would sustain at the "
        "measured server CPU per post (the PostgreSQL server's own CPU is not counted).", "",
        f"Machine: {machine_line(report['machine'])}", "",
        "| phase | posts/s | p50 ms | p90 ms | p99 ms | max ms | server CPU ms/post | posts/s from CPU |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for p in report["phases"]:
        lines.append(f"| {p['phase']} | {p['posts_per_s']:.0f} | {p['p50_ms']} | {p['p90_ms']} | {p['p99_ms']} | "
                     f"{p['max_ms']} | {p['server_cpu_ms_per_post']} | {p['posts_per_s_per_2_cores_from_cpu']} |")
    for p in report["phases"]:
        if p["phase"].startswith("open loop"):
            verdict = "met" if p["p99_ms"] <= 50 else "not met"
            lines += ["", f"p99 of the {p['phase']}: {p['p99_ms']} ms against the 50 ms target: {verdict}."]
    if report.get("sweep"):
        lines += ["", "Throughput against concurrency (closed loops, one after another):", "",
                  "| connections | posts/s | p50 ms | p99 ms | server CPU ms/post |",
                  "| ---: | ---: | ---: | ---: | ---: |"]
        lines += [f"| {p['connections']} | {p['posts_per_s']:.0f} | {p['p50_ms']} | {p['p99_ms']} | "
                  f"{p['server_cpu_ms_per_post']} |" for p in report["sweep"]]  # fmt: skip
        lines += ["", f"![throughput vs concurrency]({plot_name})"]
    if report.get("comparison"):
        c = report["comparison"]
        lines += ["", f"Old ({c['ref']}) and new endpoint side by side: open loops at {c['rate']:.0f} posts/s, "
                  f"alternating, {c['rounds']} each (`uptime` before: {c['uptime']}); medians:", "",
                  "| endpoint | posts/s | p50 ms | p90 ms | p99 ms | server CPU ms/post |",
                  "| --- | ---: | ---: | ---: | ---: | ---: |"]
        lines += [f"| {name} | {m['posts_per_s']:.0f} | {m['p50_ms']} | {m['p90_ms']} | {m['p99_ms']} | "
                  f"{m['server_cpu_ms_per_post']} |" for name, m in c["median"].items()]  # fmt: skip
        lines += ["", f"p99 old / new: {c['p99_old_over_new']}x; server CPU per post old / new: "
                  f"{c['cpu_per_post_old_over_new']}x."]
    d = report["durability"]
    lines += ["", f"Acknowledged scores {d['acknowledged_scores']:,}, stored {d['stored_scores']:,}, "
              f"acknowledged but lost: {d['acknowledged_lost']}."]
    return "\n".join(lines) + "\n"


def plot_sweep(report: dict, path: Path) -> None:
    """Posts/s (left axis) and p99 latency (right axis) against the number of connections."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sweep = report["sweep"]
    connections = [p["connections"] for p in sweep]
    fig, ax = plt.subplots(figsize=(6.5, 3.6))
    ax.plot(connections, [p["posts_per_s"] for p in sweep], "o-", label="posts/s")
    ax.axhline(2000, color="grey", ls=":", label="target 2,000 posts/s")
    ax.set_xscale("log", base=2)
    ax.set_xticks(connections, [str(c) for c in connections])
    ax.set_ylim(bottom=0)
    ax.set_xlabel("concurrent connections (closed loop)")
    ax.set_ylabel("acknowledged posts/s")
    right = ax.twinx()
    right.plot(connections, [p["p99_ms"] for p in sweep], "s--", color="tab:red", label="p99 ms")
    right.set_ylabel("p99 latency ms", color="tab:red")
    handles = ax.get_legend_handles_labels()[0] + right.get_legend_handles_labels()[0]
    ax.legend(handles=handles, fontsize=8, loc="upper left")
    ax.set_title(f"{report['db']}, {report['workers']} uvicorn workers, {report['cpus']} cores", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _kill_tree(process: subprocess.Popen, graceful: bool = False) -> None:
    """Stop the server and its uvicorn workers (children of this one process only)."""
    children = subprocess.run(["pgrep", "-P", str(process.pid)], capture_output=True, text=True).stdout.split()
    sig = signal.SIGTERM if graceful else signal.SIGKILL
    for pid in [process.pid, *map(int, children)]:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass
    process.wait(timeout=60)
    for pid in map(int, children):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


if __name__ == "__main__":
    sys.exit(main())
