"""Engines and transactions: SQLite (WAL) by default, PostgreSQL by URL.

SQLite: WAL journal, ``synchronous=FULL`` (a commit is on disk before it is acknowledged, power
loss included), a busy timeout so concurrent workers wait for the write lock instead of failing,
and write transactions that take the lock up front (``BEGIN IMMEDIATE``) so a read-then-write
transaction never fails half way on a lock upgrade. PostgreSQL: psycopg 3, READ COMMITTED; the
writes that must be race-free rely on unique constraints and conditional updates, not on locks.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from dipn.errors import DipnValidationError

SQLITE_BUSY_TIMEOUT_MS = 30_000
PG_CONNECT_TIMEOUT_S = 10  # an unreachable host is a clear error, not a hang of the TCP timeout
PRIVATE_FILE_MODE = 0o600  # the database holds personal data (docs/security.md)


def normalize_url(url: str) -> str:
    """Accept ``postgresql://`` and ``postgres://`` and a bare file path (SQLite)."""
    if "://" not in url:
        return f"sqlite:///{Path(url).resolve()}"
    if url.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def make_engine(url: str, *, pool_size: int = 8) -> Engine:
    """An engine on a database that answers: one that cannot be used (a file that is no SQLite
    database, a server that refuses the connection or the login) is a one-line
    ``DipnValidationError`` here, before any command or worker relies on it."""
    url = normalize_url(url)
    backend = make_url(url).get_backend_name()
    if backend == "sqlite":
        engine = _sqlite_engine(url, pool_size)
    elif backend == "postgresql":
        engine = create_engine(url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True,
                               connect_args={"connect_timeout": PG_CONNECT_TIMEOUT_S})
    else:
        raise DipnValidationError(f"--db: unsupported database {backend!r}; use sqlite:///PATH or postgresql://...")
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
    except DBAPIError as exc:
        engine.dispose()
        reason = str(exc.orig).strip().splitlines()[0] if str(exc.orig).strip() else exc.orig.__class__.__name__
        shown = make_url(url).render_as_string(hide_password=True).replace("postgresql+psycopg://", "postgresql://")
        raise DipnValidationError(f"--db {shown}: cannot use it as a database ({reason})") from None
    return engine


def _sqlite_engine(url: str, pool_size: int) -> Engine:
    database = make_url(url).database
    if not database or database == ":memory:":
        raise DipnValidationError("--db: SQLite needs a file (sqlite:///PATH): workers share it through WAL")
    try:
        Path(database).parent.mkdir(parents=True, exist_ok=True)
        make_private(Path(database))
    except OSError as exc:
        raise DipnValidationError(f"--db: {database}: cannot open it as a database file ({exc.strerror or exc})") from None
    engine = create_engine(
        url,
        connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
        pool_size=pool_size,
        max_overflow=pool_size,
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:  # noqa: ANN001 (DB-API object)
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves, below
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        if conn.get_execution_options().get("dipn_write", False):
            _begin_immediate(conn.connection.dbapi_connection)
        else:
            conn.exec_driver_sql("BEGIN")

    return engine


def make_private(database: Path) -> None:
    """Create the SQLite file owner-only (0600), or make an existing one (and its -wal, -shm) so.

    SQLite gives the -wal and -shm files it creates the mode of the database file, so a database
    created here keeps every file it writes private, whatever the umask.
    """
    os.close(os.open(database, os.O_RDWR | os.O_CREAT, PRIVATE_FILE_MODE))
    for path in (database, Path(f"{database}-wal"), Path(f"{database}-shm")):
        try:
            if path.stat().st_mode & 0o777 != PRIVATE_FILE_MODE:
                path.chmod(PRIVATE_FILE_MODE)
        except FileNotFoundError:
            continue


def _begin_immediate(dbapi_connection) -> None:  # noqa: ANN001 (a sqlite3.Connection)
    """Take the write lock, polling every millisecond.

    SQLite's own busy handler sleeps in growing steps (up to 100 ms) while another process holds
    the lock, which would put those sleeps into the tail latency of every worker; the lock is held
    for one commit (a few ms), so a short poll gets it sooner.
    """
    dbapi_connection.execute("PRAGMA busy_timeout=0")
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    try:
        while True:
            try:
                dbapi_connection.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.001)
    finally:
        dbapi_connection.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")


@contextmanager
def write_tx(engine: Engine) -> Iterator[Connection]:
    """A transaction that writes: committed on leaving, rolled back on an exception."""
    with engine.connect() as conn:
        conn = conn.execution_options(dipn_write=True)
        with conn.begin():
            yield conn


@contextmanager
def read_tx(engine: Engine) -> Iterator[Connection]:
    with engine.connect() as conn, conn.begin():
        yield conn


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"
