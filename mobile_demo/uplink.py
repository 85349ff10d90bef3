"""Scores, and only scores, leave the device: batched, signed, retried with backoff, and kept in a
bounded on-disk queue (SQLite) while the endpoint is unreachable, drained in order when it is back.

What goes on the wire is built here from five values, by ``dipn.wire`` (the module the endpoint
checks requests with); raw events never reach this module. A device registers itself here too
(``register_device``): it makes its key pair and sends only the public key. A record
leaves the queue only when the endpoint acknowledged it (200) or refused that very record (a 422
naming its index): a score the endpoint's rules refuse is refused at ``submit`` already, a batch
the endpoint finds too large is split, and any other refusal keeps the queue for a later flush.

``submit`` takes a ``Score`` as the scorer gives it (so ``result_listener=uplink.submit`` subscribes
the uplink in one line) and queues it when the posting policy marked it ``post``. Nothing here lets
an untyped exception reach the app: a score the endpoint would refuse (NaN, 10**400, a ts that is
no millisecond time) raises ``InvalidArgumentError`` naming the field; an offline queue file that is
corrupted or no queue of ours (another program's SQLite file, random bytes) is moved aside (kept,
renamed ``*.unreadable-<ms>``), counted in ``status()`` and replaced by a fresh one; any later
storage failure raises ``UplinkError``.
"""

from __future__ import annotations

import json
import logging
import re
import sqlite3
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from dipn.wire import DEVICE_ID_PATTERN, MAX_SCORES_PER_POST, refused_indices, registration_request, score_problem, signed_score_request
from mobile_demo.errors import DeviceError, InvalidArgumentError

log = logging.getLogger(__name__)
SCHEMA = "CREATE TABLE IF NOT EXISTS scores (id INTEGER PRIMARY KEY AUTOINCREMENT, record TEXT NOT NULL)"


class UplinkError(DeviceError):
    """The offline queue cannot be written or read (disk full, file removed while open)."""


def register_device(http: httpx.Client, user_id: str, platform: str | None = None,
                    enroll_token: str | None = None) -> tuple[str, str]:  # fmt: skip
    """Register this device with the endpoint ``http`` talks to: (device id, secret). The key pair
    is made here and only its public half is sent; the secret signs every later request."""
    path, body, headers, secret = registration_request(user_id, platform, enroll_token)
    try:
        response = http.post(path, json=body, headers=headers)
        response.raise_for_status()
        return str(response.json()["device_id"]), secret
    except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
        raise UplinkError(f"device registration failed: {exc}") from None


def _open_queue(path: Path) -> sqlite3.Connection:
    """A queue database, checked to be ours: SQLite, with a ``scores (id, record)`` table."""
    db = sqlite3.connect(str(path), isolation_level=None)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute(SCHEMA)
        db.execute("SELECT id, record FROM scores LIMIT 1").fetchall()
        if db.execute("PRAGMA quick_check").fetchone()[0] != "ok":
            raise sqlite3.DatabaseError("quick_check failed")
    except sqlite3.Error:
        db.close()
        raise
    return db


