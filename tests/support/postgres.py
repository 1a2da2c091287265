"""A real PostgreSQL server for the tests: ``initdb`` + ``pg_ctl`` into a temporary folder, Unix socket only.

Run as root (CI), the server runs as the ``postgres`` user (``runuser -u postgres --``) from a folder it owns.
It listens on no TCP address (``listen_addresses=''``), only on a socket in its own folder, so parallel test
workers (pytest-xdist: one session, hence one cluster, per worker) never clash. Authentication is ``trust``
on that socket: any role name may connect, which is what the role tests need (row-level security is about
which role a session runs as, not how it logged in). ``fsync`` stays on: the crash tests rely on it.

Use the ``postgres_server`` session fixture (tests/conftest.py) and :meth:`PostgresServer.new_database`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

from tests.support.servers import postgres_bin

PORT = 5432  # only names the socket file (.s.PGSQL.5432) in the private socket folder


class PostgresServer:
    """One throw-away cluster; ``url(db, user)`` gives a libpq URL over its socket."""

    def __init__(self) -> None:
        self.initdb, self.pg_ctl = postgres_bin("initdb"), postgres_bin("pg_ctl")
        self.root = Path(tempfile.mkdtemp(prefix="radscope-pg-"))
        self.data = self.root / "data"
        self.socket_dir = self.root / "socket"
        self.log = self.root / "server.log"
        self._as_postgres = os.geteuid() == 0
        self.socket_dir.mkdir()
        if self._as_postgres:
            shutil.chown(self.root, "postgres", "postgres")
            shutil.chown(self.socket_dir, "postgres", "postgres")
            self.root.chmod(0o755)
        self._run(self.initdb, "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
                  "--locale=C.UTF-8", "--no-instructions")
        self.start()

    def _run(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        cmd = ["runuser", "-u", "postgres", "--", *argv] if self._as_postgres else list(argv)
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        if check and result.returncode != 0:
            log = self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""
            raise RuntimeError(f"{' '.join(argv)} failed ({result.returncode}): {result.stderr}\n{log}")
        return result

    def start(self) -> None:
        options = f"-k {self.socket_dir} -c listen_addresses='' -p {PORT} -c max_connections=60 -c fsync=on"
        self._run(self.pg_ctl, "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "-t", "60", "start")

    def stop(self, mode: str = "fast") -> None:
        """``fast`` for a clean shutdown, ``immediate`` for a crash (no checkpoint: recovery replays the WAL)."""
        self._run(self.pg_ctl, "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop", check=False)

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def url(self, database: str = "postgres", user: str = "postgres") -> str:
        return f"postgresql://{user}@/{database}?host={self.socket_dir}&port={PORT}"

    def admin(self, database: str = "postgres") -> object:
        """An autocommit psycopg connection as the superuser (close it yourself)."""
        import psycopg

        return psycopg.connect(self.url(database), autocommit=True)

    def new_database(self, prefix: str = "t") -> str:
        """A new empty database (owned by the superuser); returns its name."""
        name = f"{prefix}_{uuid.uuid4().hex[:12]}"
        with contextlib.closing(self.admin()) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')  # type: ignore[attr-defined]
        return name


@contextlib.contextmanager
def running_server() -> Iterator[PostgresServer]:
    server = PostgresServer()
    try:
        yield server
    finally:
        server.close()
