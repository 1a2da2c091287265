"""Setting up a PostgreSQL review store for a team: roles, grants and row-level security.

``radscope review init-team URL --lead ROLE... --reviewer ROLE...`` runs :func:`init_team` as the
database's owner (a role that may create roles). It creates the schema (so the owner, not a reviewer,
owns the tables: an owner would bypass row-level security), two group roles and the login roles asked for:

- ``radscope_reviewer``: reads every flag, history entry and worklist study; adds flags as itself (the
  ``owner`` column defaults to ``current_user`` and a policy refuses any other); changes and tombstones only
  flags it owns; appends history only for flags it may change; updates only its own presence row.
- ``radscope_lead`` (a member of ``radscope_reviewer``): may change every flag.

Nobody but the owner may DELETE or TRUNCATE anything, and triggers refuse even the owner for history.
Authentication (passwords, ``peer`` or certificates in ``pg_hba.conf``) stays the server's business. The
statements are idempotent (:func:`team_statements` gives them for a DBA who prefers to run SQL by hand).
"""

from __future__ import annotations

from collections.abc import Iterable
from psycopg import sql

REVIEWER_GROUP = "radscope_reviewer"
LEAD_GROUP = "radscope_lead"
_IS_LEAD = f"pg_has_role(current_user, '{LEAD_GROUP}', 'MEMBER')"


def _ensure_role(name: str, *, login: bool) -> sql.Composed:
    kind = sql.SQL("LOGIN") if login else sql.SQL("NOLOGIN")
    return sql.SQL("DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = {lit}) THEN "
                   "CREATE ROLE {ident} {kind}; END IF; END $$").format(
        lit=sql.Literal(name), ident=sql.Identifier(name), kind=kind)


_POLICIES = [
    ("flag", "flag_read", "FOR SELECT USING (true)"),
    ("flag", "flag_add_own", "FOR INSERT WITH CHECK (owner = current_user)"),
    ("flag", "flag_change_own", "FOR UPDATE USING (owner = current_user) WITH CHECK (owner = current_user)"),
    ("flag", "flag_change_lead", f"FOR UPDATE USING ({_IS_LEAD}) WITH CHECK ({_IS_LEAD})"),
    ("flag_history", "history_read", "FOR SELECT USING (true)"),
    ("flag_history", "history_append", "FOR INSERT WITH CHECK (EXISTS (SELECT 1 FROM flag f WHERE f.id = flag_id "
                                        f"AND (f.owner = current_user OR {_IS_LEAD})))"),
    ("presence", "presence_read", "FOR SELECT USING (true)"),
    ("presence", "presence_own", "FOR INSERT WITH CHECK (owner = current_user)"),
    ("presence", "presence_update_own", "FOR UPDATE USING (owner = current_user) WITH CHECK (owner = current_user)"),
]


def team_statements(schema: str, leads: Iterable[str], reviewers: Iterable[str]) -> list[sql.Composed]:
    """The idempotent SQL that sets up the roles, grants and policies (schema already at the current version)."""
    group, lead = sql.Identifier(REVIEWER_GROUP), sql.Identifier(LEAD_GROUP)
    out: list[sql.Composed] = [_ensure_role(REVIEWER_GROUP, login=False), _ensure_role(LEAD_GROUP, login=False),
                                 sql.SQL("GRANT {} TO {}").format(group, lead)]
    for name in reviewers:
        out += [_ensure_role(name, login=True), sql.SQL("GRANT {} TO {}").format(group, sql.Identifier(name))]
    for name in leads:
        out += [_ensure_role(name, login=True), sql.SQL("GRANT {} TO {}").format(lead, sql.Identifier(name))]
    out += [
        sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(sql.Identifier(schema), group),
        sql.SQL("GRANT SELECT ON radscope_schema TO {}").format(group),
        sql.SQL("GRANT SELECT, INSERT, UPDATE ON flag, study, presence TO {}").format(group),
        sql.SQL("GRANT SELECT, INSERT ON flag_history TO {}").format(group),
    ]
    for table in ("flag", "flag_history", "presence"):
        out.append(sql.SQL("ALTER TABLE {} ENABLE ROW LEVEL SECURITY").format(sql.Identifier(table)))
    for table, name, rule in _POLICIES:
        out += [sql.SQL("DROP POLICY IF EXISTS {} ON {}").format(sql.Identifier(name), sql.Identifier(table)),
                sql.SQL("CREATE POLICY {} ON {} " + rule).format(sql.Identifier(name), sql.Identifier(table))]
    return out


def init_team(url: str, *, leads: Iterable[str] = (), reviewers: Iterable[str] = ()) -> list[str]:
    """Create or update the team set-up of the store at ``url`` (connected as its owner); lines to print."""
    import psycopg

    from viewer.review.pg_store import PostgresReviewStore, redact
    from viewer.review.store import ReviewStoreError

    leads, reviewers = list(leads), list(reviewers)
    PostgresReviewStore(url).close()  # creates or upgrades the schema, owned by this role
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            schema = str(conn.execute("SELECT current_schema()").fetchone()[0])  # type: ignore[index]
            with conn.transaction():
                for statement in team_statements(schema, leads, reviewers):
                    conn.execute(statement)
    except psycopg.Error as exc:
        raise ReviewStoreError(f"cannot set up the team in review store {redact(url)}: {exc}") from exc
    lines = [f"review store {redact(url)}: row-level security on; reviewers change only their own flags"]
    lines += [f"lead      {name}" for name in leads] + [f"reviewer  {name}" for name in reviewers]
    return lines

