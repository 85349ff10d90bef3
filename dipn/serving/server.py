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
import multiprocessing
import re
import signal
import socket
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

from sqlalchemy.engine import make_url

from dipn.errors import DipnValidationError
from dipn.serving.config import (
    OPEN_ENROLLMENT_REFUSED,
    OPEN_ENROLLMENT_WARNING,
    OPEN_OPERATOR_ROUTES_REFUSED,
    ServerConfig,
)
from dipn.serving.db import make_engine, normalize_url
from dipn.serving.migrations import migrate

# Filesystems on which SQLite's WAL and locks cannot be trusted ("fuse.sshfs" counts as "sshfs").
NETWORK_FILESYSTEMS = frozenset({"nfs", "nfs4", "cifs", "smb3", "smbfs", "sshfs", "9p", "ceph", "glusterfs",
                                 "lustre", "afs", "gpfs", "beegfs", "ncpfs", "davfs"})


def free_port() -> int:
    """A TCP port free on loopback right now (for servers started by the demo, tests, benchmarks)."""
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


def check_operator_access(config: ServerConfig) -> None:
    """Refuse open operator routes, and open ones on an address other machines can reach."""
    host = config.host
    if config.admin_token is not None:
        return
    if not config.open_operator_routes:
        raise DipnValidationError(OPEN_OPERATOR_ROUTES_REFUSED)
    if not is_loopback(host):
        raise DipnValidationError(f"--insecure-open-operator-routes binds loopback only, not --host {host}; "
                                  "set an admin token (DIPN_ADMIN_TOKEN or --admin-token-file) to serve other machines")


def check_enrollment(config: ServerConfig) -> None:
    """Refuse open device registration unless asked for (``--insecure-open-enrollment``)."""
    if config.enroll_token is None and not config.open_enrollment:
        raise DipnValidationError(OPEN_ENROLLMENT_REFUSED)


def uvicorn_config(app, config: ServerConfig, *, access_log: bool = False,  # noqa: ANN001 (an ASGI app)
                   log_level: str = "info", **options: object):  # noqa: ANN201 (a uvicorn.Config)
    """uvicorn's settings for one worker: httptools with each request head bounded to
    ``max_header_bytes`` and ``header_timeout_ms`` (``protocol``); idle keep-alive connections
    close after ``keepalive_timeout_ms``."""
    import uvicorn

    from dipn.serving.protocol import bounded_httptools

    return uvicorn.Config(app, http=bounded_httptools(config.header_timeout_ms / 1000, config.max_header_bytes),
                          timeout_keep_alive=config.keepalive_timeout_ms / 1000, access_log=access_log,
                          log_level=log_level, timeout_graceful_shutdown=30, **options)  # fmt: skip


def listening_sockets(host: str, port: int, count: int) -> list[socket.socket]:
    """One listening socket per worker, all on ``host:port`` with SO_REUSEPORT, so that the kernel
    spreads new connections evenly over the workers.

    With one shared socket (uvicorn's ``--workers``), whichever worker wakes first accepts every
    pending connection (asyncio accepts up to its backlog at once): under a burst of keep-alive
    connections one worker got nearly all of them while the other idled, and the busy one's queue
    was the p99 (benchmarks/endpoint_load.py). The port is first bound without SO_REUSEPORT, so a
    port in use by anyone (another dipn serve included) is refused rather than shared."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))
        sockets = []
        for _ in range(count):
            sock = socket.socket(family, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind((host, port))
            sock.listen(2048)
            sock.set_inheritable(True)
            sockets.append(sock)
    except OSError as exc:
        raise DipnValidationError(f"--host {host} --port {port}: cannot listen there ({exc.strerror or exc})") from None
    return sockets


def _serve_worker(config: ServerConfig, sock: socket.socket, announce: bool, access_log: bool, log_level: str) -> None:
    """One worker process: the app under uvicorn on its own listening socket. Its settings, tokens
    included, came through the pipe that started it: never on a command line or in its environment.
    ``announce``: the app's own start-up warnings (the supervisor says them once instead)."""
    import uvicorn

    from dipn.serving.app import create_app

    uvicorn.Server(uvicorn_config(create_app(config, announce=announce), config, access_log=access_log,
                                  log_level=log_level)).run(sockets=[sock])  # fmt: skip


def run_server(config: ServerConfig, *, access_log: bool = False, log_level: str = "info") -> None:
    """Check, migrate, then supervise ``config.workers`` processes on ``config.host:config.port``
    until SIGTERM or SIGINT; a worker that dies is started again (a worker that fails at start-up
    stops the server: it would fail again)."""
    config = replace(config, db_url=normalize_url(config.db_url))
    host, port, workers = config.host, config.port, config.workers
    check_operator_access(config)
    check_enrollment(config)
    check_workers(config.db_url, workers)
    migrate_database(config.db_url)
    sockets = listening_sockets(host, port, workers)
    context = multiprocessing.get_context("spawn")
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())

    def start(index: int):  # noqa: ANN202 (a Process)
        process = context.Process(target=_serve_worker, name=f"dipn-serve-worker-{index}",
                                  args=(config, sockets[index], False, access_log, log_level))  # fmt: skip
        process.start()
        return process, time.monotonic()

    if config.admin_token is None:
        print("dipn serve: warning: no admin token (--insecure-open-operator-routes): campaign, decision, order "
              "and metrics routes are open to anyone who can connect", file=sys.stderr, flush=True)
    if config.enroll_token is None:
        print(f"dipn serve: warning: {OPEN_ENROLLMENT_WARNING}", file=sys.stderr, flush=True)
    processes = [start(i) for i in range(workers)]
    print(f"dipn serve: {workers} worker(s) on http://{host}:{port} (SIGTERM or Ctrl-C stops)", file=sys.stderr,
          flush=True)
    failed = None
    try:
        while not stop.wait(0.5):
            for index, (process, started) in enumerate(processes):
                if process.is_alive():
                    continue
                if time.monotonic() - started < 10:
                    failed = f"worker {index} exited with status {process.exitcode} while starting (see its log above)"
                    stop.set()
                    break
                print(f"dipn serve: worker {index} exited with status {process.exitcode}; starting it again",
                      file=sys.stderr, flush=True)
                processes[index] = start(index)
    finally:
        for process, _ in processes:
            if process.is_alive():
                process.terminate()  # SIGTERM: uvicorn finishes the requests in flight
        for process, _ in processes:
            process.join(40)
            if process.is_alive():
                process.kill()
        for sock in sockets:
            sock.close()
    if failed:
        raise DipnValidationError(failed)


class ThreadedServer:
    """The app under uvicorn in a thread of this process, on loopback and the port given (``config.host``,
    ``config.port`` and ``config.workers`` are ``dipn serve``'s): for the demo and tests."""

    def __init__(self, config: ServerConfig, port: int) -> None:
        import uvicorn

        from dipn.serving.app import create_app

        self.url = f"http://127.0.0.1:{port}"
        app = create_app(config, run_migrations=True)
        self.server = uvicorn.Server(uvicorn_config(app, config, log_level="warning", host="127.0.0.1", port=port))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> ThreadedServer:
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
