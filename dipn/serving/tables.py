"""Tables of the coupon endpoint (SQLAlchemy Core; the same schema on SQLite and PostgreSQL).

Money is kept in integer cents; times in integer milliseconds since the epoch. Every uniqueness
the endpoint promises is a database constraint, so it holds across workers and hosts:
one score per (device, ts), one use of a request nonce per device, one assignment and one coupon
per (campaign, user), one row per (campaign, order), one request counter per (device, window).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

# SQLite only autoincrements an INTEGER PRIMARY KEY; PostgreSQL gets a 64-bit identity.
BigId = BigInteger().with_variant(Integer, "sqlite")

devices = Table(
    "devices",
    metadata,
    Column("device_id", String(32), primary_key=True),
    Column("user_id", String(128), nullable=False, index=True),
    # Ed25519 public key, hex: it checks the device's signatures and cannot make one, so the table
    # holds no secret. NULL only for devices registered before schema version 2 (they re-register).
    Column("public_key", String(64), nullable=True),
    Column("platform", String(32), nullable=True),
    Column("created_ms", BigInteger, nullable=False),
)

scores = Table(
    "scores",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("device_id", String(32), ForeignKey("devices.device_id"), nullable=False),
    Column("user_id", String(128), nullable=False),  # the device's registered user, copied
    Column("model_version", String(64), nullable=False),
    Column("p_realtime", Float, nullable=False),
    Column("p_longterm", Float, nullable=False),
    Column("ts", BigInteger, nullable=False),
    Column("received_ms", BigInteger, nullable=False),
    UniqueConstraint("device_id", "ts", name="uq_scores_device_ts"),
    Index("ix_scores_user_ts", "user_id", "ts"),
)

request_nonces = Table(
    "request_nonces",
    metadata,
    Column("device_id", String(32), primary_key=True),
    Column("nonce", String(64), primary_key=True),
    Column("created_ms", BigInteger, nullable=False, index=True),
)

# Signed requests per device per fixed time window (the per-device rate limit). In the database,
# not in a worker's memory, so the limit holds however many workers and hosts serve the device.
rate_counters = Table(
    "rate_counters",
    metadata,
    Column("device_id", String(32), primary_key=True),
    Column("window_start_ms", BigInteger, primary_key=True),
    Column("requests", Integer, nullable=False),
)

campaigns = Table(
    "campaigns",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("name", String(128), nullable=False),
    Column("config", Text, nullable=False),  # CampaignConfig as JSON
    Column("created_ms", BigInteger, nullable=False),
)

bucket_budgets = Table(
    "bucket_budgets",
    metadata,
    Column("campaign_id", BigInteger, ForeignKey("campaigns.id"), primary_key=True),
    Column("bucket", String(16), primary_key=True),
    Column("cap_cents", BigInteger, nullable=True),  # NULL: no cap
    Column("reserved_cents", BigInteger, nullable=False, default=0),
)

assignments = Table(
    "assignments",
    metadata,
    Column("campaign_id", BigInteger, ForeignKey("campaigns.id"), primary_key=True),
    Column("user_id", String(128), primary_key=True),
    Column("bucket", String(16), nullable=False),
    Column("first_seen_ms", BigInteger, nullable=False),
)

grants = Table(
    "grants",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("campaign_id", BigInteger, ForeignKey("campaigns.id"), nullable=False),
    Column("user_id", String(128), nullable=False),
    Column("bucket", String(16), nullable=False),
    Column("value_cents", BigInteger, nullable=False),
    Column("p_realtime", Float, nullable=True),  # the score the decision used; NULL for "all"
    Column("granted_ms", BigInteger, nullable=False),
    Column("redeemed_order_id", String(128), nullable=True),
    # Schema 3: the model version of the score the decision used, and when the coupon expires.
    Column("model_version", String(64), nullable=True),
    Column("expires_ms", BigInteger, nullable=True),  # NULL: never
    UniqueConstraint("campaign_id", "user_id", name="uq_grants_campaign_user"),
)

# Schema 3: every decision the endpoint answered, with its reason and the score (and the model
# version that made it) it used; the report counts decisions by reason and by model version, and
# draws the scores the campaign saw against its band.
decisions = Table(
    "decisions",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("campaign_id", BigInteger, ForeignKey("campaigns.id"), nullable=False),
    Column("user_id", String(128), nullable=False),
    Column("bucket", String(16), nullable=False),
    Column("granted", Boolean, nullable=False),
    Column("reason", String(32), nullable=False),
    Column("p_realtime", Float, nullable=True),  # NULL: no score used (none, all, no recent score)
    Column("model_version", String(64), nullable=True),
    Column("score_ts", BigInteger, nullable=True),
    Column("decided_ms", BigInteger, nullable=False),
    Index("ix_decisions_campaign_ms", "campaign_id", "decided_ms"),
)

orders = Table(
    "orders",
    metadata,
    Column("campaign_id", BigInteger, ForeignKey("campaigns.id"), primary_key=True),
    Column("order_id", String(128), primary_key=True),
    Column("user_id", String(128), nullable=False),
    Column("bucket", String(16), nullable=False),
    Column("gmv_cents", BigInteger, nullable=False),
    Column("coupon_used", Boolean, nullable=False),
    Column("ts", BigInteger, nullable=False),
    Column("received_ms", BigInteger, nullable=False),
    Index("ix_orders_campaign_bucket", "campaign_id", "bucket"),
)
