"""The review store: one interface over two backends, every verdict durable before its id is returned.

``ReviewStore(location)`` opens the store a location names: a SQLite file (the embedded default,
:mod:`viewer.review.sqlite_store`) or a PostgreSQL URL (``postgresql://user@host/db``, also a Unix-socket
host ``postgresql:///db?host=/run/postgresql``; the store a team shares, :mod:`viewer.review.pg_store`).
No location: ``RADSCOPE_REVIEW_STORE``, else ``review_store`` in the viewer settings, else
``<RADSCOPE_HOME>/review/review.sqlite3``.

Everything above the few backend primitives (a write transaction, a read, the schema version) is written
once here in portable SQL, so both backends have the same flags, history, worklist, exports and summary.
History is append-only (triggers refuse UPDATE/DELETE in both) and a deleted flag is only tombstoned.
Flag ids are made by the client, so saving a flag again after a lost acknowledgement is harmless.
"""

from __future__ import annotations

import contextlib
import getpass
import json
import os
import uuid
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal, Protocol

from viewer.review.model import Flag, ImageContext, Region, StudyHeader, Verdict, age_band
from viewer.review.rows import FLAG_COLUMNS, flag_from_row, flag_to_row

STATUSES = ("not_started", "in_progress", "done")
Status = Literal["not_started", "in_progress", "done"]
ImportOutcome = Literal["added", "updated", "unchanged"]
_UNSET: Any = object()
ENV_REVIEWER = "RADSCOPE_REVIEWER"
ENV_STORE = "RADSCOPE_REVIEW_STORE"
SETTINGS_KEY = "review_store"
PRESENCE_TTL_S = 120.0
"""A reviewer counts as on a study for this long after the viewer last said so."""


class ReviewStoreError(RuntimeError):
    """A review store could not be opened, read or written (the message names the store)."""


class StoreUnavailable(ReviewStoreError):
    """The store's server cannot be reached. A save that failed this way may be retried as it is."""


class StoreReadOnly(ReviewStoreError):
    """The store can be read but not written (a read-only file or folder, or a damaged file)."""


class NotPermitted(ReviewStoreError):
    """The database refused the change for this reviewer's role (a team store's row-level security)."""


class FlagConflict(ReviewStoreError):
    """Someone changed the flag since the editor loaded it; :attr:`current` is the flag as it is now."""

    def __init__(self, message: str, current: Flag) -> None:
        super().__init__(message)
        self.current = current


def is_postgres_url(text: str | os.PathLike[str]) -> bool:
    return isinstance(text, str) and text.startswith(("postgresql://", "postgres://"))


def default_store_path() -> Path:
    """``<RADSCOPE_HOME>/review/review.sqlite3``."""
    from viewer import paths

    return paths.subdir("review") / "review.sqlite3"


def _settings() -> dict[str, Any]:
    from viewer.display.settings import settings_path

    with contextlib.suppress(OSError, ValueError, AttributeError):
        data = json.loads(settings_path().read_text(encoding="utf-8"))
        if isinstance(data, dict):
            return data
    return {}


def store_location(location: str | os.PathLike[str] | None = None) -> str | Path:
    """The store to open: ``location``, else ``RADSCOPE_REVIEW_STORE``, else the viewer settings'
    ``review_store``, else :func:`default_store_path`. URLs stay strings; files become paths."""
    text = str(location) if location is not None else ""
    if not text:
        text = os.environ.get(ENV_STORE, "").strip() or str(_settings().get(SETTINGS_KEY) or "").strip()
    if not text:
        return default_store_path()
    return text if is_postgres_url(text) else Path(text).expanduser()


def default_reviewer() -> str:
    """The reviewer's name: ``RADSCOPE_REVIEWER``, else ``reviewer`` in the viewer settings file
    (``<home>/viewer-settings.json``), else the login name."""
    env = os.environ.get(ENV_REVIEWER, "").strip()
    if env:
        return env
    name = str(_settings().get("reviewer") or "").strip()
    if name:
        return name
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return "unknown"


def utc_now() -> str:
    """Current UTC time as ISO 8601 with milliseconds and a ``Z``."""
    return _iso(datetime.now(UTC))


