"""The review store's PostgreSQL schema: the same versions, tables and columns as :mod:`viewer.review.schema`.

The version lives in ``radscope_schema`` (PostgreSQL has no ``user_version``). History is append-only here
too: triggers refuse UPDATE, DELETE and TRUNCATE on ``flag_history`` and DELETE/TRUNCATE on ``flag``. From
v3 on, every committed change to a flag, a study or a reviewer's presence is announced on the
``radscope_review`` channel (LISTEN/NOTIFY: sent at commit, so listeners only ever see durable rows).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from viewer.review.schema import v2_backfill

CHANNEL = "radscope_review"

_V1 = [
    """CREATE TABLE flag (
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
        threshold DOUBLE PRECISION
    )""",
    "CREATE INDEX flag_study ON flag (study_uid)",
]

_REFUSE = """CREATE FUNCTION radscope_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION '%', TG_ARGV[0]; END $$"""

_V2 = [
    *(f"ALTER TABLE flag ADD COLUMN {c} TEXT NOT NULL DEFAULT ''" for c in (
        "stack_id", "sop_class_uid")),
    "ALTER TABLE flag ADD COLUMN frame_number INTEGER",
    *(f"ALTER TABLE flag ADD COLUMN {c} TEXT NOT NULL DEFAULT ''" for c in (
        "frame_of_reference_uid", "manufacturer", "scanner_model", "kvp", "patient_sex", "age_band", "body_part",
        "modality")),
    "ALTER TABLE flag ADD COLUMN deleted INTEGER NOT NULL DEFAULT 0",
    _REFUSE,
    "CREATE TRIGGER flag_no_delete BEFORE DELETE ON flag FOR EACH ROW "
    "EXECUTE FUNCTION radscope_refuse('review flags are never deleted: set the tombstone')",
    "CREATE TRIGGER flag_no_truncate BEFORE TRUNCATE ON flag FOR EACH STATEMENT "
    "EXECUTE FUNCTION radscope_refuse('review flags are never deleted: set the tombstone')",
    """CREATE TABLE flag_history (
        seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        flag_id TEXT NOT NULL,
        action TEXT NOT NULL CHECK (action IN ('create', 'edit', 'delete', 'import')),
        at TEXT NOT NULL,
        actor TEXT NOT NULL DEFAULT '',
        snapshot TEXT NOT NULL
    )""",
    "CREATE INDEX flag_history_flag ON flag_history (flag_id)",
    "CREATE TRIGGER flag_history_no_update BEFORE UPDATE OR DELETE ON flag_history FOR EACH ROW "
    "EXECUTE FUNCTION radscope_refuse('flag history is append-only')",
    "CREATE TRIGGER flag_history_no_truncate BEFORE TRUNCATE ON flag_history FOR EACH STATEMENT "
    "EXECUTE FUNCTION radscope_refuse('flag history is append-only')",
    """CREATE TABLE study (
        study_uid TEXT PRIMARY KEY,
        position INTEGER NOT NULL,
        status TEXT NOT NULL DEFAULT 'not_started'
            CHECK (status IN ('not_started', 'in_progress', 'done')),
        description TEXT NOT NULL DEFAULT '',
        source_path TEXT NOT NULL DEFAULT '',
        header TEXT NOT NULL DEFAULT '{}',
        updated TEXT NOT NULL
    )""",
]

_NOTIFY = f"""CREATE FUNCTION radscope_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_TABLE_NAME = 'flag' THEN
        PERFORM pg_notify('{CHANNEL}', json_build_object('table', 'flag', 'id', NEW.id,
            'study_uid', NEW.study_uid, 'version', NEW.version, 'reviewer', NEW.reviewer)::text);
    ELSIF TG_TABLE_NAME = 'study' THEN
        PERFORM pg_notify('{CHANNEL}', json_build_object('table', 'study', 'study_uid', NEW.study_uid)::text);
    ELSE
        PERFORM pg_notify('{CHANNEL}', json_build_object('table', 'presence', 'reviewer', NEW.reviewer,
            'study_uid', NEW.study_uid)::text);
    END IF;
    RETURN NULL;
END $$"""

_V3 = [
    "ALTER TABLE flag ADD COLUMN version INTEGER NOT NULL DEFAULT 1",
    "ALTER TABLE flag ADD COLUMN owner TEXT NOT NULL DEFAULT CURRENT_USER",
    """CREATE TABLE presence (
        owner TEXT NOT NULL DEFAULT CURRENT_USER,
        reviewer TEXT NOT NULL,
        study_uid TEXT NOT NULL DEFAULT '',
        seen TEXT NOT NULL,
        PRIMARY KEY (owner, reviewer)
    )""",
    _NOTIFY,
    *(f"CREATE TRIGGER {t}_notify AFTER INSERT OR UPDATE ON {t} FOR EACH ROW EXECUTE FUNCTION radscope_notify()"
      for t in ("flag", "study", "presence")),
]


def _statements(statements: list[str]) -> Callable[[Any], None]:
    def apply(tx: Any) -> None:
        for statement in statements:
            tx.execute(statement)

    return apply


def _v2(tx: Any) -> None:
    _statements(_V2)(tx)
    v2_backfill(tx)


_V4 = [
    "ALTER TABLE study ADD COLUMN priority DOUBLE PRECISION",
    "ALTER TABLE study ADD COLUMN priority_reason TEXT NOT NULL DEFAULT ''",
]

_V5 = ["ALTER TABLE flag ADD COLUMN scope_note TEXT NOT NULL DEFAULT ''"]

#: MIGRATIONS[n] takes a store from schema version n to n + 1 (as :data:`viewer.review.schema.MIGRATIONS`).
MIGRATIONS: list[Callable[[Any], None]] = [
    _statements(_V1), _v2, _statements(_V3), _statements(_V4), _statements(_V5)]

VERSION_TABLE = "CREATE TABLE IF NOT EXISTS radscope_schema (version INTEGER NOT NULL)"
