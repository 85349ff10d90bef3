"""Reads and writes of devices, campaigns, decisions, orders and per-bucket totals.

(Score posts go through ``ingest``, which commits them in groups.) Every write that must be
race-free across workers and hosts rests on a database guarantee, not on a lock in this process:
- one coupon per (campaign, user): a unique constraint; a racing second grant inserts nothing and
  its transaction, including its budget reservation, is rolled back;
- the budget cap: a conditional update, ``reserved + value <= cap``, on the bucket's budget row;
- one use per coupon: a conditional update, ``redeemed_order_id IS NULL``.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import asdict, dataclass, replace

import numpy as np
from sqlalchemy import Connection, Engine, func, select

from dipn.serving import auth, band
from dipn.serving.buckets import assign_bucket, bucket_caps_cents
from dipn.serving.budget import paced_multiplier
from dipn.serving.config import BUCKETS, CampaignConfig, UpliftCurve
from dipn.serving.db import read_tx, write_tx
from dipn.serving.metrics import BucketTotals
from dipn.serving.policy import decide
from dipn.serving.tables import assignments, bucket_budgets, campaigns, decisions, devices, grants, orders, scores


class StoreError(Exception):
    """A request the data refuses; ``status`` and ``code`` go back to the client."""

    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail = status, code, detail


class _Rollback(Exception):
    """Raised inside a transaction to undo it; carries what to answer instead."""


@dataclass(frozen=True)
class DeviceAuth:
    device_id: str
    user_id: str
    public_key: str | None  # hex Ed25519; None: registered before keys moved to devices (must re-register)


def to_cents(amount: float) -> int:
    return round(amount * 100)


def insert_ignore(conn: Connection, table):  # noqa: ANN001, ANN201 (a Table; an Insert)
    """INSERT ... ON CONFLICT DO NOTHING, on SQLite and PostgreSQL."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(table).on_conflict_do_nothing()


# --- devices -------------------------------------------------------------------------------------


def register_device(engine: Engine, user_id: str, platform: str | None, public_key: str, now_ms: int) -> DeviceAuth:
    device = DeviceAuth(auth.new_device_id(), user_id, public_key)
    with write_tx(engine) as conn:
        conn.execute(
            devices.insert().values(device_id=device.device_id, user_id=user_id, public_key=public_key,
                                    platform=platform, created_ms=now_ms)  # fmt: skip
        )
    return device


def find_device(engine: Engine, device_id: str) -> DeviceAuth | None:
    with read_tx(engine) as conn:
        row = conn.execute(
            select(devices.c.user_id, devices.c.public_key).where(devices.c.device_id == device_id)
        ).first()
    return None if row is None else DeviceAuth(device_id, row.user_id, row.public_key)


# --- campaigns -----------------------------------------------------------------------------------


def config_to_json(config: CampaignConfig) -> str:
    return json.dumps(asdict(config), sort_keys=True)


def config_from_json(text: str) -> CampaignConfig:
    values = json.loads(text)
    values["uplift"] = UpliftCurve(**values["uplift"])
    return CampaignConfig(**values)


def create_campaign(engine: Engine, config: CampaignConfig, now_ms: int) -> tuple[int, CampaignConfig]:
    if not config.salt:
        config = replace(config, salt=secrets.token_hex(8))
    budget_cents = None if config.budget is None else to_cents(config.budget)
    with write_tx(engine) as conn:
        config = resolve_band(conn, config, now_ms)
        campaign_id = conn.execute(
            campaigns.insert().values(name=config.name, config=config_to_json(config), created_ms=now_ms)
        ).inserted_primary_key[0]
        caps = bucket_caps_cents(budget_cents, config.shares)
        conn.execute(
            bucket_budgets.insert(),
            [{"campaign_id": campaign_id, "bucket": b, "cap_cents": caps[b], "reserved_cents": 0} for b in BUCKETS],
        )
    return int(campaign_id), config


