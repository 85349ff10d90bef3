"""Replay: N simulated phones stream their users' events through the device wrapper, in (scaled)
real time, against a coupon endpoint; only scores leave each phone.

    DIPN_ENROLL_TOKEN=... python -m mobile_demo.replay --bundle runs/demo/bundle --raw runs/demo/raw \
        --url http://127.0.0.1:8000 --phones 20

The phones register with the endpoint's enrollment token (env DIPN_ENROLL_TOKEN, or a file named by
--enroll-token-file); it plays the app backend that vouches for each phone's user.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import polars as pl

from dipn.features import VIEWS
from mobile_demo.runtime import IntentRuntime
from mobile_demo.uplink import Uplink, UplinkConfig, register_device


def phone_streams(raw: Path, phones: int, seed: int = 0) -> list[dict[str, Any]]:
    """Per phone: its user, screen, profile, latest history, and events of all views in time order."""
    profile = pl.read_parquet(raw / "profile.parquet")
    users = np.random.default_rng(seed).choice(profile["user_id"].to_numpy(), size=min(phones, len(profile)), replace=False)
    frames = {v: pl.read_parquet(raw / f"{v}.parquet").filter(pl.col("user_id").is_in(users.tolist())) for v in VIEWS}
    history = pl.read_parquet(raw / "history.parquet").filter(pl.col("user_id").is_in(users.tolist()))
    streams = []
    for user in users.tolist():
        events = [(row["ts"], v, row) for v in VIEWS for row in frames[v].filter(pl.col("user_id") == user).iter_rows(named=True)]
        events.sort(key=lambda e: (e[0], VIEWS.index(e[1])))
        swipes = frames["swipe"].filter(pl.col("user_id") == user)
        screen = (float(swipes["screen_w"][0]), float(swipes["screen_h"][0])) if len(swipes) else (375.0, 667.0)
        hist = history.filter(pl.col("user_id") == user).sort("as_of_ts")
        streams.append({"user_id": user, "screen": screen, "events": events,
                        "profile": profile.filter(pl.col("user_id") == user).row(0, named=True),
                        "history": hist.row(len(hist) - 1, named=True) if len(hist) else None})  # fmt: skip
    return streams


def replay(bundle: Path, raw: Path, url: str, phones: int, speed: float = 0.0, max_events: int | None = None,
           backend: str = "auto", seed: int = 0, queue_dir: Path | None = None,
           public_key: Path | None = None, allow_unsigned: bool = False,
           enroll_token: str | None = None) -> dict[str, Any]:  # fmt: skip
    """Run the phones one event at a time in global time order; ``speed`` = simulated seconds per
    wall second (0: as fast as possible). Returns what was sent and what it replaced. Each phone
    loads the bundle only if ``public_key`` signed it (or, unsigned, with ``allow_unsigned``), and
    registers with ``enroll_token`` (the endpoint's enrollment token; None for an open endpoint)."""
    queue_dir = queue_dir or Path(tempfile.mkdtemp(prefix="dipn-replay-"))
    streams = phone_streams(raw, phones, seed)
    devices = []
    replayed_now = [0.0]  # the phones' clock is the logs' time, not today's (events ahead of it are dropped)
    for s in streams:
        runtime = IntentRuntime(bundle, s["screen"], backend=backend, public_key=public_key,
                                allow_unsigned=allow_unsigned, clock=lambda: replayed_now[0])
        runtime.set_user(s["history"], s["profile"])
        http = httpx.Client(base_url=url, timeout=UplinkConfig().timeout_s)
        device_id, secret = register_device(http, s["user_id"], enroll_token=enroll_token)
        uplink = Uplink(url, device_id, secret, queue_dir / f"{device_id}.db", http=http)
        devices.append((s, runtime, uplink))
    timeline = sorted(((ts, i, view, row) for i, (s, _, _) in enumerate(devices) for ts, view, row in s["events"]),
                      key=lambda e: (e[0], e[1]))  # fmt: skip
    if max_events:
        timeline = timeline[:max_events]
    started, first_ts = time.perf_counter(), timeline[0][0] if timeline else 0
    raw_bytes, scores, latencies = 0, 0, []
    for n, (ts, i, view, row) in enumerate(timeline, 1):
        if speed > 0:
            wait = (ts - first_ts) / 1000 / speed - (time.perf_counter() - started)
            if wait > 0:
                time.sleep(wait)
        _, runtime, uplink = devices[i]
        replayed_now[0] = ts
        raw_bytes += len(repr(row))  # what a cloud-side model would have had to receive
        score = runtime.on_event(view, row)
        if score is not None:
            uplink.submit(score.model_version, score.p_realtime, score.p_longterm, int(time.time() * 1000))
            scores += 1
            latencies.append(score.latency_ms)
        if n % 500 == 0 or n == len(timeline):
            print(f"\rreplay: {n:,}/{len(timeline):,} events, {scores:,} scores, "
                  f"p50 {np.median(latencies) if latencies else 0:.1f} ms", end="", file=sys.stderr, flush=True)  # fmt: skip
    for _, _, uplink in devices:
        uplink.flush()
    print(file=sys.stderr)
    sent = sum(u.bytes_sent for _, _, u in devices)
    return {"phones": len(devices), "users": [s["user_id"] for s, _, _ in devices], "events": len(timeline), "scores": scores,
            "acknowledged": sum(u.counts["acknowledged"] for _, _, u in devices),
            "bytes_sent": sent, "raw_event_bytes": raw_bytes,
            "latency_ms_p50": float(np.median(latencies)) if latencies else None,
            "backend": devices[0][1].status()["runtime"] if devices else None,
            "sanitizer": {k: v for _, r, _ in devices for k, v in r.sanitizer.counts.items()}}  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description="N simulated phones stream events through the device wrapper to an endpoint.")
    p.add_argument("--bundle", type=Path, required=True)
    p.add_argument("--raw", type=Path, required=True, help="simulated raw logs (dipn simulate --out)")
    p.add_argument("--url", required=True, help="coupon endpoint base URL")
    p.add_argument("--phones", type=int, default=10)
    p.add_argument("--speed", type=float, default=0.0, help="simulated seconds per wall second (0 = unthrottled)")
    p.add_argument("--max-events", type=int, default=None)
    p.add_argument("--backend", default="auto", choices=["auto", "tflite", "onnx", "coreml"])
    p.add_argument("--public-key", type=Path, help="the bundle signer's public key (dipn keygen); bundles it did "
                   "not sign are refused")
    p.add_argument("--allow-unsigned", action="store_true", help="development: load an unsigned bundle")
    p.add_argument("--enroll-token-file", type=Path, help="file holding the endpoint's enrollment token (default: "
                   "env DIPN_ENROLL_TOKEN; neither: the endpoint must have open enrollment)")
    args = p.parse_args()
    enroll_token = (args.enroll_token_file.read_text().splitlines()[0].strip() if args.enroll_token_file
                    else os.environ.get("DIPN_ENROLL_TOKEN"))
    print(replay(args.bundle, args.raw, args.url, args.phones, args.speed, args.max_events, args.backend,
                 public_key=args.public_key, allow_unsigned=args.allow_unsigned, enroll_token=enroll_token))


if __name__ == "__main__":
    main()
