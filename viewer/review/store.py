"""The review store: every reviewer verdict, durable in SQLite before its id is returned.

Durability: WAL journal with ``synchronous=FULL`` (each commit fsyncs the WAL), one short
``BEGIN IMMEDIATE`` transaction per change, ``busy_timeout`` so several processes can read and
write the same store. History is an append-only table (triggers refuse UPDATE/DELETE) and a
deleted flag is only tombstoned (a trigger refuses DELETE on ``flag``).
"""

from __future__ import annotations

import contextlib
import getpass
import json
import os
import sqlite3
import uuid
from dataclasses import asdict, dataclass, replace
from datetime import datetime, UTC
from pathlib import Path
from typing import Any, Literal
from collections.abc import Iterator

from viewer.review.model import Flag, ImageContext, Region, StudyHeader, Verdict, age_band
from viewer.review.rows import FLAG_COLUMNS, flag_from_row, flag_to_row
from viewer.review.schema import CURRENT_VERSION, MIGRATIONS

STATUSES = ("not_started", "in_progress", "done")
Status = Literal["not_started", "in_progress", "done"]
ImportOutcome = Literal["added", "updated", "unchanged"]
_UNSET: Any = object()
ENV_REVIEWER = "RADSCOPE_REVIEWER"


class ReviewStoreError(RuntimeError):
    """A review store could not be opened, read or written (the message names the file)."""


def default_store_path() -> Path:
    """``<RADSCOPE_HOME>/review/review.sqlite3``."""
    from viewer import paths

    return paths.subdir("review") / "review.sqlite3"


def default_reviewer() -> str:
    """The reviewer's name: ``RADSCOPE_REVIEWER``, else ``reviewer`` in the viewer settings file
    (``<home>/viewer-settings.json``), else the login name."""
    env = os.environ.get(ENV_REVIEWER, "").strip()
    if env:
        return env
    from viewer.display.settings import settings_path

    settings = settings_path()
    with contextlib.suppress(OSError, ValueError, AttributeError):
        name = str(json.loads(settings.read_text(encoding="utf-8")).get("reviewer", "")).strip()
        if name:
            return name
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return "unknown"


def utc_now() -> str:
    """Current UTC time as ISO 8601 with milliseconds and a ``Z``."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class HistoryEntry:
    """One append-only record of a flag's life: the flag as it was after ``action``."""

    seq: int
    flag_id: str
    action: str
    at: str
    actor: str
    snapshot: dict[str, Any]


@dataclass(frozen=True)
class WorklistEntry:
    """A study on the worklist."""

    study_uid: str
    position: int
    status: str
    description: str
    source_path: str
    n_flags: int