def resolve_band(conn: Connection, config: CampaignConfig, now_ms: int) -> CampaignConfig:
    """A band stated over reference scores becomes t_l, t_u now: over the scores given inline, or
    over each user's latest score within ``score_max_age_ms`` (``reference: live``). The campaign
    keeps the statement, with the size of its reference instead of the scores."""
    if not config.band:
        return config
    statement = dict(config.band)
    inline = statement.pop("reference_scores", None)
    if statement.get("resolved_ms") is not None:
        return config  # resolved when it was stated
    reference = live_scores(conn, now_ms - config.score_max_age_ms) if statement.get("reference") == "live" \
        else np.asarray(inline or [], dtype=np.float64)
    try:
        resolved = band.resolve(statement, reference, config.uplift, config.basket_value)
    except band.BandError as exc:
        raise StoreError(422, "invalid_band", f"band over the {statement.get('reference')} scores: {exc}") from None
    return replace(config, t_l=resolved.t_l, t_u=resolved.t_u,
                   band=statement | {"reference_size": int(len(reference)), "resolved_ms": now_ms})


def live_scores(conn: Connection, since_ms: int, limit: int = 1_000_000) -> np.ndarray:
    """Each user's latest p_realtime at or after ``since_ms`` (the population a campaign would see now)."""
    latest = (select(scores.c.user_id, func.max(scores.c.ts).label("ts"))
              .where(scores.c.ts >= since_ms).group_by(scores.c.user_id).limit(limit).subquery())
    rows = conn.execute(
        select(scores.c.user_id, func.max(scores.c.p_realtime))
        .join(latest, (scores.c.user_id == latest.c.user_id) & (scores.c.ts == latest.c.ts))
        .group_by(scores.c.user_id)
    ).all()
    return np.array([row[1] for row in rows], dtype=np.float64)


def list_campaigns(engine: Engine) -> list[tuple[int, int, CampaignConfig]]:
    """(id, created_ms, config) of every campaign, oldest first."""
    with read_tx(engine) as conn:
        rows = conn.execute(select(campaigns.c.id, campaigns.c.created_ms, campaigns.c.config).order_by(campaigns.c.id))
        return [(int(r.id), int(r.created_ms), config_from_json(r.config)) for r in rows]


MAX_ID = 2**63 - 1  # ids are 64-bit: a larger one names no campaign (and would overflow the driver)


def load_campaign(conn: Connection, campaign_id: int) -> CampaignConfig:
    if not 1 <= campaign_id <= MAX_ID:
        raise StoreError(404, "unknown_campaign", f"no campaign {campaign_id} (ids are 1 to 2**63 - 1)")
    text = conn.execute(select(campaigns.c.config).where(campaigns.c.id == campaign_id)).scalar()
    if text is None:
        raise StoreError(404, "unknown_campaign", f"no campaign {campaign_id}")
    return config_from_json(text)


def get_campaign(engine: Engine, campaign_id: int) -> CampaignConfig:
    with read_tx(engine) as conn:
        return load_campaign(conn, campaign_id)


def update_campaign(engine: Engine, campaign_id: int, changes: dict, now_ms: int) -> CampaignConfig:
    """Change thresholds, budget, Lagrange multiplier or activity; a budget below what is already
    reserved in some bucket is refused."""
    with write_tx(engine) as conn:
        config = load_campaign(conn, campaign_id)
        try:
            config = replace(config, **changes)  # __post_init__ checks the result
        except ValueError as exc:
            raise StoreError(422, "invalid_campaign", str(exc)) from exc
        if "band" in changes:
            config = resolve_band(conn, config, now_ms)
        elif {"t_l", "t_u"} & set(changes):
            config = replace(config, band=None)  # the band is now stated as probabilities
        if "budget" in changes:
            caps = bucket_caps_cents(None if config.budget is None else to_cents(config.budget), config.shares)
            for bucket, cap in caps.items():
                statement = (
                    bucket_budgets.update()
                    .where(bucket_budgets.c.campaign_id == campaign_id, bucket_budgets.c.bucket == bucket)
                    .values(cap_cents=cap)
                )
                if cap is not None:
                    statement = statement.where(bucket_budgets.c.reserved_cents <= cap)
                updated = conn.execute(statement).rowcount
                if updated != 1:
                    raise StoreError(409, "budget_below_reserved",
                                     f"bucket {bucket} has already reserved more than {cap / 100:.2f}")
        conn.execute(campaigns.update().where(campaigns.c.id == campaign_id).values(config=config_to_json(config)))
    return config


