"""The team review store on a real PostgreSQL server (tests/support/postgres.py), beside the SQLite store:
one interface, the same schema and history rules, migrate, URLs and RADSCOPE_REVIEW_STORE, optimistic
concurrency, live changes, the local outbox."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.support.review_stores import context, store_with_flags
from viewer.cli import main
from viewer.review import FlagConflict, ReviewStore, StoreUnavailable
from viewer.review.live import listen
from viewer.review.outbox import Outbox
from viewer.review.schema import CURRENT_VERSION
from viewer.review.store import make_flag
from viewer.review.summary import summarize
from viewer.review.tables import export_csv, export_json

pytestmark = pytest.mark.xdist_group("postgres")  # one cluster for all of them under pytest-xdist


@pytest.fixture()
def pg_url(postgres_server: Any) -> str:
    return postgres_server.url(postgres_server.new_database())


@pytest.fixture(params=["sqlite", "postgresql"])
def location(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "review.sqlite3")
    return request.getfixturevalue("pg_url")  # type: ignore[no-any-return]


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["review", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_one_interface_two_backends(location: str, tmp_path: Path) -> None:
    with ReviewStore(location) as store:
        assert store.backend == ("postgresql" if location.startswith("postgresql") else "sqlite")
        assert store.schema_version == CURRENT_VERSION
        a = store.add_flag(context(0), "fp", "nodule", comment="100% a vessel?", reviewer="ann")
        b = store.add_flag(context(1), "missed", "nodule", reviewer="bob")
        c = store.add_flag(context(2, study_uid="9.8.7"), "correct", "effusion", reviewer="ann")
        edited = store.edit_flag(a, verdict="correct", actor="ann", expected_version=1)
        assert edited.version == 2 and store.get_flag(a).verdict.value == "correct"
        store.delete_flag(b, actor="bob")
        assert [f.id for f in store.flags()] == [a, c]
        assert [f.id for f in store.flags(context(0).study_uid, include_deleted=True)] == [a, b]
        assert [h.action for h in store.history(a)] == ["create", "edit"]
        assert [h.snapshot["version"] for h in store.history(b)] == [1, 2]
        store.add_study("5.5.5", description="later")
        store.set_status("9.8.7", "done")
        assert [(e.study_uid, e.status, e.n_flags) for e in store.worklist()] == [
            (context(0).study_uid, "in_progress", 1), ("9.8.7", "done", 1), ("5.5.5", "not_started", 0)]
        assert store.progress() == (1, 3) and store.neighbour("9.8.7") == "5.5.5"
        store.set_presence("ann", "9.8.7")
        assert store.worklist()[1].reviewers == ("ann",)
        assert summarize(store.flags()).overall.total == 2
        assert export_csv(store, tmp_path / "f.csv") == 2
        assert export_json(store, tmp_path / "f.json") == 3
        # saving a flag again (a retry after a lost acknowledgement) keeps the one stored
        flag = make_flag(context(3), "uncertain", "nodule", reviewer="ann")
        assert store.save_flag(flag) == store.save_flag(flag.with_changes(comment="changed")) == flag.id
        assert store.get_flag(flag.id).comment == "" and len(store.history(flag.id)) == 1


def test_optimistic_concurrency_second_editor_told_and_nothing_lost(location: str) -> None:
    with ReviewStore(location) as one, ReviewStore(location) as two:
        fid = one.add_flag(context(0), "fp", "nodule", reviewer="ann")
        seen_by_two = two.get_flag(fid)
        one.edit_flag(fid, comment="vessel", actor="ann", expected_version=1)
        with pytest.raises(FlagConflict, match=r"changed while you edited it: ann made it .*'vessel'.*not applied and is kept") as err:
            two.edit_flag(fid, verdict="correct", comment="nodule after all", actor="bob",
                          expected_version=seen_by_two.version)
        assert err.value.current.comment == "vessel" and err.value.current.version == 2
        assert [h.action for h in one.history(fid)] == ["create", "edit"]  # the refused edit wrote nothing
        again = two.edit_flag(fid, verdict="correct", comment="nodule after all", actor="bob",
                              expected_version=err.value.current.version)  # reapplied on top
        assert again.version == 3 and one.get_flag(fid).comment == "nodule after all"
        with pytest.raises(FlagConflict):
            one.delete_flag(fid, expected_version=2)


def test_schema_same_versions_and_columns(pg_url: str, tmp_path: Path) -> None:
    with ReviewStore(tmp_path / "r.sqlite3") as lite, ReviewStore(pg_url) as pg:
        assert lite.schema_version == pg.schema_version == CURRENT_VERSION
    conn = sqlite3.connect(tmp_path / "r.sqlite3")
    with psycopg.connect(pg_url) as pgc:
        for table in ("flag", "flag_history", "study", "presence"):
            lite_cols = {r[1] for r in conn.execute(f"PRAGMA table_info({table})")}
            pg_cols = {r[0] for r in pgc.execute("SELECT column_name FROM information_schema.columns "
                                                 "WHERE table_name = %s", (table,))}
            assert lite_cols == pg_cols, table
    conn.close()


def test_history_append_only_in_postgres(pg_url: str) -> None:
    with ReviewStore(pg_url) as store:
        fid = store.add_flag(context(0), "fp", "nodule")
    with psycopg.connect(pg_url, autocommit=True) as conn:  # even the owner, by hand
        for statement, refusal in [("UPDATE flag_history SET actor = 'x'", "append-only"),
                                   ("DELETE FROM flag_history", "append-only"),
                                   ("TRUNCATE flag_history", "append-only"),
                                   ("DELETE FROM flag", "never deleted"),
                                   ("TRUNCATE flag", "never deleted")]:
            with pytest.raises(psycopg.errors.RaiseException, match=refusal):
                conn.execute(statement)
    with ReviewStore(pg_url) as store:
        assert len(store.history(fid)) == 1 and len(store.flags()) == 1


def test_migrate_sqlite_into_postgres_keeps_history_and_is_idempotent(
        pg_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lite = tmp_path / "r.sqlite3"
    ids = store_with_flags(lite, 4, comment_len=5)
    with ReviewStore(lite) as store:
        store.edit_flag(ids[0], comment="edited", actor="bob")
        store.delete_flag(ids[1], actor="ann")
        store.add_study("5.5.5", description="not started yet")
        store.set_status(context(0).study_uid, "done")
    code, out, err = _cli(capsys, "migrate", "--store", str(lite), "--to", pg_url)
    assert code == 0, err
    assert "flags added 4" in out and "history added 6" in out and "studies added 2" in out
    code, out, err = _cli(capsys, "migrate", "--store", str(lite), "--to", pg_url)
    assert code == 0 and "flags added 0, flags updated 0, history added 0, studies added 0" in out
    with ReviewStore(lite) as a, ReviewStore(pg_url) as b:
        assert a.flags(include_deleted=True) == b.flags(include_deleted=True)
        for fid in ids:
            assert [(h.action, h.at, h.actor, h.snapshot) for h in a.history(fid)] == \
                   [(h.action, h.at, h.actor, h.snapshot) for h in b.history(fid)]
        assert [(e.study_uid, e.status, e.description) for e in a.worklist()] == \
               [(e.study_uid, e.status, e.description) for e in b.worklist()]
        a.edit_flag(ids[2], verdict="correct", actor="ann")  # changed after the first copy
    code, out, _ = _cli(capsys, "migrate", "--store", str(lite), "--to", pg_url)
    assert "flags added 0, flags updated 1, history added 1" in out
    with ReviewStore(pg_url) as b:
        assert b.get_flag(ids[2]).verdict.value == "correct" and len(b.history(ids[2])) == 2


def test_cli_takes_urls_socket_hosts_and_the_environment(
        postgres_server: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.test_review_support import make_ct_series

    db = postgres_server.new_database()
    series = make_ct_series(tmp_path / "ct", 2)
    socket_form = f"postgresql:///{db}?host={postgres_server.socket_dir}&port=5432&user=postgres"
    code, out, err = _cli(capsys, "flag", str(tmp_path / "ct"), "--slice", "1", "--label", "nodule",
                          "--verdict", "fp", "--reviewer", "ann", "--store", socket_form)
    assert code == 0, err
    flag_id = out.strip()
    monkeypatch.setenv("RADSCOPE_REVIEW_STORE", postgres_server.url(db))
    code, out, _ = _cli(capsys, "list", "--json")
    flags = json.loads(out)["flags"]
    assert [f["id"] for f in flags] == [flag_id] and flags[0]["sop_instance_uids"] == [series[1].SOPInstanceUID]
    code, out, err = _cli(capsys, "list", "--store", postgres_server.url("no_such_db"))
    assert code == 2 and "cannot reach review store" in err and "no_such_db" in err


def test_unreachable_server_is_a_clear_error(tmp_path: Path) -> None:
    url = f"postgresql:///radscope?host={tmp_path}&port=5432&connect_timeout=2"
    with pytest.raises(StoreUnavailable, match=r"cannot reach review store postgresql:///radscope"):
        ReviewStore(url)


def test_live_changes_arrive(location: str) -> None:
    """Another session's commit reaches the listener (pushed by NOTIFY / seen by the poller); the latency is a
    figure of bench_review_store, not a timed assertion."""
    events: list[dict[str, Any]] = []
    arrived = threading.Event()
    states: list[bool] = []

    def on_event(event: dict[str, Any]) -> None:
        events.append(event)
        arrived.set()

    with ReviewStore(location) as mine, ReviewStore(location) as theirs:
        listener = listen(mine, on_event, lambda ok, _msg: states.append(ok))
        try:
            deadline = time.monotonic() + 10
            while not listener.connected and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(0.6)  # past the SQLite poller's first look and PostgreSQL's "resync" event on connecting
            events.clear()
            arrived.clear()
            fid = theirs.add_flag(context(0), "fp", "nodule", reviewer="bob")
            assert arrived.wait(10), events
        finally:
            listener.stop()
    assert states[0] is True
    if mine.backend == "postgresql":
        assert {"table": "flag", "id": fid, "study_uid": context(0).study_uid, "version": 1,
                "reviewer": "bob"} in events


def test_outbox_keeps_flags_until_the_store_takes_them(postgres_server: Any, tmp_path: Path) -> None:
    url = postgres_server.url(postgres_server.new_database())
    outbox = Outbox(tmp_path / "outbox.sqlite3")
    with ReviewStore(url, timeout_s=2.0) as store:
        flag = make_flag(context(0), "fp", "nodule", reviewer="ann")
        postgres_server.stop("fast")
        try:
            with pytest.raises(StoreUnavailable, match="cannot be reached"):
                store.save_flag(flag)
            outbox.put(store, flag, context(0).study, "server down")
            result = outbox.drain(store)
            assert result.sent == [] and result.waiting == 1 and "cannot be reached" in result.error
        finally:
            postgres_server.start()
        assert Outbox(tmp_path / "outbox.sqlite3").count(store) == 1  # durable: another opener sees it
        result = outbox.drain(store)
        assert result.sent == [flag.id] and result.waiting == 0 and result.error == ""
        assert store.get_flag(flag.id) == flag and len(store.history(flag.id)) == 1
    outbox.close()


def test_viewer_settings_name_the_store_and_the_environment_wins(
        pg_url: str, tmp_path: Path, radscope_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from viewer.display.settings import ViewerSettings, load_settings, save_settings

    monkeypatch.delenv("RADSCOPE_REVIEW_STORE", raising=False)
    save_settings(ViewerSettings(review_store=pg_url))
    assert load_settings().review_store == pg_url and load_settings().extra == {}
    with ReviewStore() as store:  # what the viewer opens
        assert store.backend == "postgresql" and store.location == pg_url
    monkeypatch.setenv("RADSCOPE_REVIEW_STORE", str(tmp_path / "env.sqlite3"))
    with ReviewStore() as store:
        assert store.backend == "sqlite" and store.path == tmp_path / "env.sqlite3"
    with ReviewStore(tmp_path / "explicit.sqlite3") as store:
        assert store.path == tmp_path / "explicit.sqlite3"