def _iso(t: datetime) -> str:
    return t.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def make_flag(
    context: ImageContext, verdict: Verdict | str, label: str = "", *, region: Region | None = None,
    comment: str = "", reviewer: str | None = None,
) -> Flag:
    """A new flag (with its id) on the image in ``context``; nothing is saved yet."""
    verdict = verdict if isinstance(verdict, Verdict) else Verdict.parse(verdict)
    if not context.sop_instance_uids:
        raise ValueError("a flag needs the SOP Instance UID of the image it is about")
    now = utc_now()
    headers = context.headers
    if not headers.age_band and context.study.patient_age:
        headers = replace(headers, age_band=age_band(context.study.patient_age))
    return Flag(
        id=str(uuid.uuid4()), study_uid=context.study_uid, series_uid=context.series_uid,
        stack_id=context.stack_id or context.series_uid, slice_index=int(context.slice_index),
        sop_instance_uids=tuple(context.sop_instance_uids), sop_class_uid=context.sop_class_uid,
        frame_number=context.frame_number, verdict=verdict, label=label, region=_with_lps(region, context),
        comment=comment, reviewer=reviewer or default_reviewer(), created=now, updated=now, model=context.model,
        method=context.method, threshold=context.threshold, headers=headers,
        frame_of_reference_uid=context.geometry.frame_of_reference_uid if context.geometry else "",
        scope_note=context.scope_note,
    )


@dataclass(frozen=True)
class HistoryEntry:
    """One append-only record of a flag's life: the flag as it was after ``action``."""

    seq: int
    flag_id: str
    action: str
    at: str
    actor: str
    snapshot: dict[str, Any]


WORKLIST_ORDER = "priority DESC NULLS LAST, position"
"""Worklist order: ranked studies first (highest priority first), then the rest in the order they came."""


@dataclass(frozen=True)
class WorklistEntry:
    """A study on the worklist, with the reviewers who have it open now."""

    study_uid: str
    position: int
    status: str
    description: str
    source_path: str
    n_flags: int
    reviewers: tuple[str, ...] = ()
    priority: float | None = None
    """How much the study deserves a human look (viewer.batch.worklist; None: not ranked)."""
    priority_reason: str = ""


class Cursor(Protocol):
    rowcount: int

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...


class Tx(Protocol):
    """A backend's open transaction: ``execute`` takes SQL with ``?`` marks."""

    def execute(self, sql: str, params: tuple[Any, ...] | list[Any] = ()) -> Cursor: ...