# --- decisions -----------------------------------------------------------------------------------


def latest_score(conn: Connection, user_id: str, since_ms: int):  # noqa: ANN201 (a Row or None)
    """The user's most recent (p_realtime, model_version, ts) from any of their devices, if at or
    after ``since_ms``."""
    return conn.execute(
        select(scores.c.p_realtime, scores.c.model_version, scores.c.ts)
        .where(scores.c.user_id == user_id, scores.c.ts >= since_ms)
        .order_by(scores.c.ts.desc())
        .limit(1)
    ).first()


def _grant_of(conn: Connection, campaign_id: int, user_id: str):  # noqa: ANN202 (a Row or None)
    return conn.execute(
        select(grants.c.id, grants.c.value_cents, grants.c.p_realtime, grants.c.redeemed_order_id, grants.c.bucket,
               grants.c.model_version, grants.c.expires_ms)
        .where(grants.c.campaign_id == campaign_id, grants.c.user_id == user_id)
    ).first()


def _assign(conn: Connection, campaign_id: int, user_id: str, bucket: str, now_ms: int) -> None:
    conn.execute(
        insert_ignore(conn, assignments)
        .values(campaign_id=campaign_id, user_id=user_id, bucket=bucket, first_seen_ms=now_ms)
    )


def decide_coupon(engine: Engine, campaign_id: int, user_id: str, now_ms: int) -> dict:
    """Decide, and grant at most once: a retry, or a racing request, gets the same coupon back.
    Every answer is recorded in ``decisions`` with its reason and the score's model version."""
    try:
        with write_tx(engine) as conn:
            answer = _decide_in(conn, campaign_id, user_id, now_ms)
            _record_decision(conn, answer, now_ms)
            return answer
    except _Rollback:
        with write_tx(engine) as conn:  # a concurrent request granted first: answer with its coupon
            answer = _granted_answer(campaign_id, user_id, _grant_of(conn, campaign_id, user_id), "already_granted")
            _record_decision(conn, answer, now_ms)
            return answer


def lifecycle_refusal(config: CampaignConfig, now_ms: int) -> str | None:
    """Why a campaign decides nothing now: paused, not started, or ended; None when it runs."""
    if not config.active:
        return "campaign_paused"
    if config.starts_ms is not None and now_ms < config.starts_ms:
        return "campaign_not_started"
    if config.ends_ms is not None and now_ms >= config.ends_ms:
        return "campaign_ended"
    return None


def _record_decision(conn: Connection, answer: dict, now_ms: int) -> None:
    conn.execute(decisions.insert().values(
        campaign_id=answer["campaign_id"], user_id=answer["user_id"], bucket=answer["bucket"],
        granted=answer["granted"], reason=answer["reason"], p_realtime=answer.get("p_realtime"),
        model_version=answer.get("model_version"), score_ts=answer.pop("score_ts", None), decided_ms=now_ms))


