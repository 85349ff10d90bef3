"""A throwaway PostgreSQL cluster on 127.0.0.1, for tests and benchmarks (initdb + pg_ctl).

Needs Debian's ``postgresql`` package (its binaries live in /usr/lib/postgresql/N/bin, off PATH)
and psycopg. initdb refuses to run as root, so under root the cluster runs as user ``postgres``.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path


def find_pg_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


def postgres_unavailable() -> str | None:
    """Why a temporary cluster cannot start here, or None when it can."""
    if not (find_pg_bin("initdb") and find_pg_bin("pg_ctl")):
        return "initdb/pg_ctl not installed (Debian package postgresql)"
    if os.geteuid() == 0 and not shutil.which("runuser"):
        return "running as root without runuser to start PostgreSQL as user postgres"
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "psycopg is not installed"
    return None


class TempPostgres:
    def __init__(self, *, fsync: bool = True) -> None:
        self.initdb, self.pg_ctl = find_pg_bin("initdb"), find_pg_bin("pg_ctl")
        self.root = Path(tempfile.mkdtemp(prefix="dipn-pg-"))
        self.data = self.root / "data"
        self.fsync = fsync
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.as_user: list[str] = []
        if os.geteuid() == 0:
            self.as_user = ["runuser", "-u", "postgres", "--"]
            shutil.chown(self.root, "postgres")
        os.chmod(self.root, 0o755)

    def start(self) -> str:
        """Start the cluster; returns the URL of an empty database ``dipn``."""
        subprocess.run([*self.as_user, self.initdb, "-D", str(self.data), "-U", "dipn", "-A", "trust", "--no-sync",
                        "-E", "UTF8"], check=True, capture_output=True)
        options = (f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c max_connections=200 "
                   f"-c fsync={'on' if self.fsync else 'off'}")
        subprocess.run([*self.as_user, self.pg_ctl, "-D", str(self.data), "-o", options, "-l",
                        str(self.root / "log"), "-w", "-t", "60", "start"], check=True, capture_output=True)
        import psycopg

        with psycopg.connect(f"postgresql://dipn@127.0.0.1:{self.port}/postgres", autocommit=True) as conn:
            conn.execute("CREATE DATABASE dipn")
        return f"postgresql://dipn@127.0.0.1:{self.port}/dipn"

    def stop(self) -> None:
        subprocess.run([*self.as_user, self.pg_ctl, "-D", str(self.data), "-m", "fast", "-w", "stop"],
                       capture_output=True)
        shutil.rmtree(self.root, ignore_errors=True)