class ReviewStore:
    """A connection to one review store file (create one per thread or process)."""

    def __init__(self, path: str | os.PathLike[str] | None = None, *, busy_timeout_s: float = 10.0) -> None:
        self.path = Path(path) if path is not None else default_store_path()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(self.path, timeout=busy_timeout_s, isolation_level=None)
        except (OSError, sqlite3.Error) as exc:
            raise ReviewStoreError(f"cannot open review store {self.path}: {exc}") from exc
        self._conn.row_factory = sqlite3.Row
        try:
            self._conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
            mode = self._conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise ReviewStoreError(f"review store {self.path}: could not enable WAL (got {mode})")
            self._conn.execute("PRAGMA synchronous = FULL")
            self._conn.execute("PRAGMA foreign_keys = ON")
            self._migrate()
        except sqlite3.Error as exc:
            self._conn.close()
            raise ReviewStoreError(f"cannot open review store {self.path}: {exc}") from exc
        except ReviewStoreError:
            self._conn.close()
            raise

    # -- plumbing ----------------------------------------------------------------------------
    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> ReviewStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def _write(self, what: str) -> Iterator[sqlite3.Connection]:
        """One short write transaction; commits (durably) on success, rolls back on any error."""
        try:
            self._conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise ReviewStoreError(f"cannot {what} in review store {self.path}: {exc}") from exc
        try:
            yield self._conn
            self._conn.execute("COMMIT")
        except BaseException as exc:
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            if isinstance(exc, sqlite3.Error):
                raise ReviewStoreError(f"cannot {what} in review store {self.path}: {exc}") from exc
            raise

    def _migrate(self) -> None:
        version = self.schema_version
        if version > CURRENT_VERSION:
            raise ReviewStoreError(
                f"review store {self.path} has schema v{version}, newer than this RadScope (v{CURRENT_VERSION})"
            )
        if version == CURRENT_VERSION:
            return
        with self._write("migrate the schema") as conn:
            version = conn.execute("PRAGMA user_version").fetchone()[0]  # re-read under the lock
            for step in range(version, CURRENT_VERSION):
                MIGRATIONS[step](conn)
                conn.execute(f"PRAGMA user_version = {step + 1}")

    @property
    def schema_version(self) -> int:
        return int(self._conn.execute("PRAGMA user_version").fetchone()[0])

    def pragma(self, name: str) -> Any:
        """The value of a read-only PRAGMA (``journal_mode``, ``synchronous``, ``integrity_check``)."""
        if not name.replace("_", "").isalpha():
            raise ValueError(f"not a pragma name: {name!r}")
        return self._conn.execute(f"PRAGMA {name}").fetchone()[0]

    # -- flags -------------------------------------------------------------------------------
    def add_flag(
        self,
        context: ImageContext,
        verdict: Verdict | str,
        label: str = "",
        *,
        region: Region | None = None,
        comment: str = "",
        reviewer: str | None = None,
    ) -> str:
        """Record a verdict on the image in ``context``; returns the flag id once it is durable."""
        verdict = verdict if isinstance(verdict, Verdict) else Verdict.parse(verdict)
        if not context.sop_instance_uids:
            raise ValueError("a flag needs the SOP Instance UID of the image it is about")
        now = utc_now()
        geometry = context.geometry
        headers = context.headers
        if not headers.age_band and context.study.patient_age:
            headers = replace(headers, age_band=age_band(context.study.patient_age))
        flag = Flag(
            id=str(uuid.uuid4()),
            study_uid=context.study_uid,
            series_uid=context.series_uid,
            stack_id=context.stack_id or context.series_uid,
            slice_index=int(context.slice_index),
            sop_instance_uids=tuple(context.sop_instance_uids),
            sop_class_uid=context.sop_class_uid,
            frame_number=context.frame_number,
            verdict=verdict,
            label=label,
            region=_with_lps(region, context),
            comment=comment,
            reviewer=reviewer or default_reviewer(),
            created=now,
            updated=now,
            model=context.model,
            method=context.method,
            threshold=context.threshold,
            headers=headers,
            frame_of_reference_uid=geometry.frame_of_reference_uid if geometry else "",
        )
        with self._write("save the flag") as conn:
            self._insert(conn, flag, "create", flag.reviewer)
            self._touch_study(conn, flag.study_uid, context.study, now)
        return flag.id

    def edit_flag(
        self,
        flag_id: str,
        *,
        verdict: Verdict | str | None = None,
        label: str | None = None,
        region: Region | None = _UNSET,
        comment: str | None = None,
        actor: str | None = None,
    ) -> Flag:
        """Change a flag (history keeps the previous versions); returns the new version."""
        changes: dict[str, Any] = {}
        if verdict is not None:
            changes["verdict"] = verdict if isinstance(verdict, Verdict) else Verdict.parse(verdict)
        if label is not None:
            changes["label"] = label
        if comment is not None:
            changes["comment"] = comment
        if region is not _UNSET:
            changes["region"] = region
        with self._write("edit the flag") as conn:
            old = self._require(conn, flag_id)
            if old.deleted:
                raise ReviewStoreError(f"flag {flag_id} was deleted; it cannot be edited")
            new = old.with_changes(updated=utc_now(), **changes)
            self._update(conn, new, "edit", actor or default_reviewer())
        return new

    def delete_flag(self, flag_id: str, *, actor: str | None = None) -> Flag:
        """Tombstone a flag (it stays in the store and its history); returns the tombstone."""
        with self._write("delete the flag") as conn:
            old = self._require(conn, flag_id)
            if old.deleted:
                return old
            new = old.with_changes(deleted=True, updated=utc_now())
            self._update(conn, new, "delete", actor or default_reviewer())
        return new

    def merge_flag(self, flag: Flag, *, study: StudyHeader | None = None) -> ImportOutcome:
        """Import a flag by id: add it if new, take it if newer than the stored one, else keep ours."""
        return self.merge_flags([(flag, study or StudyHeader())])[0]

    def merge_flags(self, items: list[tuple[Flag, StudyHeader]]) -> list[ImportOutcome]:
        """:meth:`merge_flag` for many flags in one transaction (all are imported, or none)."""
        outcomes: list[ImportOutcome] = []
        with self._write("import the flags") as conn:
            for flag, study in items:
                row = conn.execute("SELECT * FROM flag WHERE id = ?", (flag.id,)).fetchone()
                if row is None:
                    self._insert(conn, flag, "import", flag.reviewer)
                    outcomes.append("added")
                else:
                    old = flag_from_row(row)
                    if old == flag or flag.updated <= old.updated:
                        outcomes.append("unchanged")
                        continue
                    self._update(conn, flag, "import", flag.reviewer)
                    outcomes.append("updated")
                self._touch_study(conn, flag.study_uid, study, flag.updated)
        return outcomes

    def get_flag(self, flag_id: str) -> Flag:
        """A flag by id (tombstones included); :class:`KeyError` if there is none."""
        row = self._conn.execute("SELECT * FROM flag WHERE id = ?", (flag_id,)).fetchone()
        if row is None:
            raise KeyError(flag_id)
        return flag_from_row(row)

    def flags(self, study_uid: str | None = None, *, include_deleted: bool = False) -> list[Flag]:
        """Flags, oldest first, optionally of one study."""
        sql = "SELECT * FROM flag WHERE (? IS NULL OR study_uid = ?)"
        if not include_deleted:
            sql += " AND deleted = 0"
        rows = self._conn.execute(sql + " ORDER BY created, id", (study_uid, study_uid)).fetchall()
        return [flag_from_row(r) for r in rows]

    def history(self, flag_id: str) -> list[HistoryEntry]:
        """Every recorded version of a flag, oldest first."""
        rows = self._conn.execute(
            "SELECT * FROM flag_history WHERE flag_id = ? ORDER BY seq", (flag_id,)
        ).fetchall()
        return [
            HistoryEntry(r["seq"], r["flag_id"], r["action"], r["at"], r["actor"], json.loads(r["snapshot"]))
            for r in rows
        ]

    def study_header(self, study_uid: str) -> StudyHeader:
        """The study-level header facts saved with the study's flags."""
        row = self._conn.execute("SELECT header FROM study WHERE study_uid = ?", (study_uid,)).fetchone()
        return StudyHeader(**json.loads(row["header"])) if row else StudyHeader()

    # -- worklist ----------------------------------------------------------------------------
    def add_study(
        self, study_uid: str, *, description: str = "", source_path: str = "", header: StudyHeader | None = None
    ) -> None:
        """Put a study on the worklist (at the end; a study already there keeps its place and status)."""
        with self._write("add the study to the worklist") as conn:
            self._touch_study(conn, study_uid, header or StudyHeader(), utc_now(), start=False)
            conn.execute(
                "UPDATE study SET description = CASE WHEN ? != '' THEN ? ELSE description END, "
                "source_path = CASE WHEN ? != '' THEN ? ELSE source_path END WHERE study_uid = ?",
                (description, description, source_path, source_path, study_uid),
            )

    def set_status(self, study_uid: str, status: Status) -> None:
        """Mark a study not started, in progress or done."""
        if status not in STATUSES:
            raise ValueError(f"unknown status {status!r}; allowed: {', '.join(STATUSES)}")
        with self._write("set the study status") as conn:
            if conn.execute("UPDATE study SET status = ?, updated = ? WHERE study_uid = ?",
                            (status, utc_now(), study_uid)).rowcount == 0:
                raise KeyError(study_uid)

    def worklist(self) -> list[WorklistEntry]:
        """The studies in worklist order."""
        rows = self._conn.execute(
            "SELECT s.*, (SELECT COUNT(*) FROM flag f WHERE f.study_uid = s.study_uid AND f.deleted = 0) AS n "
            "FROM study s ORDER BY position"
        ).fetchall()
        return [
            WorklistEntry(r["study_uid"], r["position"], r["status"], r["description"], r["source_path"], r["n"])
            for r in rows
        ]

    def progress(self) -> tuple[int, int]:
        """(studies done, studies on the worklist)."""
        row = self._conn.execute("SELECT COUNT(*), SUM(status = 'done') FROM study").fetchone()
        return int(row[1] or 0), int(row[0])

    def neighbour(self, study_uid: str | None, step: int = 1, *, skip_done: bool = False) -> str | None:
        """The study ``step`` places after (negative: before) ``study_uid`` on the worklist, or None.

        ``study_uid=None`` starts before the first study (``step > 0``) or after the last.
        """
        uids = [e.study_uid for e in self.worklist() if not skip_done or e.status != "done" or e.study_uid == study_uid]
        if not uids:
            return None
        if study_uid is None or study_uid not in uids:
            pos = -1 if step > 0 else len(uids)
        else:
            pos = uids.index(study_uid)
        target = pos + step
        return uids[target] if 0 <= target < len(uids) else None

    # -- internals ---------------------------------------------------------------------------
    def _require(self, conn: sqlite3.Connection, flag_id: str) -> Flag:
        row = conn.execute("SELECT * FROM flag WHERE id = ?", (flag_id,)).fetchone()
        if row is None:
            raise KeyError(f"no flag with id {flag_id} in {self.path}")
        return flag_from_row(row)

    def _insert(self, conn: sqlite3.Connection, flag: Flag, action: str, actor: str) -> None:
        marks = ", ".join("?" * len(FLAG_COLUMNS))
        conn.execute(f"INSERT INTO flag ({', '.join(FLAG_COLUMNS)}) VALUES ({marks})", flag_to_row(flag))
        self._log(conn, flag, action, actor)

    def _update(self, conn: sqlite3.Connection, flag: Flag, action: str, actor: str) -> None:
        sets = ", ".join(f"{c} = ?" for c in FLAG_COLUMNS[1:])
        conn.execute(f"UPDATE flag SET {sets} WHERE id = ?", (*flag_to_row(flag)[1:], flag.id))
        self._log(conn, flag, action, actor)

    @staticmethod
    def _log(conn: sqlite3.Connection, flag: Flag, action: str, actor: str) -> None:
        conn.execute(
            "INSERT INTO flag_history (flag_id, action, at, actor, snapshot) VALUES (?, ?, ?, ?, ?)",
            (flag.id, action, flag.updated, actor, json.dumps(flag.to_dict(), sort_keys=True)),
        )

    @staticmethod
    def _touch_study(
        conn: sqlite3.Connection, study_uid: str, header: StudyHeader, now: str, *, start: bool = True
    ) -> None:
        """Insert the study if new; a flag moves a not-started study to in progress."""
        header_json = json.dumps(asdict(header), sort_keys=True)
        has_header = any(asdict(header).values())
        conn.execute(
            "INSERT INTO study (study_uid, position, status, header, updated) "
            "VALUES (?, (SELECT COALESCE(MAX(position), 0) + 1 FROM study), ?, ?, ?) "
            "ON CONFLICT (study_uid) DO UPDATE SET "
            "header = CASE WHEN ? THEN excluded.header ELSE header END, "
            "status = CASE WHEN ? AND status = 'not_started' THEN 'in_progress' ELSE status END, "
            "updated = excluded.updated",
            (study_uid, "in_progress" if start else "not_started", header_json, now, has_header, start),
        )


def _with_lps(region: Region | None, context: ImageContext) -> Region | None:
    """The region with patient coordinates filled from the image geometry when missing."""
    if region is None or region.points_lps or context.geometry is None:
        return region
    return Region.make(region.kind, region.points_px, context.geometry)
