"""The PACS panel driven like a user would (pytest-qt, offscreen) against the real Orthanc: search, pick a
series, retrieve it into the viewer (first slice opened early, the series growing on screen while it arrives,
then the whole series once), cancel (what arrived stays on screen), a dead node,
and sending the review findings back."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.support.orthanc import Orthanc, orthanc, pacs_net  # noqa: F401  (fixtures)
from tests.support.pacs_data import Studies, studies  # noqa: F401  (fixture)
from viewer.dicom import load_volume, scan

pytestmark = [pytest.mark.gui, pytest.mark.slow]


@pytest.fixture
def app(qtbot, pacs_net: Orthanc):  # type: ignore[no-untyped-def]
    from viewer.qt.app import build_app

    app = build_app(panels=["pacs", "review"], size=(1366, 768), use_cache=False)
    qtbot.addWidget(app.window)
    app.window.show()
    qtbot.waitExposed(app.window)
    yield app
    app.shutdown()
    app.window.close()


def _search(qtbot, panel, node: str, **fields: str) -> None:  # type: ignore[no-untyped-def]
    from viewer.qt.qt import Qt

    panel.node_combo.setEditText(node)
    for key, value in fields.items():
        panel.fields[key].setText(value)
    qtbot.mouseClick(panel.search_button, Qt.MouseButton.LeftButton)
    assert panel.wait_done(30)


def test_search_retrieve_and_view(qtbot, app, pacs_net: Orthanc, studies: Studies, radscope_home: Path) -> None:  # type: ignore[no-untyped-def]
    from viewer.qt.qt import Qt

    panel = app.open_panel("pacs")
    assert panel.dock.isVisible()
    _search(qtbot, panel, pacs_net.dimse_spec, patient_name="SMITH*")
    assert panel.tree.topLevelItemCount() == 1, panel.status.text()
    study = panel.tree.topLevelItem(0)
    assert study.text(0) == "SMITH JOHN" and study.text(5) == "P-SMITH" and study.childCount() == 1
    assert study.child(0).text(0) == "#2 Chest phantom oblique" and study.child(0).text(3) == "24"
    assert panel.status.text() == "1 study"
    assert panel.select(studies.oblique_study, studies.oblique_series)
    assert panel.retrieve_button.isEnabled()
    qtbot.mouseClick(panel.retrieve_button, Qt.MouseButton.LeftButton)
    assert not panel.search_button.isEnabled() and panel.cancel_button.isEnabled()  # busy, GUI responsive
    assert panel.wait_done(60)
    report = panel.last_result
    assert report.complete and report.stored == 24, panel.status.text()
    assert panel.first_shown_s is not None  # the first instance was opened while the rest came
    assert panel.status.text() == "24/24 instances retrieved"
    assert panel.status.toolTip() == str(report.folder)
    assert app.wait_idle(60)
    shown = app.window.model.volume
    original = load_volume(scan([studies.oblique]).stacks[0])
    assert shown.array.shape == original.array.shape
    np.testing.assert_array_equal(shown.array, original.array)
    np.testing.assert_allclose(shown.origin, original.origin, atol=1e-6)
    assert report.folder == radscope_home / "pacs" / studies.oblique_study / studies.oblique_series


def test_cancel_and_dead_node_keep_the_viewer_working(qtbot, app, pacs_net: Orthanc, studies: Studies) -> None:  # type: ignore[no-untyped-def]
    panel = app.open_panel("pacs")
    panel.node_combo.setEditText(pacs_net.dimse_spec)
    panel.retrieve(studies.axial_study)
    panel.cancel()
    assert panel.wait_done(60), panel.status.text()
    report = panel.last_result
    assert report.cancelled and report.missing and "cancelled" in panel.status.text()
    _search(qtbot, panel, "dimse://ORTHANC@127.0.0.1:4299")
    assert "Connection refused" in panel.status.text() and panel.tree.topLevelItemCount() == 0
    _search(qtbot, panel, pacs_net.dimse_spec, study_date="2024-13-01")
    assert "invalid study date" in panel.status.text() and panel.is_idle()
    _search(qtbot, panel, pacs_net.dimse_spec, study_date="")
    assert panel.tree.topLevelItemCount() >= 3


def test_review_findings_go_to_the_node(qtbot, app, pacs_net: Orthanc, studies: Studies, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from viewer.pacs import Query, client_for, resolve
    from viewer.review.source import context_at

    review = app.panel("review")
    panel = app.open_panel("pacs")
    assert panel.send_button.isVisible() or not panel.send_button.isHidden()
    context = context_at(str(studies.axial), 5, studies.axial_series)
    review.store.add_flag(context, "false_positive", label="nodule", reviewer="dr-a")
    action = next(a for a in app.window.panels_menu.actions() if a.text() == "Send review findings to PACS…")
    panel.node_combo.setEditText("")
    action.trigger()
    assert "choose the node" in panel.status.text() and panel.is_idle()
    panel.node_combo.setEditText(pacs_net.dimse_spec)
    action.trigger()
    assert panel.wait_done(30)
    assert panel.last_result.sent >= 2 and not panel.last_result.errors, panel.status.text()
    found = client_for(resolve(pacs_net.dimse_spec)).find(Query(study_uid=studies.axial_study)).studies[0]
    assert {"KO", "SR"} <= {s.modality for s in found.series}


def _slow_series(orthanc: Orthanc, folder: Path, n: int, monkeypatch: pytest.MonkeyPatch, seed: int):  # type: ignore[no-untyped-def]
    """An oblique n-slice CT uploaded to Orthanc, and this test's retrievals throttled (each received
    instance waits 80 ms before the sink takes it) so that the growth can be watched."""
    import time

    from phantom import ChestParams, make_chest_ct
    from viewer.dicom import synthetic
    from viewer.pacs.store import Sink

    ph = make_chest_ct(ChestParams(n_slices=n, matrix=(48, 48), n_nodules=0), seed=5)
    series = synthetic.write_ct_series(ph, folder, orientation="oblique", angles_deg=(5, -4, 9),
                                       patient={"name": "GROW^ING", "id": "P-GROW"}, seed=seed)
    orthanc.upload(sorted(folder.iterdir()))
    take = Sink.take_bytes

    def slow_take(self: Sink, data: bytes, sop_uid: str | None) -> bool:
        time.sleep(0.08)
        return take(self, data, sop_uid)

    monkeypatch.setattr(Sink, "take_bytes", slow_take)
    return series


def test_retrieved_series_grows_on_screen(qtbot, app, pacs_net: Orthanc, tmp_path: Path,  # type: ignore[no-untyped-def]
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """A 64-slice series retrieved slowly (the sink throttled in this test) shows 1 < k < 64 slices before the
    retrieval ends, keeping the user's window and zoom, then the whole series exactly once, as the original."""
    n = 64
    series = _slow_series(pacs_net, tmp_path / "long", n, monkeypatch, seed=21)
    window = app.window
    shown: list[tuple[int, bool]] = []  # (slices of each series state shown, whether the retrieval still ran)
    panel = app.open_panel("pacs")
    window.session.seriesChanged.connect(
        lambda s: s is not None and shown.append((s.volume.shape[0], panel.job is not None)))
    panel.node_combo.setEditText(pacs_net.dimse_spec)
    panel.retrieve(series.study_uid, series.series_uid)
    qtbot.waitUntil(lambda: panel.stream is not None and panel.stream.shown > 1, timeout=60_000)
    assert panel.job is not None and panel.progress.isVisible()  # still retrieving, progress in the panel
    series_state = window.session.series
    partial = series_state.volume
    k = partial.shape[0]
    assert 1 < k < n and series_state.fully_loaded
    from viewer.qt.qt import Qt

    browser = window.series_browser  # the series list follows: this stack, k images
    assert browser.stack_ids() == [window.stack_id]
    assert browser.findItems(str(k), Qt.MatchFlag.MatchExactly | Qt.MatchFlag.MatchRecursive, 2)
    series_state.set_window(123.0, 456.0)  # the user's window and zoom, kept while the series grows
    view = window.active_view
    view.vb.scaleBy((0.5, 0.5))  # the user zooms (as pyqtgraph's Ctrl+wheel does: then it says so)
    view.vb.sigRangeChangedManually.emit([True, True])
    zoom = view.camera.range  # written into the view's camera (LPS centre, mm)
    assert zoom is not None
    qtbot.waitUntil(lambda: panel.stream.shown > k or panel.job is None, timeout=60_000)
    assert panel.wait_done(120), panel.status.text()
    assert app.wait_idle(60)
    report = panel.last_result
    assert report.complete and report.stored == n, panel.status.text()
    during = [m for m, running in shown if running]
    assert any(1 < m < n for m in during), shown
    assert [m for m, _ in shown].count(n) == 1, shown  # the finished series replaces the partial one once
    final = window.session.series
    assert final.volume.shape[0] == n and final.fully_loaded
    assert (final.center, final.width) == (123.0, 456.0) and not view.fitted
    assert view.camera.range == zoom  # the user's zoom survived every swap and the final open
    shown = view.vb.viewRect()
    np.testing.assert_allclose(view.lps_to_scene(np.array(zoom.center_lps))[:2],
                               (shown.center().x(), shown.center().y()), atol=1e-3)
    assert shown.width() == pytest.approx(zoom.width_mm, rel=0.01) or shown.height() == pytest.approx(zoom.height_mm,
                                                                                                      rel=0.01)
    original = load_volume(scan([tmp_path / "long"]).stacks[0])
    np.testing.assert_array_equal(final.volume.array, original.array)
    np.testing.assert_allclose(final.volume.origin, original.origin, atol=1e-6)
    np.testing.assert_allclose(final.volume.spacing, original.spacing, atol=1e-6)
    np.testing.assert_allclose(final.volume.direction, original.direction, atol=1e-9)
    # the partial stack sat on the original's grid: same direction and spacing, its first slice one of the
    # original's slices (pixels included)
    np.testing.assert_allclose(partial.direction, original.direction, atol=1e-9)
    np.testing.assert_allclose(partial.spacing[:2], original.spacing[:2], atol=1e-6)
    ijk = original.lps_to_index(partial.origin)
    np.testing.assert_allclose(ijk, np.round(ijk), atol=1e-3)
    assert ijk[0] == pytest.approx(0, abs=1e-3) and ijk[1] == pytest.approx(0, abs=1e-3)
    np.testing.assert_array_equal(partial.array[0], original.array[int(round(ijk[2]))])


def test_cancel_leaves_what_arrived_on_screen(qtbot, app, pacs_net: Orthanc, tmp_path: Path,  # type: ignore[no-untyped-def]
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    n = 64
    series = _slow_series(pacs_net, tmp_path / "cut", n, monkeypatch, seed=22)
    panel = app.open_panel("pacs")
    panel.node_combo.setEditText(pacs_net.dimse_spec)
    panel.retrieve(series.study_uid, series.series_uid)
    qtbot.waitUntil(lambda: panel.stream is not None and panel.stream.shown > 1, timeout=60_000)
    panel.cancel()
    assert panel.wait_done(60) and app.wait_idle(60)
    report = panel.last_result
    assert report.cancelled and report.missing and 1 < report.stored < n, panel.status.text()
    shown = app.window.session.series
    assert shown is not None and shown.fully_loaded
    assert shown.volume.info.series_uid == series.series_uid
    assert len(shown.volume.source_files) == report.stored  # every instance that arrived, on screen
