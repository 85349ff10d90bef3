"""Crash safety (issue 10, item 4): SIGKILL the server in the middle of a burst of score posts and
coupon decisions, restart it, and check what it promised; SIGKILL a device's uplink in the middle
of draining its offline queue, restart it, and check that every score arrives exactly once.
``dipn serve --workers 2`` as a real process group, on SQLite and on a real PostgreSQL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason="the serve extra (FastAPI, uvicorn, SQLAlchemy) is not installed")
import httpx  # noqa: E402
from sqlalchemy import func, select  # noqa: E402

from dipn import wire  # noqa: E402
from dipn.serving import tables  # noqa: E402
from dipn.serving.client import DeviceClient, OperatorClient  # noqa: E402
from dipn.serving.config import ServerConfig  # noqa: E402
from dipn.serving.db import make_engine  # noqa: E402
from dipn.serving.server import ThreadedServer, free_port  # noqa: E402
from mobile_demo.uplink import ScoreQueue  # noqa: E402
from tests.serve_process import ADMIN, Databases, ServeProcess, databases_fixture  # noqa: E402

ROOT = Path(__file__).parents[1]
COUPON, BUDGET = 10.0, 2_000.0  # 200 coupons for 600 users: granting is under way at the kill,
USERS, KILL_AFTER_DECISIONS = 600, 100  # and the budget runs out after the restart


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def databases(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Databases]:
    yield from databases_fixture(request, tmp_path_factory)


class Burst:
    """Threads posting signed scores and asking for coupon decisions until told to stop; each
    keeps what the server acknowledged (a 2xx), and nothing else."""

    def __init__(self, url: str, devices: list[DeviceClient], campaign: int, users: list[str]) -> None:
        self.url, self.devices, self.campaign, self.users = url, devices, campaign, users
        self.stop = threading.Event()
        self.acked_scores: list[tuple[str, int]] = []
        self.acked_decisions: list[dict] = []
        self.lock = threading.Lock()

    def post_scores(self, device: DeviceClient, first_ts: int) -> None:
        http = httpx.Client(base_url=self.url, timeout=5)
        ts = first_ts
        while not self.stop.is_set():
            scores = [device.score("crash-1", 0.3, 0.5, ts=ts + k) for k in range(4)]
            ts += 4
            body = wire.encode_scores(scores)
            headers = {"content-type": "application/json",
                       **wire.signed_headers(device.device_id, device.secret, "POST", "/scores", body)}
            try:
                if http.post("/scores", content=body, headers=headers).status_code == 200:
                    with self.lock:
                        self.acked_scores += [(device.device_id, s["ts"]) for s in scores]
            except httpx.TransportError:
                time.sleep(0.01)  # the server is gone: retrying is pointless until it is back

    def decide(self, users: list[str]) -> None:
        http = httpx.Client(base_url=self.url, timeout=5, headers={"authorization": f"Bearer {ADMIN}"})
        for user in users:
            if self.stop.is_set():
                return
            try:
                response = http.post(f"/campaigns/{self.campaign}/decisions", json={"user_id": user})
            except httpx.TransportError:
                continue
            if response.is_success:
                with self.lock:
                    self.acked_decisions.append(response.json())

    def run_until_killed(self, server: ServeProcess, after_decisions: int) -> None:
        """SIGKILL the server once ``after_decisions`` decisions were acknowledged: mid-burst."""
        with ThreadPoolExecutor(max_workers=len(self.devices) + 4) as pool:
            base = wire.now_ms() - 100_000
            for i, device in enumerate(self.devices):
                pool.submit(self.post_scores, device, base + i * 1_000_000)
            for k in range(4):
                pool.submit(self.decide, self.users[k::4])
            deadline = time.monotonic() + 60
            while len(self.acked_decisions) < after_decisions and time.monotonic() < deadline:
                time.sleep(0.01)
            server.kill()
            self.stop.set()


def test_a_killed_server_keeps_every_acknowledged_write_no_second_coupon_and_the_budget(databases: Databases) -> None:
    db_url = databases.new()
    server = ServeProcess(db_url, workers=2).start()
    try:
        operator = OperatorClient(server.url, ADMIN)
        campaign = operator.create_campaign(name="crash", shares={"all": 1.0}, budget=BUDGET, coupon_value=COUPON)["id"]
        http = httpx.Client(base_url=server.url, timeout=10)
        devices = [DeviceClient.register("", f"crash-device-user-{i}", http=http) for i in range(6)]
        users = [f"crash-user-{i}" for i in range(USERS)]
        burst = Burst(server.url, devices, campaign, users)
        burst.run_until_killed(server, KILL_AFTER_DECISIONS)
        assert burst.acked_scores and burst.acked_decisions, "nothing was acknowledged before the kill"
        assert len(burst.acked_decisions) < len(users), "the kill came after the burst: nothing was in flight"

        server = ServeProcess(db_url, workers=2).start()  # restart on the same database
        operator = OperatorClient(server.url, ADMIN)
        with ThreadPoolExecutor(max_workers=4) as pool:  # everyone again: granting resumes where it stopped
            after = list(pool.map(lambda u: operator.decide(campaign, u), users))
    finally:
        server.stop()

    engine = make_engine(db_url, pool_size=1)
    with engine.connect() as conn:
        stored = {(r.device_id, r.ts) for r in conn.execute(select(tables.scores.c.device_id, tables.scores.c.ts))}
        grants = {r.user_id: r for r in conn.execute(select(tables.grants).where(tables.grants.c.campaign_id == campaign))}
        rows = conn.execute(select(func.count()).select_from(tables.grants)
                            .where(tables.grants.c.campaign_id == campaign)).scalar()
        reserved = conn.execute(select(func.sum(tables.bucket_budgets.c.reserved_cents))
                                .where(tables.bucket_budgets.c.campaign_id == campaign)).scalar()
    engine.dispose()
    assert set(burst.acked_scores) <= stored, "an acknowledged score was lost"
    for answer in burst.acked_decisions:  # an acknowledged coupon exists, and is the same one afterwards
        if answer["granted"]:
            assert grants[answer["user_id"]].id == answer["coupon_id"]
    assert rows == len(grants)  # one coupon per user
    for answer in after:
        assert answer["granted"] == (answer["user_id"] in grants)
        if answer["granted"]:
            assert answer["coupon_id"] == grants[answer["user_id"]].id
    spent = sum(g.value_cents for g in grants.values())
    assert spent == reserved == round(BUDGET * 100)  # all of the budget, not a cent more, none leaked


UPLINK_CHILD = """
import sys
from mobile_demo.uplink import Uplink, UplinkConfig
url, device_id, secret, queue = sys.argv[1:5]
Uplink(url, device_id, secret, queue, UplinkConfig(batch_size=8)).flush()
"""


def test_a_device_killed_while_draining_its_queue_sends_every_score_once(tmp_path: Path) -> None:
    """At-least-once on the wire (a batch acknowledged by the endpoint but not yet removed from the
    queue is sent again after the restart), exactly once in the database (scores are unique per
    (device, ts): the endpoint answers a re-sent score as a duplicate)."""
    db_url = f"sqlite:///{tmp_path}/endpoint.db"
    with ThreadedServer(ServerConfig(db_url=db_url, admin_token=ADMIN, rate_limit=0, open_enrollment=True),
                        free_port()) as server:
        device = DeviceClient.register(server.url, "draining-user")
        queue_path = tmp_path / "queue.db"
        queue = ScoreQueue(queue_path)
        first = wire.now_ms() - 50_000
        for i in range(2000):
            queue.put(device.score("m", 0.25, 0.5, ts=first + i))
        queue.close()
        engine = make_engine(db_url, pool_size=1)

        def stored() -> int:
            with engine.connect() as conn:
                return conn.execute(select(func.count()).select_from(tables.scores)
                                    .where(tables.scores.c.device_id == device.device_id)).scalar()

        child = subprocess.Popen([sys.executable, "-c", UPLINK_CHILD, server.url, device.device_id, device.secret,
                                  str(queue_path)], cwd=ROOT)  # fmt: skip
        deadline = time.monotonic() + 60
        while stored() < 200 and child.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)
        os.kill(child.pid, signal.SIGKILL)
        child.wait(30)
        queue = ScoreQueue(queue_path)
        left = len(queue)
        queue.close()
        assert child.returncode == -signal.SIGKILL and 0 < left < 2000, (child.returncode, left)

        from mobile_demo.uplink import Uplink, UplinkConfig

        uplink = Uplink(server.url, device.device_id, device.secret, queue_path, UplinkConfig(batch_size=8))
        assert uplink.flush() == left and len(uplink.queue) == 0
        uplink.close()
        assert stored() == 2000
        engine.dispose()
