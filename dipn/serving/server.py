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
