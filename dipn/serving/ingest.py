"""Score posts, committed in groups: one durable commit acknowledges many posts.

A commit is on disk before it is acknowledged (SQLite ``synchronous=FULL``, PostgreSQL's default),
and an fsync costs milliseconds, so one commit per post would cap a worker at a few hundred posts
a second. Instead each worker has one writer thread: request handlers queue their post and wait;
the writer takes everything queued (up to ``max_batch`` posts), writes it in one transaction,
commits, and only then answers each waiting handler. A post is acknowledged only after the commit
that holds it; if the commit fails, every post in it gets an error and none is acknowledged.

Within the transaction each post first claims its request nonce (``INSERT ... ON CONFLICT DO
NOTHING``: a nonce already there means a replay, and that post writes nothing), then its scores
are inserted, ignoring any (device, ts) already stored: a retried score is a duplicate, not an
error. Nonces older than twice the signature window are pruned now and then.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field

from sqlalchemy import Engine

from dipn.serving.db import write_tx
from dipn.serving.models import request_nonces, scores
from dipn.serving.store import insert_ignore

log = logging.getLogger(__name__)

PRUNE_EVERY_S = 30.0


@dataclass
class ScorePost:
    device_id: str
    user_id: str
    nonce: str
    rows: list[dict]  # model_version, p_realtime, p_longterm, ts
    received_ms: int
    future: Future = field(default_factory=Future)


@dataclass(frozen=True)
class PostResult:
    replay: bool
    accepted: int = 0
    duplicates: int = 0


_STOP = object()


class ScoreWriter:
    def __init__(self, engine: Engine, *, max_batch: int, nonce_ttl_ms: int) -> None:
        self.engine, self.max_batch, self.nonce_ttl_ms = engine, max_batch, nonce_ttl_ms
        self._queue: queue.Queue = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="dipn-score-writer", daemon=True)
        self._last_prune = 0.0
        self.commits = 0
        self.posts = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Finish every queued post, then stop."""
        self._queue.put(_STOP)
        self._thread.join(timeout)

    def submit(self, post: ScorePost) -> Future:
        if not self._thread.is_alive():
            post.future.set_exception(RuntimeError("score writer is not running"))
        else:
            self._queue.put(post)
        return post.future

    def _run(self) -> None:
        stopping = False
        while not stopping:
            item = self._queue.get()
            if item is _STOP:
                break
            batch = [item]
            while len(batch) < self.max_batch:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is _STOP:
                    stopping = True
                    break
                batch.append(item)
            self._commit(batch)

    def _commit(self, batch: list[ScorePost]) -> None:
        try:
            results = self._write(batch)
        except Exception as exc:  # noqa: BLE001 (any storage failure fails the whole group)
            log.exception("score batch of %d posts failed", len(batch))
            for post in batch:
                post.future.set_exception(exc)
            return
        self.commits += 1
        self.posts += len(batch)
        for post, result in zip(batch, results, strict=True):
            post.future.set_result(result)

    def _write(self, batch: list[ScorePost]) -> list[PostResult]:
        with write_tx(self.engine) as conn:
            fresh = self._claim_nonces(conn, batch)
            rows = [
                {"device_id": post.device_id, "user_id": post.user_id, "received_ms": post.received_ms, **row}
                for post in batch if (post.device_id, post.nonce) in fresh for row in post.rows
            ]
            inserted: set[tuple[str, int]] = set()
            if rows:
                returned = conn.execute(insert_ignore(conn, scores).returning(scores.c.device_id, scores.c.ts), rows)
                inserted = {(device_id, ts) for device_id, ts in returned}
            self._maybe_prune(conn)
        results = []
        claimed: set[tuple[str, int]] = set()
        for post in batch:
            if (post.device_id, post.nonce) not in fresh:
                results.append(PostResult(replay=True))
                continue
            fresh.discard((post.device_id, post.nonce))  # the same request twice in one batch: one wins
            keys = {(post.device_id, row["ts"]) for row in post.rows}
            new = (keys & inserted) - claimed
            claimed |= new
            results.append(PostResult(replay=False, accepted=len(new), duplicates=len(post.rows) - len(new)))
        return results

    def _claim_nonces(self, conn, batch: list[ScorePost]) -> set[tuple[str, str]]:  # noqa: ANN001
        wanted = {(post.device_id, post.nonce): post.received_ms for post in batch}
        claimed = conn.execute(
            insert_ignore(conn, request_nonces).returning(request_nonces.c.device_id, request_nonces.c.nonce),
            [{"device_id": d, "nonce": n, "created_ms": ms} for (d, n), ms in wanted.items()],
        )
        return {(device_id, nonce) for device_id, nonce in claimed}

    def _maybe_prune(self, conn) -> None:  # noqa: ANN001
        now = time.monotonic()
        if now - self._last_prune < PRUNE_EVERY_S:
            return
        self._last_prune = now
        cutoff = time.time_ns() // 1_000_000 - 2 * self.nonce_ttl_ms
        conn.execute(request_nonces.delete().where(request_nonces.c.created_ms < cutoff))
