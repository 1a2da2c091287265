"""The review panel on a shared PostgreSQL store (real server): other reviewers' flags appear live, the worklist
shows who is on which study, a second editor is told and keeps their edit, a flag made while the server is down
is kept locally and arrives once it is back."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.review_stores import context
from viewer.qt.qt import QtWidgets
from viewer.qt.review_panel import ReviewPanel
from viewer.review import ReviewStore

pytestmark = [pytest.mark.gui, pytest.mark.xdist_group("postgres"), pytest.mark.qt_log_ignore("propagateSizeHints")]


@pytest.fixture()
def shared(postgres_server: Any, qtbot: Any) -> Any:
    url = postgres_server.url(postgres_server.new_database())
    mine, theirs = ReviewStore(url, timeout_s=2.0), ReviewStore(url)
    window = QtWidgets.QMainWindow()
    qtbot.addWidget(window)
    made: list[ReviewPanel] = []

    def panel(live: bool = True) -> ReviewPanel:
        p = ReviewPanel(mine, context(0), window, live=live)
        p.set_labels(["nodule"])
        p.reviewer_edit.setText("Ann")
        window.setCentralWidget(p)
        window.show()
        qtbot.waitExposed(window)
        made.append(p)
        return p

    yield panel, mine, theirs, postgres_server
    for p in made:
        p.watch.stop()
    mine.close()
    theirs.close()


def _rows(panel: ReviewPanel) -> list[tuple[str, str]]:
    t = panel.flag_table
    return [(t.item(r, 0).text(), t.item(r, 3).text()) for r in range(t.rowCount())]


def test_other_reviewers_flags_and_presence_appear_within_a_second(shared: Any, qtbot: Any) -> None:
    make, mine, theirs, _ = shared
    panel = make()
    qtbot.waitUntil(lambda: panel.watch._listener is not None and panel.watch._listener.connected, timeout=10_000)
    qtbot.wait(300)  # past the "resync" refresh on connecting
    # pushed by NOTIFY, not polled (the latency is a figure of bench_review_store, not a timed assertion)
    theirs.add_flag(context(1), "missed", "nodule", reviewer="Bob")  # another workstation, same study
    qtbot.waitUntil(lambda: ("False negative (missed)", "Bob") in _rows(panel), timeout=5000)
    theirs.set_presence("Bob", context(0).study_uid)
    qtbot.waitUntil(lambda: "Bob" in panel.worklist_table.item(0, 4).text(), timeout=5000)
    assert "Ann" in panel.worklist_table.item(0, 4).text()  # this panel said so too


def test_second_editor_is_told_and_keeps_their_edit(shared: Any, qtbot: Any) -> None:
    make, mine, theirs, _ = shared
    panel = make(live=False)  # no live refresh: the panel still shows the old version when its user edits
    fid = mine.add_flag(context(0), "fp", "nodule", reviewer="Ann")
    panel.refresh()
    panel.flag_table.selectRow(0)
    theirs.edit_flag(fid, comment="a vessel", actor="Bob")  # Bob edits first
    panel.comment_edit.setText("a nodule, 6 mm")
    panel.edit_button.click()
    text = panel.status_label.text()
    assert "NOT saved" in text and "changed while you edited it: Bob made it" in text and "'a vessel'" in text and "kept" in text
    assert mine.get_flag(fid).comment == "a vessel"  # Bob's edit stands
    assert panel.comment_edit.text() == "a nodule, 6 mm"  # Ann's edit is still there to apply
    assert panel.flag_table.item(0, 5).text() == "a vessel"  # the list shows the flag as it is now
    panel.flag_table.selectRow(0)
    panel.edit_button.click()  # reapplied on top of Bob's version
    assert mine.get_flag(fid).comment == "a nodule, 6 mm" and mine.get_flag(fid).version == 3
    assert [h.actor for h in mine.history(fid)] == ["Ann", "Bob", "Ann"]


def test_flag_made_while_the_server_is_down_is_kept_and_arrives(shared: Any, qtbot: Any, radscope_home: Any) -> None:
    make, mine, theirs, server = shared
    panel = make()
    qtbot.waitUntil(lambda: panel.watch._listener is not None and panel.watch._listener.connected, timeout=10_000)
    server.stop("fast")
    try:
        qtbot.waitUntil(lambda: "lost the connection" in panel.status_label.text(), timeout=5000)
        assert panel.add_flag("fp") is None  # no id: nothing was acknowledged
        text = panel.status_label.text()
        assert "cannot be reached" in text and "kept on this computer (1 waiting)" in text
        assert (radscope_home / "review" / "outbox.sqlite3").exists()
    finally:
        server.start()
    qtbot.waitUntil(lambda: len(theirs.flags()) == 1, timeout=20_000)  # retried until the store took it
    flag = theirs.flags()[0]
    assert flag.verdict.value == "false_positive" and flag.reviewer == "Ann" and len(theirs.history(flag.id)) == 1
    qtbot.waitUntil(lambda: "Sent 1 kept flag" in panel.status_label.text() or
                    "Connected to the review store again" in panel.status_label.text(), timeout=5000)
    qtbot.waitUntil(lambda: panel.flag_table.rowCount() == 1, timeout=5000)
    assert panel.watch.outbox_count() == 0


def test_read_only_store_browses_and_says_why_it_cannot_save(qtbot: Any, tmp_path: Any) -> None:
    """Issue 12: a read-only store (immutable as root) still lists its flags in the panel; a verdict says why it
    is not saved, and the panel's own bookkeeping (presence) writes nothing."""
    from tests.support.review_stores import read_only, store_with_flags

    path = tmp_path / "review.sqlite3"
    ids = store_with_flags(path, 3, comment_len=5)
    with read_only(path):
        store = ReviewStore(path)
        window = QtWidgets.QMainWindow()
        qtbot.addWidget(window)
        panel = ReviewPanel(store, context(0), window)
        window.setCentralWidget(panel)
        window.show()
        try:
            assert "read-only" in panel.status_label.text()
            assert panel.flag_table.rowCount() == 3 and panel.worklist_table.rowCount() == 1
            assert panel.add_flag("fp") is None
            assert "NOT saved" in panel.status_label.text() and "read-only" in panel.status_label.text()
            assert [f.id for f in store.flags()] == ids
        finally:
            panel.watch.stop()
            store.close()


