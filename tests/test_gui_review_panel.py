"""The review panel (pytest-qt, offscreen): verdict shortcuts, flag list, edit/delete, worklist, summary."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.test_review_support import context_of, make_ct_series
from viewer.qt.qt import Qt, QtGui, QtWidgets
from viewer.qt.review_panel import ReviewPanel
from viewer.review import Region, ReviewStore, Verdict

pytestmark = [pytest.mark.gui, pytest.mark.qt_log_ignore("propagateSizeHints")]  # offscreen QPA, harmless


@pytest.fixture()
def setup(qtbot, tmp_path: Path):  # type: ignore[no-untyped-def]
    studies = [make_ct_series(tmp_path / f"s{i}", 2) for i in range(3)]
    store = ReviewStore(tmp_path / "r.sqlite3")
    for i, s in enumerate(studies):
        store.add_study(s[0].StudyInstanceUID, description=f"study {i}")
    window = QtWidgets.QMainWindow()  # as in the viewer: the panel docks into the main window
    # the viewer's own window-wide keys: digits are window presets, Delete deletes a measurement
    window.viewer_keys = []  # type: ignore[attr-defined]
    for key in ("1", "2", "Delete"):
        action = QtGui.QAction(key, window, shortcut=QtGui.QKeySequence(key))
        action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        action.triggered.connect(lambda _=False, k=key: window.viewer_keys.append(k))  # type: ignore[attr-defined]
        window.addAction(action)
    panel = ReviewPanel(store, context_of(studies[1][0], 0), window)
    window.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, panel)
    panel.set_labels(["nodule", "mass"])
    panel.reviewer_edit.setText("ann")
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    yield panel, store, studies
    store.close()


def test_ctrl_number_keys_flag_the_current_image(qtbot, setup) -> None:  # type: ignore[no-untyped-def]
    panel, store, studies = setup
    ctrl = Qt.KeyboardModifier.ControlModifier
    with qtbot.waitSignal(panel.flagAdded) as blocker:
        qtbot.keyClick(panel, "2", ctrl)
    flag = store.get_flag(blocker.args[0])
    assert flag.verdict is Verdict.FALSE_POSITIVE and flag.label == "nodule" and flag.reviewer == "ann"
    assert flag.sop_instance_uids == (studies[1][0].SOPInstanceUID,)
    for key in "13":
        qtbot.keyClick(panel, key, ctrl)
    assert [f.verdict for f in store.flags()] == [Verdict.FALSE_POSITIVE, Verdict.CORRECT, Verdict.FALSE_NEGATIVE]
    assert panel.flag_table.rowCount() == 3 and panel.flag_table.item(0, 0).text() == "False positive"
    assert "Saved: False negative (missed)" in panel.status_label.text()
    assert [e.status for e in store.worklist()] == ["not_started", "in_progress", "not_started"]
    qtbot.keyClick(panel, "1")  # a plain digit stays the viewer's window preset
    assert len(store.flags()) == 3 and panel.window().viewer_keys == ["1"]


def test_digits_typed_in_a_text_field_are_text_not_verdicts(qtbot, setup) -> None:  # type: ignore[no-untyped-def]
    panel, store, _ = setup
    panel.comment_edit.setFocus()
    qtbot.keyClicks(panel.comment_edit, "12 mm")
    assert panel.comment_edit.text() == "12 mm" and store.flags() == []


def test_context_line_shows_no_patient_identity(setup) -> None:  # type: ignore[no-untyped-def]
    panel, _, studies = setup
    text = panel.context_label.text()
    assert "20040119" in text and "CT Im 1" in text and "chest-nodule-demo 1.0.0 · gradcam · threshold 0.5" in text
    assert "1CT1" not in text and "CompressedSamples" not in text
    assert studies[1][0].SOPInstanceUID in panel.context_label.toolTip()


def test_image_numbers_read_as_the_views_im_k(setup) -> None:  # type: ignore[no-untyped-def]
    """The reviewer reads 1-based "Im k" (the views' corner "Im k/n"); the store keeps the 0-based index."""
    from viewer.dicom.volume import SeriesInfo
    from viewer.display.annotations import ViewState, corner_text

    panel, store, studies = setup
    panel.set_context(context_of(studies[1][1], 1))  # the second slice
    corner = corner_text(SeriesInfo(modality="CT"), ViewState("acquisition", 1, 2, None, 40.0, 400.0, 1.0))
    corner = corner["bottom_left"][0]
    assert corner.startswith("Im 2/2")
    assert "CT Im 2" in panel.context_label.text()
    flag_id = panel.add_flag("correct")
    assert "on Im 2 (" in panel.status_label.text()
    assert panel.flag_table.horizontalHeaderItem(2).text() == "Image" and panel.flag_table.item(0, 2).text() == "Im 2"
    assert store.get_flag(flag_id).slice_index == 1  # DESIGN.md's 0-based slice order, unchanged


def test_add_flag_with_region_records_patient_space(setup) -> None:  # type: ignore[no-untyped-def]
    panel, store, _ = setup
    panel.comment_edit.setText("really there")
    flag_id = panel.add_flag("missed", Region.make("point", [(64, 64)]))
    assert flag_id is not None
    flag = store.get_flag(flag_id)
    assert flag.comment == "really there" and flag.region is not None and len(flag.region.points_lps) == 1
    assert panel.comment_edit.text() == ""


def test_edit_and_delete_selected_flag(qtbot, setup) -> None:  # type: ignore[no-untyped-def]
    panel, store, _ = setup
    flag_id = panel.add_flag(Verdict.CORRECT)
    panel.flag_table.selectRow(0)
    assert panel.selected_flag_id() == flag_id
    panel.edit_verdict.setCurrentIndex(list(Verdict).index(Verdict.MISLOCALISED))
    panel.edit_verdict.activated.emit(list(Verdict).index(Verdict.MISLOCALISED))
    assert store.get_flag(flag_id).verdict is Verdict.MISLOCALISED
    panel.done_button.setFocus()
    qtbot.keyClick(panel.done_button, Qt.Key.Key_Delete)  # Delete outside the list is the viewer's
    assert not store.get_flag(flag_id).deleted and panel.window().viewer_keys == ["Delete"]
    panel.flag_table.selectRow(0)
    panel.flag_table.setFocus()
    qtbot.keyClick(panel.flag_table, Qt.Key.Key_Delete)
    assert store.get_flag(flag_id).deleted and panel.flag_table.rowCount() == 0
    assert panel.window().viewer_keys == ["Delete"]  # the list's Delete did not reach the viewer
    assert [h.action for h in store.history(flag_id)] == ["create", "edit", "delete"]
    assert [h.actor for h in store.history(flag_id)][1:] == ["ann", "ann"]


def test_worklist_navigation_and_progress(qtbot, setup) -> None:  # type: ignore[no-untyped-def]
    panel, store, studies = setup
    uids = [s[0].StudyInstanceUID for s in studies]
    assert panel.progress_label.text() == "Study 2 of 3 · 0 done"
    qtbot.keyClick(panel, "d", Qt.KeyboardModifier.ControlModifier)
    assert store.worklist()[1].status == "done"
    assert panel.progress_label.text() == "Study 2 of 3 · 1 done"
    with qtbot.waitSignal(panel.studyRequested) as blocker:
        panel.next_button.click()
    assert blocker.args == [uids[2]] and panel.context is None
    assert not panel.next_button.isEnabled()
    assert panel.add_flag("correct") is None and "No image open" in panel.status_label.text()
    panel.set_context(context_of(studies[2][1], 1))
    assert panel.progress_label.text() == "Study 3 of 3 · 1 done"
    panel.add_flag("correct")
    assert "Saved" in panel.status_label.text()
    with qtbot.assertNotEmitted(panel.studyRequested):
        qtbot.keyClick(panel, "]", Qt.KeyboardModifier.ControlModifier)  # Next on the last study says so
    assert panel.status_label.text() == "This is the last study on the worklist (3 of 3)"
    with qtbot.waitSignal(panel.studyRequested) as blocker:
        panel.previous_study()
    assert blocker.args == [uids[1]]
    assert "Saved" not in panel.status_label.text()  # the last study's status line went with it
    assert panel.worklist_table.rowCount() == 3 and panel.worklist_table.item(1, 2).text() == "done"


def test_summary_tab_and_unsaved_error(setup) -> None:  # type: ignore[no-untyped-def]
    panel, store, _ = setup
    panel.add_flag("correct")
    panel.add_flag("fp")
    panel.tabs.setCurrentWidget(panel.summary_text)
    text = panel.summary_text.toPlainText()
    assert re.search(r"all flags\s+2\s+50%\s+9%-91%\s+1\s+1\s+0\s+0\s+0\n", text), text  # Wilson 1/2
    store._conn.execute(f"PRAGMA max_page_count = {store.pragma('page_count')}")
    panel.comment_edit.setText("x" * 200_000)
    assert panel.add_flag("uncertain") is None
    assert panel.status_label.text().startswith("NOT saved:") and "full" in panel.status_label.text()
    assert len(store.flags()) == 2


def test_ranked_studies_come_first_with_their_priority_and_reason(qtbot, setup) -> None:  # type: ignore[no-untyped-def]
    """A worklist ranked from `radscope infer` results (viewer.batch.worklist) reads in rank order."""
    panel, store, studies = setup
    uids = [s[0].StudyInstanceUID for s in studies]
    store.set_priority(uids[2], 1.4, "nodule top score 0.52 near its threshold 0.50")
    store.set_priority(uids[0], 0.3, "2 of 10 slices unlike the training data")
    panel.refresh()
    table = panel.worklist_table
    rows = [table.item(r, 0).data(Qt.ItemDataRole.UserRole) for r in range(table.rowCount())]
    assert rows == [uids[2], uids[0], uids[1]]
    assert [table.item(r, 0).text() for r in range(3)] == ["1", "2", "3"]
    assert table.item(0, 5).text().startswith("1.40 nodule top score 0.52")
    assert table.item(0, 1).toolTip() == "nodule top score 0.52 near its threshold 0.50"
    assert table.item(2, 5).text() == ""


def test_button_rows_wrap_to_fit_a_narrow_dock(setup) -> None:  # type: ignore[no-untyped-def]
    """The verdict buttons wrap onto more rows instead of widening the dock (a laptop's third of 1366 px)."""
    panel, _, _ = setup
    row, buttons = panel.verdict_row, list(panel.verdict_buttons.values())
    widest = max(b.sizeHint().width() for b in buttons)
    assert row.minimumSizeHint().width() == widest  # its narrowest: one button per row
    assert panel.widget().minimumSizeHint().width() < 2 * widest  # no row of the panel needs two of them side by side
    for width in (widest, sum(b.sizeHint().width() for b in buttons) + 4 * len(buttons)):
        row.resize(width, row.heightForWidth(width))
        row.layout().activate()
        rects = [b.geometry() for b in buttons]
        assert all(row.rect().contains(r) for r in rects)
        rows = len({r.y() for r in rects})
        assert rows == (len(buttons) if width == widest else 1)
        assert row.heightForWidth(width) >= rows * buttons[0].sizeHint().height()


def test_worklist_columns_fit_a_narrow_dock(qtbot, setup) -> None:  # type: ignore[no-untyped-def]
    """The study's description gives way (elided) so status, flags and who has it open stay in view."""
    panel, store, _ = setup
    store.add_study("1.2.3.9", description="20260101 DX CT CHEST (RadScope synthetic demo) " * 3)
    panel.window().resize(900, 600)
    panel.window().resizeDocks([panel], [320], Qt.Orientation.Horizontal)
    QtWidgets.QApplication.processEvents()
    panel.refresh()
    QtWidgets.QApplication.processEvents()
    table, header = panel.worklist_table, panel.worklist_table.horizontalHeader()
    assert sum(header.sectionSize(i) for i in range(header.count())) <= table.viewport().width()
    assert header.sectionSize(2) >= table.fontMetrics().horizontalAdvance("not started")  # status in full


def test_panel_fits_a_laptop_dock_without_scrolling(qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """In its dock's scroll area (as the viewer installs it) at a 1366x768 screen's dock size (~390 x 650 px)
    nothing scrolls: the rows wrap and the lists take the height that is left."""
    studies = [make_ct_series(tmp_path / "s", 2)]
    with ReviewStore(tmp_path / "r.sqlite3") as store:
        panel = ReviewPanel(store, context_of(studies[0][0], 0), live=False)
        scroll = QtWidgets.QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(panel.widget())
        panel.setWidget(scroll)
        qtbot.addWidget(panel)
        panel.resize(390, 650)
        panel.show()
        qtbot.waitExposed(panel)
        QtWidgets.QApplication.processEvents()
        assert not scroll.horizontalScrollBar().isVisible() and not scroll.verticalScrollBar().isVisible()
        assert panel.tabs.height() > 3 * panel.tabs.minimumSizeHint().height() // 2  # the lists got the rest
        panel.watch.stop()
