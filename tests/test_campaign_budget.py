"""The budgeted allocator online (issue 26, item 2): the paced Lagrange multiplier, the budget cap
under concurrent decisions and after SIGKILL of ``dipn serve`` (2 workers), on SQLite and on a real
PostgreSQL; the remaining budget in the report. Also the campaign lifecycle and the band stated
over reference scores (items 1, 3)."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

pytest.importorskip("fastapi", reason="the serve extra (FastAPI, uvicorn, SQLAlchemy) is not installed")
import httpx  # noqa: E402
from sqlalchemy import func, select  # noqa: E402

from dipn import wire  # noqa: E402
from dipn.serving import tables  # noqa: E402
from dipn.serving.budget import multiplier_for_budget, paced_multiplier  # noqa: E402
from dipn.serving.client import DeviceClient, EndpointError, OperatorClient  # noqa: E402
from dipn.serving.config import CampaignConfig  # noqa: E402
from dipn.serving.db import make_engine  # noqa: E402
from tests.serve_process import ADMIN, Databases, LiveServer, ServeProcess, databases_fixture  # noqa: E402

COUPON, CAP_COUPONS = 10.0, 40


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def databases(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Databases]:
    yield from databases_fixture(request, tmp_path_factory)


def test_the_multiplier_rises_only_while_spending_runs_ahead_of_time() -> None:
    config = CampaignConfig(lagrange_multiplier=0.5, pacing_gain=2.0, starts_ms=1_000_000, ends_ms=2_000_000)
    assert paced_multiplier(config, 0, 10_000, 1_500_000) == 0.5  # nothing spent, half the time gone
    assert paced_multiplier(config, 5_000, 10_000, 1_500_000) == 0.5  # on pace
    assert paced_multiplier(config, 8_000, 10_000, 1_500_000) == pytest.approx(0.5 + 2.0 * 0.3)  # 30 % ahead
    assert paced_multiplier(config, 8_000, None, 1_500_000) == 0.5  # no cap: nothing to pace
    unscheduled = CampaignConfig(lagrange_multiplier=0.5, pacing_gain=2.0)
    assert paced_multiplier(unscheduled, 8_000, 10_000, 1_500_000) == 0.5
    scores = np.random.default_rng(0).beta(0.8, 3.2, 5000)
    lam = multiplier_for_budget(scores, CampaignConfig(), coupons_per_user=0.1)
    granted = CampaignConfig().uplift.lift(scores) * 100.0 - lam * 10.0 > 0
    assert 0.09 <= granted.mean() <= 0.1


def _scored_users(url: str, count: int, prefix: str, p: float = 0.3) -> list[str]:
    http = httpx.Client(base_url=url, timeout=30)
    users = [f"{prefix}-{i}" for i in range(count)]
    for user in users:
        device = DeviceClient.register("", user, http=http)
        device.post_scores([device.score("budget-m1", p, 0.5, ts=wire.now_ms() - 1000)])
    http.close()
    return users


def _spent(db_url: str, campaign: int) -> tuple[int, int, int]:
    """(grants, their face value, reserved) in cents, read from the database itself."""
    engine = make_engine(db_url, pool_size=1)
    with engine.connect() as conn:
        grants = conn.execute(select(func.count(), func.coalesce(func.sum(tables.grants.c.value_cents), 0))
                              .where(tables.grants.c.campaign_id == campaign)).one()
        reserved = conn.execute(select(func.sum(tables.bucket_budgets.c.reserved_cents))
                                .where(tables.bucket_budgets.c.campaign_id == campaign)).scalar()
    engine.dispose()
    return int(grants[0]), int(grants[1]), int(reserved)


def test_budgeted_bucket_paces_and_never_spends_past_the_cap_under_concurrency(databases: Databases) -> None:
    db_url = databases.new()
    with LiveServer(db_url, rate_limit=0) as server:
        operator = server.operator()
        now = wire.now_ms()
        campaign = operator.create_campaign(
            name="paced", shares={"budgeted": 1.0}, budget=COUPON * CAP_COUPONS, coupon_value=COUPON,
            lagrange_multiplier=0.5, pacing_gain=0.5, starts_ms=now - 1000, ends_ms=now + 3_600_000)["id"]
        users = _scored_users(server.url, 70, "paced")
        with ThreadPoolExecutor(max_workers=12) as pool:
            answers = list(pool.map(lambda u: server.operator().decide(campaign, u), users))
        granted = [a for a in answers if a["granted"]]
        assert len(granted) == CAP_COUPONS
        assert {a["reason"] for a in answers if not a["granted"]} == {"budget_exhausted"}
        # lambda_t = 0.5 + 0.5 * (spent share - elapsed share): it rose as the budget went
        lambdas = sorted(a["lagrange_multiplier"] for a in answers)
        assert lambdas[0] == pytest.approx(0.5, abs=0.01) and lambdas[-1] > 0.9
        assert _spent(db_url, campaign) == (CAP_COUPONS, CAP_COUPONS * 1000, CAP_COUPONS * 1000)
        budget = operator.report(campaign)["budget"]
        assert (budget["reserved"], budget["remaining"]) == (COUPON * CAP_COUPONS, 0.0)


@pytest.mark.slow
def test_a_killed_server_keeps_the_budgeted_cap(databases: Databases) -> None:
    """SIGKILL ``dipn serve`` (master and both workers) while decisions race for the last coupons,
    restart it on the same database, decide everyone again: the grants the server acknowledged
    exist, spend equals what is reserved, and never exceeds the cap."""
    db_url = databases.new()
    server = ServeProcess(db_url, workers=2).start()
    try:
        operator = OperatorClient(server.url, ADMIN)
        campaign = operator.create_campaign(name="paced-kill", shares={"budgeted": 1.0}, budget=COUPON * CAP_COUPONS,
                                            coupon_value=COUPON, lagrange_multiplier=0.5)["id"]
        users = _scored_users(server.url, 120, "kill")
        acked: list[dict] = []

        def decide(user: str) -> None:
            try:
                response = httpx.post(f"{server.url}/campaigns/{campaign}/decisions", json={"user_id": user},
                                      headers={"authorization": f"Bearer {ADMIN}"}, timeout=10)
            except httpx.TransportError:
                return
            if response.is_success:
                acked.append(response.json())

        with ThreadPoolExecutor(max_workers=8) as pool:
            futures = [pool.submit(decide, u) for u in users]
            while sum(a["granted"] for a in list(acked)) < CAP_COUPONS // 2 and not all(f.done() for f in futures):
                pass
            server.kill()
        assert any(a["granted"] for a in acked) and len(acked) < len(users), "the kill did not come mid-burst"
        server = ServeProcess(db_url, workers=2).start()
        operator = OperatorClient(server.url, ADMIN)
        with ThreadPoolExecutor(max_workers=6) as pool:
            after = list(pool.map(lambda u: operator.decide(campaign, u), users))
        report = operator.report(campaign)
    finally:
        server.stop()
    count, value, reserved = _spent(db_url, campaign)
    assert value == reserved <= CAP_COUPONS * 1000 and count == CAP_COUPONS
    holders = {a["user_id"]: a["coupon_id"] for a in after if a["granted"]}
    for answer in acked:
        if answer["granted"]:
            assert holders[answer["user_id"]] == answer["coupon_id"]
    assert report["budget"]["remaining"] == 0.0 and report["buckets"]["budgeted"]["granted"] == CAP_COUPONS


def test_lifecycle_schedule_pause_and_coupon_expiry(tmp_path) -> None:  # noqa: ANN001
    with LiveServer(f"sqlite:///{tmp_path}/l.db") as server:
        operator = server.operator()
        now = wire.now_ms()
        later = operator.create_campaign(name="later", shares={"all": 1.0}, starts_ms=now + 3_600_000)
        assert later["status"] == "scheduled"
        assert operator.decide(later["id"], "early-bird")["reason"] == "campaign_not_started"
        over = operator.create_campaign(name="over", shares={"all": 1.0}, starts_ms=now - 7_200_000,
                                        ends_ms=now - 3_600_000)
        assert over["status"] == "ended" and operator.decide(over["id"], "late")["reason"] == "campaign_ended"
        short = operator.create_campaign(name="short-lived coupons", shares={"all": 1.0}, coupon_ttl_ms=60_000)["id"]
        coupon = operator.decide(short, "buyer")
        assert coupon["granted"] and coupon["expires_ms"] is not None
        device = DeviceClient.register(server.url, "buyer")
        assert device.my_coupon(short)["expires_ms"] == coupon["expires_ms"]
        with pytest.raises(EndpointError) as refused:
            operator.record_order(short, "too-late", "buyer", 30.0, coupon_used=True, ts=coupon["expires_ms"] + 1)
        assert (refused.value.status, refused.value.code) == (409, "coupon_expired")
        assert not operator.record_order(short, "in-time", "buyer", 30.0, coupon_used=True,
                                         ts=coupon["expires_ms"] - 1)["duplicate"]
        assert operator.update_campaign(short, active=False)["status"] == "paused"
        assert operator.decide(short, "someone")["reason"] == "campaign_paused"
        assert operator.update_campaign(short, active=True)["status"] == "running"
        assert [c["name"] for c in operator.list_campaigns()] == ["later", "over", "short-lived coupons"]
        reasons = operator.report(short)["decisions"]["by_reason"]
        assert reasons == {"all_allocation": 1, "campaign_paused": 1}


def test_a_band_stated_as_a_grant_rate_over_live_scores_resolves_and_warns_when_it_misses(tmp_path) -> None:  # noqa: ANN001
    """Real-looking scores (0.01-0.06): the paper's band grants nobody and the report says so; a 20 %
    grant-rate band over the live scores grants about that share, and the read API gives it as
    probabilities."""
    with LiveServer(f"sqlite:///{tmp_path}/b.db", rate_limit=0) as server:
        operator = server.operator()
        rng = np.random.default_rng(1)
        http = httpx.Client(base_url=server.url, timeout=30)
        users = [f"tail-{i}" for i in range(100)]
        for user, p in zip(users, rng.uniform(0.01, 0.06, len(users)), strict=True):
            device = DeviceClient.register("", user, http=http)
            device.post_scores([device.score("tail-1", float(p), 0.1, ts=wire.now_ms() - 1000)])
        paper = operator.create_campaign(name="paper band", shares={"model": 1.0})["id"]
        for user in users:
            operator.decide(paper, user)
        report = operator.report(paper)
        assert report["buckets"]["model"]["granted"] == 0
        assert len(report["scores"]["warnings"]) == 2 and "holds 0.0% of the 100" in report["scores"]["warnings"][0]
        fitted = operator.create_campaign(name="fitted", shares={"model": 1.0},
                                          band={"kind": "grant_rate", "grant_rate": 0.2, "reference": "live"})
        assert fitted["band"]["kind"] == "grant_rate" and fitted["band"]["statement"]["reference_size"] == 100
        assert 0.01 < fitted["band"]["t_l"] < fitted["band"]["t_u"] <= 1.0
        assert operator.get_campaign(fitted["id"])["band"] == fitted["band"]
        granted = sum(operator.decide(fitted["id"], user)["granted"] for user in users)
        assert 18 <= granted <= 22
        assert operator.report(fitted["id"])["scores"]["warnings"] == []
        inline = operator.create_campaign(name="inline", shares={"model": 1.0}, band={
            "kind": "quantiles", "q_l": 0.5, "q_u": 1.0, "reference": "inline",
            "reference_scores": rng.uniform(0.01, 0.06, 500).tolist()})
        assert 0.03 < inline["band"]["t_l"] < 0.04 and inline["band"]["t_u"] == 1.0
        with pytest.raises(EndpointError) as refused:
            operator.create_campaign(name="x", band={"kind": "grant_rate", "reference": "live"})
        assert refused.value.status == 422 and "grant_rate" in refused.value.detail
