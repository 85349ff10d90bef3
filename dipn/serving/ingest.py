"""Score posts, committed in groups: one durable commit acknowledges many posts.

A commit is on disk before it is acknowledged (SQLite ``synchronous=FULL``, PostgreSQL's default),
and an fsync costs milliseconds, so one commit per post would cap a worker at a few hundred posts
a second. Instead each worker has one writer thread: request handlers queue their post and wait;
the writer takes everything queued (up to ``max_batch`` posts), writes it in one transaction,
commits, and only then answers each waiting handler. A post is acknowledged only after the commit
that holds it; if the commit fails, every post in it gets an error and none is acknowledged.

Within the transaction each post first claims its request nonce (``INSERT ... ON CONFLICT DO
NOTHING``: a nonce already there means a replay, and that post writes nothing), then counts against
its device's rate limit (``ratelimit``: a post over the limit is refused with 429 and stores no
score), then its scores are inserted, ignoring any (device, ts) already stored: a retried score is
a duplicate, not an error. Nonces older than twice the signature window, and counters of ended
windows, are pruned now and then.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field

from sqlalchemy import Engine

from dipn.serving import ratelimit
from dipn.serving.db import write_tx
from dipn.serving.ratelimit import RateLimit
from dipn.serving.store import insert_ignore
from dipn.serving.tables import request_nonces, scores

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
    rate_limited: bool = False


_STOP = object()


class ScoreWriter:
    def __init__(self, engine: Engine, *, max_batch: int, nonce_ttl_ms: int, rate_limit: RateLimit = RateLimit(0, 60_000)) -> None:
        self.engine, self.max_batch, self.nonce_ttl_ms, self.rate_limit = engine, max_batch, nonce_ttl_ms, rate_limit
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
            winners = self._first_of_each_nonce(batch, fresh)
            admitted = self._within_rate_limit(conn, winners)
            rows = [
                {"device_id": post.device_id, "user_id": post.user_id, "received_ms": post.received_ms, **row}
                for post in winners if id(post) in admitted for row in post.rows
            ]
            inserted: set[tuple[str, int]] = set()
            if rows:
                returned = conn.execute(insert_ignore(conn, scores).returning(scores.c.device_id, scores.c.ts), rows)
                inserted = {(device_id, ts) for device_id, ts in returned}
            self._maybe_prune(conn)
        results = []
        claimed: set[tuple[str, int]] = set()
        winner_ids = {id(post) for post in winners}
        for post in batch:
            if id(post) not in winner_ids:
                results.append(PostResult(replay=True))
                continue
            if id(post) not in admitted:
                results.append(PostResult(replay=False, rate_limited=True))
                continue
            keys = {(post.device_id, row["ts"]) for row in post.rows}
            new = (keys & inserted) - claimed
            claimed |= new
            results.append(PostResult(replay=False, accepted=len(new), duplicates=len(post.rows) - len(new)))
        return results

    @staticmethod
    def _first_of_each_nonce(batch: list[ScorePost], fresh: set[tuple[str, str]]) -> list[ScorePost]:
        """The posts whose nonce this transaction claimed; the same request twice in one batch: one wins."""
        winners, seen = [], set()
        for post in batch:
            key = (post.device_id, post.nonce)
            if key in fresh and key not in seen:
                seen.add(key)
                winners.append(post)
        return winners

    def _within_rate_limit(self, conn, posts: list[ScorePost]) -> set[int]:  # noqa: ANN001
        """ids of the posts their device's rate limit admits (each device's first ones)."""
        wanted: dict[str, int] = {}
        for post in posts:
            wanted[post.device_id] = wanted.get(post.device_id, 0) + 1
        allowance = ratelimit.admit(conn, wanted, max(p.received_ms for p in posts), self.rate_limit) if posts else {}
        admitted = set()
        for post in posts:
            if allowance[post.device_id] > 0:
                allowance[post.device_id] -= 1
                admitted.add(id(post))
        return admitted

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
        now_ms = time.time_ns() // 1_000_000
        conn.execute(request_nonces.delete().where(request_nonces.c.created_ms < now_ms - 2 * self.nonce_ttl_ms))
        if self.rate_limit.requests > 0:
            ratelimit.prune(conn, now_ms, self.rate_limit)
