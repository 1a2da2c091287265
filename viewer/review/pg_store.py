"""The team review store on PostgreSQL (psycopg 3 with a psycopg_pool connection pool).

Same interface, schema versions, history rules, exports and summary as the SQLite store (the logic lives
in :class:`viewer.review.store.ReviewStore`). Durability: a flag's id is returned only after COMMIT returned,
and PostgreSQL's COMMIT returns only once the WAL is flushed (``synchronous_commit=on``, the default).
Each reviewer connects as their own role; with ``radscope review init-team`` row-level security lets a
reviewer change only their own flags (:mod:`viewer.review.team`). A server that cannot be reached raises
:class:`StoreUnavailable` (a flag being saved may be kept and saved again: ids are made by the client).
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator, Sequence
from typing import Any

import psycopg
from psycopg import errors
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import ConnectionPool, PoolTimeout

from viewer.review.pg_schema import MIGRATIONS, VERSION_TABLE
from viewer.review.schema import CURRENT_VERSION
from viewer.review.store import (
    NotPermitted,
    ReviewStore,
    ReviewStoreError,
    StoreUnavailable,
    Tx,
    is_postgres_url,
    store_location,
)

if len(MIGRATIONS) != CURRENT_VERSION:  # pragma: no cover - a developer's slip, caught at import
    raise ImportError("viewer.review.pg_schema must have one migration per SQLite schema version")


class Row(dict[str, Any]):
    """A row read by column name (``row["id"]``) or position (``row[0]``), as sqlite3.Row."""

    def __init__(self, names: Sequence[str], values: Sequence[Any]) -> None:
        super().__init__(zip(names, values, strict=True))
        self._values = tuple(values)

    def __getitem__(self, key: Any) -> Any:
        return self._values[key] if isinstance(key, int) else super().__getitem__(key)


def _row_factory(cursor: Any) -> Any:
    names = [c.name for c in cursor.description or ()]
    return lambda values: Row(names, values)


class _PgTx:
    """A transaction taking the store's portable SQL (``?`` marks)."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn

    def execute(self, sql: str, params: tuple[Any, ...] | list[Any] = ()) -> Any:
        return self.conn.execute(portable_to_pg(sql), params)  # type: ignore[call-overload]


def portable_to_pg(sql: str) -> str:
    """``?`` parameter marks -> psycopg's ``%s`` (a literal ``%`` doubled)."""
    return sql.replace("%", "%%").replace("?", "%s")


def redact(url: str) -> str:
    """The URL without its password (for messages and titles)."""
    url = re.sub(r"(://[^:/@?]*):[^@/?]*@", r"\1:***@", url)
    return re.sub(r"(password=)[^&]*", r"\1***", url)


def connect_options(url: str, timeout_s: float) -> dict[str, Any]:
    """libpq options so that a server or network that silently goes away fails in seconds, not after TCP's
    minutes: connect timeout, keepalives, ``tcp_user_timeout`` (options the URL sets itself win)."""
    given = conninfo_to_dict(url)
    wanted = {"connect_timeout": max(1, round(timeout_s)), "keepalives": 1, "keepalives_idle": 5,
              "keepalives_interval": 2, "keepalives_count": 2, "tcp_user_timeout": int(timeout_s * 2000)}
    return {k: v for k, v in wanted.items() if k not in given}


