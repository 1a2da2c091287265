"""A durable local outbox for flags a team store could not take (server or network gone).

When saving a flag fails with :class:`~viewer.review.store.StoreUnavailable`, the viewer puts the flag (its id
already made) into ``<RADSCOPE_HOME>/review/outbox.sqlite3`` (WAL, ``synchronous=FULL``: durable before the
panel says it is kept) and retries: :meth:`Outbox.drain` saves each pending flag with
:meth:`~viewer.review.store.ReviewStore.save_flag`, which is idempotent by id, so a flag whose commit happened
but whose acknowledgement was lost is not saved twice. A flag leaves the outbox only after the store
acknowledged it; one the store refuses for good (e.g. no right to add flags) stays, with the reason.
"""

from __future__ import annotations

import json
import os
import sqlite3
from dataclasses import asdict, dataclass
from pathlib import Path

from viewer.review.model import Flag, StudyHeader
from viewer.review.store import ReviewStore, ReviewStoreError, StoreUnavailable, utc_now

_SCHEMA = """CREATE TABLE IF NOT EXISTS pending (
    id TEXT PRIMARY KEY,
    store TEXT NOT NULL,
    flag TEXT NOT NULL,
    study TEXT NOT NULL,
    added TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT NOT NULL DEFAULT ''
)"""


def default_outbox_path() -> Path:
    from viewer import paths

    return paths.subdir("review") / "outbox.sqlite3"


@dataclass(frozen=True)
class DrainResult:
    sent: list[str]
    """Ids the store acknowledged (and that left the outbox)."""
    waiting: int
    """Flags still in the outbox for that store."""
    error: str
    """Why the last attempt stopped ('' when everything went)."""


class Outbox:
    """Flags waiting for a store, kept in a small SQLite file of their own."""

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = Path(path) if path is not None else default_outbox_path()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(self.path, timeout=10.0, isolation_level=None)
            self._conn.execute("PRAGMA journal_mode = WAL")
            self._conn.execute("PRAGMA synchronous = FULL")
            self._conn.execute(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise ReviewStoreError(f"cannot open the local outbox {self.path}: {exc}") from exc

    def close(self) -> None:
        self._conn.close()

    def put(self, store: ReviewStore, flag: Flag, study: StudyHeader, error: str = "") -> None:
        """Keep ``flag`` for ``store``; durable when this returns."""
        try:
            self._conn.execute(
                "INSERT INTO pending (id, store, flag, study, added, last_error) VALUES (?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (id) DO NOTHING",
                (flag.id, store.location, json.dumps(flag.to_dict()), json.dumps(asdict(study)), utc_now(), error))
        except sqlite3.Error as exc:
            raise ReviewStoreError(f"cannot keep the flag in the local outbox {self.path}: {exc}") from exc

    def pending(self, store: ReviewStore) -> list[tuple[Flag, StudyHeader]]:
        rows = self._conn.execute("SELECT flag, study FROM pending WHERE store = ? ORDER BY added, id",
                                  (store.location,)).fetchall()
        return [(Flag.from_dict(json.loads(f)), StudyHeader(**json.loads(s))) for f, s in rows]

    def count(self, store: ReviewStore) -> int:
        return int(self._conn.execute("SELECT COUNT(*) FROM pending WHERE store = ?", (store.location,)).fetchone()[0])

    def drain(self, store: ReviewStore) -> DrainResult:
        """Save the pending flags of ``store``, oldest first; stops at the first failure."""
        sent: list[str] = []
        error = ""
        for flag, study in self.pending(store):
            try:
                store.save_flag(flag, study)
            except ReviewStoreError as exc:
                error = str(exc)
                self._conn.execute("UPDATE pending SET attempts = attempts + 1, last_error = ? WHERE id = ?",
                                   (error, flag.id))
                if isinstance(exc, StoreUnavailable):
                    break
                continue
            self._conn.execute("DELETE FROM pending WHERE id = ?", (flag.id,))
            sent.append(flag.id)
        return DrainResult(sent, self.count(store), error)
