"""The embedded review store: one SQLite file, durable on every write, checked before it is trusted.

Durability: WAL journal with ``synchronous=FULL`` (each commit fsyncs the WAL), one short ``BEGIN
IMMEDIATE`` transaction per change, ``busy_timeout`` so several processes can share the file.

A file is checked at open: a 0-byte file is refused (never silently replaced: it may be a truncated
store), so is one without the SQLite header; ``PRAGMA quick_check`` finds damage, and a damaged store
opens for reading only (what can be read is listed, the unreadable rows are named in ``problems``).
A store or folder RadScope may not write (read-only file, folder or mount, immutable file) opens
read-only too: list, export and the viewer work; writes raise :class:`StoreReadOnly` saying why.
A new store is built beside its final name and linked into place, so no reader ever sees it half made.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import urllib.parse
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from viewer.review.schema import CURRENT_VERSION, MIGRATIONS
from viewer.review.store import ReviewStore, ReviewStoreError, StoreReadOnly, Tx, store_location

SQLITE_HEADER = b"SQLite format 3\x00"
QUICK_CHECK_LINES = 5

RESCUE = ("Keep the file as it is. To save what can still be read: "
          "`radscope review export --store {path} --format json --out rescue.json`, move {path} aside, then "
          "`radscope review import rescue.json` into a new store (or try `sqlite3 {path} .recover`).")


class SqliteReviewStore(ReviewStore):
    """A review store in one SQLite file (see the module docstring)."""

    backend = "sqlite"
    path: Path

    def __init__(self, path: str | os.PathLike[str] | None = None, *, busy_timeout_s: float = 10.0,
                 offline_ok: bool = False) -> None:
        """``offline_ok`` is for a server store; a file is there or not."""
        super().__init__()
        where = store_location(path)
        if isinstance(where, str):
            raise ReviewStoreError(f"{where} is a PostgreSQL URL, not a SQLite review store file")
        self.path = where
        self.location = str(where)
        self.name = where.name
        self.damage = ""
        """What ``PRAGMA quick_check`` found wrong ('' for a sound file)."""
        self._timeout_s = busy_timeout_s
        if not self.path.exists():
            self._create()
        self._check_file()
        self._conn = self._connect()
        try:
            self._conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
            self._check_integrity()
            if not self.read_only:
                mode = self._conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
                if str(mode).lower() != "wal":
                    raise ReviewStoreError(f"review store {self.path}: could not enable WAL (got {mode})")
                self._conn.execute("PRAGMA synchronous = FULL")
            self._migrate()
        except sqlite3.Error as exc:
            self._conn.close()
            if self.damage or isinstance(exc, sqlite3.DatabaseError) and "malformed" in str(exc):
                raise ReviewStoreError(
                    f"review store {self.path} is damaged beyond reading ({self.damage or exc}): nothing was changed. "
                    f"Keep the file as it is; restore it from a backup or try `sqlite3 {self.path} .recover`") from exc
            raise ReviewStoreError(f"cannot open review store {self.path}: {exc}") from exc
        except ReviewStoreError:
            self._conn.close()
            raise

    # -- opening -------------------------------------------------------------------------------
    def _create(self) -> None:
        """Build a new store under a temporary name and link it into place (never over an existing file)."""
        folder = self.path.parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ReviewStoreError(f"cannot create review store {self.path}: {exc}") from exc
        tmp = folder / f".{self.path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.new"
        try:
            conn = sqlite3.connect(tmp, isolation_level=None)
            try:
                conn.execute("BEGIN IMMEDIATE")
                for step in range(CURRENT_VERSION):
                    MIGRATIONS[step](conn)
                conn.execute(f"PRAGMA user_version = {CURRENT_VERSION}")
                conn.execute("COMMIT")
                conn.execute("PRAGMA journal_mode = WAL")
            finally:
                conn.close()
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
            with contextlib.suppress(FileExistsError):  # another process made it first: theirs is as good
                os.link(tmp, self.path)
            _fsync_dir(folder)
        except (OSError, sqlite3.Error) as exc:
            raise ReviewStoreError(f"cannot create review store {self.path}: {exc}") from exc
        finally:
            with contextlib.suppress(OSError):
                tmp.unlink()

    def _check_file(self) -> None:
        try:
            with open(self.path, "rb") as f:
                head = f.read(len(SQLITE_HEADER))
        except OSError as exc:
            raise ReviewStoreError(f"cannot open review store {self.path}: {exc}") from exc
        if not head:
            raise ReviewStoreError(
                f"review store {self.path} is empty (0 bytes): it may have been truncated (a failed copy, a full "
                "disk), so RadScope does not replace it. Restore it from a backup, or delete it to start a new store")
        if head != SQLITE_HEADER:
            raise ReviewStoreError(
                f"review store {self.path} is not a SQLite database (its header is {head[:16]!r}): it is damaged "
                "or another kind of file. Nothing was changed; move it aside or restore it from a backup")
        if not os.access(self.path, os.W_OK):
            self.read_only = "the file is read-only (you can list and export its flags, not add or change them)"
        elif not os.access(self.path.parent, os.W_OK):
            self.read_only = (f"its folder {self.path.parent} is read-only, and SQLite must write its journal "
                              "there (you can list and export its flags, not add or change them)")

    def _connect(self) -> sqlite3.Connection:
        try:
            if not self.read_only:
                conn = sqlite3.connect(self.path, timeout=self._timeout_s, isolation_level=None)
            else:
                conn = self._connect_read_only()
        except sqlite3.Error as exc:
            raise ReviewStoreError(f"cannot open review store {self.path}: {exc}") from exc
        conn.row_factory = sqlite3.Row
        return conn

    def _connect_read_only(self) -> sqlite3.Connection:
        """``mode=ro``; a WAL store whose folder is read-only and has no -shm file needs ``immutable=1``."""
        uri = "file:" + urllib.parse.quote(str(self.path.resolve()))
        for extra in ("mode=ro", "immutable=1"):
            conn = sqlite3.connect(f"{uri}?{extra}", uri=True, timeout=self._timeout_s, isolation_level=None)
            try:
                conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
                return conn
            except sqlite3.OperationalError:
                conn.close()
                if extra == "immutable=1":
                    raise
        raise AssertionError("unreachable")

    def _check_integrity(self) -> None:
        try:
            lines = [str(r[0]) for r in self._conn.execute(f"PRAGMA quick_check({QUICK_CHECK_LINES})")]
        except sqlite3.DatabaseError as exc:
            lines = [str(exc)]
        # CHECK / NOT NULL findings are about a row's content, not the file: such rows are named when read.
        found = [t.strip() for line in lines for t in line.splitlines()
                 if t.strip() and t.strip() != "ok" and not t.startswith("***") and not _content_finding(t)]
        if found:
            self.damage = "; ".join(found[:3]) + ("; ..." if len(found) > 3 else "")
            self.read_only = (f"the file is damaged ({self.damage}), so writes are refused to keep it from getting "
                              f"worse. " + RESCUE.format(path=self.path))

    def _migrate(self) -> None:
        version = self.schema_version
        if version > CURRENT_VERSION:
            raise ReviewStoreError(
                f"review store {self.path} has schema v{version}, newer than this RadScope (v{CURRENT_VERSION})"
            )
        if version == CURRENT_VERSION:
            return
        if self.read_only:
            raise StoreReadOnly(f"review store {self.path} has schema v{version} and needs v{CURRENT_VERSION}, "
                                f"but it cannot be upgraded: {self.read_only}")
        with self._tx("migrate the schema") as conn:
            version = conn.execute("PRAGMA user_version").fetchone()[0]  # re-read under the lock
            for step in range(version, CURRENT_VERSION):
                MIGRATIONS[step](conn)  # type: ignore[arg-type]
                conn.execute(f"PRAGMA user_version = {step + 1}")

    # -- primitives ----------------------------------------------------------------------------
    def close(self) -> None:
        self._conn.close()

    @contextlib.contextmanager
    def _tx(self, what: str) -> Iterator[Tx]:
        self._refuse_writes(what)
        try:
            self._conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise ReviewStoreError(f"cannot {what} in review store {self.path}: {exc}") from exc
        try:
            yield self._conn  # type: ignore[misc]
            self._conn.execute("COMMIT")
        except BaseException as exc:
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            if isinstance(exc, sqlite3.Error):
                raise ReviewStoreError(f"cannot {what} in review store {self.path}: {exc}") from exc
            raise

    def _query(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        try:
            return self._conn.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise ReviewStoreError(f"cannot read review store {self.path}: {exc}") from exc

    def _flag_rows(self, study_uid: str | None, include_deleted: bool) -> list[Any]:
        """The matching rows. In a damaged store (or when one pass over the table fails: a value that is not
        text) row by row through the id index, naming each row the index lists but the table cannot give:
        a scan over a damaged page may silently return fewer rows."""
        if not self.damage:
            try:
                return super()._flag_rows(study_uid, include_deleted)
            except ReviewStoreError:
                pass
        try:
            keys = self._conn.execute("SELECT rowid, id FROM flag INDEXED BY sqlite_autoindex_flag_1 "
                                      "ORDER BY id").fetchall()
        except sqlite3.DatabaseError as exc:
            raise ReviewStoreError(f"cannot read the flags of review store {self.path}: {exc}. "
                                   + RESCUE.format(path=self.path)) from exc
        rows = []
        for rowid, flag_id in keys:
            try:
                row = self._conn.execute("SELECT rowid AS stored_seq, * FROM flag WHERE rowid = ?", (rowid,)).fetchone()
                if row is None or row["id"] != flag_id:
                    raise sqlite3.DatabaseError("its row is missing from the damaged table")
            except sqlite3.DatabaseError as exc:
                self.problems.append(f"flag {flag_id} in {self.path} is unreadable ({exc}); skipped")
                continue
            if (study_uid is None or row["study_uid"] == study_uid) and (include_deleted or not row["deleted"]):
                rows.append(row)
        return sorted(rows, key=lambda r: (str(r["created"]), r["stored_seq"]))

    @property
    def schema_version(self) -> int:
        return int(self._conn.execute("PRAGMA user_version").fetchone()[0])

    def pragma(self, name: str) -> Any:
        """The value of a read-only PRAGMA (``journal_mode``, ``synchronous``, ``integrity_check``)."""
        if not name.replace("_", "").isalpha():
            raise ValueError(f"not a pragma name: {name!r}")
        return self._conn.execute(f"PRAGMA {name}").fetchone()[0]


def _content_finding(line: str) -> bool:
    return line.startswith(("CHECK constraint failed", "NULL value in", "NOT NULL constraint"))


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
