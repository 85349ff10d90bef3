"""The uplink against the real endpoint on loopback: only scores on the wire, nothing lost offline."""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

pytest.importorskip("fastapi")

from dipn.serving import tables  # noqa: E402
from dipn.wire import WIRE_FIELDS, new_device_key  # noqa: E402
from mobile_demo import InvalidArgumentError, Score  # noqa: E402
from mobile_demo.uplink import Uplink, UplinkConfig, UplinkError, register_device  # noqa: E402
from tests.test_serving import LiveServer, free_port  # noqa: E402

NOW = int(time.time() * 1000)
DEVICE_ID, SECRET = "d" * 32, new_device_key()[0]  # a device that never reaches an endpoint


def make_score(p_realtime: object, p_longterm: object, ts: object, model_version: object = "v1", post: bool = True) -> Score:
    return Score(p_realtime, p_longterm, ts, 1.0, model_version, "event", post, "first" if post else None)  # type: ignore[arg-type]
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
        assert uplink.submit(make_score(0.1 * (i % 10), 0.5, NOW - 1000 + i))
    assert not uplink.submit(make_score(0.3, 0.5, NOW, post=False))  # the posting policy kept it on the phone
    assert uplink.flush() == 10 and uplink.counts["not_posted"] == 1
    assert len(bodies) == 3  # batches of 4, 4, 2
    for body in bodies:
        payload = json.loads(body)
        assert set(payload) == {"scores"}
        for score in payload["scores"]:
            assert tuple(score) == WIRE_FIELDS or set(score) == set(WIRE_FIELDS)
        assert not any(secret.encode() in body for secret in RAW_SECRETS)
    assert uplink.bytes_sent == sum(len(b) for b in bodies)
    assert uplink.counts["acknowledged"] == 10 and live.count(tables.scores) >= 10
    uplink.close()


def test_offline_queue_survives_a_restart_and_drains_in_order(live: LiveServer, tmp_path: Path) -> None:
    device = _device(live, "offline-user")
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    sleeps: list[float] = []
    offline = Uplink(dead, device.device_id, device.secret, tmp_path / "q.db",
                     UplinkConfig(batch_size=5, max_attempts=3), sleep=sleeps.append)  # fmt: skip
    for i in range(12):
        offline.submit(make_score(0.3, 0.6, NOW - 1000 + i))
    assert offline.flush() == 0 and len(offline.queue) == 12
    assert sleeps == [0.2, 0.4]  # exponential backoff between the three attempts
    offline.close()  # the app is killed while offline

    before = live.count(tables.scores)
    back = Uplink(live.url, device.device_id, device.secret, tmp_path / "q.db", UplinkConfig(batch_size=5))
    assert len(back.queue) == 12
    assert back.flush() == 12 and len(back.queue) == 0
    assert live.count(tables.scores) == before + 12
    assert back.flush() == 0  # nothing left, nothing sent twice
    back.close()


def test_a_full_queue_drops_its_oldest_scores_and_counts_them(tmp_path: Path) -> None:
    uplink = Uplink("http://127.0.0.1:9", DEVICE_ID, SECRET, tmp_path / "q.db", UplinkConfig(queue_max_items=3))
    for i in range(5):
        uplink.submit(make_score(0.1, 0.2, NOW + i))
    assert len(uplink.queue) == 3 and uplink.queue.dropped == 2
    assert [r["ts"] for _, r in uplink.queue.peek(10)] == [NOW + 2, NOW + 3, NOW + 4]
    uplink.close()


def test_scores_the_endpoint_would_refuse_raise_a_typed_error_at_submit_and_are_never_queued(tmp_path: Path) -> None:
    uplink = Uplink("http://127.0.0.1:9", DEVICE_ID, SECRET, tmp_path / "q.db")
    refused = [(1.5, 0.2, NOW), (float("nan"), 0.2, NOW), (0.1, 0.2, NOW, "v 1"), (0.1, 0.2, 17), (0.1, 0.2, float(NOW)),
               ("0.1", 0.2, NOW), (True, 0.2, NOW), (10**400, 0.2, NOW), (0.1, -10**400, NOW), (0.1, 0.2, 10**400),
               (0.1, 0.2, 2**70)]  # fmt: skip
    for values in refused:
        with pytest.raises(InvalidArgumentError, match="score refused: .* must be"):
            uplink.submit(make_score(*values))
    with pytest.raises(InvalidArgumentError, match="submit takes a Score"):
        uplink.submit(("v1", 0.1, 0.2, NOW))
    assert uplink.submit(make_score(0.1, 0.2, NOW)) and len(uplink.queue) == 1
    assert uplink.counts["refused_at_submit"] == len(refused) and "ts must be" in uplink.last_refusal
    uplink.close()
    with pytest.raises(InvalidArgumentError, match="batch_size must lie in"):
        UplinkConfig(batch_size=257)
    for device_id, secret, url, match in (("D" * 32, SECRET, "http://x", "device_id"), (DEVICE_ID, "s", "http://x", "secret"),
                                          (DEVICE_ID, SECRET, "http://[::1", "no URL")):  # fmt: skip
        with pytest.raises(InvalidArgumentError, match=match):
            Uplink(url, device_id, secret, tmp_path / "q2.db")