def _one(conn: psycopg.Connection[Any], query: str) -> Any:
    """The first value of the first row (None when there is no row)."""
    row = conn.execute(query).fetchone()
    return None if row is None else row[0]


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class PostgresReviewStore(ReviewStore):
    """A review store in a PostgreSQL database (see the module docstring)."""

    backend = "postgresql"

    def __init__(self, location: str | os.PathLike[str] | None = None, *, timeout_s: float = 5.0,
                 pool_size: int = 4, offline_ok: bool = False) -> None:
        """``offline_ok`` (the viewer): a server that cannot be reached now does not stop the opening;
        :attr:`offline` says why, every call raises :class:`StoreUnavailable` until the server answers, and the
        schema is checked on the first connection that works."""
        super().__init__()
        self.offline = ""
        url = str(store_location(location))
        if not is_postgres_url(url):
            raise ReviewStoreError(f"{url} is not a PostgreSQL URL (postgresql://user@host/db)")
        self.url = url
        self.location = redact(url)
        info = conninfo_to_dict(url)
        host = str(info.get("host") or "local socket")
        self.name = f"{info.get('dbname') or info.get('user') or 'postgres'}@{'local socket' if host.startswith('/') else host}"
        self._timeout_s = timeout_s
        connect: dict[str, Any] = {"autocommit": True, "row_factory": _row_factory, **connect_options(url, timeout_s)}
        self._connect = connect
        self._ready = False
        self.role = str(conninfo_to_dict(url).get("user") or "")
        try:  # one direct connection first: its error says what is wrong (no server, database or role)
            with psycopg.connect(url, **connect) as conn:
                self._prepare(conn)
        except psycopg.OperationalError as exc:
            self.offline = f"cannot reach review store {self.location}: {_first_line(exc)}"
            if not offline_ok:
                raise StoreUnavailable(self.offline) from exc
        except psycopg.Error as exc:
            raise ReviewStoreError(f"cannot open review store {self.location}: {_first_line(exc)}") from exc
        self._pool: ConnectionPool[Any] = ConnectionPool(
            url, min_size=1, max_size=pool_size, kwargs=connect, open=False, timeout=timeout_s,
            check=ConnectionPool.check_connection, name="radscope-review", reconnect_timeout=24 * 3600.0,
        )
        self._pool.open(wait=False)

    # -- schema --------------------------------------------------------------------------------
    def _prepare(self, conn: psycopg.Connection[Any]) -> None:
        """On the first connection that works: who we are, and the schema brought up to date."""
        self.role = str(_one(conn, "SELECT current_user"))
        self._migrate(conn)
        self._ready, self.offline = True, ""

    @staticmethod
    def _read_version(conn: psycopg.Connection[Any]) -> int:
        if _one(conn, "SELECT to_regclass('radscope_schema')") is None:
            return 0
        return int(_one(conn, "SELECT version FROM radscope_schema") or 0)

    def _migrate(self, conn: psycopg.Connection[Any]) -> None:
        version = self._read_version(conn)
        if version > CURRENT_VERSION:
            raise ReviewStoreError(
                f"review store {self.location} has schema v{version}, newer than this RadScope (v{CURRENT_VERSION})")
        if version == CURRENT_VERSION:
            return
        try:
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(hashtext('radscope_review_schema'))")
                conn.execute(VERSION_TABLE)
                version = self._read_version(conn)  # re-read under the lock
                if _one(conn, "SELECT COUNT(*) FROM radscope_schema") == 0:
                    conn.execute("INSERT INTO radscope_schema (version) VALUES (0)")
                for step in range(version, CURRENT_VERSION):
                    MIGRATIONS[step](_PgTx(conn))
                conn.execute("UPDATE radscope_schema SET version = %s", (CURRENT_VERSION,))
        except errors.InsufficientPrivilege as exc:
            raise ReviewStoreError(
                f"review store {self.location} has schema v{version} and needs v{CURRENT_VERSION}, but role "
                f"{self.role} may not change it ({_first_line(exc)}): its owner must open it once or run "
                f"`radscope review init-team {self.location}`") from exc

    # -- primitives ----------------------------------------------------------------------------
    def close(self) -> None:
        self._pool.close()

    @contextlib.contextmanager
    def _connection(self, what: str) -> Iterator[psycopg.Connection[Any]]:
        try:
            with contextlib.ExitStack() as stack:
                if not self._ready:  # never reached yet: ask the server directly (fails fast), not the pool
                    conn = stack.enter_context(psycopg.connect(self.url, **self._connect))
                else:
                    try:
                        conn = stack.enter_context(self._pool.connection(timeout=self._timeout_s))
                    except PoolTimeout:  # the pool may still be backing off after an outage: ask the server now
                        conn = stack.enter_context(psycopg.connect(self.url, **self._connect))
                if not self._ready:
                    self._prepare(conn)
                yield conn
        except errors.InsufficientPrivilege as exc:
            raise NotPermitted(f"cannot {what} in review store {self.location}: role {self.role} may not "
                               f"({_first_line(exc)})") from exc
        except (psycopg.OperationalError, PoolTimeout) as exc:
            raise StoreUnavailable(f"cannot {what} in review store {self.location}: the server cannot be reached "
                                   f"({_first_line(exc)})") from exc
        except psycopg.Error as exc:
            raise ReviewStoreError(f"cannot {what} in review store {self.location}: {_first_line(exc)}") from exc

    @contextlib.contextmanager
    def _tx(self, what: str) -> Iterator[Tx]:
        self._refuse_writes(what)
        with self._connection(what) as conn, conn.transaction():
            yield _PgTx(conn)

    def _query(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        with self._connection("read") as conn:
            return conn.execute(portable_to_pg(sql), params).fetchall()  # type: ignore[call-overload,no-any-return]

    @property
    def schema_version(self) -> int:
        with self._connection("read") as conn:
            return self._read_version(conn)