class ReviewStore:
    """A connection to one review store (create one per thread or process).

    ``ReviewStore(location)`` returns the backend the location names (see the module docstring). After
    a read, :attr:`problems` names the rows that could not be read (the rest are returned).
    """

    backend = ""
    location = ""
    """The store for messages: a file path, or a URL without its password."""
    path: Path | None = None
    read_only = ""
    """Why writes are refused ('' when they are not)."""
    offline = ""
    """Why the store's server cannot be reached now ('' when it can or there is none)."""
    name = ""
    """A short name for titles: the file's name, or ``database@host`` of a team store."""

    def __new__(cls, location: str | os.PathLike[str] | None = None, **kwargs: Any) -> ReviewStore:
        if cls is ReviewStore:
            if is_postgres_url(store_location(location)):
                from viewer.review.pg_store import PostgresReviewStore

                cls = PostgresReviewStore
            else:
                from viewer.review.sqlite_store import SqliteReviewStore

                cls = SqliteReviewStore
        return object.__new__(cls)

    def __init__(self, location: str | os.PathLike[str] | None = None, **kwargs: Any) -> None:
        self.problems: list[str] = []

    # -- backend primitives --------------------------------------------------------------------
    def close(self) -> None:
        raise NotImplementedError

    def _tx(self, what: str) -> contextlib.AbstractContextManager[Tx]:
        """One short write transaction: committed durably on success, rolled back on any error."""
        raise NotImplementedError

    def _query(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        raise NotImplementedError

    @property
    def schema_version(self) -> int:
        raise NotImplementedError

    def _flag_rows(self, study_uid: str | None, include_deleted: bool) -> list[Any]:
        where = ("study_uid = ?" if study_uid is not None else "1 = 1") + ("" if include_deleted else " AND deleted = 0")
        # oldest first; flags made in the same millisecond in the order they were stored (their first history entry)
        return self._query("SELECT f.*, (SELECT MIN(h.seq) FROM flag_history h WHERE h.flag_id = f.id) AS stored_seq "
                           f"FROM flag f WHERE {where} ORDER BY created, stored_seq, id",
                           (study_uid,) if study_uid is not None else ())

    def __enter__(self) -> ReviewStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.location}>"

    def _refuse_writes(self, what: str) -> None:
        if self.read_only:
            raise StoreReadOnly(f"cannot {what} in review store {self.location}: {self.read_only}")

    # -- flags -------------------------------------------------------------------------------
    def add_flag(
        self, context: ImageContext, verdict: Verdict | str, label: str = "", *, region: Region | None = None,
        comment: str = "", reviewer: str | None = None,
    ) -> str:
        """Record a verdict on the image in ``context``; returns the flag id once it is durable."""
        return self.save_flag(make_flag(context, verdict, label, region=region, comment=comment, reviewer=reviewer),
                              context.study)

    def save_flag(self, flag: Flag, study: StudyHeader | None = None) -> str:
        """Save a flag made by :func:`make_flag`; returns its id once durable. Saving it again is harmless
        (a retry after a lost acknowledgement, an outbox replay): the stored flag is kept."""
        with self._tx("save the flag") as tx:
            if tx.execute("SELECT id FROM flag WHERE id = ?", (flag.id,)).fetchone() is None:
                self._insert(tx, flag, "create", flag.reviewer)
                self._touch_study(tx, flag.study_uid, study or StudyHeader(), flag.updated)
        return flag.id

    def edit_flag(
        self, flag_id: str, *, verdict: Verdict | str | None = None, label: str | None = None,
        region: Region | None = _UNSET, comment: str | None = None, actor: str | None = None,
        expected_version: int | None = None,
    ) -> Flag:
        """Change a flag (history keeps the previous versions); returns the new version.

        ``expected_version``: the version the editor saw; if the flag changed since, :class:`FlagConflict`
        (carrying the flag as it is now) is raised and nothing is written.
        """
        changes: dict[str, Any] = {}
        if verdict is not None:
            changes["verdict"] = verdict if isinstance(verdict, Verdict) else Verdict.parse(verdict)
        if label is not None:
            changes["label"] = label
        if comment is not None:
            changes["comment"] = comment
        if region is not _UNSET:
            changes["region"] = region
        with self._tx("edit the flag") as tx:
            old = self._require(tx, flag_id, expected_version)
            if old.deleted:
                raise ReviewStoreError(f"flag {flag_id} was deleted; it cannot be edited")
            new = old.with_changes(updated=utc_now(), version=old.version + 1, **changes)
            self._update(tx, old, new, "edit", actor or default_reviewer())
        return new

    def delete_flag(self, flag_id: str, *, actor: str | None = None, expected_version: int | None = None) -> Flag:
        """Tombstone a flag (it stays in the store and its history); returns the tombstone."""
        with self._tx("delete the flag") as tx:
            old = self._require(tx, flag_id, expected_version)
            if old.deleted:
                return old
            new = old.with_changes(deleted=True, updated=utc_now(), version=old.version + 1)
            self._update(tx, old, new, "delete", actor or default_reviewer())
        return new

    def merge_flag(self, flag: Flag, *, study: StudyHeader | None = None) -> ImportOutcome:
        """Import a flag by id: add it if new, take it if newer than the stored one, else keep ours."""
        return self.merge_flags([(flag, study or StudyHeader())])[0]

    def merge_flags(self, items: list[tuple[Flag, StudyHeader]]) -> list[ImportOutcome]:
        """:meth:`merge_flag` for many flags in one transaction (all are imported, or none)."""
        outcomes: list[ImportOutcome] = []
        with self._tx("import the flags") as tx:
            for flag, study in items:
                row = tx.execute("SELECT * FROM flag WHERE id = ?", (flag.id,)).fetchone()
                if row is None:
                    self._insert(tx, flag, "import", flag.reviewer)
                    outcomes.append("added")
                else:
                    old = flag_from_row(row)
                    if old == flag or flag.updated <= old.updated:
                        outcomes.append("unchanged")
                        continue
                    self._update(tx, old, flag.with_changes(version=old.version + 1), "import", flag.reviewer)
                    outcomes.append("updated")
                self._touch_study(tx, flag.study_uid, study, flag.updated)
        return outcomes

    def get_flag(self, flag_id: str) -> Flag:
        """A flag by id (tombstones included); :class:`KeyError` if there is none."""
        rows = self._query("SELECT * FROM flag WHERE id = ?", (flag_id,))
        if not rows:
            raise KeyError(flag_id)
        return flag_from_row(rows[0])

    def flags(self, study_uid: str | None = None, *, include_deleted: bool = False) -> list[Flag]:
        """Flags, oldest first, optionally of one study. A row that cannot be read is skipped and named
        in :attr:`problems`; the others are returned."""
        self.problems = []
        out = []
        for row in self._flag_rows(study_uid, include_deleted):
            try:
                out.append(flag_from_row(row))
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                self.problems.append(f"flag {_row_id(row)} in {self.location} is unreadable ({exc}); skipped")
        return out

    def history(self, flag_id: str) -> list[HistoryEntry]:
        """Every recorded version of a flag, oldest first."""
        rows = self._query("SELECT * FROM flag_history WHERE flag_id = ? ORDER BY seq", (flag_id,))
        return [
            HistoryEntry(r["seq"], r["flag_id"], r["action"], r["at"], r["actor"], json.loads(r["snapshot"]))
            for r in rows
        ]

    def study_header(self, study_uid: str) -> StudyHeader:
        """The study-level header facts saved with the study's flags."""
        rows = self._query("SELECT header FROM study WHERE study_uid = ?", (study_uid,))
        return StudyHeader(**json.loads(rows[0]["header"])) if rows else StudyHeader()

    # -- worklist ----------------------------------------------------------------------------
    def add_study(
        self, study_uid: str, *, description: str = "", source_path: str = "", header: StudyHeader | None = None
    ) -> None:
        """Put a study on the worklist (at the end; a study already there keeps its place and status)."""
        with self._tx("add the study to the worklist") as tx:
            self._touch_study(tx, study_uid, header or StudyHeader(), utc_now(), start=False)
            tx.execute(
                "UPDATE study SET description = CASE WHEN ? != '' THEN ? ELSE description END, "
                "source_path = CASE WHEN ? != '' THEN ? ELSE source_path END WHERE study_uid = ?",
                (description, description, source_path, source_path, study_uid),
            )

    def set_status(self, study_uid: str, status: Status) -> None:
        """Mark a study not started, in progress or done."""
        if status not in STATUSES:
            raise ValueError(f"unknown status {status!r}; allowed: {', '.join(STATUSES)}")
        with self._tx("set the study status") as tx:
            if tx.execute("UPDATE study SET status = ?, updated = ? WHERE study_uid = ?",
                          (status, utc_now(), study_uid)).rowcount == 0:
                raise KeyError(study_uid)

    def worklist(self) -> list[WorklistEntry]:
        """The studies in worklist order, each with the reviewers on it now."""
        rows = self._query(
            "SELECT s.*, (SELECT COUNT(*) FROM flag f WHERE f.study_uid = s.study_uid AND f.deleted = 0) AS n "
            f"FROM study s ORDER BY {WORKLIST_ORDER}"
        )
        who = self.presence()
        return [
            WorklistEntry(r["study_uid"], r["position"], r["status"], r["description"], r["source_path"],
                          int(r["n"]), tuple(who.get(r["study_uid"], ())), r["priority"], r["priority_reason"])
            for r in rows
        ]

    def set_priority(self, study_uid: str, priority: float | None, reason: str = "") -> None:
        """Rank a study on the worklist (higher first; None: unranked, after the ranked ones)."""
        with self._tx("rank the study on the worklist") as tx:
            if tx.execute("UPDATE study SET priority = ?, priority_reason = ?, updated = ? WHERE study_uid = ?",
                          (priority, reason, utc_now(), study_uid)).rowcount == 0:
                raise KeyError(study_uid)

    def progress(self) -> tuple[int, int]:
        """(studies done, studies on the worklist)."""
        row = self._query("SELECT COUNT(*) AS n, SUM(CASE WHEN status = 'done' THEN 1 ELSE 0 END) AS done "
                          "FROM study")[0]
        return int(row["done"] or 0), int(row["n"])

    def neighbour(self, study_uid: str | None, step: int = 1, *, skip_done: bool = False) -> str | None:
        """The study ``step`` places after (negative: before) ``study_uid`` on the worklist, or None.

        ``study_uid=None`` starts before the first study (``step > 0``) or after the last.
        """
        rows = self._query(f"SELECT study_uid, status FROM study ORDER BY {WORKLIST_ORDER}")
        uids = [r["study_uid"] for r in rows if not skip_done or r["status"] != "done" or r["study_uid"] == study_uid]
        if not uids:
            return None
        if study_uid is None or study_uid not in uids:
            pos = -1 if step > 0 else len(uids)
        else:
            pos = uids.index(study_uid)
        target = pos + step
        return uids[target] if 0 <= target < len(uids) else None

    # -- presence (who is on which study) ------------------------------------------------------
    def set_presence(self, reviewer: str, study_uid: str | None) -> None:
        """Say that ``reviewer`` has ``study_uid`` open now (None: no study)."""
        with self._tx("record the open study") as tx:
            tx.execute(
                "INSERT INTO presence (reviewer, study_uid, seen) VALUES (?, ?, ?) "
                "ON CONFLICT (owner, reviewer) DO UPDATE SET study_uid = excluded.study_uid, seen = excluded.seen",
                (reviewer, study_uid or "", utc_now()),
            )

    def presence(self, *, within_s: float = PRESENCE_TTL_S) -> dict[str, list[str]]:
        """{study uid: reviewers who said they had it open in the last ``within_s`` seconds}."""
        since = _iso(datetime.now(UTC) - timedelta(seconds=within_s))
        out: dict[str, list[str]] = {}
        for r in self._query("SELECT reviewer, study_uid FROM presence WHERE seen >= ? AND study_uid != '' "
                             "ORDER BY reviewer", (since,)):
            if r["reviewer"] not in out.setdefault(r["study_uid"], []):
                out[r["study_uid"]].append(r["reviewer"])
        return out

    # -- copying a whole store (review migrate) ------------------------------------------------
    def copy_from(self, source: ReviewStore) -> dict[str, int]:
        """Copy every flag (tombstones too) with its whole history and the worklist from ``source``, in one
        transaction. Idempotent: a flag already here is updated only when the source's is newer, a history
        entry already here is not added again, a study already here keeps its place and status."""
        flags = source.flags(include_deleted=True)
        self.problems = list(source.problems)
        studies = source._query(f"SELECT * FROM study ORDER BY {WORKLIST_ORDER}")
        counts = {"flags_added": 0, "flags_updated": 0, "history_added": 0, "studies_added": 0}
        with self._tx("copy the store") as tx:
            for flag in flags:
                row = tx.execute("SELECT * FROM flag WHERE id = ?", (flag.id,)).fetchone()
                if row is None:
                    tx.execute(f"INSERT INTO flag ({', '.join(FLAG_COLUMNS)}) VALUES ({_marks(FLAG_COLUMNS)})",
                               flag_to_row(flag))
                    counts["flags_added"] += 1
                elif flag.updated > flag_from_row(row).updated:
                    self._write_row(tx, flag)
                    counts["flags_updated"] += 1
                have = {(r["action"], r["at"], r["actor"], _canonical(r["snapshot"])) for r in tx.execute(
                    "SELECT action, at, actor, snapshot FROM flag_history WHERE flag_id = ?", (flag.id,)).fetchall()}
                for h in source.history(flag.id):
                    snapshot = json.dumps(h.snapshot, sort_keys=True)
                    if (h.action, h.at, h.actor, snapshot) not in have:
                        tx.execute("INSERT INTO flag_history (flag_id, action, at, actor, snapshot) "
                                   "VALUES (?, ?, ?, ?, ?)", (flag.id, h.action, h.at, h.actor, snapshot))
                        counts["history_added"] += 1
            for s in studies:
                counts["studies_added"] += tx.execute(
                    "INSERT INTO study (study_uid, position, status, description, source_path, header, updated, "
                    "priority, priority_reason) "
                    "VALUES (?, (SELECT COALESCE(MAX(position), 0) + 1 FROM study), ?, ?, ?, ?, ?, ?, ?) "
                    "ON CONFLICT (study_uid) DO NOTHING",
                    (s["study_uid"], s["status"], s["description"], s["source_path"], s["header"], s["updated"],
                     s["priority"], s["priority_reason"]),
                ).rowcount
        return counts

    # -- internals ---------------------------------------------------------------------------
    def _require(self, tx: Tx, flag_id: str, expected_version: int | None = None) -> Flag:
        row = tx.execute("SELECT * FROM flag WHERE id = ?", (flag_id,)).fetchone()
        if row is None:
            raise KeyError(f"no flag with id {flag_id} in {self.location}")
        flag = flag_from_row(row)
        if expected_version is not None and flag.version != expected_version:
            raise FlagConflict(_conflict_message(flag, expected_version, _last_actor(tx, flag_id)), flag)
        return flag

    def _insert(self, tx: Tx, flag: Flag, action: str, actor: str) -> None:
        tx.execute(f"INSERT INTO flag ({', '.join(FLAG_COLUMNS)}) VALUES ({_marks(FLAG_COLUMNS)})", flag_to_row(flag))
        self._log(tx, flag, action, actor)

    def _update(self, tx: Tx, old: Flag, new: Flag, action: str, actor: str) -> None:
        """Write ``new`` over ``old`` only if nobody changed it meanwhile (its version is still old's)."""
        if self._write_row(tx, new, expect_version=old.version) == 0:
            rows = tx.execute("SELECT * FROM flag WHERE id = ?", (old.id,)).fetchall()
            now = flag_from_row(rows[0]) if rows else None
            if now is not None and now.version != old.version:
                raise FlagConflict(_conflict_message(now, old.version, _last_actor(tx, old.id)), now)
            raise NotPermitted(f"cannot change flag {old.id} in review store {self.location}: it was made by "
                               f"{old.reviewer or 'another reviewer'}, and only they or a lead may change it")
        self._log(tx, new, action, actor)

    @staticmethod
    def _write_row(tx: Tx, flag: Flag, *, expect_version: int | None = None) -> int:
        sets = ", ".join(f"{c} = ?" for c in FLAG_COLUMNS[1:])
        sql = f"UPDATE flag SET {sets} WHERE id = ?"
        params: tuple[Any, ...] = (*flag_to_row(flag)[1:], flag.id)
        if expect_version is not None:
            sql += " AND version = ?"
            params += (expect_version,)
        return tx.execute(sql, params).rowcount

    @staticmethod
    def _log(tx: Tx, flag: Flag, action: str, actor: str) -> None:
        tx.execute(
            "INSERT INTO flag_history (flag_id, action, at, actor, snapshot) VALUES (?, ?, ?, ?, ?)",
            (flag.id, action, flag.updated, actor, json.dumps(flag.to_dict(), sort_keys=True)),
        )

    @staticmethod
    def _touch_study(tx: Tx, study_uid: str, header: StudyHeader, now: str, *, start: bool = True) -> None:
        """Insert the study if new; a flag moves a not-started study to in progress."""
        header_json = json.dumps(asdict(header), sort_keys=True)
        has_header = any(asdict(header).values())
        tx.execute(
            "INSERT INTO study (study_uid, position, status, header, updated) "
            "VALUES (?, (SELECT COALESCE(MAX(position), 0) + 1 FROM study), ?, ?, ?) "
            "ON CONFLICT (study_uid) DO UPDATE SET "
            "header = CASE WHEN ? THEN excluded.header ELSE study.header END, "
            "status = CASE WHEN ? AND study.status = 'not_started' THEN 'in_progress' ELSE study.status END, "
            "updated = excluded.updated",
            (study_uid, "in_progress" if start else "not_started", header_json, now, has_header, start),
        )


