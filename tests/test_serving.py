"""The coupon endpoint (issue 6, items 4-5): a real uvicorn server on loopback, real SQLite, and a
real PostgreSQL started here where initdb/pg_ctl are installed."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("fastapi", reason="the serve extra (FastAPI, uvicorn, SQLAlchemy) is not installed")
import httpx  # noqa: E402
from sqlalchemy import func, inspect, select  # noqa: E402

from benchmarks import uplift_metrics  # noqa: E402
from dipn import wire  # noqa: E402
from dipn.commands import coupon_report  # noqa: E402
from dipn.serving import tables  # noqa: E402
from dipn.serving.buckets import assign_bucket, bucket_caps_cents  # noqa: E402
from dipn.serving.client import DeviceClient, EndpointError, OperatorClient  # noqa: E402
from dipn.serving.config import CampaignConfig, UpliftCurve  # noqa: E402
from dipn.serving.db import make_engine  # noqa: E402
from dipn.serving.metrics import BucketTotals, campaign_report, coupon_usage_rate, gmv_improvement_per_coupon  # noqa: E402
from dipn.serving.migrations import migrate  # noqa: E402
from dipn.serving.pgtemp import TempPostgres, postgres_unavailable  # noqa: E402
from dipn.serving.policy import decide, solve_lagrange_multiplier, within_thresholds  # noqa: E402
from dipn.serving.server import free_port  # noqa: E402
from tests.serve_process import ADMIN, LiveServer  # noqa: E402

# --- servers -------------------------------------------------------------------------------------


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    if request.param == "sqlite":
        db_url = f"sqlite:///{tmp_path_factory.mktemp('serving')}/endpoint.db"
        with LiveServer(db_url) as live:
            yield live
        return
    reason = postgres_unavailable()
    if reason:
        pytest.skip(reason)
    postgres = TempPostgres()
    try:
        db_url = postgres.start()
        with LiveServer(db_url) as live:
            yield live
    finally:
        postgres.stop()


@pytest.fixture(scope="module")
def sqlite_server(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    with LiveServer(f"sqlite:///{tmp_path_factory.mktemp('serving-sqlite')}/endpoint.db") as live:
        yield live


def users_in(bucket: str, salt: str, shares: dict[str, float], count: int, prefix: str) -> list[str]:
    """The first ``count`` user ids 'prefix-N' that hash into ``bucket``."""
    found, i = [], 0
    while len(found) < count:
        user = f"{prefix}-{i}"
        if assign_bucket(user, salt, shares) == bucket:
            found.append(user)
        i += 1
    return found


# --- pure parts ----------------------------------------------------------------------------------


def test_thresholds_default_to_the_papers_and_include_both_edges() -> None:
    config = CampaignConfig()
    assert (config.t_l, config.t_u, config.coupon_value) == (0.2, 0.4, 10.0)
    p = np.array([0.19999, 0.2, 0.3, 0.4, 0.40001])
    assert within_thresholds(p, config.t_l, config.t_u).tolist() == [False, True, True, True, False]
    assert decide("model", 0.2, config).grant and not decide("model", 0.41, config).grant
    assert decide("model", None, config).reason == "no_recent_score"
    assert decide("all", None, config).grant and not decide("none", 0.3, config).grant


def test_invalid_campaign_configs_are_refused_naming_the_field() -> None:
    with pytest.raises(ValueError, match="t_l must be <= t_u"):
        CampaignConfig(t_l=0.5, t_u=0.4)
    with pytest.raises(ValueError, match="shares must sum to 1"):
        CampaignConfig(shares={"none": 0.5, "all": 0.2})
    with pytest.raises(ValueError, match="unknown bucket"):
        CampaignConfig(shares={"none": 0.5, "treatment": 0.5})


def test_buckets_are_stable_and_follow_the_shares() -> None:
    shares = {"none": 0.1, "all": 0.3, "model": 0.6}
    users = [f"user-{i}" for i in range(20_000)]
    first = [assign_bucket(u, "salt-a", shares) for u in users]
    assert first == [assign_bucket(u, "salt-a", shares) for u in users]
    for bucket, share in shares.items():
        assert abs(first.count(bucket) / len(users) - share) < 0.015
    other_salt = [assign_bucket(u, "salt-b", shares) for u in users]
    assert np.mean([a != b for a, b in zip(first, other_salt, strict=True)]) > 0.3  # campaigns split independently
    assert sum(c for c in bucket_caps_cents(1001, shares).values()) <= 1001


def test_lagrange_multiplier_picks_the_best_value_per_cost_within_budget() -> None:
    values = np.array([9.0, 1.0, 6.0, 4.0, 0.5])
    weights = np.array([3.0, 1.0, 2.0, 2.0, 1.0])  # ratios 3, 1, 3, 2, 0.5
    lam = solve_lagrange_multiplier(values, weights, budget=5.0)
    chosen = values - lam * weights > 0
    assert chosen.tolist() == [True, False, True, False, False]  # spend 5, value 15
    assert solve_lagrange_multiplier(values, weights, budget=100.0) == 0.0
    lam = solve_lagrange_multiplier(values, weights, budget=7.0)
    assert (weights[values - lam * weights > 0]).sum() <= 7.0


def test_uplift_curve_peaks_at_mid_intent() -> None:
    curve = UpliftCurve(peak=0.15, mode=0.3, concentration=8.0)
    assert curve.lift(0.3) == pytest.approx(0.15)
    assert curve.lift(0.0) == 0.0 and curve.lift(1.0) == 0.0
    assert curve.lift(0.05) < curve.lift(0.2) < curve.lift(0.3) > curve.lift(0.5) > curve.lift(0.9)


def test_r_c_and_i_gmv_on_a_hand_computed_case() -> None:
    non = BucketTotals(users=100, granted=0, redeemers=0, gmv=1000.0)
    all_ = BucketTotals(users=200, granted=200, redeemers=50, gmv=3000.0)
    model = BucketTotals(users=100, granted=20, redeemers=12, gmv=1240.0)
    assert coupon_usage_rate(all_) == 0.25 and coupon_usage_rate(model) == 0.6
    # eq. (8): (3000 - 200/100 * 1000) / 50 = 20 ; (1240 - 100/100 * 1000) / 12 = 20
    assert gmv_improvement_per_coupon(all_, non) == pytest.approx(20.0)
    assert gmv_improvement_per_coupon(model, non) == pytest.approx(20.0)
    rows = campaign_report({"none": non, "all": all_, "model": model})
    assert rows["none"]["r_c"] is None and rows["none"]["i_gmv"] == 0.0
    assert rows["model"]["r_c_vs_all"] == pytest.approx(1.4)  # +140 %, as Table 7's '+41.1%'
    assert gmv_improvement_per_coupon(model, BucketTotals(0, 0, 0, 0.0)) is None


def test_uplift_metrics_on_a_hand_computed_case() -> None:
    # Four users, true effects 3, 1, 0, 2; all treated. Ranked by score: effects 3, 2, 1, 0.
    score, tau, w = np.array([0.9, 0.5, 0.1, 0.7]), np.array([3.0, 1.0, 0.0, 2.0]), np.ones(4)
    assert uplift_metrics.gain_curve(score, tau=tau).tolist() == [0, 3, 5, 6, 6]
    # normalized: 0, .5, 5/6, 1, 1 -> AUUC = (0 + .5 + .8333 + 1 + 1) / 5
    assert uplift_metrics.auuc_score(score, tau=tau, w=w) == pytest.approx((0.5 + 5 / 6 + 2) / 5)
    # the random line is 0, .25, .5, .75, 1: Qini = (3.3333 - 2.5) / 5
    assert uplift_metrics.qini_score(score, tau=tau, w=w) == pytest.approx((0.5 + 5 / 6 + 2 - 2.5) / 5)
    # From outcomes, qini(k) = Y_t - Y_c * N_t / N_c. In score order: treated buyer, control buyer,
    # treated buyer, control non-buyer: k=1 has no control yet (interpolated), then 0, 0, 2 - 1 * 2 / 2.
    y, w = np.array([1.0, 1.0, 1.0, 0.0]), np.array([1.0, 0.0, 1.0, 0.0])
    assert uplift_metrics.qini_curve(np.array([4.0, 3.0, 2.0, 1.0]), y=y, w=w).tolist() == [0, 0, 0, 0, 1]


def test_uplift_metrics_agree_with_causalml() -> None:
    pd = pytest.importorskip("pandas")
    causalml_metrics = pytest.importorskip("causalml.metrics", reason="causalml is not installed")
    rng = np.random.default_rng(3)
    n = 3000
    score, w = rng.random(n), rng.integers(0, 2, n).astype(float)
    tau = 0.1 * score + rng.normal(0, 0.05, n)
    y = (rng.random(n) < 0.2 + tau * w).astype(float)
    frame = pd.DataFrame({"model": score, "y": y, "w": w})
    assert uplift_metrics.qini_score(score, y=y, w=w) == pytest.approx(causalml_metrics.qini_score(frame)["model"])
    assert uplift_metrics.auuc_score(score, y=y, w=w) == pytest.approx(causalml_metrics.auuc_score(frame)["model"])
    frame["tau"] = tau
    assert uplift_metrics.qini_score(score, w=w, tau=tau) == pytest.approx(
        causalml_metrics.qini_score(frame, treatment_effect_col="tau")["model"])
    assert uplift_metrics.auuc_score(score, w=w, tau=tau) == pytest.approx(
        causalml_metrics.auuc_score(frame, treatment_effect_col="tau")["model"])


def test_migrated_schema_has_exactly_the_tables_and_columns_of_tables_py(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path}/m.db")
    assert migrate(engine) == [1, 2, 3]
    assert migrate(engine) == []  # idempotent
    assert _tables(engine) == {t.name: {c.name for c in t.columns} for t in tables.metadata.sorted_tables}
    engine.dispose()


def _tables(engine) -> dict[str, set[str]]:  # noqa: ANN001
    inspector = inspect(engine)
    actual = {name: {c["name"] for c in inspector.get_columns(name)} for name in inspector.get_table_names()}
    actual.pop("schema_version")
    return actual


def test_a_database_at_schema_2_migrates_to_3_keeping_its_grants(tmp_path: Path) -> None:
    """Schema 2 as it was shipped (no decisions table, grants without model version or expiry),
    with a grant in it: migration 3 adds what is missing and keeps the row."""
    from sqlalchemy import text

    engine = make_engine(f"sqlite:///{tmp_path}/v2.db")
    migrate(engine)
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE decisions"))
        conn.execute(text("ALTER TABLE grants DROP COLUMN model_version"))
        conn.execute(text("ALTER TABLE grants DROP COLUMN expires_ms"))
        conn.execute(text("DELETE FROM schema_version WHERE version = 3"))
        conn.execute(text("INSERT INTO campaigns (id, name, config, created_ms) VALUES (1, 'old', '{}', 0)"))
        conn.execute(text("INSERT INTO grants (campaign_id, user_id, bucket, value_cents, granted_ms) "
                          "VALUES (1, 'u', 'all', 1000, 5)"))
    assert migrate(engine) == [3]
    assert _tables(engine) == {t.name: {c.name for c in t.columns} for t in tables.metadata.sorted_tables}
    with engine.connect() as conn:
        row = conn.execute(select(tables.grants)).one()
    assert (row.user_id, row.value_cents, row.model_version, row.expires_ms) == ("u", 1000, None, None)
    engine.dispose()


def test_score_writer_prunes_nonces_older_than_twice_the_window(tmp_path: Path) -> None:
    from dipn.serving import ingest

    engine = make_engine(f"sqlite:///{tmp_path}/n.db")
    migrate(engine)
    with engine.begin() as conn:
        conn.execute(tables.devices.insert().values(device_id="a" * 32, user_id="u", public_key="00" * 32, created_ms=0))
        conn.execute(tables.request_nonces.insert(), [
            {"device_id": "a" * 32, "nonce": "old-nonce-0123456789", "created_ms": wire.now_ms() - 700_000},
            {"device_id": "a" * 32, "nonce": "new-nonce-0123456789", "created_ms": wire.now_ms() - 100_000}])
    writer = ingest.ScoreWriter(engine, max_batch=8, nonce_ttl_ms=300_000)
    writer.start()
    post = ingest.ScorePost("a" * 32, "u", "fresh-nonce-0123456", [
        {"model_version": "m", "p_realtime": 0.1, "p_longterm": 0.2, "ts": wire.now_ms()}], wire.now_ms())
    assert writer.submit(post).result(10) == ingest.PostResult(replay=False, accepted=1, duplicates=0)
    writer.stop()
    with engine.connect() as conn:
        nonces = set(conn.execute(select(tables.request_nonces.c.nonce)).scalars())
    assert nonces == {"new-nonce-0123456789", "fresh-nonce-0123456"}
    engine.dispose()


def test_the_client_module_does_not_pull_in_the_server_stack() -> None:
    code = ("import sys, dipn.serving.client; heavy = {'fastapi', 'sqlalchemy', 'pydantic', 'uvicorn', 'torch'};"
            "print(sorted(heavy & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# --- the live endpoint -----------------------------------------------------------------------------


def test_registered_device_posts_signed_scores_and_a_retry_is_a_duplicate(server: LiveServer) -> None:
    device = DeviceClient.register(server.url, "roundtrip-user")
    scores = [device.score("dipn-1", 0.31, 0.52, ts=wire.now_ms() - 1000 + i) for i in range(3)]
    assert device.post_scores(scores) == {"accepted": 3, "duplicates": 0}
    assert device.post_scores(scores) == {"accepted": 0, "duplicates": 3}  # re-signed retry: stored once
    with server.engine.connect() as conn:
        stored = conn.execute(select(tables.scores).where(tables.scores.c.device_id == device.device_id)).all()
    assert len(stored) == 3 and {r.user_id for r in stored} == {"roundtrip-user"}


def _bad_request_cases(device: DeviceClient, other: DeviceClient):  # noqa: ANN202
    """(name, method, path, body, headers, expected status, expected error code)."""
    now = wire.now_ms()
    good = [device.score("dipn-1", 0.3, 0.5, ts=now)]

    def signed(body: bytes, **kw) -> dict:  # noqa: ANN003
        return wire.signed_headers(device.device_id, device.secret, "POST", "/scores", body, **kw)

    def raw_scores(**override) -> bytes:  # noqa: ANN003
        return json.dumps({"scores": [{**good[0], **override}]}).encode()

    body = wire.encode_scores(good)
    tampered = body.replace(b"0.3", b"0.9")
    cases = [
        ("bad signature", body, {**signed(body), wire.HEADER_SIGNATURE: "0" * 64}, 401, "bad_signature"),
        ("body changed after signing", tampered, signed(body), 401, "bad_signature"),
        ("signed with another device's secret", body,
         wire.signed_headers(device.device_id, other.secret, "POST", "/scores", body), 401, "bad_signature"),
        ("stale timestamp", body, signed(body, timestamp_ms=now - 10 * 60_000), 401, "stale_timestamp"),
        ("timestamp from the future", body, signed(body, timestamp_ms=now + 10 * 60_000), 401, "stale_timestamp"),
        ("missing signature headers", body, {}, 401, "missing_signature"),
        ("unknown device", body,
         wire.signed_headers("f" * 32, device.secret, "POST", "/scores", body), 401, "unknown_device"),
    ]
    for name, payload in [
        ("p_realtime above 1", raw_scores(p_realtime=1.5)),
        ("p_longterm below 0", raw_scores(p_longterm=-0.1)),
        ("p_realtime NaN", raw_scores(p_realtime=float("nan"))),
        ("p_longterm infinite", raw_scores(p_longterm=float("inf"))),
        ("score as a string", raw_scores(p_realtime="0.3")),
        ("ts not milliseconds", raw_scores(ts=1_700_000)),
        ("ts in the future", raw_scores(ts=now + 3_600_000)),
        ("a field a device may not send", raw_scores(page="Page_Detail")),
        ("no scores", b'{"scores": []}'),
        ("not JSON", b"{scores"),
    ]:
        cases.append((name, payload, signed(payload), 422, "invalid_scores"))
    foreign = json.dumps({"scores": [{**good[0], "device_id": other.device_id}]}).encode()
    cases.append(("score of another device", foreign, signed(foreign), 403, "device_mismatch"))
    huge = json.dumps({"scores": [{**good[0], "ts": now + i} for i in range(900)]}).encode()
    cases.append(("oversized body", huge, signed(huge), 413, "body_too_large"))
    many = json.dumps({"scores": [{**good[0], "ts": now + i} for i in range(300)]}).encode()
    cases.append(("too many scores in one post", many, signed(many), 413, "too_many_scores"))
    return cases


def test_bad_score_posts_get_4xx_with_a_reason_and_store_no_score(server: LiveServer) -> None:
    """Unauthenticated refusals (401, and 413 for a body read no further) write nothing; an
    authenticated refusal (422, 403, 413 too_many_scores) leaves only its nonce and its count."""
    device = DeviceClient.register(server.url, "bad-request-user")
    other = DeviceClient.register(server.url, "other-user")
    http = httpx.Client(base_url=server.url)
    scores, nonces = server.count(tables.scores), server.count(tables.request_nonces)
    for name, body, headers, status, code in _bad_request_cases(device, other):
        response = http.post("/scores", content=body, headers={"content-type": "application/json", **headers})
        assert response.status_code == status, (name, response.text)
        assert response.json()["error"] == code, (name, response.text)
        assert response.json()["detail"], name
        nonces += status in (403, 422) or code == "too_many_scores"
        assert (server.count(tables.scores), server.count(tables.request_nonces)) == (scores, nonces), name
    # A replay: the same signed request twice. The first is stored, the second refused, writes nothing.
    body = wire.encode_scores([device.score("dipn-1", 0.3, 0.5)])
    headers = {"content-type": "application/json",
               **wire.signed_headers(device.device_id, device.secret, "POST", "/scores", body)}
    assert http.post("/scores", content=body, headers=headers).status_code == 200
    after_first = (server.count(tables.scores), server.count(tables.request_nonces))
    replay = http.post("/scores", content=body, headers=headers)
    assert replay.status_code == 409 and replay.json()["error"] == "replay"
    assert (server.count(tables.scores), server.count(tables.request_nonces)) == after_first


def test_concurrent_retries_grant_one_coupon_per_user(server: LiveServer) -> None:
    operator = server.operator()
    campaign = operator.create_campaign(name="race", shares={"all": 1.0}, budget=1000.0)
    users = [f"race-user-{i}" for i in range(4)]
    with ThreadPoolExecutor(max_workers=16) as pool:
        answers = list(pool.map(lambda u: server.operator().decide(campaign["id"], u), users * 12))
    assert all(a["granted"] for a in answers)
    for user in users:
        assert len({a["coupon_id"] for a in answers if a["user_id"] == user}) == 1
    with server.engine.connect() as conn:
        rows = conn.execute(select(tables.grants.c.user_id).where(tables.grants.c.campaign_id == campaign["id"])).all()
        reserved = conn.execute(select(func.sum(tables.bucket_budgets.c.reserved_cents))
                                .where(tables.bucket_budgets.c.campaign_id == campaign["id"])).scalar()
    assert sorted(r.user_id for r in rows) == sorted(users)
    assert reserved == len(users) * 1000  # one 10.00 coupon each, no reservation leaked by the losers


def test_budget_cap_is_never_exceeded_under_concurrent_requests(server: LiveServer) -> None:
    operator = server.operator()
    campaign = operator.create_campaign(name="budget", shares={"all": 1.0}, budget=55.0, coupon_value=10.0)
    with ThreadPoolExecutor(max_workers=16) as pool:
        answers = list(pool.map(lambda u: server.operator().decide(campaign["id"], u),
                                [f"budget-user-{i}" for i in range(40)]))
    granted = [a for a in answers if a["granted"]]
    assert len(granted) == 5  # 5 x 10.00 <= 55.00 < 6 x 10.00
    assert {a["reason"] for a in answers if not a["granted"]} == {"budget_exhausted"}
    metrics = operator.metrics(campaign["id"])["buckets"]["all"]
    assert metrics["reserved"] == 50.0 and metrics["granted"] == 5
    with pytest.raises(EndpointError) as refused:
        operator.update_campaign(campaign["id"], budget=40.0)  # below the 50.00 already reserved
    assert (refused.value.status, refused.value.code) == (409, "budget_below_reserved")
    operator.update_campaign(campaign["id"], budget=65.0)
    assert operator.decide(campaign["id"], "budget-user-late")["granted"]


def test_model_bucket_uses_the_latest_recent_score_and_the_thresholds(sqlite_server: LiveServer) -> None:
    operator = sqlite_server.operator()
    campaign = operator.create_campaign(name="thresholds", shares={"model": 1.0})
    cid = campaign["id"]
    assert operator.decide(cid, "nobody-scored")["reason"] == "no_recent_score"
    inside, outside, old = (DeviceClient.register(sqlite_server.url, u) for u in ("in-user", "out-user", "old-user"))
    now = wire.now_ms()
    inside.post_scores([inside.score("m", 0.9, 0.5, ts=now - 5000), inside.score("m", 0.25, 0.5, ts=now - 1000)])
    outside.post_scores([outside.score("m", 0.45, 0.5, ts=now - 1000)])
    old.post_scores([old.score("m", 0.3, 0.5, ts=now - 2 * 3_600_000)])  # older than score_max_age_ms
    first = operator.decide(cid, "in-user")  # the latest score (0.25) counts, not the highest
    assert (first["granted"], first["reason"], first["p_realtime"]) == (True, "within_thresholds", 0.25)
    assert operator.decide(cid, "in-user")["reason"] == "already_granted"
    first = operator.decide(cid, "out-user")
    assert (first["granted"], first["reason"], first["p_realtime"]) == (False, "outside_thresholds", 0.45)
    assert operator.decide(cid, "old-user")["reason"] == "no_recent_score"
    operator.update_campaign(cid, t_u=0.5)
    assert operator.decide(cid, "out-user")["granted"]


def test_budgeted_bucket_grants_when_value_beats_the_lagrange_price(sqlite_server: LiveServer) -> None:
    operator = sqlite_server.operator()
    campaign = operator.create_campaign(name="knapsack", shares={"budgeted": 1.0}, lagrange_multiplier=1.0,
                                        basket_value=100.0, coupon_value=10.0)
    # v = lift(p) * 100 > 1.0 * 10  <=>  lift(p) > 0.1: true at p = 0.3 (0.15), false at p = 0.6 (0.03)
    mid = DeviceClient.register(sqlite_server.url, "mid-user")
    high = DeviceClient.register(sqlite_server.url, "high-user")
    mid.post_scores([mid.score("m", 0.3, 0.5)])
    high.post_scores([high.score("m", 0.6, 0.5)])
    mid_answer, high_answer = operator.decide(campaign["id"], "mid-user"), operator.decide(campaign["id"], "high-user")
    assert mid_answer["granted"] and mid_answer["expected_incremental_gmv"] == pytest.approx(15.0)
    assert not high_answer["granted"] and high_answer["reason"] == "below_lagrange_price"


def test_orders_are_idempotent_and_a_coupon_is_used_once(sqlite_server: LiveServer) -> None:
    operator = sqlite_server.operator()
    cid = operator.create_campaign(name="orders", shares={"all": 1.0})["id"]
    with pytest.raises(EndpointError) as refused:
        operator.record_order(cid, "o-0", "buyer", 50.0, coupon_used=True, ts=wire.now_ms())
    assert (refused.value.status, refused.value.code) == (409, "no_coupon")
    operator.decide(cid, "buyer")
    ts = wire.now_ms()
    assert not operator.record_order(cid, "o-1", "buyer", 50.0, coupon_used=True, ts=ts)["duplicate"]
    assert operator.record_order(cid, "o-1", "buyer", 50.0, coupon_used=True, ts=ts)["duplicate"]
    with pytest.raises(EndpointError) as refused:
        operator.record_order(cid, "o-1", "buyer", 60.0, coupon_used=True, ts=ts)
    assert refused.value.code == "order_conflict"
    with pytest.raises(EndpointError) as refused:
        operator.record_order(cid, "o-2", "buyer", 10.0, coupon_used=True, ts=ts)
    assert refused.value.code == "coupon_already_used"
    with pytest.raises(EndpointError) as refused:
        operator.record_order(cid, "o-3", "buyer", -1.0, ts=ts)
    assert refused.value.status == 422


def test_operator_routes_need_the_admin_token(sqlite_server: LiveServer) -> None:
    assert httpx.post(f"{sqlite_server.url}/campaigns", json={"name": "x"}).status_code == 401
    wrong = OperatorClient(sqlite_server.url, "wrong")
    with pytest.raises(EndpointError) as refused:
        wrong.create_campaign(name="x")
    assert refused.value.status == 403
    with pytest.raises(EndpointError) as refused:
        sqlite_server.operator().create_campaign(name="x", t_l=0.5, t_u=0.3)
    assert refused.value.status == 422 and "t_l must be <= t_u" in refused.value.detail


def test_metrics_route_and_coupon_report_give_r_c_and_i_gmv_of_a_hand_computed_campaign(
    sqlite_server: LiveServer, capsys: pytest.CaptureFixture, tmp_path: Path
) -> None:
    shares = {"none": 0.3, "all": 0.4, "model": 0.3}
    operator = sqlite_server.operator()
    cid = operator.create_campaign(name="table7", shares=shares, salt="hand-computed")["id"]
    none = users_in("none", "hand-computed", shares, 4, "t7")
    all_ = users_in("all", "hand-computed", shares, 4, "t7")
    model = users_in("model", "hand-computed", shares, 4, "t7")
    now = wire.now_ms()
    for k, (user, p) in enumerate(zip(model, (0.3, 0.35, 0.9, 0.05), strict=True)):  # two inside [0.2, 0.4]
        device = DeviceClient.register(sqlite_server.url, user)
        device.post_scores([device.score("m1" if k < 2 else "m2", p, 0.5, ts=now - 1000)])
    for user in none + all_ + model:
        operator.decide(cid, user)
    orders = [  # (user, gmv, coupon used)
        (none[0], 100.0, False), (none[1], 100.0, False),  # G_non = 200, N_non = 4
        (all_[0], 120.0, True), (all_[1], 80.0, False), (all_[2], 100.0, True),  # G_all = 300, 2 used of 4
        (model[0], 150.0, True), (model[2], 90.0, False),  # G_model = 240, 1 used of 2 granted
    ]
    for i, (user, gmv, used) in enumerate(orders):
        operator.record_order(cid, f"order-{i}", user, gmv, coupon_used=used, ts=now)
    buckets = operator.metrics(cid)["buckets"]
    assert {b: (r["users"], r["granted"], r["redeemers"], r["gmv"]) for b, r in buckets.items()} == {
        "none": (4, 0, 0, 200.0), "all": (4, 4, 2, 300.0), "model": (4, 2, 1, 240.0)}
    assert buckets["all"]["r_c"] == 0.5 and buckets["model"]["r_c"] == 0.5
    assert buckets["all"]["i_gmv"] == pytest.approx((4 * 300 - 4 * 200) / (4 * 2))  # 50
    assert buckets["model"]["i_gmv"] == pytest.approx((4 * 240 - 4 * 200) / (4 * 1))  # 40
    assert buckets["none"]["i_gmv"] == 0.0 and buckets["none"]["r_c"] is None
    assert buckets["model"]["i_gmv_vs_all"] == pytest.approx(-0.2)

    args = argparse.Namespace(db=sqlite_server.db_url, url=None, admin_token_file=None, campaign=[cid], json=True)
    coupon_report.run(args)
    report = json.loads(capsys.readouterr().out)[0]
    reported = report["buckets"]
    assert {b: {k: row[k] for k in buckets[b]} for b, row in reported.items()} == buckets  # the same figures
    assert reported["model"]["grant_rate"] == 0.5 and reported["all"]["grant_rate"] == 1.0
    # per model version: m1 scored model[0] and model[1] (both granted, model[0] used it, GMV 150),
    # m2 model[2] and model[3] (outside the band: no coupon; GMV 90); the none bucket is everyone's control
    m1, m2 = report["model_versions"]["m1"]["buckets"]["model"], report["model_versions"]["m2"]["buckets"]["model"]
    assert (m1["users"], m1["granted"], m1["redeemers"], m1["gmv"]) == (2, 2, 1, 150.0)
    assert m1["r_c"] == 0.5 and m1["i_gmv"] == pytest.approx((4 * 150 - 2 * 200) / (4 * 1))  # 50
    assert m1["r_c_interval"][0] <= m1["r_c"] <= m1["r_c_interval"][1]
    assert (m2["users"], m2["granted"], m2["gmv"], m2["r_c"], m2["i_gmv"]) == (2, 0, 90.0, None, None)
    token_file = tmp_path / "admin-token"
    token_file.write_text(ADMIN + "\n")
    args = argparse.Namespace(db=None, url=sqlite_server.url, admin_token_file=str(token_file), campaign=[cid],
                              json=False)
    coupon_report.run(args)
    table = capsys.readouterr().out
    assert "model" in table and "50.0%" in table and "40.00 [" in table
    assert "decisions by reason: " in table and "within_thresholds 2" in table
    assert "model m1: 2 decisions, 2 coupons, 1 used" in table and "50.00 [" in table


def test_coupon_report_takes_the_operator_token_from_the_environment_never_from_argv(
    sqlite_server: LiveServer, tmp_path: Path
) -> None:
    """As dipn serve: DIPN_ADMIN_TOKEN or a file; --admin-token VALUE is refused, naming both."""
    cid = sqlite_server.operator().create_campaign(name="token-from-env")["id"]
    environ = {k: v for k, v in os.environ.items() if not k.startswith("DIPN_")}

    def report(*extra: str, **env: str) -> subprocess.CompletedProcess:
        command = [sys.executable, "-m", "dipn.cli", "coupon-report", "--url", sqlite_server.url, "--campaign",
                   str(cid), *extra]  # fmt: skip
        return subprocess.run(command, env=environ | env, capture_output=True, text=True, timeout=60, check=False)

    from_env = report("--json", DIPN_ADMIN_TOKEN=ADMIN)
    assert from_env.returncode == 0, from_env.stderr
    assert json.loads(from_env.stdout)[0]["name"] == "token-from-env"
    token_file = tmp_path / "admin-token"
    token_file.write_text(ADMIN + "\n")
    for from_file in (report("--admin-token-file", str(token_file)), report(DIPN_ADMIN_TOKEN_FILE=str(token_file))):
        assert from_file.returncode == 0 and "token-from-env" in from_file.stdout, from_file.stderr
    on_argv = report("--admin-token", ADMIN)
    error = on_argv.stderr.strip().splitlines()[-1]  # argparse's usage, then its one-line error
    assert on_argv.returncode == 2 and "Traceback" not in on_argv.stderr and ADMIN not in on_argv.stderr
    assert "ps shows it" in error and "DIPN_ADMIN_TOKEN" in error and "--admin-token-file" in error
    blank = report(DIPN_ADMIN_TOKEN=" ")
    assert blank.returncode == 2 and "empty token" in blank.stderr and "Traceback" not in blank.stderr
    without = report()
    assert without.returncode == 2 and without.stderr.count("\n") == 1, without.stderr
    assert "401 missing_token" in without.stderr and "DIPN_ADMIN_TOKEN or a file" in without.stderr


@pytest.mark.slow
def test_no_acknowledged_score_is_lost_when_the_server_is_killed(tmp_path: Path) -> None:
    """dipn serve with 2 workers, SIGKILLed under load, restarted: every acked score is stored."""
    from benchmarks import endpoint_load

    db_url = f"sqlite:///{tmp_path}/crash.db"
    port = free_port()
    server = endpoint_load.start_server(db_url, port, workers=2)
    try:
        http = httpx.Client(base_url=f"http://127.0.0.1:{port}")
        devices = [DeviceClient.register("", f"crash-user-{i}", http=http) for i in range(20)]
        requests = endpoint_load.presign(devices, 20_000, 2, port)

        def kill() -> None:
            time.sleep(2.0)
            endpoint_load._kill_tree(server)

        result = endpoint_load.run_phase(port, requests, 32, 0.0, 4.0, during=kill)
    finally:
        if server.poll() is None:
            endpoint_load._kill_tree(server)
    assert result["acked"], "nothing was acknowledged before the kill"
    engine = make_engine(db_url)
    with engine.connect() as conn:
        stored = {(r.device_id, r.ts) for r in conn.execute(select(tables.scores.c.device_id, tables.scores.c.ts))}
    engine.dispose()
    for index in result["acked"]:
        body = requests[index].split(b"\r\n\r\n", 1)[1]
        for score in json.loads(body)["scores"]:
            assert (score["device_id"], score["ts"]) in stored


def test_coupon_ab_benchmark_reports_table7_a_threshold_sweep_and_qini(tmp_path: Path) -> None:
    from benchmarks import coupon_ab

    assert coupon_ab.main(["--users", "20000", "--out", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "coupon_ab.json").read_text())
    rows = report["table7"]["rows"]
    assert set(rows) == {"none", "all", "model", "budgeted"}
    assert rows["all"]["granted"] == rows["all"]["users"] and rows["none"]["granted"] == 0
    # The budgeted bucket never spends more than the model bucket's budget.
    assert rows["budgeted"]["coupon_share"] <= report["table7"]["coupons_per_user_budget"] + 1e-9
    sweep = report["sweep"]
    assert len(sweep["rows"]) == 21 * 20 // 2
    assert sweep["best_under_budget"]["coupon_share"] <= sweep["budget_coupons_per_user"] + 1e-9
    scores = report["uplift"]["scores"]
    assert scores["oracle (true uplift)"]["qini_true"] > scores["random"]["qini_true"]
    assert "Qini" in (tmp_path / "coupon_ab.md").read_text()


def test_per_version_rows_cover_the_versions_with_the_most_decisions_only() -> None:
    """Devices name their model version: a report over many versions stays bounded (MAX_VERSIONS)."""
    from dipn.serving.config import BUCKETS
    from dipn.serving.intervals import user_weights
    from dipn.serving.report import MAX_VERSIONS, UserTable, version_rows

    n = 40  # users 0-9 in the none bucket, 10-39 in the model bucket, each under a version of its own
    bucket = np.array([BUCKETS.index("none")] * 10 + [BUCKETS.index("model")] * 30)
    granted = np.where(np.arange(n) % 2 == 1, 1.0, np.inf)
    users = UserTable(bucket=bucket, seen_ms=np.zeros(n), granted_ms=granted, coupon_value=np.where(granted < 9, 10.0, 0),
                      redeemed_ms=np.full(n, np.inf), order_user=np.array([0, 11], dtype=np.int64),
                      order_ms=np.zeros(2), order_gmv=np.array([50.0, 80.0]))  # fmt: skip
    version_of = [None] * 10 + [f"v{i:02d}" for i in range(30)]
    decisions = {f"v{i:02d}": 100 - i for i in range(30)}  # v00 has the most
    rows = version_rows(users, version_of, user_weights(np.arange(n), rounds=50), {"none": 0.25, "model": 0.75},
                        decisions)  # fmt: skip
    assert list(rows) == [f"v{i:02d}" for i in range(MAX_VERSIONS)]
    assert rows["v01"]["model"]["users"] == 1 and rows["v01"]["model"]["granted"] == 1  # user 11: coupon, GMV 80
    assert rows["v01"]["model"]["gmv"] == 80.0 and rows["v01"]["model"]["r_c"] == 0.0
    assert rows["v00"]["model"]["granted"] == 0 and rows["v00"]["model"]["r_c"] is None