def _decide_in(conn: Connection, campaign_id: int, user_id: str, now_ms: int) -> dict:
    config = load_campaign(conn, campaign_id)
    bucket = assign_bucket(user_id, config.salt, config.shares)
    answer = {"campaign_id": campaign_id, "user_id": user_id, "bucket": bucket, "granted": False}
    refusal = lifecycle_refusal(config, now_ms)
    if refusal is not None:
        return answer | {"reason": refusal}
    _assign(conn, campaign_id, user_id, bucket, now_ms)
    existing = _grant_of(conn, campaign_id, user_id)
    if existing is not None:
        return _granted_answer(campaign_id, user_id, existing, "already_granted")
    score = None if bucket in ("none", "all") else latest_score(conn, user_id, now_ms - config.score_max_age_ms)
    p_realtime = None if score is None else score.p_realtime
    budget = bucket_budgets.c
    if bucket == "budgeted" and p_realtime is not None:
        row = conn.execute(select(budget.cap_cents, budget.reserved_cents)
                           .where(budget.campaign_id == campaign_id, budget.bucket == bucket)).first()
        paced = paced_multiplier(config, row.reserved_cents, row.cap_cents, now_ms)
        config = replace(config, lagrange_multiplier=paced)
    decision = decide(bucket, p_realtime, config)
    answer |= {"reason": decision.reason, "p_realtime": p_realtime,
               "model_version": None if score is None else score.model_version,
               "score_ts": None if score is None else score.ts,
               "expected_incremental_gmv": decision.expected_incremental_gmv}
    if bucket == "budgeted" and p_realtime is not None:
        answer["lagrange_multiplier"] = config.lagrange_multiplier
    if not decision.grant:
        return answer
    value_cents = to_cents(config.coupon_value)
    reserved = conn.execute(
        bucket_budgets.update()
        .where(budget.campaign_id == campaign_id, budget.bucket == bucket)
        .where(budget.cap_cents.is_(None) | (budget.reserved_cents + value_cents <= budget.cap_cents))
        .values(reserved_cents=budget.reserved_cents + value_cents)
    ).rowcount
    if reserved != 1:
        return answer | {"reason": "budget_exhausted"}
    expires_ms = None if config.coupon_ttl_ms is None else now_ms + config.coupon_ttl_ms
    coupon_id = conn.execute(
        insert_ignore(conn, grants)
        .values(campaign_id=campaign_id, user_id=user_id, bucket=bucket, value_cents=value_cents,
                p_realtime=p_realtime, model_version=answer["model_version"], expires_ms=expires_ms, granted_ms=now_ms)
        .returning(grants.c.id)
    ).scalar()
    if coupon_id is None:
        raise _Rollback  # another transaction granted this user's coupon: undo our reservation
    return answer | {"granted": True, "coupon_id": int(coupon_id), "coupon_value": value_cents / 100,
                     "expires_ms": expires_ms}


def coupon_of(engine: Engine, campaign_id: int, user_id: str) -> dict:
    """What a device may read: its own user's coupon in a campaign, if one was granted."""
    with read_tx(engine) as conn:
        load_campaign(conn, campaign_id)  # 404 for an unknown campaign
        grant = _grant_of(conn, campaign_id, user_id)
    if grant is None:
        return {"campaign_id": campaign_id, "granted": False}
    return {"campaign_id": campaign_id, "granted": True, "coupon_id": int(grant.id),
            "coupon_value": grant.value_cents / 100, "redeemed": grant.redeemed_order_id is not None,
            "expires_ms": grant.expires_ms}


def _granted_answer(campaign_id: int, user_id: str, grant, reason: str) -> dict:  # noqa: ANN001 (a Row)
    return {
        "campaign_id": campaign_id, "user_id": user_id, "bucket": grant.bucket, "granted": True, "reason": reason,
        "coupon_id": int(grant.id), "coupon_value": grant.value_cents / 100, "p_realtime": grant.p_realtime,
        "model_version": grant.model_version, "expires_ms": grant.expires_ms,
    }


# --- orders --------------------------------------------------------------------------------------


def record_order(engine: Engine, campaign_id: int, order: dict, now_ms: int) -> dict:
    """Record a purchase (idempotent by order_id); a coupon use must match an unused grant."""
    try:
        with write_tx(engine) as conn:
            return _record_order_in(conn, campaign_id, order, now_ms)
    except _Rollback:
        with read_tx(engine) as conn:
            return _same_order_or_conflict(conn, campaign_id, order)


