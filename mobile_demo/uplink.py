"""Scores, and only scores, leave the device: batched, signed, retried with backoff, and kept in a
bounded on-disk queue (SQLite) while the endpoint is unreachable, drained in order when it is back.

What goes on the wire is built here from five values; raw events never reach this module.
"""

from __future__ import annotations

import json
import math
import sqlite3
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from dipn.serving.client import signed_score_request

WIRE_FIELDS = ("device_id", "model_version", "p_realtime", "p_longterm", "ts")


class ScoreQueue:
    """FIFO of score records in SQLite; full queues drop their oldest records (counted)."""

    def __init__(self, path: str | Path, max_items: int = 10_000) -> None:
        self.max_items = max_items
        self.dropped = 0
        self.db = sqlite3.connect(str(path), isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("CREATE TABLE IF NOT EXISTS scores (id INTEGER PRIMARY KEY AUTOINCREMENT, record TEXT NOT NULL)")

    def put(self, record: dict) -> None:
        with self.db:
            self.db.execute("INSERT INTO scores (record) VALUES (?)", (json.dumps(record),))
            excess = len(self) - self.max_items
            if excess > 0:
                self.db.execute("DELETE FROM scores WHERE id IN (SELECT id FROM scores ORDER BY id LIMIT ?)", (excess,))
                self.dropped += excess

    def peek(self, n: int) -> list[tuple[int, dict]]:
        rows = self.db.execute("SELECT id, record FROM scores ORDER BY id LIMIT ?", (n,)).fetchall()
        return [(i, json.loads(r)) for i, r in rows]

    def ack(self, ids: list[int]) -> None:
        with self.db:
            self.db.executemany("DELETE FROM scores WHERE id = ?", [(i,) for i in ids])

    def __len__(self) -> int:
        return self.db.execute("SELECT COUNT(*) FROM scores").fetchone()[0]

    def close(self) -> None:
        self.db.close()


@dataclass(frozen=True)
class UplinkConfig:
    batch_size: int = 32
    max_attempts: int = 5  # per flush; what is not sent stays queued for the next flush
    backoff_s: float = 0.2  # first retry delay, doubled each attempt
    max_backoff_s: float = 10.0
    queue_max_items: int = 10_000
    timeout_s: float = 5.0


class Uplink:
    def __init__(
        self,
        base_url: str,
        device_id: str,
        secret: str,
        queue_path: str | Path,
        config: UplinkConfig = UplinkConfig(),
        http: httpx.Client | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.device_id, self.secret, self.config = device_id, secret, config
        self.queue = ScoreQueue(queue_path, config.queue_max_items)
        self.http = http or httpx.Client(base_url=base_url, timeout=config.timeout_s)
        self.sleep = sleep
        self.counts: Counter[str] = Counter()
        self.bytes_sent = 0

    def submit(self, model_version: str, p_realtime: float, p_longterm: float, ts: int) -> None:
        """Queue one score; the record holds exactly the five wire fields."""
        if not (math.isfinite(p_realtime) and math.isfinite(p_longterm)):
            self.counts["dropped_non_finite_score"] += 1
            return
        self.queue.put({"device_id": self.device_id, "model_version": model_version,
                        "p_realtime": float(p_realtime), "p_longterm": float(p_longterm), "ts": int(ts)})  # fmt: skip

    def flush(self) -> int:
        """Send queued scores in order, batch by batch; returns how many the endpoint acknowledged."""
        accepted = 0
        while batch := self.queue.peek(self.config.batch_size):
            done, count = self._post(batch)
            accepted += count
            if not done:
                break
        return accepted

    def _post(self, batch: list[tuple[int, dict]]) -> tuple[bool, int]:
        """(whether the batch left the queue, how many scores the endpoint accepted)."""
        ids, records = [i for i, _ in batch], [r for _, r in batch]
        for attempt in range(self.config.max_attempts):
            if attempt:
                self.sleep(min(self.config.backoff_s * 2 ** (attempt - 1), self.config.max_backoff_s))
            path, body, headers = signed_score_request(self.device_id, self.secret, records)  # fresh nonce
            try:
                response = self.http.post(path, content=body, headers=headers)
            except httpx.TransportError:
                self.counts["network_errors"] += 1
                continue
            self.bytes_sent += len(body)
            if response.status_code == 200:
                self.queue.ack(ids)
                self.counts["acknowledged"] += len(ids)
                return True, len(ids)
            if response.status_code == 429:  # over the device's rate limit: retrying now only counts against it
                self.counts["rate_limited"] += 1
                return False, 0
            if response.status_code >= 500 or response.status_code in (401, 408, 409):
                self.counts[f"retried_{response.status_code}"] += 1  # server trouble, clock skew, replay
                continue
            self.queue.ack(ids)  # a 4xx the endpoint will never accept: drop, do not block the queue
            self.counts[f"rejected_{response.status_code}"] += len(ids)
            return True, 0
        return False, 0

    def close(self) -> None:
        self.queue.close()
        self.http.close()