@pytest.mark.parametrize("content", [b"\x00garbage that is no SQLite file" * 100, "foreign", "bad-records"])
def test_an_unreadable_or_foreign_queue_file_is_moved_aside_counted_and_replaced(tmp_path: Path, content: object) -> None:
    path = tmp_path / "q.db"
    if content == "foreign":  # another program's SQLite database under our file name
        other = sqlite3.connect(path)
        other.execute("CREATE TABLE scores (name TEXT, value REAL)")
        other.commit()
        other.close()
    elif content == "bad-records":  # our table, but records that are no JSON objects
        queue = sqlite3.connect(path)
        queue.execute("CREATE TABLE scores (id INTEGER PRIMARY KEY AUTOINCREMENT, record TEXT NOT NULL)")
        queue.executemany("INSERT INTO scores (record) VALUES (?)", [("{not json",), ("[1, 2]",)])
        queue.commit()
        queue.close()
    else:
        path.write_bytes(content)
    uplink = Uplink("http://127.0.0.1:9", DEVICE_ID, SECRET, path)
    assert uplink.submit(make_score(0.3, 0.5, NOW))
    status = uplink.status()
    if content == "bad-records":
        assert uplink.queue.peek(10)[0][1]["ts"] == NOW and uplink.status()["unreadable_records"] == 2
    else:
        aside = Path(status["queue_moved_aside"])
        assert aside.exists() and aside.name.startswith("q.db.unreadable-") and status["queued"] == 1
    uplink.close()
    reopened = Uplink("http://127.0.0.1:9", DEVICE_ID, SECRET, path)  # the fresh queue is ours and keeps its score
    assert reopened.status()["queue_moved_aside"] is None and len(reopened.queue) == 1
    reopened.close()


def test_registration_against_nothing_raises_a_typed_error() -> None:
    with httpx.Client(base_url=f"http://127.0.0.1:{free_port()}") as http, pytest.raises(UplinkError, match="registration"):
        register_device(http, "user")


def test_a_refused_score_costs_only_itself_and_a_batch_over_the_limit_is_split(tmp_path: Path) -> None:
    """A 422 naming one index drops that score only; a 413 splits the batch; nothing else leaves the
    queue unacknowledged."""
    with LiveServer(f"sqlite:///{tmp_path}/endpoint.db", max_scores_per_post=4, rate_limit=0) as server:
        device = _device(server, "split-user")
        uplink = Uplink(server.url, device.device_id, device.secret, tmp_path / "q.db", UplinkConfig(batch_size=10))
        now = int(time.time() * 1000)
        for i in range(10):
            uplink.submit(make_score(0.3, 0.5, now - 1000 + i))
        # A score valid on the device that the endpoint refuses: its clock runs an hour ahead of the server.
        uplink.submit(make_score(0.3, 0.5, now + 3_600_000))
        # A record an older app version queued before ``submit`` checked (p_realtime out of range).
        uplink.queue.put({"device_id": device.device_id, "model_version": "v1", "p_realtime": 1.5, "p_longterm": 0.5,
                          "ts": now - 10})  # fmt: skip
        assert uplink.flush() == 10 and len(uplink.queue) == 0
        assert uplink.counts["acknowledged"] == 10 and uplink.counts["rejected_422"] == 2
        assert uplink.counts["split_413"] >= 1 and server.count(tables.scores) == 10
        # A refusal that names no score (here: the endpoint does not know the device) keeps the queue.
        stranger = Uplink(server.url, "e" * 32, device.secret, tmp_path / "q2.db")
        stranger.submit(make_score(0.3, 0.5, now))
        assert stranger.flush() == 0 and len(stranger.queue) == 1
        uplink.close()
        stranger.close()
