"""The review store's SQLite schema and its migrations (``PRAGMA user_version``).

A fresh store applies every migration in order, so the path from v1 is exercised on every new
store, not only on old ones. Never edit a released migration; append a new one, here and in
:mod:`viewer.review.pg_schema` (the PostgreSQL store has the same versions and columns).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from typing import Any

_V1 = """
CREATE TABLE flag (
    id TEXT PRIMARY KEY,
    study_uid TEXT NOT NULL,
    series_uid TEXT NOT NULL,
    slice_index INTEGER NOT NULL,
    sop_instance_uids TEXT NOT NULL,
    verdict TEXT NOT NULL CHECK (verdict IN
        ('correct', 'false_positive', 'false_negative', 'mislocalised', 'uncertain')),
    label TEXT NOT NULL DEFAULT '',
    region TEXT,
    comment TEXT NOT NULL DEFAULT '',
    reviewer TEXT NOT NULL DEFAULT '',
    created TEXT NOT NULL,
    updated TEXT NOT NULL,
    model_name TEXT NOT NULL DEFAULT '',
    model_version TEXT NOT NULL DEFAULT '',
    model_sha256 TEXT NOT NULL DEFAULT '',
    method TEXT NOT NULL DEFAULT '',
    threshold REAL
);
CREATE INDEX flag_study ON flag (study_uid);
"""

_V2 = """
ALTER TABLE flag ADD COLUMN stack_id TEXT NOT NULL DEFAULT '';
ALTER TABLE flag ADD COLUMN sop_class_uid TEXT NOT NULL DEFAULT '';
ALTER TABLE flag ADD COLUMN frame_number INTEGER;
ALTER TABLE flag ADD COLUMN frame_of_reference_uid TEXT NOT NULL DEFAULT '';
ALTER TABLE flag ADD COLUMN manufacturer TEXT NOT NULL DEFAULT '';
ALTER TABLE flag ADD COLUMN scanner_model TEXT NOT NULL DEFAULT '';
ALTER TABLE flag ADD COLUMN kvp TEXT NOT NULL DEFAULT '';
ALTER TABLE flag ADD COLUMN patient_sex TEXT NOT NULL DEFAULT '';
ALTER TABLE flag ADD COLUMN age_band TEXT NOT NULL DEFAULT '';
ALTER TABLE flag ADD COLUMN body_part TEXT NOT NULL DEFAULT '';
ALTER TABLE flag ADD COLUMN modality TEXT NOT NULL DEFAULT '';
ALTER TABLE flag ADD COLUMN deleted INTEGER NOT NULL DEFAULT 0;
CREATE TRIGGER flag_no_delete BEFORE DELETE ON flag
BEGIN SELECT RAISE(ABORT, 'review flags are never deleted: set the tombstone'); END;

CREATE TABLE flag_history (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    flag_id TEXT NOT NULL,
    action TEXT NOT NULL CHECK (action IN ('create', 'edit', 'delete', 'import')),
    at TEXT NOT NULL,
    actor TEXT NOT NULL DEFAULT '',
    snapshot TEXT NOT NULL
);
CREATE INDEX flag_history_flag ON flag_history (flag_id);
CREATE TRIGGER flag_history_no_update BEFORE UPDATE ON flag_history
BEGIN SELECT RAISE(ABORT, 'flag history is append-only'); END;
CREATE TRIGGER flag_history_no_delete BEFORE DELETE ON flag_history
BEGIN SELECT RAISE(ABORT, 'flag history is append-only'); END;

CREATE TABLE study (
    study_uid TEXT PRIMARY KEY,
    position INTEGER NOT NULL,
    status TEXT NOT NULL DEFAULT 'not_started'
        CHECK (status IN ('not_started', 'in_progress', 'done')),
    description TEXT NOT NULL DEFAULT '',
    source_path TEXT NOT NULL DEFAULT '',
    header TEXT NOT NULL DEFAULT '{}',
    updated TEXT NOT NULL
);
"""


def v2_backfill(conn: Any) -> None:
    """v1 stores had no history or worklist: record each flag's creation and list its studies.

    Portable SQL with ``?`` marks: runs on a sqlite3 connection or the PostgreSQL store's transaction."""
    from viewer.review.rows import flag_from_row  # local: rows depends on the final schema

    for row in conn.execute("SELECT * FROM flag ORDER BY created").fetchall():
        flag = flag_from_row(row)
        conn.execute(
            "INSERT INTO flag_history (flag_id, action, at, actor, snapshot) VALUES (?, 'create', ?, ?, ?)",
            (flag.id, flag.created, flag.reviewer, json.dumps(flag.to_dict(), sort_keys=True)),
        )
    conn.execute(
        "INSERT INTO study (study_uid, position, status, updated) "
        "SELECT study_uid, ROW_NUMBER() OVER (ORDER BY MIN(created)), 'in_progress', MAX(updated) "
        "FROM flag GROUP BY study_uid"
    )


def _script(sql: str) -> Callable[[sqlite3.Connection], None]:
    def apply(conn: sqlite3.Connection) -> None:
        # executescript would COMMIT the open transaction; run the statements one by one instead.
        for statement in _statements(sql):
            conn.execute(statement)

    return apply


def _statements(sql: str) -> list[str]:
    """Split a script into statements, keeping trigger bodies (BEGIN ... END;) whole."""
    out: list[str] = []
    buf = ""
    for line in sql.strip().splitlines():
        buf += line + "\n"
        if sqlite3.complete_statement(buf):
            out.append(buf.strip())
            buf = ""
    if buf.strip():
        out.append(buf.strip())
    return out


def _v2(conn: sqlite3.Connection) -> None:
    _script(_V2)(conn)
    v2_backfill(conn)


_V3 = """
ALTER TABLE flag ADD COLUMN version INTEGER NOT NULL DEFAULT 1;
ALTER TABLE flag ADD COLUMN owner TEXT NOT NULL DEFAULT '';
CREATE TABLE presence (
    owner TEXT NOT NULL DEFAULT '',
    reviewer TEXT NOT NULL,
    study_uid TEXT NOT NULL DEFAULT '',
    seen TEXT NOT NULL,
    PRIMARY KEY (owner, reviewer)
);
"""

# v4: the worklist's priority (what most deserves a human look, ranked from `radscope infer` results).
_V4 = """
ALTER TABLE study ADD COLUMN priority REAL;
ALTER TABLE study ADD COLUMN priority_reason TEXT NOT NULL DEFAULT '';
"""

# v5: a flag made on results outside the model's intended use says so.
_V5 = """
ALTER TABLE flag ADD COLUMN scope_note TEXT NOT NULL DEFAULT '';
"""

#: MIGRATIONS[n] takes a store from schema version n to n + 1.
MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [
    _script(_V1), _v2, _script(_V3), _script(_V4), _script(_V5)]
CURRENT_VERSION = len(MIGRATIONS)
