"""Each reviewer as their own PostgreSQL role (``radscope review init-team``): everyone reads every flag, a reviewer
changes only their own, a lead changes all; hand-written SQL through a reviewer's role changes nothing of another's."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
import pytest

from tests.support.review_stores import context
from viewer.cli import main
from viewer.review import NotPermitted, ReviewStore

pytestmark = pytest.mark.xdist_group("postgres")


@pytest.fixture()
def team(postgres_server: Any, capsys: pytest.CaptureFixture[str]) -> dict[str, str]:
    """A team store: roles ann and bob (reviewers) and lea (lead), made unique per test (roles are per cluster)."""
    db = postgres_server.new_database()
    tag = uuid.uuid4().hex[:6]
    roles = {"ann": f"ann_{tag}", "bob": f"bob_{tag}", "lea": f"lea_{tag}"}
    code = main(["review", "init-team", postgres_server.url(db), "--lead", roles["lea"],
                 "--reviewer", roles["ann"], roles["bob"]])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "row-level security on" in out and roles["bob"] in out
    # idempotent: a second run (a new member) changes nothing of what is there
    assert main(["review", "init-team", postgres_server.url(db), "--reviewer", roles["bob"]]) == 0
    return {name: postgres_server.url(db, user=role) for name, role in roles.items()} | {
        "owner": postgres_server.url(db), **{f"role_{k}": v for k, v in roles.items()}}


def test_reviewers_read_all_change_only_their_own_lead_changes_all(team: dict[str, str]) -> None:
    with ReviewStore(team["ann"]) as ann, ReviewStore(team["bob"]) as bob, ReviewStore(team["lea"]) as lea:
        a = ann.add_flag(context(0), "fp", "nodule", reviewer="Ann")
        b = bob.add_flag(context(1), "missed", "nodule", reviewer="Bob")
        assert {f.id for f in bob.flags()} == {f.id for f in ann.flags()} == {a, b}  # everyone reads everything
        with pytest.raises(NotPermitted, match=rf"cannot change flag {a}.*made by Ann.*only they or a lead"):
            bob.edit_flag(a, comment="not yours", actor="Bob")
        with pytest.raises(NotPermitted):
            bob.delete_flag(a, actor="Bob")
        bob.edit_flag(b, comment="mine", actor="Bob")
        lea.edit_flag(a, verdict="correct", actor="Lea")  # the lead may change every flag
        lea.delete_flag(b, actor="Lea")
        assert ann.get_flag(a).verdict.value == "correct" and ann.get_flag(b).deleted
        assert [h.actor for h in ann.history(a)] == ["Ann", "Lea"]
        bob.set_presence("Bob", context(1).study_uid)
        ann.set_presence("Ann", context(1).study_uid)
        assert ann.worklist()[0].reviewers == ("Ann", "Bob")


def test_hand_written_sql_through_a_reviewer_role_changes_nothing_of_another(team: dict[str, str]) -> None:
    with ReviewStore(team["ann"]) as ann:
        a = ann.add_flag(context(0), "fp", "nodule", comment="ann's", reviewer="Ann")
        before = ann.get_flag(a), ann.history(a)
    ann_role, bob_role = team["role_ann"], team["role_bob"]
    with psycopg.connect(team["bob"], autocommit=True) as conn:
        assert conn.execute("SELECT current_user").fetchone()[0] == bob_role
        assert conn.execute("SELECT COUNT(*) FROM flag").fetchone()[0] == 1  # reads it
        # row-level security hides the row from bob's UPDATE: nothing is touched
        assert conn.execute("UPDATE flag SET comment = 'hacked' WHERE id = %s", (a,)).rowcount == 0
        assert conn.execute("UPDATE flag SET owner = %s WHERE id = %s", (bob_role, a)).rowcount == 0
        assert conn.execute("UPDATE flag SET comment = 'hacked', deleted = 1").rowcount == 0
        refused = [
            ("INSERT INTO flag_history (flag_id, action, at, actor, snapshot) VALUES (%s, 'edit', 'now', 'Ann', '{}')",
             (a,), "row-level security"),
            ("INSERT INTO flag (id, study_uid, series_uid, slice_index, sop_instance_uids, verdict, created, updated, "
             "owner) VALUES ('forged', '1', '1', 0, '[]', 'correct', 'now', 'now', %s)", (ann_role,),
             "row-level security"),
            ("DELETE FROM flag", (), "permission denied"),
            ("UPDATE flag_history SET actor = 'x'", (), "permission denied"),
            ("DELETE FROM flag_history", (), "permission denied"),
            ("TRUNCATE flag", (), "permission denied"),
            ("ALTER TABLE flag DISABLE ROW LEVEL SECURITY", (), "must be owner"),
            ("DROP POLICY flag_change_own ON flag", (), "must be owner"),
            (f'SET ROLE "{ann_role}"', (), "permission denied"),
            ("GRANT radscope_lead TO CURRENT_USER", (), "permission denied|must have admin option"),
        ]
        for statement, params, reason in refused:
            with pytest.raises(psycopg.Error, match=reason):
                conn.execute(statement, params)
    with ReviewStore(team["owner"]) as owner:
        assert (owner.get_flag(a), owner.history(a)) == before
        assert [f.id for f in owner.flags(include_deleted=True)] == [a]


def test_reviewer_cannot_create_the_schema(postgres_server: Any, team: dict[str, str]) -> None:
    """A reviewer opening an empty database would own the tables (and so bypass row-level security): refused."""
    empty = postgres_server.new_database()
    with pytest.raises(Exception, match="permission denied|may not"):
        ReviewStore(postgres_server.url(empty, user=team["role_bob"]))
