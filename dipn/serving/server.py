"""Run the endpoint under uvicorn: migrate once, then start the workers.

More capacity is more workers (one process per core) and more hosts behind a load balancer, all
on one PostgreSQL. Every worker is stateless but for caches of immutable device public keys; the
database holds every fact the endpoint promises (nonces, grants, budgets).

SQLite and several workers: safe on one host, because the workers share the file through WAL
(its index lives in shared memory), take the write lock up front (``BEGIN IMMEDIATE``) and commit
with ``synchronous=FULL``; the promises rest on the same unique constraints and conditional
updates as on PostgreSQL. Not safe when the file sits on a network filesystem: WAL needs every
process on one host and such filesystems do not honour SQLite's locks. So ``--workers > 1`` on
SQLite is refused there, and several hosts always need PostgreSQL (docs/deploy.md).
"""

from __future__ import annotations

import ipaddress
import os
import re
from dataclasses import replace
from pathlib import Path

from sqlalchemy.engine import make_url

from dipn.errors import DipnValidationError
from dipn.serving.config import OPEN_OPERATOR_ROUTES_REFUSED, ServerConfig
from dipn.serving.db import make_engine, normalize_url
from dipn.serving.migrations import migrate

# Filesystems on which SQLite's WAL and locks cannot be trusted ("fuse.sshfs" counts as "sshfs").
NETWORK_FILESYSTEMS = frozenset({"nfs", "nfs4", "cifs", "smb3", "smbfs", "sshfs", "9p", "ceph", "glusterfs",
                                 "lustre", "afs", "gpfs", "beegfs", "ncpfs", "davfs"})


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


def check_workers(db_url: str, workers: int) -> None:
    """Refuse several workers on a SQLite file they could not share safely (see the module doc)."""
    url = make_url(normalize_url(db_url))
    if workers <= 1 or url.get_backend_name() != "sqlite":
        return
    fs = filesystem_type(Path(url.database or ".").resolve().parent)
    if fs and (fs in NETWORK_FILESYSTEMS or fs.removeprefix("fuse.") in NETWORK_FILESYSTEMS):
        raise DipnValidationError(
            f"--workers {workers}: the SQLite file {url.database} is on a network filesystem ({fs}), where "
            "workers cannot share it safely; use a local disk, --workers 1, or PostgreSQL (--db postgresql://...)")


def filesystem_type(path: Path) -> str | None:
    """The type of the filesystem holding ``path`` (Linux /proc/self/mountinfo); None if unknown."""
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return None
    best, fs = "", None
    for line in lines:
        left, _, right = line.partition(" - ")
        mount = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), left.split()[4])  # \040: space
        inside = str(path) == mount or str(path).startswith(mount.rstrip("/") + "/")
        if inside and len(mount) >= len(best) and right:
            best, fs = mount, right.split()[0]
    return fs


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_operator_access(config: ServerConfig, host: str) -> None:
    """Refuse open operator routes, and open ones on an address other machines can reach."""
    if config.admin_token is not None:
        return
    if not config.open_operator_routes:
        raise DipnValidationError(OPEN_OPERATOR_ROUTES_REFUSED)
    if not is_loopback(host):
        raise DipnValidationError(f"--insecure-open-operator-routes binds loopback only, not --host {host}; "
                                  "set --admin-token to serve other machines")


def uvicorn_options(config: ServerConfig) -> dict[str, object]:
    """h11, with its receive buffer bounded: the request line and headers may not exceed
    ``max_header_bytes`` (httptools, uvicorn's faster parser, buffers headers without a bound)."""
    return {"http": "h11", "h11_max_incomplete_event_size": config.max_header_bytes}


def run_server(config: ServerConfig, *, host: str = "127.0.0.1", port: int = 8000, workers: int = 1,
               access_log: bool = False, log_level: str = "info") -> None:
    import uvicorn

    config = replace(config, db_url=normalize_url(config.db_url))
    check_operator_access(config, host)
    check_workers(config.db_url, workers)
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
        **uvicorn_options(config),
    )


class ThreadedServer:
    """The app under uvicorn in a thread of this process, on loopback: for the demo and tests."""

    def __init__(self, config: ServerConfig, port: int) -> None:
        import threading

        import uvicorn

        from dipn.serving.app import create_app

        self.url = f"http://127.0.0.1:{port}"
        app = create_app(config, run_migrations=True)
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                                    **uvicorn_options(config)))
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
