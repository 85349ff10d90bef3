"""The uplink against the real endpoint on loopback: only scores on the wire, nothing lost offline."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest

pytest.importorskip("fastapi")

from dipn.serving import models  # noqa: E402
from dipn.serving.client import DeviceClient  # noqa: E402
from mobile_demo.uplink import WIRE_FIELDS, Uplink, UplinkConfig  # noqa: E402
from tests.test_serving import LiveServer, free_port  # noqa: E402

NOW = int(time.time() * 1000)
RAW_SECRETS = ("Page_Detail", "Page_Detail_Button-Comments", "leaf_", "x0", "swipe")


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    with LiveServer(f"sqlite:///{tmp_path_factory.mktemp('uplink')}/endpoint.db") as server:
        yield server


def _device(live: LiveServer, user: str) -> DeviceClient:
    return DeviceClient.register(live.url, user)


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
    uplink = Uplink("http://127.0.0.1:9", "d", "s", tmp_path / "q.db", UplinkConfig(queue_max_items=3))
    for i in range(5):
        uplink.submit("v1", 0.1, 0.2, i)
    assert len(uplink.queue) == 3 and uplink.queue.dropped == 2
    assert [r["ts"] for _, r in uplink.queue.peek(10)] == [2, 3, 4]
    uplink.close()
