"""``dipn serve --workers 2`` on one PostgreSQL, loaded by several client processes at once: every
promise of the endpoint holds across worker processes (one coupon per user per campaign, budget
never exceeded, no acknowledged write lost)."""

from __future__ import annotations

import multiprocessing as mp
import os
import random
import subprocess
import sys
import time
from collections import Counter
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
from dipn.serving.db import make_engine  # noqa: E402
from dipn.serving.pgtemp import TempPostgres, postgres_unavailable  # noqa: E402
from dipn.serving.server import check_workers, filesystem_type, free_port  # noqa: E402

ADMIN = "workers-admin-token"
CLIENT_PROCESSES, THREADS_PER_CLIENT = 4, 4
USERS_ONCE, USERS_BUDGET, DEVICES_PER_CLIENT, POSTS_PER_DEVICE = 30, 40, 6, 5


def _children(pid: int) -> list[int]:
    return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@pytest.fixture(scope="module")
def endpoint() -> Iterator[tuple[str, str, subprocess.Popen]]:
    reason = postgres_unavailable()
    if reason:
        pytest.skip(reason)
    postgres = TempPostgres()
    server = None
    try:
        db_url = postgres.start()
        port = free_port()
        server = subprocess.Popen([sys.executable, "-m", "dipn.cli", "serve", "--db", db_url, "--port", str(port),
                                   "--workers", "2", "--insecure-open-enrollment"],
                                  env=os.environ | {"DIPN_ADMIN_TOKEN": ADMIN},
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, server.stderr.read()[-2000:]
            assert time.monotonic() < deadline, "dipn serve --workers 2 did not come up in 60 s"
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200 and len(_children(server.pid)) >= 2:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        yield db_url, url, server
    finally:
        if server is not None:
            server.terminate()
            try:
                server.wait(30)
            except subprocess.TimeoutExpired:
                server.kill()
        postgres.stop()


def _client(url: str, devices: list[tuple[str, str]], campaigns: dict[str, int], seed: int) -> dict:
    """One client process: signed score posts and decisions for both campaigns, in random order,
    from a few threads; returns what the server acknowledged."""
    http = httpx.Client(base_url=url, timeout=60, limits=httpx.Limits(max_connections=THREADS_PER_CLIENT))
    operator = OperatorClient(url, ADMIN, http=http)
    base_ts = wire.now_ms() - 120_000 - seed * 10_000
    work: list[tuple] = [("post", d, k) for d in devices for k in range(POSTS_PER_DEVICE)]
    work += [("decide", "once", f"once-user-{u}") for u in range(USERS_ONCE)] * 2
    work += [("decide", "budget", f"budget-user-{u}") for u in range(USERS_BUDGET)]
    random.Random(seed).shuffle(work)

    def run(item: tuple) -> tuple[str, int, object]:
        if item[0] == "post":
            (device_id, secret), k = item[1], item[2]
            scores = [{"device_id": device_id, "model_version": "w", "p_realtime": 0.3, "p_longterm": 0.5,
                       "ts": base_ts + 10 * k + i} for i in range(4)]  # fmt: skip
            path, body, headers = wire.signed_score_request(device_id, secret, scores)
            response = http.post(path, content=body, headers=headers)
            return "post", response.status_code, [(device_id, s["ts"]) for s in scores]
        response = http.post(f"/campaigns/{campaigns[item[1]]}/decisions", json={"user_id": item[2]},
                             headers=operator.headers)  # fmt: skip
        return item[1], response.status_code, response.json() if response.status_code == 200 else None

    with ThreadPoolExecutor(THREADS_PER_CLIENT) as pool:
        results = list(pool.map(run, work))
    http.close()
    return {
        "statuses": Counter(status for _, status, _ in results),
        "acked_scores": [key for kind, status, keys in results if kind == "post" and status == 200 for key in keys],
        "decisions": [(kind, answer) for kind, status, answer in results if kind != "post" and status == 200],
    }


def test_two_workers_keep_every_promise_under_load_from_several_processes(endpoint) -> None:  # noqa: ANN001
    db_url, url, server = endpoint
    operator = OperatorClient(url, ADMIN)
    campaigns = {"once": operator.create_campaign(name="once", shares={"all": 1.0}, budget=10_000.0)["id"],
                 "budget": operator.create_campaign(name="budget", shares={"all": 1.0}, budget=55.0)["id"]}  # fmt: skip
    http = httpx.Client(base_url=url)
    devices = [[(d.device_id, d.secret) for d in (DeviceClient.register("", f"w{c}-user-{i}", http=http)
                                                   for i in range(DEVICES_PER_CLIENT))] for c in range(CLIENT_PROCESSES)]  # fmt: skip
    workers = _children(server.pid)
    cpu_before = {pid: _cpu_seconds(pid) for pid in workers}

    ctx = mp.get_context("spawn")
    with ctx.Pool(CLIENT_PROCESSES) as pool:
        results = pool.starmap(_client, [(url, devices[c], campaigns, c) for c in range(CLIENT_PROCESSES)])

    statuses = sum((r["statuses"] for r in results), Counter())
    assert not [s for s in statuses if s >= 500], statuses
    busy = [pid for pid in workers if _cpu_seconds(pid) - cpu_before[pid] > 0.05]
    assert len(busy) >= 2, "the load did not reach both worker processes"

    engine = make_engine(db_url, pool_size=1)
    with engine.connect() as conn:
        stored = {tuple(row) for row in conn.execute(select(tables.scores.c.device_id, tables.scores.c.ts))}
        grants = {name: conn.execute(select(tables.grants.c.user_id, tables.grants.c.id)
                                     .where(tables.grants.c.campaign_id == cid)).all() for name, cid in campaigns.items()}
        reserved = {name: conn.execute(select(func.sum(tables.bucket_budgets.c.reserved_cents))
                                       .where(tables.bucket_budgets.c.campaign_id == cid)).scalar()
                    for name, cid in campaigns.items()}  # fmt: skip
    engine.dispose()

    acked = [key for r in results for key in r["acked_scores"]]
    assert len(acked) >= CLIENT_PROCESSES * DEVICES_PER_CLIENT * 4 and set(acked) <= stored  # no acked write lost

    answers = [a for r in results for kind, a in r["decisions"] if kind == "once"]
    assert len(answers) == CLIENT_PROCESSES * USERS_ONCE * 2  # every decision answered, all granted
    assert all(a["granted"] for a in answers)
    coupon_of = {user: coupon for user, coupon in grants["once"]}
    assert sorted(coupon_of) == sorted(f"once-user-{u}" for u in range(USERS_ONCE))  # one grant row per user
    assert all(a["coupon_id"] == coupon_of[a["user_id"]] for a in answers)  # every retry got that coupon
    assert reserved["once"] == USERS_ONCE * 1000

    answers = [a for r in results for kind, a in r["decisions"] if kind == "budget"]
    granted_users = {a["user_id"] for a in answers if a["granted"]}
    assert len(grants["budget"]) == len(granted_users) == 5  # 5 x 10.00 <= 55.00 < 6 x 10.00
    assert reserved["budget"] == 5000
    assert {a["reason"] for a in answers if not a["granted"]} <= {"budget_exhausted"}


def test_several_workers_may_share_a_sqlite_file_on_a_local_disk(tmp_path: Path) -> None:
    assert filesystem_type(tmp_path) not in (None, "nfs", "nfs4", "cifs")
    check_workers(f"sqlite:///{tmp_path}/endpoint.db", 4)  # WAL on one host: accepted
    assert filesystem_type(Path("/proc/self")) == "proc"
