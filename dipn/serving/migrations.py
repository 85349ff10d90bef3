"""Versioned schema migrations, applied in order, each in its own transaction.

``schema_version`` records what has been applied. ``dipn serve`` migrates once before it starts
its workers; each worker then only checks the version (``require_current``), so workers never race
on DDL. On PostgreSQL an advisory lock also serializes two hosts migrating at once; on SQLite the
write transaction does. To change the schema: edit ``tables.py`` and append a migration that takes
an existing database there (``ALTER TABLE ...``); never edit an applied one. A test checks that
a migrated database has exactly the tables and columns of ``tables.py``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import BigInteger, Column, Connection, Engine, Integer, MetaData, String, Table, inspect, select, text

from dipn.errors import DipnValidationError
from dipn.serving import tables
from dipn.serving.db import write_tx

_version_metadata = MetaData()
schema_version = Table(
    "schema_version",
    _version_metadata,
    Column("version", Integer, primary_key=True),
    Column("description", String(200), nullable=False),
    Column("applied_ms", BigInteger, nullable=False),
)

PG_MIGRATION_LOCK = 0x44_49_50_4E  # "DIPN"


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    apply: Callable[[Connection], None]


def _v1_initial(conn: Connection) -> None:
    tables.metadata.create_all(conn)


def _v2_device_keys_and_rate_counters(conn: Connection) -> None:
    """Devices sign with their own Ed25519 keys: the stored HMAC secrets go (those devices must
    register again: nothing that can sign stays in the database); per-device request counters
    arrive. A database created at version 1 by this code's ``create_all`` already has both."""
    columns = {c["name"] for c in inspect(conn).get_columns("devices")}
    if "public_key" not in columns:
        conn.execute(text("ALTER TABLE devices ADD COLUMN public_key VARCHAR(64)"))
    if "secret" in columns:
        conn.execute(text("ALTER TABLE devices DROP COLUMN secret"))
    tables.rate_counters.create(conn, checkfirst=True)


def _v3_decisions_and_coupon_expiry(conn: Connection) -> None:
    """Every decision is recorded (reason, score, model version); a grant keeps the model version
    that scored it and its expiry. Campaign schedules and bands live in the campaign's config JSON."""
    columns = {c["name"] for c in inspect(conn).get_columns("grants")}
    if "model_version" not in columns:
        conn.execute(text("ALTER TABLE grants ADD COLUMN model_version VARCHAR(64)"))
    if "expires_ms" not in columns:
        conn.execute(text("ALTER TABLE grants ADD COLUMN expires_ms BIGINT"))
    tables.decisions.create(conn, checkfirst=True)


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "devices, scores, nonces, campaigns, budgets, assignments, grants, orders", _v1_initial),
    Migration(2, "device public keys instead of stored secrets; per-device rate counters",
              _v2_device_keys_and_rate_counters),
    Migration(3, "decisions with reason and model version; grants' model version and expiry",
              _v3_decisions_and_coupon_expiry),
)
LATEST = MIGRATIONS[-1].version


class SchemaOutOfDate(DipnValidationError):
    """The database needs migrating first (``dipn serve --migrate-only``)."""


def current_version(conn: Connection) -> int:
    if not inspect(conn).has_table("schema_version"):
        return 0
    return conn.execute(select(schema_version.c.version).order_by(schema_version.c.version.desc())).scalar() or 0


def migrate(engine: Engine) -> list[int]:
    """Apply the pending migrations; returns the versions applied (empty: already current)."""
    applied = []
    for migration in MIGRATIONS:
        with write_tx(engine) as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": PG_MIGRATION_LOCK})
            _version_metadata.create_all(conn)
            if current_version(conn) >= migration.version:
                continue
            migration.apply(conn)
            conn.execute(
                schema_version.insert().values(
                    version=migration.version, description=migration.description, applied_ms=int(time.time() * 1000)
                )
            )
            applied.append(migration.version)
    return applied


def require_current(engine: Engine) -> None:
    with engine.connect() as conn:
        version = current_version(conn)
    if version != LATEST:
        raise SchemaOutOfDate(
            f"database schema is at version {version}, this server needs {LATEST}: "
            "run `dipn serve --migrate-only --db URL` (dipn serve migrates before starting)"
        )