def _record_order_in(conn: Connection, campaign_id: int, order: dict, now_ms: int) -> dict:
    config = load_campaign(conn, campaign_id)
    bucket = assign_bucket(order["user_id"], config.salt, config.shares)
    if conn.execute(
        select(orders.c.order_id).where(orders.c.campaign_id == campaign_id, orders.c.order_id == order["order_id"])
    ).first():
        return _same_order_or_conflict(conn, campaign_id, order)
    _assign(conn, campaign_id, order["user_id"], bucket, now_ms)
    if order["coupon_used"]:
        grant = _grant_of(conn, campaign_id, order["user_id"])
        if grant is None:
            raise StoreError(409, "no_coupon",
                             f"user {order['user_id']} was granted no coupon in campaign {campaign_id}")
        if grant.expires_ms is not None and order["ts"] > grant.expires_ms:
            raise StoreError(409, "coupon_expired",
                             f"the coupon of user {order['user_id']} expired at {grant.expires_ms} (ms), "
                             f"before the order at {order['ts']}")
        used = conn.execute(
            grants.update()
            .where(grants.c.id == grant.id, grants.c.redeemed_order_id.is_(None))
            .values(redeemed_order_id=order["order_id"])
        ).rowcount
        if used != 1:
            raise StoreError(409, "coupon_already_used",
                             f"the coupon of user {order['user_id']} was used by another order")
    inserted = conn.execute(
        insert_ignore(conn, orders)
        .values(campaign_id=campaign_id, order_id=order["order_id"], user_id=order["user_id"], bucket=bucket,
                gmv_cents=to_cents(order["gmv"]), coupon_used=order["coupon_used"], ts=order["ts"], received_ms=now_ms)
        .returning(orders.c.order_id)
    ).scalar()
    if inserted is None:
        raise _Rollback  # the same order_id raced in from another request
    return {"campaign_id": campaign_id, "order_id": order["order_id"], "bucket": bucket, "duplicate": False}


def _same_order_or_conflict(conn: Connection, campaign_id: int, order: dict) -> dict:
    row = conn.execute(
        select(orders).where(orders.c.campaign_id == campaign_id, orders.c.order_id == order["order_id"])
    ).first()
    same = (row.user_id, row.gmv_cents, row.coupon_used, row.ts) == (
        order["user_id"], to_cents(order["gmv"]), order["coupon_used"], order["ts"])
    if not same:
        raise StoreError(409, "order_conflict", f"order {order['order_id']} was already recorded with other content")
    return {"campaign_id": campaign_id, "order_id": row.order_id, "bucket": row.bucket, "duplicate": True}


# --- totals for eq. (7) and (8) -------------------------------------------------------------------


def campaign_totals(engine: Engine, campaign_id: int) -> tuple[CampaignConfig, dict[str, BucketTotals]]:
    with read_tx(engine) as conn:
        config = load_campaign(conn, campaign_id)
        users = dict(conn.execute(
            select(assignments.c.bucket, func.count()).where(assignments.c.campaign_id == campaign_id)
            .group_by(assignments.c.bucket)
        ).all())
        granted = {row.bucket: row for row in conn.execute(
            select(grants.c.bucket, func.count().label("n"), func.count(grants.c.redeemed_order_id).label("used"),
                   func.coalesce(func.sum(grants.c.value_cents), 0).label("cents"))
            .where(grants.c.campaign_id == campaign_id).group_by(grants.c.bucket)
        )}
        bought = {row.bucket: row for row in conn.execute(
            select(orders.c.bucket, func.count().label("n"),
                   func.coalesce(func.sum(orders.c.gmv_cents), 0).label("cents"))
            .where(orders.c.campaign_id == campaign_id).group_by(orders.c.bucket)
        )}
    totals = {}
    for bucket in BUCKETS:
        if config.shares.get(bucket, 0.0) <= 0 and bucket not in users:
            continue
        g, o = granted.get(bucket), bought.get(bucket)
        totals[bucket] = BucketTotals(
            users=int(users.get(bucket, 0)),
            granted=int(g.n) if g else 0,
            redeemers=int(g.used) if g else 0,
            gmv=int(o.cents) / 100 if o else 0.0,
            orders=int(o.n) if o else 0,
            reserved=int(g.cents) / 100 if g else 0.0,
        )
    return config, totals


def campaign_ids(engine: Engine) -> list[int]:
    with read_tx(engine) as conn:
        return [int(i) for i in conn.execute(select(campaigns.c.id).order_by(campaigns.c.id)).scalars()]