def _marks(columns: tuple[str, ...]) -> str:
    return ", ".join("?" * len(columns))


def _canonical(snapshot: str) -> str:
    with contextlib.suppress(ValueError):
        return json.dumps(json.loads(snapshot), sort_keys=True)
    return snapshot


def _row_id(row: Any) -> str:
    with contextlib.suppress(Exception):
        return str(row["id"])
    return "(unknown id)"


def _last_actor(tx: Tx, flag_id: str) -> str:
    row = tx.execute("SELECT actor FROM flag_history WHERE flag_id = ? ORDER BY seq DESC LIMIT 1", (flag_id,)).fetchone()
    return str(row["actor"]) if row is not None and row["actor"] else "someone else"


def _conflict_message(now: Flag, seen_version: int, by: str) -> str:
    what = now.verdict.title + (f", {now.label}" if now.label else "") + (f", '{now.comment}'" if now.comment else "")
    state = "deleted it" if now.deleted else f"made it {what}"
    when = now.updated[:19].replace("T", " ")
    return (f"flag {now.id[:8]} was changed while you edited it: {by} {state} ({when} UTC, version {now.version}; "
            f"you saw version {seen_version}). Your change was not applied and is kept: apply it again to put it "
            "over theirs")


def _with_lps(region: Region | None, context: ImageContext) -> Region | None:
    """The region with patient coordinates filled from the image geometry when missing."""
    if region is None or region.points_lps or context.geometry is None:
        return region
    return Region.make(region.kind, region.points_px, context.geometry)
