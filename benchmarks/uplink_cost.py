"""Bytes per user-day leaving the phone: the device's posted scores, against posting every score and
against the raw events a cloud model would need; and the coupon decisions the posting policy changes.

    python -m benchmarks.uplink_cost                          # simulator (4 users x 2 days) + the real tail slice
    python -m benchmarks.uplink_cost --users 4 --days 1 --no-tail --out /tmp/uplink   # a quick look
    python -m benchmarks.uplink_cost --render                 # the Markdown again from uplink_cost.json

Two logs: the simulator at density 1.0 (the paper's Table 1) and the real Taobao tail slice
(../shared/data/taobao-userbehavior-tail, imported with ``dipn import taobao-userbehavior``; sparse,
browse only). For each, a small model is trained and converted here (or ``--sim-bundle`` /
``--tail-bundle`` is used), and every user's events are replayed through the device scorer
(``mobile_demo.replay``): it scores at the bundle's scoring policy (every event, and the idle timer
from event time), and its posting policy marks the scores it posts.

Bytes: one post per score as it is made (real time), each measured on the wire: the real
``mobile_demo.uplink.Uplink`` posts signed scores to the real endpoint on loopback through a relay
that counts every byte of the HTTP/1.1 request (request line, headers with the Ed25519 signature,
body). Raw events: what a cloud model scoring at the same moments needs, each event uploaded when
it happens as a JSON line of the contract's columns, plain and zstd-compressed one upload at a
time, with the same per-post HTTP overhead the device pays; and, as a lower bound no real-time
model reaches, a whole user-day in one zstd blob. Not counted: TCP/IP and TLS framing, connection
set-up, device registration.

Decisions: the endpoint decides on the user's latest score of the last ``score_max_age_ms``
(``dipn.serving.store.latest_score``; scores are unique per device and ts, a later one at the same
ts is a duplicate) with ``dipn.serving.policy.decide``. It is asked at every scored moment and every
minute from a user's first score until an hour after the last, once with every score posted and
once with the posted ones; the decisions that differ are counted, for the model bucket (the
paper's thresholds) and the budgeted bucket (default campaign).
Writes benchmarks/results/uplink_cost.{json,md} (or under --out).
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import zstandard

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

from benchmarks.machine import machine_info, machine_line

DAY_MS = 86_400_000
MINUTE_MS = 60_000
VIEWS = ("swipe", "tap", "browse")
ZSTD_LEVEL = 3  # the library's default
TAIL = ROOT.parent / "shared" / "data" / "taobao-userbehavior-tail" / "UserBehavior_tail.csv.gz"


class ByteCountingRelay:
    """A TCP relay on loopback in front of the endpoint: counts the bytes each way, changes none."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.sent = 0  # client -> server: requests
        self.received = 0  # server -> client: responses
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:  # closed
                return
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            threading.Thread(target=self._pump, args=(client, upstream, "sent"), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, "received"), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, counter: str) -> None:
        try:
            while data := source.recv(65536):
                with self._lock:
                    setattr(self, counter, getattr(self, counter) + len(data))
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def snapshot(self) -> tuple[int, int]:
        with self._lock:
            return self.sent, self.received

    def close(self) -> None:
        self.listener.close()


def measure_post(model_version: str, posts: int, tmp: Path) -> dict[str, float]:
    """Mean bytes of one real-time score post (request on the wire, its body, the response)."""
    from dipn.serving.client import DeviceClient
    from dipn.serving.config import ServerConfig
    from dipn.serving.server import ThreadedServer, free_port
    from mobile_demo import Score
    from mobile_demo.uplink import Uplink, UplinkConfig

    rng = np.random.default_rng(0)
    with ThreadedServer(ServerConfig(db_url=f"sqlite:///{tmp / 'endpoint.db'}", rate_limit=0,
                                     open_operator_routes=True, open_enrollment=True), free_port()) as server:  # fmt: skip
        device = DeviceClient.register(server.url, "uplink-user")
        relay = ByteCountingRelay(int(server.url.rsplit(":", 1)[1]))
        uplink = Uplink(f"http://127.0.0.1:{relay.port}", device.device_id, device.secret, tmp / "queue.db",
                        UplinkConfig(batch_size=1))  # fmt: skip
        ts, acknowledged = int(time.time() * 1000) - posts * 120_000, 0
        start_sent, start_received = relay.snapshot()
        for _ in range(posts):
            ts += int(rng.integers(5_000, 120_000))
            uplink.submit(Score(float(rng.random()), float(rng.random()), ts, 1.0, model_version))
            acknowledged += uplink.flush()
        sent, received = relay.snapshot()
        body_bytes = uplink.bytes_sent
        uplink.close()
        device.close()
        relay.close()
    if acknowledged != posts:
        raise RuntimeError(f"the endpoint acknowledged {acknowledged} of {posts} scores")
    return {"request_bytes": (sent - start_sent) / posts, "body_bytes": body_bytes / posts,
            "response_bytes": (received - start_received) / posts}  # fmt: skip


