"""The endpoint for tests: ``dipn serve`` as a real server process (uvicorn master + workers) for
the abuse and crash tests, the app in a thread on loopback (``LiveServer``), and fresh databases
for each test on SQLite or on one temporary PostgreSQL cluster."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from sqlalchemy import func, select

from dipn.serving.client import OperatorClient
from dipn.serving.config import ServerConfig
from dipn.serving.db import make_engine
from dipn.serving.pgtemp import TempPostgres, postgres_unavailable
from dipn.serving.server import ThreadedServer, free_port

ADMIN = "hardening-admin-token"


class LiveServer(ThreadedServer):
    """The real app on 127.0.0.1 in a thread, plus a database connection to check what it wrote."""

    def __init__(self, db_url: str, **config: object) -> None:
        self.db_url = db_url
        # Registration is open here (devices of tests register freely); test_endpoint_security checks
        # that a server refuses to start so unless told to.
        super().__init__(ServerConfig(db_url=db_url, admin_token=ADMIN, **({"open_enrollment": True} | config)),
                         free_port())

    def __enter__(self) -> LiveServer:
        super().__enter__()
        self.engine = make_engine(self.db_url, pool_size=2)
        return self

    def __exit__(self, *exc: object) -> None:
        super().__exit__(*exc)
        self.engine.dispose()

    def count(self, table) -> int:  # noqa: ANN001
        with self.engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(table)).scalar()

    def operator(self) -> OperatorClient:
        return OperatorClient(self.url, ADMIN)


class ServeProcess:
    """``python -m dipn.cli serve`` in its own session, so that a kill reaches every worker."""

    def __init__(self, db_url: str, *, workers: int = 2, rate_limit: int = 0) -> None:
        self.db_url, self.workers, self.rate_limit = db_url, workers, rate_limit
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    def start(self) -> ServeProcess:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "dipn.cli", "serve", "--db", self.db_url, "--port", str(self.port),
             "--workers", str(self.workers), "--insecure-open-enrollment", "--rate-limit", str(self.rate_limit)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True,
            env=os.environ | {"DIPN_ADMIN_TOKEN": ADMIN},
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"dipn serve exited: {self.process.stderr.read()[-2000:]}")
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError("dipn serve did not come up in 60 s")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200 and self._workers_up():
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)

    def _workers_up(self) -> bool:
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        return self.workers == 1 or len(children.read_text().split()) >= self.workers

    def kill(self) -> None:
        """SIGKILL the master and every worker at once: no shutdown code runs."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(30)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()

    def __enter__(self) -> ServeProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class Databases:
    """A fresh, empty database per call: a SQLite file, or a new database on one PostgreSQL cluster."""

    def __init__(self, backend: str, root: Path) -> None:
        self.backend, self.root, self.count = backend, root, 0
        self.postgres: TempPostgres | None = None
        if backend == "postgresql":
            self.postgres = TempPostgres()
            self.base_url = self.postgres.start()

    def new(self) -> str:
        self.count += 1
        if self.postgres is None:
            return f"sqlite:///{self.root}/db-{self.count}.db"
        import psycopg

        name = f"dipn_{self.count}"
        with psycopg.connect(self.base_url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")  # a name made here, not input: DDL takes no parameters
        return self.base_url.rsplit("/", 1)[0] + f"/{name}"

    def close(self) -> None:
        if self.postgres is not None:
            self.postgres.stop()


def databases_fixture(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Databases]:
    """Body of a module-scoped fixture parametrized with "sqlite" and "postgresql"."""
    if request.param == "postgresql":
        reason = postgres_unavailable()
        if reason:
            pytest.skip(reason)
    databases = Databases(request.param, tmp_path_factory.mktemp(f"db-{request.param}"))
    try:
        yield databases
    finally:
        databases.close()
