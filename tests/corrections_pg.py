"""A throw-away PostgreSQL server for the corrections tests (helper, not a test module).

FCANET_TEST_POSTGRES_URL=postgresql://... uses a server someone started (for example
scripts/start_postgres.sh); otherwise the Debian `postgresql` binaries start one in a tmp
dir on 127.0.0.1 (as the `postgres` user when we run as root, since initdb refuses root).
Each test gets its own fresh database.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path

import pytest


def _binaries() -> Path | None:
    found = shutil.which("initdb")
    if found:
        return Path(os.path.realpath(found)).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(candidates[-1]).parent if candidates else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PostgresServer:
    def __init__(self, base_url: str, stop=None):
        self.base_url = base_url  # .../postgres (the maintenance database)
        self._stop = stop

    def new_database(self) -> str:
        import psycopg

        name = "t_" + uuid.uuid4().hex[:12]
        with psycopg.connect(self.base_url, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return self.base_url.rsplit("/", 1)[0] + "/" + name

    def stop(self) -> None:
        if self._stop:
            self._stop()


def start_server() -> PostgresServer:
    """Start (or connect to) a server; pytest.skip with a reason when that is impossible."""
    url = os.environ.get("FCANET_TEST_POSTGRES_URL")
    if url:
        return PostgresServer(url.rsplit("/", 1)[0] + "/postgres")
    bin_dir = _binaries()
    if bin_dir is None:
        pytest.skip("PostgreSQL binaries (initdb, pg_ctl) are absent: apt-get install postgresql, "
                    "or set FCANET_TEST_POSTGRES_URL")
    root = Path(tempfile.mkdtemp(prefix="fcanet-pg-"))
    user = None
    if os.geteuid() == 0:
        import pwd

        user = "postgres"
        try:
            pwd.getpwnam(user)
        except KeyError:
            user = "nobody"
        shutil.chown(root, user)
    port = _free_port()
    run = dict(user=user, check=True, capture_output=True, timeout=120)
    subprocess.run([str(bin_dir / "initdb"), "-D", str(root / "data"), "-U", "fcanet", "--auth=trust", "-E", "UTF8"],
                   **run)
    subprocess.run([str(bin_dir / "pg_ctl"), "-D", str(root / "data"), "-l", str(root / "server.log"), "-w",
                    "-t", "60", "-o", f"-h 127.0.0.1 -p {port} -k {root}", "start"], **run)

    def stop():
        subprocess.run([str(bin_dir / "pg_ctl"), "-D", str(root / "data"), "-m", "immediate", "-w", "stop"],
                       user=user, capture_output=True, timeout=60)
        shutil.rmtree(root, ignore_errors=True)

    return PostgresServer(f"postgresql://fcanet@127.0.0.1:{port}/postgres", stop)