class ScoreQueue:
    """FIFO of score records in SQLite; full queues drop their oldest records (counted). A file that
    is no readable queue is moved aside and a fresh queue opened (``moved_aside`` names it)."""

    def __init__(self, path: str | Path, max_items: int = 10_000) -> None:
        self.path = Path(path)
        self.max_items = max_items
        self.dropped = 0
        self.unreadable_records = 0
        self.moved_aside: str | None = None
        try:
            self.db = _open_queue(self.path)
        except sqlite3.Error as exc:
            self.moved_aside = self._move_aside(exc)
            try:
                self.db = _open_queue(self.path)
            except sqlite3.Error as again:
                raise UplinkError(f"{self.path}: cannot open a fresh offline queue ({again})") from None

    def _move_aside(self, exc: Exception) -> str:
        aside = self.path.with_name(f"{self.path.name}.unreadable-{time.time_ns() // 1_000_000}")
        try:
            self.path.rename(aside)
            for suffix in ("-wal", "-shm"):
                Path(f"{self.path}{suffix}").unlink(missing_ok=True)
        except OSError as err:
            raise UplinkError(f"{self.path}: not a readable offline queue ({exc}) and it cannot be moved aside "
                              f"({err.strerror})") from None  # fmt: skip
        log.warning("%s: not a readable offline queue (%s); moved to %s, a fresh queue is used", self.path, exc, aside)
        return str(aside)

    def _run(self, what: str, call: Callable[[], Any]) -> Any:
        try:
            return call()
        except sqlite3.Error as exc:
            raise UplinkError(f"{self.path}: cannot {what} the offline queue ({exc})") from None

    def put(self, record: dict) -> None:
        def insert() -> None:
            with self.db:
                self.db.execute("INSERT INTO scores (record) VALUES (?)", (json.dumps(record),))
                excess = len(self) - self.max_items
                if excess > 0:
                    self.db.execute("DELETE FROM scores WHERE id IN (SELECT id FROM scores ORDER BY id LIMIT ?)",
                                    (excess,))  # fmt: skip
                    self.dropped += excess

        self._run("write", insert)

    def peek(self, n: int) -> list[tuple[int, dict]]:
        """The oldest ``n`` records; a record that is no JSON object (written by something else)
        is removed and counted, never sent."""
        while True:
            rows = self._run("read", lambda: self.db.execute("SELECT id, record FROM scores ORDER BY id LIMIT ?",
                                                             (n,)).fetchall())  # fmt: skip
            out, bad = [], []
            for i, text in rows:
                try:
                    record = json.loads(text)
                except (TypeError, ValueError):
                    record = None
                if isinstance(record, dict):
                    out.append((i, record))
                else:
                    bad.append(i)
            if not bad:
                return out
            self.unreadable_records += len(bad)
            self.ack(bad)

    def ack(self, ids: list[int]) -> None:
        def delete() -> None:
            with self.db:
                self.db.executemany("DELETE FROM scores WHERE id = ?", [(i,) for i in ids])

        self._run("write", delete)

    def __len__(self) -> int:
        return self._run("read", lambda: self.db.execute("SELECT COUNT(*) FROM scores").fetchone()[0])

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
            raise InvalidArgumentError(f"batch_size must lie in [1, {MAX_SCORES_PER_POST}] (the endpoint's limit a "
                                       f"post), got {self.batch_size}")  # fmt: skip
        if self.max_attempts < 1 or self.queue_max_items < 1:
            raise InvalidArgumentError("max_attempts and queue_max_items must be >= 1")


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
        if not isinstance(device_id, str) or not re.fullmatch(DEVICE_ID_PATTERN, device_id):
            raise InvalidArgumentError("device_id must be 32 lowercase hex digits (register_device gives it)")
        if not isinstance(secret, str) or not re.fullmatch(r"[0-9a-f]{64}", secret):
            raise InvalidArgumentError("secret must be the 64 hex digits register_device gave with the device id")
        self.device_id, self.secret, self.config = device_id, secret, config
        try:
            self.http = http or httpx.Client(base_url=base_url, timeout=config.timeout_s)
        except (httpx.InvalidURL, TypeError, ValueError) as exc:
            raise InvalidArgumentError(f"base_url {base_url!r} is no URL ({exc})") from None
        self.queue = ScoreQueue(queue_path, config.queue_max_items)
        self.sleep = sleep
        self.counts: Counter[str] = Counter()
        self.last_refusal: str | None = None  # why ``submit`` last refused a score
        self.bytes_sent = 0

    def submit(self, score: Any) -> bool:
        """Queue one ``Score`` (as a record of exactly the five wire fields) if the posting policy
        marked it ``post``; True when queued. A score the endpoint would refuse raises
        ``InvalidArgumentError`` (counted), so that it never costs the queue a valid one."""
        try:
            values = {name: getattr(score, name) for name in ("model_version", "p_realtime", "p_longterm", "ts")}
            post = getattr(score, "post", True)
        except AttributeError as exc:
            raise InvalidArgumentError(f"submit takes a Score (model_version, p_realtime, p_longterm, ts): {exc}") from None
        if post is False:
            self.counts["not_posted"] += 1
            return False
        record = {"device_id": self.device_id, **values}
        problem = score_problem(record)
        if problem is not None:
            self.counts["refused_at_submit"] += 1
            self.last_refusal = problem
            raise InvalidArgumentError(f"score refused: {problem}")
        self.queue.put({**record, "p_realtime": float(values["p_realtime"]), "p_longterm": float(values["p_longterm"]),
                        "ts": int(values["ts"])})  # fmt: skip
        self.counts["queued"] += 1
        return True

    def status(self) -> dict[str, Any]:
        """Queue length, what was sent and refused, and what the queue had to drop or move aside."""
        return {"queued": len(self.queue), "counts": dict(self.counts), "bytes_sent": self.bytes_sent,
                "last_refusal": self.last_refusal, "dropped_when_full": self.queue.dropped,
                "unreadable_records": self.queue.unreadable_records, "queue_moved_aside": self.queue.moved_aside}

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
            except httpx.HTTPError:  # no transport trouble, e.g. a redirect loop: retrying will not help
                self.counts["http_errors"] += 1
                return "stop", 0
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
        """Close the queue and the connection; closing twice is harmless."""
        self.queue.close()
        self.http.close()

    def __enter__(self) -> Uplink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _detail(response: httpx.Response) -> str:
    try:
        detail = response.json().get("detail", "")
    except (ValueError, AttributeError):
        return ""
    return detail if isinstance(detail, str) else ""
