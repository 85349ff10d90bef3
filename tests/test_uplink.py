"""The uplink against the real endpoint on loopback: only scores on the wire, nothing lost offline."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

pytest.importorskip("fastapi")

from dipn.serving import models  # noqa: E402
from dipn.wire import WIRE_FIELDS  # noqa: E402
from mobile_demo.uplink import Uplink, UplinkConfig, register_device  # noqa: E402
from tests.test_serving import LiveServer, free_port  # noqa: E402

NOW = int(time.time() * 1000)
RAW_SECRETS = ("Page_Detail", "Page_Detail_Button-Comments", "leaf_", "x0", "swipe")


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    with LiveServer(f"sqlite:///{tmp_path_factory.mktemp('uplink')}/endpoint.db") as server:
        yield server


@dataclass(frozen=True)
class Device:
    device_id: str
    secret: str


def _device(live: LiveServer, user: str) -> Device:
    """A device registered the way a phone registers itself (``mobile_demo.uplink``)."""
    with httpx.Client(base_url=live.url) as http:
        return Device(*register_device(http, user))


def test_only_the_five_score_fields_go_on_the_wire(live: LiveServer, tmp_path: Path) -> None:
    device = _device(live, "wire-user")
    bodies: list[bytes] = []

    def record(request: httpx.Request) -> None:
        bodies.append(request.read())

    http = httpx.Client(base_url=live.url, event_hooks={"request": [record]})
    uplink = Uplink(live.url, device.device_id, device.secret, tmp_path / "q.db", UplinkConfig(batch_size=4), http=http)
    for i in range(10):
        uplink.submit("v1", 0.1 * (i % 10), 0.5, NOW - 1000 + i)
    assert uplink.flush() == 10
    assert len(bodies) == 3  # batches of 4, 4, 2
    for body in bodies:
        payload = json.loads(body)
        assert set(payload) == {"scores"}
        for score in payload["scores"]:
            assert tuple(score) == WIRE_FIELDS or set(score) == set(WIRE_FIELDS)
        assert not any(secret.encode() in body for secret in RAW_SECRETS)
    assert uplink.bytes_sent == sum(len(b) for b in bodies)
    assert uplink.counts["acknowledged"] == 10 and live.count(models.scores) >= 10
    uplink.close()


def test_offline_queue_survives_a_restart_and_drains_in_order(live: LiveServer, tmp_path: Path) -> None:
    device = _device(live, "offline-user")
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    sleeps: list[float] = []
    offline = Uplink(dead, device.device_id, device.secret, tmp_path / "q.db",
                     UplinkConfig(batch_size=5, max_attempts=3), sleep=sleeps.append)  # fmt: skip
    for i in range(12):
        offline.submit("v1", 0.3, 0.6, NOW - 1000 + i)
    assert offline.flush() == 0 and len(offline.queue) == 12
    assert sleeps == [0.2, 0.4]  # exponential backoff between the three attempts
    offline.close()  # the app is killed while offline

    before = live.count(models.scores)
    back = Uplink(live.url, device.device_id, device.secret, tmp_path / "q.db", UplinkConfig(batch_size=5))
    assert len(back.queue) == 12
    assert back.flush() == 12 and len(back.queue) == 0
    assert live.count(models.scores) == before + 12
    assert back.flush() == 0  # nothing left, nothing sent twice
    back.close()


def test_a_full_queue_drops_its_oldest_scores_and_counts_them(tmp_path: Path) -> None:
    uplink = Uplink("http://127.0.0.1:9", "d" * 32, "s", tmp_path / "q.db", UplinkConfig(queue_max_items=3))
    for i in range(5):
        uplink.submit("v1", 0.1, 0.2, NOW + i)
    assert len(uplink.queue) == 3 and uplink.queue.dropped == 2
    assert [r["ts"] for _, r in uplink.queue.peek(10)] == [NOW + 2, NOW + 3, NOW + 4]
    uplink.close()


def test_scores_the_endpoint_would_refuse_are_refused_at_submit_and_never_queued(tmp_path: Path) -> None:
    uplink = Uplink("http://127.0.0.1:9", "d" * 32, "s", tmp_path / "q.db")
    refused = [("v1", 1.5, 0.2, NOW), ("v1", float("nan"), 0.2, NOW), ("v 1", 0.1, 0.2, NOW), ("v1", 0.1, 0.2, 17),
               ("v1", 0.1, 0.2, float(NOW)), ("v1", "0.1", 0.2, NOW), ("v1", True, 0.2, NOW)]  # fmt: skip
    assert [uplink.submit(*score) for score in refused] == [False] * len(refused)
    assert uplink.submit("v1", 0.1, 0.2, NOW) and len(uplink.queue) == 1
    assert uplink.counts["refused_at_submit"] == len(refused) and "p_realtime must be" in uplink.last_refusal
    uplink.close()
    with pytest.raises(ValueError, match="batch_size must lie in"):
        UplinkConfig(batch_size=257)


def test_a_refused_score_costs_only_itself_and_a_batch_over_the_limit_is_split(tmp_path: Path) -> None:
    """A 422 naming one index drops that score only; a 413 splits the batch; nothing else leaves the
    queue unacknowledged."""
    with LiveServer(f"sqlite:///{tmp_path}/endpoint.db", max_scores_per_post=4, rate_limit=0) as server:
        device = _device(server, "split-user")
        uplink = Uplink(server.url, device.device_id, device.secret, tmp_path / "q.db", UplinkConfig(batch_size=10))
        now = int(time.time() * 1000)
        for i in range(10):
            uplink.submit("v1", 0.3, 0.5, now - 1000 + i)
        # A score valid on the device that the endpoint refuses: its clock runs an hour ahead of the server.
        uplink.submit("v1", 0.3, 0.5, now + 3_600_000)
        # A record an older app version queued before ``submit`` checked (p_realtime out of range).
        uplink.queue.put({"device_id": device.device_id, "model_version": "v1", "p_realtime": 1.5, "p_longterm": 0.5,
                          "ts": now - 10})  # fmt: skip
        assert uplink.flush() == 10 and len(uplink.queue) == 0
        assert uplink.counts["acknowledged"] == 10 and uplink.counts["rejected_422"] == 2
        assert uplink.counts["split_413"] >= 1 and server.count(models.scores) == 10
        # A refusal that names no score (here: the endpoint does not know the device) keeps the queue.
        stranger = Uplink(server.url, "e" * 32, device.secret, tmp_path / "q2.db")
        stranger.submit("v1", 0.3, 0.5, now)
        assert stranger.flush() == 0 and len(stranger.queue) == 1
        uplink.close()
        stranger.close()