def test_viewer_started_while_the_server_is_down_keeps_flags_and_sends_them(
        postgres_server: Any, qtbot: Any) -> None:
    url = postgres_server.url(postgres_server.new_database())
    ReviewStore(url).close()
    postgres_server.stop("fast")
    try:
        store = ReviewStore(url, offline_ok=True, timeout_s=2.0)  # what the viewer opens
        assert "cannot reach review store" in store.offline
        window = QtWidgets.QMainWindow()
        qtbot.addWidget(window)
        panel = ReviewPanel(store, context(0), window)
        panel.reviewer_edit.setText("Ann")
        window.setCentralWidget(panel)
        window.show()
        assert "kept on this computer" in panel.status_label.text()
        assert panel.add_flag("missed") is None
        assert "(1 waiting)" in panel.status_label.text() and panel.watch.outbox_count() == 1
    finally:
        postgres_server.start()
    try:
        with ReviewStore(url) as other:
            qtbot.waitUntil(lambda: len(other.flags()) == 1, timeout=20_000)
            assert other.flags()[0].verdict.value == "false_negative" and other.flags()[0].reviewer == "Ann"
        qtbot.waitUntil(lambda: panel.flag_table.rowCount() == 1, timeout=5000)
    finally:
        panel.watch.stop()
        store.close()


def test_viewer_switches_to_a_team_store_and_keeps_the_setting(
        window: Any, postgres_server: Any, tmp_path: Any) -> None:
    from viewer.display.settings import load_settings
    from viewer.qt.review_integration import attach_review

    url = postgres_server.url(postgres_server.new_database())
    with ReviewStore(url) as team:
        fid = team.add_flag(context(0), "fp", "nodule", reviewer="Bob")
    controller = attach_review(window, store=ReviewStore(tmp_path / "own.sqlite3"))
    try:
        assert controller.use_store(url)  # Panels > Review store…
        assert controller.panel.store.backend == "postgresql" and load_settings().review_store == url
        assert controller.panel.windowTitle().startswith("Review · team store t_") and "@local socket" in controller.panel.windowTitle()
        controller.panel.current_study = context(0).study_uid
        controller.panel.refresh()
        assert controller.panel.flag_table.item(0, 0).data(0x0100) == fid  # UserRole: the team's flags show
        empty = tmp_path / "empty.sqlite3"
        empty.write_bytes(b"")
        assert not controller.use_store(str(empty))  # refused, said, and the team store stays
        assert "0 bytes" in controller.panel.status_label.text() and controller.panel.store.backend == "postgresql"
        assert load_settings().review_store == url
    finally:
        controller.panel.watch.stop()
        controller.store.close()
