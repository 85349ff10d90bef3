"""Replay: phones stream their users' logged events through the device scorer, in time order, and
post scores (and only scores) to a coupon endpoint; a JSON summary over all phones.

    DIPN_ENROLL_TOKEN=... python -m mobile_demo.replay --bundle runs/demo/bundle --raw runs/demo/raw \\
        --url http://127.0.0.1:8000 --public-key runs/demo/keys/dipn-signing.pub --phones 20

The phones register with the endpoint's enrollment token, found as dipn serve finds it
(``dipn.serving.config.token_from``: --enroll-token-file, else the file named by
DIPN_ENROLL_TOKEN_FILE, else DIPN_ENROLL_TOKEN); the replay plays the app backend that vouches for
each phone's user.

Any raw directory dipn writes or reads (``dipn simulate``, ``dipn import``: every view file in CSV,
JSON Lines or Parquet, checked by ``dipn.logs.readers``); a view without a file is an empty stream,
a user without a profile or history has none. The idle timer is driven from event time: before each
event of a phone at t its scorer ticks to t - 1, and after its last event to the end of the idle
limit, so each phone scores at exactly the moments ``dipn build-samples`` cuts at (the bundle's
scoring policy). Without ``--url`` nothing is posted (the scores are still computed and counted);
``--scores-out`` writes every score. Scores carry the logs' time unless ``--shift-to-now`` moves
the whole replay so that it ends now (an endpoint decides on scores of the last hour).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import polars as pl

from dipn.logs.readers import read_dataset
from dipn.features import VIEWS
from mobile_demo.events import event_from_row
from mobile_demo.policies import PostingPolicy
from mobile_demo.scorer import IntentScorer, IntentScorerOptions, Score
from mobile_demo.uplink import Uplink, UplinkConfig, register_device

DEFAULT_SCREEN = (375.0, 667.0)  # a phone's, for a user whose log has no swipe (no screen recorded)
ScoreSink = Callable[[str, Score], None]


def phone_streams(raw: Path, phones: int | None, seed: int = 0) -> list[dict[str, Any]]:
    """Per phone: its user, screen, profile, and its events of all views and its history snapshots
    in time order (each view keeps its own order; at one ms a snapshot comes first, as a sample
    cut at t reads the latest snapshot at or before t, then swipe, tap, browse). ``phones`` None:
    every user."""
    frames = {view: result.frame for view, result in read_dataset(raw).items()}
    events_of = {v: frames[v] for v in VIEWS if v in frames}
    users = sorted(set().union(*(set(f["user_id"].to_list()) for f in events_of.values())))
    if phones is not None and phones < len(users):
        users = sorted(np.random.default_rng(seed).choice(np.array(users, dtype=object), size=phones, replace=False))
    chosen = pl.DataFrame({"user_id": users}, schema={"user_id": pl.Utf8})

    def of_chosen(frame: pl.DataFrame) -> pl.DataFrame:
        return frame.join(chosen, on="user_id", how="semi", maintain_order="left")

    grouped = {v: {u: rows for (u,), rows in of_chosen(f).group_by("user_id")} for v, f in events_of.items()}
    if "history" in frames:
        history = of_chosen(frames["history"]).rename({"as_of_ts": "ts"})
        grouped["history"] = {u: rows for (u,), rows in history.group_by("user_id")}
    profiles = {} if "profile" not in frames else {
        row["user_id"]: row for row in of_chosen(frames["profile"]).iter_rows(named=True)}
    order = ("history", *VIEWS)
    streams = []
    for user in users:
        events = [(row["ts"], view, row) for view in order if user in grouped.get(view, {})
                  for row in grouped[view][user].iter_rows(named=True)]  # fmt: skip
        events.sort(key=lambda e: (e[0], order.index(e[1])))
        swipes = grouped.get("swipe", {}).get(user)
        screen = (float(swipes["screen_w"][0]), float(swipes["screen_h"][0])) if swipes is not None else DEFAULT_SCREEN
        streams.append({"user_id": user, "screen": screen, "events": events, "profile": profiles.get(user)})
    return streams


class Phone:
    """One user's scorer and, with an endpoint, its registered uplink (the scorer's listener)."""

    def __init__(self, stream: dict[str, Any], options: IntentScorerOptions, url: str | None, queue_dir: Path,
                 sink: ScoreSink | None, enroll_token: str | None = None) -> None:  # fmt: skip
        self.user = stream["user_id"]
        self.scores: list[Score] = []
        self.uplink: Uplink | None = None
        self.sink = sink
        if url is not None:
            http = httpx.Client(base_url=url, timeout=UplinkConfig().timeout_s)
            device_id, secret = register_device(http, self.user, enroll_token=enroll_token)
            self.uplink = Uplink(url, device_id, secret, queue_dir / f"{device_id}.db", http=http)
        self.scorer = IntentScorer.create_from_options(
            replace(options, screen=stream["screen"], result_listener=self._on_score))
        self.scorer.set_user(profile=stream["profile"])

    def _on_score(self, score: Score) -> None:
        self.scores.append(score)
        if self.uplink is not None:
            self.uplink.submit(score)
        if self.sink is not None:
            self.sink(self.user, score)

    def close(self) -> None:
        self.scorer.close()
        if self.uplink is not None:
            self.uplink.close()


def replay(bundle: Path, raw: Path, url: str | None = None, phones: int | None = 10, *, speed: float = 0.0,
           max_events: int | None = None, format: str = "auto", precision: str | None = None, seed: int = 0,
           queue_dir: Path | None = None, public_key: Path | None = None, allow_unsigned: bool = False,
           posting_policy: PostingPolicy | None = None, shift_to_now: bool = False,
           sink: ScoreSink | None = None, enroll_token: str | None = None) -> dict[str, Any]:  # fmt: skip
    """Run the phones one event at a time in global time order (``speed``: logged seconds per wall
    second, 0: as fast as possible) and return the summary over all phones. Each phone loads the
    bundle only if ``public_key`` signed it (or, unsigned, with ``allow_unsigned``); ``sink`` gets
    every (user, score); phones register with ``enroll_token`` (the endpoint's enrollment token;
    None for an endpoint with open enrollment)."""
    queue_dir = queue_dir or Path(tempfile.mkdtemp(prefix="dipn-replay-"))
    streams = phone_streams(raw, phones, seed)
    timeline = sorted(((ts, i, view, row) for i, s in enumerate(streams) for ts, view, row in s["events"]),
                      key=lambda e: (e[0], e[1]))  # fmt: skip
    if max_events:
        timeline = timeline[:max_events]
    clock = [0.0]  # the phones' clock is the logs' time (events ahead of the clock are dropped)
    options = IntentScorerOptions(bundle, public_key=public_key, allow_unsigned=allow_unsigned, format=format,
                                  precision=precision, posting_policy=posting_policy or PostingPolicy(),
                                  clock=lambda: clock[0])  # fmt: skip
    with ExitStack() as stack:
        devices = []
        for stream in streams:
            phone = Phone(stream, options, url, queue_dir, sink, enroll_token)
            stack.callback(phone.close)
            devices.append(phone)
        limit = devices[0].scorer.scoring_policy.idle_limit_ms if devices else 0
        shift = int(time.time() * 1000) - limit - 60_000 - timeline[-1][0] if shift_to_now and timeline else 0
        started, first_ts = time.perf_counter(), timeline[0][0] if timeline else 0
        last_ts: dict[int, int] = {}
        raw_bytes = events = 0
        for n, (ts, i, view, row) in enumerate(timeline, 1):
            if speed > 0:
                wait = (ts - first_ts) / 1000 / speed - (time.perf_counter() - started)
                if wait > 0:
                    time.sleep(wait)
            phone, at = devices[i], ts + shift
            clock[0] = at
            if last_ts.get(i) is not None:
                phone.scorer.tick(at - 1)  # idle ticks strictly before this event or snapshot
            if view == "history":
                phone.scorer.set_user(history=row)
                continue
            raw_bytes += len(json.dumps(row, default=str)) + 1  # a JSON line: what a cloud model would receive
            events += 1
            event = event_from_row(view, row)
            phone.scorer.on_event(replace(event, ts=at) if shift else event)
            last_ts[i] = at
            if n % 500 == 0 or n == len(timeline):
                print(f"\rreplay: {n:,}/{len(timeline):,} events", end="", file=sys.stderr, flush=True)
        for i, at in last_ts.items():
            clock[0] = max(clock[0], at)
            devices[i].scorer.tick(at + limit)  # the idle ticks after each phone's last event
        for phone in devices:
            if phone.uplink is not None:
                phone.uplink.flush()
        print(file=sys.stderr)
        return summary(devices, events, raw_bytes, url)


def summary(devices: list[Phone], events: int, raw_bytes: int, url: str | None) -> dict[str, Any]:
    """What every phone did, summed: events, drops by reason, scores by trigger, posts, bytes."""
    statuses = [d.scorer.status() for d in devices]
    counts, dropped, repaired, uplink = Counter(), Counter(), Counter(), Counter()
    for status in statuses:
        counts.update(status["counts"])
        dropped.update(status["dropped"])
        repaired.update(status["repaired"])
    for d in devices:
        if d.uplink is not None:
            uplink.update(d.uplink.counts)
    latencies = [s.latency_ms for d in devices for s in d.scores]
    scores = [s for d in devices for s in d.scores]
    first = statuses[0] if statuses else {}
    return {
        "phones": len(devices), "users": [d.user for d in devices], "events": events,
        "events_encoded": counts["events_encoded"], "events_unused": counts["events_unused"],
        "dropped": dict(dropped), "repaired": dict(repaired),
        "scores": len(scores), "scores_by_trigger": {t: counts[f"scores_{t}"] for t in ("event", "idle", "call")},
        "scores_posted": counts["scores_posted"], "endpoint": url,
        "acknowledged": uplink["acknowledged"], "uplink": dict(uplink),
        "bytes_sent": sum(d.uplink.bytes_sent for d in devices if d.uplink is not None),
        "raw_event_bytes": raw_bytes,
        "latency_ms_p50": float(np.median(latencies)) if latencies else None,
        "latency_ms_p95": float(np.percentile(latencies, 95)) if latencies else None,
        "backend": first.get("runtime"), "model_version": first.get("model_version"),
        "scoring_policy": first.get("scoring_policy"), "posting_policy": first.get("posting_policy"),
    }  # fmt: skip


def write_scores(path: Path) -> tuple[ScoreSink, Callable[[], None]]:
    """A sink writing every score as a CSV row, and the function that closes the file."""
    handle = open(path, "w", newline="")
    writer = csv.writer(handle)
    writer.writerow(["user_id", "ts", "trigger", "p_realtime", "p_longterm", "posted", "model_version"])

    def sink(user: str, score: Score) -> None:
        writer.writerow([user, score.ts, score.trigger, score.p_realtime, score.p_longterm, int(score.post),
                         score.model_version])  # fmt: skip

    return sink, handle.close


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Phones stream their users' logged events through the device scorer and "
                                "post scores to an endpoint; prints a JSON summary over all phones.")  # fmt: skip
    p.add_argument("--bundle", type=Path, required=True, help="a bundle (dipn convert --out)")
    p.add_argument("--raw", type=Path, required=True, help="a raw directory (dipn simulate or dipn import --out)")
    p.add_argument("--url", help="coupon endpoint base URL (dipn serve); without it nothing is posted")
    p.add_argument("--phones", type=int, default=10, help="users replayed, drawn at random (0: every user)")
    p.add_argument("--seed", type=int, default=0, help="which users are drawn")
    p.add_argument("--speed", type=float, default=0.0, help="logged seconds per wall second (0 = unthrottled)")
    p.add_argument("--max-events", type=int, default=None, help="stop after this many events (all phones)")
    p.add_argument("--format", default="auto", choices=["auto", "tflite", "onnx", "coreml"])
    p.add_argument("--precision", choices=["fp32", "int8"], help="default: the bundle's")
    p.add_argument("--public-key", type=Path, help="the bundle signer's public key (dipn keygen); bundles it did "
                   "not sign are refused")
    p.add_argument("--allow-unsigned", action="store_true", help="development: load an unsigned bundle")
    p.add_argument("--post-every-score", action="store_true", help="disable the posting policy")
    p.add_argument("--shift-to-now", action="store_true", help="move the replay in time so that it ends now")
    p.add_argument("--enroll-token-file", type=Path, help="file holding the endpoint's enrollment token (default: "
                   "the file named by env DIPN_ENROLL_TOKEN_FILE, else env DIPN_ENROLL_TOKEN; none: the endpoint must "
                   "have open enrollment)")
    p.add_argument("--scores-out", type=Path, help="CSV of every score: user_id, ts, trigger, p_realtime, "
                   "p_longterm, posted, model_version")
    args = p.parse_args(argv)
    if args.phones < 0 or args.speed < 0 or (args.max_events is not None and args.max_events < 1):
        p.error("--phones and --speed must be >= 0, --max-events >= 1")
    from dipn.errors import DipnValidationError

    from dipn.serving.config import token_from

    try:  # the one rule of dipn serve, shop and coupon-report: the option's file, DIPN_ENROLL_TOKEN_FILE, the variable
        enroll_token = token_from(args.enroll_token_file and str(args.enroll_token_file), "DIPN_ENROLL_TOKEN",
                                  "--enroll-token-file")
    except ValueError as exc:
        p.error(str(exc))

    sink, close = write_scores(args.scores_out) if args.scores_out else (None, lambda: None)
    try:
        result = replay(args.bundle, args.raw, args.url, args.phones or None, speed=args.speed,
                        max_events=args.max_events, format=args.format, precision=args.precision, seed=args.seed,
                        public_key=args.public_key, allow_unsigned=args.allow_unsigned,
                        posting_policy=PostingPolicy(enabled=not args.post_every_score),
                        shift_to_now=args.shift_to_now, sink=sink, enroll_token=enroll_token)  # fmt: skip
    except DipnValidationError as exc:
        print(f"replay: error: {exc}", file=sys.stderr)
        return 2
    finally:
        close()
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
