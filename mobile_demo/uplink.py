"""Scores, and only scores, leave the device: batched, signed, retried with backoff, and kept in a
bounded on-disk queue (SQLite) while the endpoint is unreachable, drained in order when it is back.

What goes on the wire is built here from five values, by ``dipn.wire`` (the module the endpoint
checks requests with); raw events never reach this module. A device registers itself here too
(``register_device``): it makes its key pair and sends only the public key. A record
leaves the queue only when the endpoint acknowledged it (200) or refused that very record (a 422
naming its index): a score the endpoint's rules refuse is refused at ``submit`` already, a batch
the endpoint finds too large is split, and any other refusal keeps the queue for a later flush.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from dipn.wire import MAX_SCORES_PER_POST, refused_indices, registration_request, score_problem, signed_score_request


def register_device(http: httpx.Client, user_id: str, platform: str | None = None,
                    enroll_token: str | None = None) -> tuple[str, str]:  # fmt: skip
    """Register this device with the endpoint ``http`` talks to: (device id, secret). The key pair
    is made here and only its public half is sent; the secret signs every later request."""
    path, body, headers, secret = registration_request(user_id, platform, enroll_token)
    response = http.post(path, json=body, headers=headers)
    response.raise_for_status()
    return response.json()["device_id"], secret


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

    def __post_init__(self) -> None:
        if not 1 <= self.batch_size <= MAX_SCORES_PER_POST:
            raise ValueError(f"batch_size must lie in [1, {MAX_SCORES_PER_POST}] (the endpoint's limit a post), "
                             f"got {self.batch_size}")
        if self.max_attempts < 1 or self.queue_max_items < 1:
            raise ValueError("max_attempts and queue_max_items must be >= 1")


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
        self.last_refusal: str | None = None  # why ``submit`` last refused a score
        self.bytes_sent = 0

    def submit(self, model_version: str, p_realtime: float, p_longterm: float, ts: int) -> bool:
        """Queue one score (a record of exactly the five wire fields); a score the endpoint would
        refuse is not queued, only counted, so that it never costs the queue a valid one."""
        record = {"device_id": self.device_id, "model_version": model_version, "p_realtime": p_realtime,
                  "p_longterm": p_longterm, "ts": ts}  # fmt: skip
        problem = score_problem(record)
        if problem is not None:
            self.counts["refused_at_submit"] += 1
            self.last_refusal = problem
            return False
        self.queue.put({**record, "p_realtime": float(p_realtime), "p_longterm": float(p_longterm), "ts": int(ts)})
        return True

    def flush(self) -> int:
        """Send queued scores in order, batch by batch; returns how many the endpoint acknowledged."""
        accepted, size = 0, self.config.batch_size
        while batch := self.queue.peek(size):
            outcome, count = self._post(batch)
            accepted += count
            if outcome == "split":  # 413: the endpoint takes fewer a post than this batch
                size = max(1, len(batch) // 2)
            elif outcome == "stop":
                break
        return accepted

    def _post(self, batch: list[tuple[int, dict]]) -> tuple[str, int]:
        """("sent" | "split" | "stop", how many scores the endpoint accepted). "sent": the batch, or
        the records the endpoint refused by index, left the queue; "stop": all of it stays."""
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
                return "sent", len(ids)
            if response.status_code == 429:  # over the device's rate limit: retrying now only counts against it
                self.counts["rate_limited"] += 1
                return "stop", 0
            if response.status_code >= 500 or response.status_code in (401, 408, 409):
                self.counts[f"retried_{response.status_code}"] += 1  # server trouble, clock skew, replay
                continue
            if response.status_code == 413 and len(batch) > 1:
                self.counts["split_413"] += 1
                return "split", 0
            named = refused_indices(_detail(response)) & set(range(len(ids))) if response.status_code == 422 else set()
            if named:  # the endpoint refused these records; the rest go in the next post
                self.queue.ack([ids[i] for i in sorted(named)])
                self.counts["rejected_422"] += len(named)
                return "sent", 0
            self.counts[f"refused_{response.status_code}"] += 1  # not about a record: keep them all
            return "stop", 0
        return "stop", 0

    def close(self) -> None:
        self.queue.close()
        self.http.close()


def _detail(response: httpx.Response) -> str:
    try:
        detail = response.json().get("detail", "")
    except (ValueError, AttributeError):
        return ""
    return detail if isinstance(detail, str) else ""