def small_bundle(raw: Path, work: Path, steps: int) -> Path:
    """A model of this log, trained for ``steps`` steps and converted to ONNX (the scores' dynamics
    come from the log and the model's inputs; a bigger model is ``--sim-bundle`` / ``--tail-bundle``)."""
    from convert.bundle import ConvertOptions, build_bundle
    from dipn.samples.build import BuildConfig, build_samples
    from dipn.samples.store import SampleStore
    from dipn.training.config import TrainConfig
    from dipn.training.loop import Trainer

    build_samples(raw, work / "samples", BuildConfig(seed=1, eval_days=0.5, val_days=0.25), progress=False)
    config = TrainConfig(epochs=1, batch_size=64, max_steps=steps, max_eval_samples=256, threads=1, seed=3)
    Trainer(SampleStore(work / "samples"), config, work / "run", progress=False).fit()
    build_bundle(work / "run" / "last.pt", work / "samples", work / "bundle",
                 ConvertOptions(formats=("onnx",), parity_samples=200, max_auc_drop=0.5), progress=lambda _: None)
    return work / "bundle"


def events_of(raw: Path) -> pl.DataFrame:
    """Every event of the log as the JSON line a cloud model would receive: user, day, line."""
    from dipn.logs.readers import read_dataset

    parts = []
    for view, result in read_dataset(raw, views=[v for v in VIEWS if any(raw.glob(f"{v}.*"))]).items():
        frame = result.frame.sort(["user_id", "ts"], maintain_order=True)
        lines = [json.dumps({"view": view, **row}, default=str) for row in frame.iter_rows(named=True)]
        parts.append(frame.select("user_id", "ts").with_columns(pl.Series("line", lines)))
    return pl.concat(parts).with_columns((pl.col("ts") // DAY_MS).alias("day"))


def raw_event_bytes(events: pl.DataFrame) -> dict[str, int]:
    """Each event uploaded on its own (plain JSON, zstd), and each user-day in one zstd blob."""
    zstd = zstandard.ZstdCompressor(level=ZSTD_LEVEL)
    lines = [line.encode() for line in events["line"]]
    days = events.group_by(["user_id", "day"]).agg(pl.col("line").str.join("\n"))
    return {"uploads": len(lines), "json": sum(map(len, lines)), "json_zstd": sum(len(zstd.compress(b)) for b in lines),
            "day_zstd": sum(len(zstd.compress(b.encode())) for b in days["line"])}  # fmt: skip


def changed_decisions(scores: dict[str, list[tuple[int, float, bool]]], max_age_ms: int) -> dict[str, int]:
    """Decisions that differ between posting every score and posting those marked ``post``."""
    from dipn.serving.config import CampaignConfig
    from dipn.serving.policy import budgeted_grants, within_thresholds

    config = CampaignConfig()
    out = {"decision_moments": 0, "changed_model": 0, "changed_budgeted": 0, "granted_model_every_score": 0}
    for rows in scores.values():
        ts = np.array([r[0] for r in rows], np.int64)
        p = np.array([r[1] for r in rows])
        posted = np.array([r[2] for r in rows])
        moments = np.union1d(ts, np.arange(ts.min(), ts.max() + max_age_ms + MINUTE_MS, MINUTE_MS))
        decisions = []
        for keep in (np.ones(len(ts), bool), posted):
            t, q = _first_per_ts(ts[keep], p[keep])  # the endpoint keeps the first score of a (device, ts)
            i = np.searchsorted(t, moments, side="right") - 1
            recent = (i >= 0) & (t[np.maximum(i, 0)] >= moments - max_age_ms)
            latest = q[np.maximum(i, 0)]
            decisions.append((recent & within_thresholds(latest, config.t_l, config.t_u),
                              recent & budgeted_grants(latest, config)))  # fmt: skip
        out["decision_moments"] += len(moments)
        out["changed_model"] += int((decisions[0][0] != decisions[1][0]).sum())
        out["changed_budgeted"] += int((decisions[0][1] != decisions[1][1]).sum())
        out["granted_model_every_score"] += int(decisions[0][0].sum())
    return out


def _first_per_ts(ts: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    first = np.r_[True, ts[1:] != ts[:-1]] if len(ts) else np.zeros(0, bool)
    return ts[first], p[first]


def measure_log(name: str, raw: Path, bundle: Path, post: dict[str, float]) -> dict[str, Any]:
    """Replay the whole log through the device and count scores, posts, bytes and decisions."""
    from dipn.serving.config import CampaignConfig
    from mobile_demo.replay import replay

    scores: dict[str, list[tuple[int, float, bool]]] = defaultdict(list)
    reasons: dict[str, int] = defaultdict(int)

    def sink(user: str, score: Any) -> None:
        scores[user].append((score.ts, score.p_realtime, score.post))
        reasons[score.post_reason or "not posted"] += 1

    started = time.perf_counter()
    summary = replay(bundle, raw, None, None, allow_unsigned=True, format="onnx", sink=sink)
    seconds = time.perf_counter() - started
    events = events_of(raw)
    user_days = events.select("user_id", "day").unique().height
    raw_bytes = raw_event_bytes(events)
    every, posted = summary["scores"], summary["scores_posted"]
    headers = post["request_bytes"] - post["body_bytes"]
    per_day = {
        "every_score": every * post["request_bytes"] / user_days,
        "posted": posted * post["request_bytes"] / user_days,
        "raw_json": (raw_bytes["json"] + raw_bytes["uploads"] * headers) / user_days,
        "raw_zstd": (raw_bytes["json_zstd"] + raw_bytes["uploads"] * headers) / user_days,
        "raw_day_zstd": (raw_bytes["day_zstd"] + user_days * headers) / user_days,
    }  # fmt: skip
    return {
        "log": name, "raw": str(raw), "users": summary["phones"], "user_days": user_days,
        "events_per_user_day": summary["events"] / user_days,
        "scores_per_user_day": {"event": summary["scores_by_trigger"]["event"] / user_days,
                                "idle": summary["scores_by_trigger"]["idle"] / user_days,
                                "posted": posted / user_days},
        "post_reasons": dict(reasons), "bytes_per_user_day": per_day,
        "payload_per_user_day": {"posted": posted * post["body_bytes"] / user_days,
                                 "raw_json": raw_bytes["json"] / user_days,
                                 "raw_zstd": raw_bytes["json_zstd"] / user_days},
        "decisions": changed_decisions(scores, CampaignConfig().score_max_age_ms),
        "scoring_policy": summary["scoring_policy"], "posting_policy": summary["posting_policy"],
        "model_version": summary["model_version"], "replay_seconds": round(seconds, 1),
    }  # fmt: skip


def simulated_raw(users: int, days: int, seed: int, density: float, out: Path) -> Path:
    from dipn.logs.simulation import SimulationConfig, simulate

    simulate(SimulationConfig(users=users, days=days, seed=seed, density=density), out, progress=False)
    return out


def imported_tail(path: Path, out: Path) -> Path:
    from dipn.cli import main as dipn

    if dipn(["import", "taobao-userbehavior", str(path), "--out", str(out)]) != 0:
        raise RuntimeError(f"dipn import failed on {path}")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=4, help="simulated users (density 1.0: thousands of events a day)")
    parser.add_argument("--days", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--density", type=float, default=1.0, help="simulated activity (1.0: the paper's Table 1)")
    parser.add_argument("--steps", type=int, default=60, help="training steps of the models made here")
    parser.add_argument("--posts", type=int, default=50, help="score posts measured on the wire")
    parser.add_argument("--sim-bundle", type=Path, help="a bundle of simulated data (default: trained here)")
    parser.add_argument("--tail", type=Path, default=TAIL, help="the Taobao tail slice (UserBehavior format)")
    parser.add_argument("--tail-bundle", type=Path, help="a bundle of the tail slice (default: trained here)")
    parser.add_argument("--no-tail", action="store_true", help="the simulator only")
    parser.add_argument("--out", type=Path, default=HERE / "results", help="results directory")
    parser.add_argument("--render", action="store_true", help="only write the Markdown again from the JSON")
    args = parser.parse_args(argv)
    if args.render:
        report = json.loads((args.out / "uplink_cost.json").read_text())
    else:
        report = measure(args, " ".join(["python -m benchmarks.uplink_cost", *(sys.argv[1:] if argv is None else argv)]))
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "uplink_cost.json").write_text(json.dumps(report, indent=1) + "\n")
    (args.out / "uplink_cost.md").write_text(markdown(report))
    print((args.out / "uplink_cost.md").read_text())
    return 0


def measure(args: argparse.Namespace, command: str) -> dict[str, Any]:
    machine = machine_info()
    logs = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        sim = simulated_raw(args.users, args.days, args.seed, args.density, work / "sim-raw")
        sim_bundle = args.sim_bundle or small_bundle(sim, work / "sim", args.steps)
        post = measure_post(json.loads((sim_bundle / "manifest.json").read_text())["model_version"], args.posts, work)
        logs.append(measure_log(f"simulator, {args.users} users x {args.days} days, density {args.density:g}", sim,
                                sim_bundle, post))  # fmt: skip
        tail_note = None
        if args.no_tail:
            tail_note = "not measured (--no-tail)"
        elif not args.tail.exists():
            tail_note = f"not measured: {args.tail} is absent"
        else:
            raw = imported_tail(args.tail, work / "tail-raw")
            bundle = args.tail_bundle or small_bundle(raw, work / "tail", args.steps)
            logs.append(measure_log("Taobao UserBehavior tail slice (real, browse only)", raw, bundle, post))
    return {"command": command, "machine": machine, "load_average_end": list(_load()), "post": post,
            "logs": logs, "tail": tail_note, "zstd": {"level": ZSTD_LEVEL, "zstandard": zstandard.__version__},
            "goal": {"posted_vs_every_score_at_most": 0.10, "below": "raw_zstd", "changed_decisions": 0}}  # fmt: skip


def _load() -> tuple[float, float, float]:
    try:
        import os

        return os.getloadavg()
    except OSError:
        return (float("nan"),) * 3


def markdown(report: dict[str, Any]) -> str:
    post = report["post"]
    lines = [
        "## Uplink: bytes per user-day, posted scores vs every score vs raw events (issues 8, 24)",
        "",
        f"Command: `{report['command']}`  ",
        f"Machine: {machine_line(report['machine'])}; load average at the end "
        f"{' / '.join(f'{x:.1f}' for x in report['load_average_end'])}  ",
        f"One real-time score post on the wire: {post['request_bytes']:.0f} B (body {post['body_bytes']:.0f} B, "
        f"so {post['request_bytes'] - post['body_bytes']:.0f} B of request line and signed headers); raw-event "
        "uploads are charged the same per-post overhead.",
        "",
        "| log | events / user-day | scores / user-day (event + idle) | posted / user-day | every score B | "
        "**posted B** | posted / every | raw JSON B | raw zstd B | raw day zstd B (not real time) | "
        "changed decisions (model / budgeted) of moments |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for log in report["logs"]:
        b, s, d = log["bytes_per_user_day"], log["scores_per_user_day"], log["decisions"]
        lines.append(
            f"| {log['log']} | {log['events_per_user_day']:,.0f} | {s['event'] + s['idle']:,.0f} "
            f"({s['event']:,.0f} + {s['idle']:,.0f}) | {s['posted']:,.1f} | {b['every_score']:,.0f} | "
            f"**{b['posted']:,.0f}** | {b['posted'] / b['every_score']:.1%} | {b['raw_json']:,.0f} | "
            f"{b['raw_zstd']:,.0f} | {b['raw_day_zstd']:,.0f} | {d['changed_model']} / {d['changed_budgeted']} "
            f"of {d['decision_moments']:,} |"
        )  # fmt: skip
    lines += ["", "Bytes are per user-day (days with at least one event), on the wire. Goal: posted at most "
              "10% of every score, below the raw events compressed (zstd, one upload per event, as real-time "
              "scoring in the cloud needs them), and 0 changed decisions.", ""]  # fmt: skip
    for log in report["logs"]:
        b, d = log["bytes_per_user_day"], log["decisions"]
        verdict = [
            f"posted {b['posted'] / b['every_score']:.1%} of every score's bytes "
            f"({'met' if b['posted'] <= 0.10 * b['every_score'] else 'NOT met'})",
            f"{b['posted'] / b['raw_zstd']:.2f}x the compressed raw events "
            f"({'below' if b['posted'] < b['raw_zstd'] else 'NOT below'}), "
            f"{b['posted'] / b['raw_day_zstd']:.2f}x a whole day in one zstd blob",
            f"{d['changed_model'] + d['changed_budgeted']} changed decisions of {2 * d['decision_moments']:,}",
        ]
        reasons = ", ".join(f"{k} {v:,}" for k, v in sorted(log["post_reasons"].items(), key=lambda kv: -kv[1]))
        lines.append(f"- {log['log']}: " + "; ".join(verdict) + f". Why scores were posted: {reasons}. Scoring "
                     f"policy {json.dumps({k: v for k, v in log['scoring_policy'].items() if k != 'source'})} "
                     f"(from the {log['scoring_policy']['source']}); replayed in {log['replay_seconds']:.0f} s.")
    if report.get("tail"):
        lines.append(f"- Taobao tail slice: {report['tail']}.")
    posting = report["logs"][0]["posting_policy"]
    lines += ["", f"Posting policy: {json.dumps(posting)} (docs/device.md). Decisions are asked at every scored "
              "moment and every minute until an hour after a user's last score, of the model bucket "
              "(t_l <= p_realtime <= t_u) and the budgeted bucket (default campaign), on the endpoint's latest "
              "score of the last hour; not counted: TCP/IP and TLS framing, connection set-up, registration.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
