"""Run the endpoint under uvicorn: migrate once, then start the workers.

More capacity is more workers (one process per core) and more hosts behind a load balancer, all
on one PostgreSQL. Every worker is stateless but for caches of immutable device secrets; the
database holds every fact the endpoint promises (nonces, grants, budgets).
"""

from __future__ import annotations

import os
from dataclasses import replace

from dipn.serving.config import ServerConfig
from dipn.serving.db import make_engine, normalize_url
from dipn.serving.migrations import migrate


def free_port() -> int:
    """A TCP port free on loopback right now (for servers started by the demo, tests, benchmarks)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def migrate_database(db_url: str) -> list[int]:
    engine = make_engine(db_url, pool_size=1)
    try:
        return migrate(engine)
    finally:
        engine.dispose()


def run_server(config: ServerConfig, *, host: str = "127.0.0.1", port: int = 8000, workers: int = 1,
               access_log: bool = False, log_level: str = "info") -> None:
    import uvicorn

    config = replace(config, db_url=normalize_url(config.db_url))
    migrate_database(config.db_url)
    # Workers are separate processes: they read their settings from the environment.
    for var in ServerConfig.ENV.values():
        os.environ.pop(var, None)
    os.environ.update(config.to_env())
    uvicorn.run(
        "dipn.serving.app:create_app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        access_log=access_log,
        log_level=log_level,
        timeout_graceful_shutdown=30,
    )


class ThreadedServer:
    """The app under uvicorn in a thread of this process, on loopback: for the demo and tests."""

    def __init__(self, config: ServerConfig, port: int) -> None:
        import threading

        import uvicorn

        from dipn.serving.app import create_app

        self.url = f"http://127.0.0.1:{port}"
        app = create_app(config, run_migrations=True)
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> ThreadedServer:
        import time

        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the endpoint did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(30)
