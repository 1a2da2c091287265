"""The review panel inside the viewer (pytest-qt, offscreen): the flag of a verdict shortcut carries the shown
slice's UIDs, the ROI drawn on it (pixels and LPS mm from the volume geometry) and the model in force; the
worklist holds the open studies; the reviewer's name lives in the settings; ``--panel review --screenshot``.

No ``qt_log_ignore`` marker here on purpose: pyproject's ini list must cover the offscreen plugin's warnings.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from phantom import ChestParams, make_chest_ct
from phantom.model import Phantom
from pytestqt.qtbot import QtBot
from tests.conftest import pydicom_test_file
from viewer.display.measure import MeasurementRecord
from viewer.display.settings import load_settings, save_settings, settings_path
from viewer.dicom.synthetic import SeriesTruth, write_ct_series
from viewer.qt.main_window import ViewerWindow
from viewer.ai.results import SeriesResults
from viewer.ai.scheduler import RunKey
from viewer.qt.qt import Qt, QtGui
from viewer.qt.review_integration import ReviewController, attach_review
from viewer.state.ai import AIRunState, AISettings
from viewer.review import Flag, ReviewStore, Verdict, default_reviewer

pytestmark = [pytest.mark.gui]

CTRL = Qt.KeyboardModifier.ControlModifier


@pytest.fixture(scope="module")
def phantom() -> Phantom:
    return make_chest_ct(ChestParams(n_slices=10, matrix=(32, 40), pixel_spacing=(6.0, 5.0), slice_spacing=8.0,
                                     n_nodules=0, seed=11))


Series = tuple[Path, SeriesTruth, Path, SeriesTruth]


@pytest.fixture(scope="module")
def series(phantom: Phantom, tmp_path_factory: pytest.TempPathFactory) -> Series:
    """A sagittal series (so pixel axes, LPS axes and slice order all differ) and a second study."""
    root = tmp_path_factory.mktemp("review_series")
    sag = write_ct_series(phantom, root / "sag", orientation="sagittal", shift=(4.0, -9.0, 30.0), shuffle_names=True,
                          shuffle_instance_numbers=True)
    other = write_ct_series(phantom, root / "other", seed=99, series_number=3)
    assert sag.study_uid != other.study_uid
    return root / "sag", sag, root / "other", other


class StandInAI:
    """What the review layer reads of the AI controller: its Qt-free state only (the chosen model's card and
    per-label thresholds in :class:`AISettings`, the run's results, whose key names the series, in
    :class:`AIRunState`)."""

    def __init__(self) -> None:
        card = SimpleNamespace(name="chest-demo", version="1.2.0", labels=("nodule", "effusion"),
                               weights=SimpleNamespace(sha256="ab" * 32))
        self.state = AISettings("integrated_gradients")
        self.state.set_model("chest-demo", {"nodule": 0.35, "effusion": 0.6}, card=card)
        self.run_state = AIRunState()


def _window(qtbot: QtBot, tmp_path: Path, ai: StandInAI | None = None) -> tuple[ViewerWindow, ReviewController]:
    window = ViewerWindow()
    qtbot.addWidget(window)
    review = attach_review(window, ai, ReviewStore(tmp_path / "review.sqlite3"))
    window.resize(1300, 800)
    window.show()
    qtbot.waitExposed(window)
    review.open()
    return window, review


def _open(window: ViewerWindow, qtbot: QtBot, *paths: Path) -> None:
    window.open_paths([str(p) for p in paths])
    qtbot.waitUntil(lambda: window.is_idle() and window.model is not None and window.model.fully_loaded,
                    timeout=30_000)


def _go_to_slice(window: ViewerWindow, review: ReviewController, k: int) -> None:
    vol = window.model.volume
    window.model.set_crosshair(vol.index_to_lps(np.array([3.0, 2.0, float(k)])))
    review.flush()


def _flag(qtbot: QtBot, review: ReviewController, key: str) -> Flag:
    with qtbot.waitSignal(review.panel.flagAdded, timeout=5000) as blocker:
        qtbot.keyClick(review.window, key, CTRL)
    return review.store.get_flag(blocker.args[0])


def test_missed_finding_flag_records_the_ellipse_where_it_really_is(
    qtbot: QtBot, tmp_path: Path, series: Series,
) -> None:
    folder, truth, _, _ = series
    window, review = _window(qtbot, tmp_path)
    _open(window, qtbot, folder)
    k = 6
    _go_to_slice(window, review, k)
    sx, sy = window.views[0].spacing_xy
    # drawn on the acquisition view: scene mm with pixel (col, row) centred at ((col+0.5)*sx, (row+0.5)*sy)
    window.model.add_measurement(MeasurementRecord("ellipse", "acquisition", k, [], pos=(10 * sx, 8 * sy),
                                                   size=(6 * sx, 4 * sy)))
    window.model.add_measurement(MeasurementRecord("rect", "acquisition", k + 1, [], pos=(0, 0), size=(sx, sy)))
    review.panel.label_edit.setEditText("nodule")
    flag = _flag(qtbot, review, "3")
    assert flag.verdict is Verdict.FALSE_NEGATIVE and flag.label == "nodule"
    assert flag.slice_index == k and flag.study_uid == truth.study_uid
    assert flag.sop_instance_uids == (truth.sop_instance_uids[k],)
    assert flag.region is not None and flag.region.kind == "ellipse"
    assert np.allclose(flag.region.points_px, [(9.5, 7.5), (15.5, 11.5)])
    expected = [truth.index_to_lps([c, r, k]) for c, r in flag.region.points_px]
    assert np.allclose(flag.region.points_lps, expected, atol=1e-3)
    assert flag.model.name == "" and flag.threshold is None  # no model ran
    assert review.panel.status_label.text().endswith("· ellipse region")
    # another slice: its own UID; the ROIs of other slices are not taken
    _go_to_slice(window, review, 2)
    flag2 = _flag(qtbot, review, "1")
    assert flag2.slice_index == 2 and flag2.sop_instance_uids == (truth.sop_instance_uids[2],)
    assert flag2.region is None and flag2.verdict is Verdict.CORRECT
    assert review.panel.status_label.text().endswith("· whole slice")


def test_selected_roi_wins_until_a_new_one_is_drawn_and_rotated_rois_become_polygons(
    qtbot: QtBot, tmp_path: Path, series: Series,
) -> None:
    folder, truth, _, _ = series
    window, review = _window(qtbot, tmp_path)
    _open(window, qtbot, folder)
    k = 4
    _go_to_slice(window, review, k)
    view = window.views[0]
    sx, sy = view.spacing_xy
    first = MeasurementRecord("rect", "acquisition", k, [], pos=(2 * sx, 3 * sy), size=(4 * sx, 2 * sy))
    window.model.add_measurement(first)
    window.model.add_measurement(MeasurementRecord("ellipse", "acquisition", k, [], pos=(20 * sx, 20 * sy),
                                                   size=(2 * sx, 2 * sy)))
    view.selected = next(g for g in view.graphics if g.record is first)  # the reviewer clicks the older ROI
    flag = _flag(qtbot, review, "2")
    assert flag.region.kind == "rectangle" and np.allclose(flag.region.points_px, [(1.5, 2.5), (5.5, 4.5)])
    rotated = MeasurementRecord("rect", "acquisition", k, [], pos=(10 * sx, 10 * sy), size=(4 * sx, 4 * sy), angle=90.0)
    window.model.add_measurement(rotated)  # drawn after the selection: now the newest ROI counts
    flag = _flag(qtbot, review, "4")
    assert flag.region.kind == "polygon" and len(flag.region.points_px) == 4
    # turned 90 degrees about pos: its width (4 sx mm) runs down the rows, its height (4 sy mm) to the left
    assert sx != sy  # non-square pixels: a rotation in mm is not one in pixels
    assert np.allclose(np.min(flag.region.points_px, axis=0), (9.5 - 4 * sy / sx, 9.5))
    assert np.allclose(np.max(flag.region.points_px, axis=0), (9.5, 9.5 + 4 * sx / sy))
    assert np.allclose(flag.region.points_lps, [truth.index_to_lps([c, r, k]) for c, r in flag.region.points_px])


def test_roi_drawn_on_the_mpr_view_of_the_acquisition_plane_maps_to_its_voxels(
    qtbot: QtBot, tmp_path: Path, phantom: Phantom,
) -> None:
    # sagittal slices stored with columns running anterior: the sagittal view shows them left-right flipped
    axes = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])
    truth = write_ct_series(phantom, tmp_path / "flipped", orientation=axes, seed=7)
    folder = tmp_path / "flipped"
    window, review = _window(qtbot, tmp_path)
    _open(window, qtbot, folder)
    window.set_layout("1x3")
    k = 5
    _go_to_slice(window, review, k)
    view = next(v for v in window.views if v.plane_name == "sagittal")
    assert view.plane.slice_axis == 0 and view.plane.flip_col and view.slice_index == k
    (x0, y0), (x1, y1) = view.index_to_scene(np.array([4.0, 3.0, k])), view.index_to_scene(np.array([12.0, 9.0, k]))
    window.model.add_measurement(MeasurementRecord("rect", "sagittal", k, [], pos=(min(x0, x1), min(y0, y1)),
                                                   size=(abs(x1 - x0), abs(y1 - y0))))
    flag = _flag(qtbot, review, "4")
    assert flag.region.kind == "rectangle" and np.allclose(flag.region.points_px, [(4, 3), (12, 9)])
    assert np.allclose(flag.region.points_lps, [truth.index_to_lps([4, 3, k]), truth.index_to_lps([12, 9, k])])


def test_scrolling_reads_one_header_once_it_rests_and_contexts_are_cached(
    qtbot: QtBot, tmp_path: Path, series: Series,
) -> None:
    folder, truth, _, _ = series
    window, review = _window(qtbot, tmp_path)
    _open(window, qtbot, folder)
    review.flush()
    stack = window.stacks[window.stack_id]
    reads: list[int] = []
    original = stack.read_header
    stack.read_header = lambda k: reads.append(k) or original(k)  # type: ignore[method-assign]
    vol = window.model.volume
    for k in range(vol.shape[0]):  # scrolling: no header is read on the way
        window.model.set_crosshair(vol.index_to_lps(np.array([0.0, 0.0, float(k)])))
    assert reads == []
    last = vol.shape[0] - 1
    qtbot.waitUntil(lambda: review.panel.context is not None and review.panel.context.slice_index == last, timeout=5000)
    assert reads == [last] and review.panel.context.sop_instance_uids == (truth.sop_instance_uids[last],)
    _go_to_slice(window, review, 1)
    _go_to_slice(window, review, last)  # seen before: from the cache
    assert reads == [last, 1]


def test_flag_carries_the_model_method_and_label_threshold_of_the_run(
    qtbot: QtBot, tmp_path: Path, series: Series,
) -> None:
    folder, _, _, _ = series
    ai = StandInAI()
    window, review = _window(qtbot, tmp_path, ai)
    _open(window, qtbot, folder)
    box = review.panel.label_edit
    assert [box.itemText(i) for i in range(box.count())] == ["nodule", "effusion"]
    flag = _flag(qtbot, review, "5")
    assert flag.model.name == "" and flag.method == ""  # the model has not run on this series
    ai.run_state.set_results(SeriesResults(RunKey(window.stack_id, "ab" * 32, "integrated_gradients", 0),
                                           ["nodule", "effusion"], window.model.volume.shape), ai.state.thresholds)
    review.panel.label_edit.setCurrentIndex(1)
    flag = _flag(qtbot, review, "2")
    assert (flag.model.name, flag.model.version, flag.model.sha256) == ("chest-demo", "1.2.0", "ab" * 32)
    assert flag.method == "integrated_gradients" and flag.label == "effusion" and flag.threshold == pytest.approx(0.6)
    assert "chest-demo 1.2.0" in review.panel.context_label.text()
    review.panel.label_edit.setCurrentIndex(0)  # the context line follows the label box (its threshold)
    qtbot.waitUntil(lambda: review.panel.context.threshold == pytest.approx(0.35), timeout=5000)
    assert "threshold 0.35" in review.panel.context_label.text()


def test_worklist_lists_open_studies_and_opens_the_requested_one(qtbot: QtBot, tmp_path: Path, series: Series) -> None:
    folder, truth, other_folder, other = series
    window, review = _window(qtbot, tmp_path)
    _open(window, qtbot, folder, other_folder)
    assert {e.study_uid for e in review.store.worklist()} == {truth.study_uid, other.study_uid}
    assert review.panel.worklist_table.rowCount() == 2
    target = other.study_uid if review.panel.context.study_uid == truth.study_uid else truth.study_uid
    review.panel.studyRequested.emit(target)
    qtbot.waitUntil(lambda: review.panel.context is not None and review.panel.context.study_uid == target
                    and window.is_idle(), timeout=10_000)
    assert window.stacks[window.stack_id].info.study_uid == target


def test_a_study_not_open_is_opened_from_its_worklist_folder(qtbot: QtBot, tmp_path: Path, series: Series) -> None:
    folder, truth, other_folder, other = series
    window, review = _window(qtbot, tmp_path)
    review.store.add_study(other.study_uid, description="earlier session", source_path=str(other_folder))
    review.store.add_study("1.2.3.4", description="moved away", source_path=str(tmp_path / "gone"))
    _open(window, qtbot, folder)
    review.panel.studyRequested.emit("1.2.3.4")
    assert "not open and cannot be found" in review.panel.status_label.text()
    review.panel.studyRequested.emit(other.study_uid)
    qtbot.waitUntil(lambda: review.panel.context is not None and review.panel.context.study_uid == other.study_uid
                    and window.is_idle(), timeout=10_000)
    assert window.stacks[window.stack_id].info.study_uid == other.study_uid
    assert truth.study_uid not in {s.info.study_uid for s in window.stacks.values()}  # the open set was replaced


def test_reviewer_name_is_kept_in_the_settings(
    qtbot: QtBot, tmp_path: Path, series: Series, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("RADSCOPE_REVIEWER", raising=False)
    folder, _, _, _ = series
    window, review = _window(qtbot, tmp_path)
    review.panel.reviewer_edit.setFocus()
    review.panel.reviewer_edit.editingFinished.emit()  # focus passing through, nothing typed: nothing saved
    assert not settings_path().exists() or load_settings().reviewer == ""
    review.set_reviewer("  Dr. Ada ")
    assert json.loads(settings_path().read_text())["reviewer"] == "Dr. Ada" and default_reviewer() == "Dr. Ada"
    save_settings(load_settings())  # another save (the window's own) keeps it
    assert load_settings().reviewer == "Dr. Ada"
    _open(window, qtbot, folder)
    assert _flag(qtbot, review, "1").reviewer == "Dr. Ada"
    again = ViewerWindow()
    qtbot.addWidget(again)
    assert attach_review(again, None, ReviewStore(tmp_path / "r2.sqlite3")).panel.reviewer_edit.text() == "Dr. Ada"


def test_image_without_patient_geometry_gets_pixel_regions_only(qtbot: QtBot, tmp_path: Path) -> None:
    window, review = _window(qtbot, tmp_path)
    _open(window, qtbot, pydicom_test_file("US1_UNCR.dcm"))
    review.flush()
    window.model.add_measurement(MeasurementRecord("rect", "acquisition", 0, [], pos=(10, 10), size=(20, 10)))
    flag = _flag(qtbot, review, "1")
    assert flag.region.points_px == ((9.5, 9.5), (29.5, 19.5)) and flag.region.points_lps == ()


def test_panel_review_screenshot_shows_worklist_and_context(
    tmp_path: Path, series: Series, radscope_home: Path,
) -> None:
    folder, truth, _, _ = series
    out = tmp_path / "review.png"
    env = {"QT_QPA_PLATFORM": "offscreen", "RADSCOPE_HOME": str(radscope_home), "PATH": "/usr/bin:/bin"}
    r = subprocess.run([sys.executable, "-m", "viewer.cli", str(folder), "--panel", "review", "--screenshot", str(out)],
                       capture_output=True, text=True, timeout=120, env=env, cwd=Path(__file__).resolve().parents[1])
    assert r.returncode == 0, r.stderr
    img = QtGui.QImage(str(out))
    assert img.width() >= 1200 and img.height() >= 800
    small = img.scaled(160, 100)
    assert len({small.pixel(x, y) for x in range(160) for y in range(100)}) > 200
    with ReviewStore(radscope_home / "review" / "review.sqlite3") as store:  # the worklist the panel showed
        assert [e.study_uid for e in store.worklist()] == [truth.study_uid]
