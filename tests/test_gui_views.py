"""The real main window driven with mouse and keys on volumes of known geometry (pytest-qt, offscreen)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from viewer.dicom.volume import SeriesInfo, Volume, WindowPreset
from viewer.display.annotations import corner_text
from viewer.display.colormaps import overlay_lut
from viewer.display.measure import MeasurementRecord
from viewer.qt.main_window import ViewerWindow
from viewer.qt.qt import QPointF, Qt, QtCore, QtGui, QtWidgets
from viewer.qt.series_model import Overlay
from viewer.qt.slice_view import SliceView

pytestmark = [pytest.mark.gui, pytest.mark.qt_log_ignore("propagateSizeHints", "does not support raise")]

SPACING = (0.5, 0.8, 2.0)  # x (column), y (row), z (slice) mm: non-square pixels
SHAPE = (24, 100, 120)  # k, j, i
ORIGIN = (-30.0, -40.0, 100.0)


def make_volume(direction: np.ndarray | None = None, modality: str = "CT", stack_id: str = "S1") -> Volume:
    """A phantom whose value at voxel (k, j, i) is 1000*k + j (so any probe is checkable), plus a uniform
    disc of 500 HU of radius 15 mm on slice 5 centred at column 60, row 50."""
    k, j, i = np.indices(SHAPE, dtype=np.float32)
    arr = 1000.0 * k + j
    sx, sy, _ = SPACING
    disc = ((i[5] - 60) * sx) ** 2 + ((j[5] - 50) * sy) ** 2 <= 15.0**2
    arr[5][disc] = 500.0
    info = SeriesInfo(modality=modality, patient_name="Doe^Jane", patient_id="PID-42", series_uid=stack_id,
                      stack_id=stack_id, description="Phantom", windows=[WindowPreset("Header", 40, 400)])
    return Volume(arr.astype(np.float32), ORIGIN, SPACING, np.eye(3) if direction is None else direction,
                  [f"1.2.{n}" for n in range(SHAPE[0])], info=info)



def scene_to_viewport(view: SliceView, x: float, y: float) -> QtCore.QPoint:
    """Viewport pixel of a scene point in mm."""
    p = view.vb.mapViewToScene(QPointF(x, y))
    return view.mapFromScene(p)


def send_mouse(view: SliceView, kind: QtCore.QEvent.Type, pos: QtCore.QPoint, button: Qt.MouseButton,
               buttons: Qt.MouseButton, modifiers=Qt.KeyboardModifier.NoModifier) -> None:
    g = view.viewport().mapToGlobal(pos)
    ev = QtGui.QMouseEvent(kind, QPointF(pos), QPointF(g), button, buttons, modifiers)
    QtWidgets.QApplication.sendEvent(view.viewport(), ev)


def drag(view: SliceView, a: QtCore.QPoint, b: QtCore.QPoint, button=Qt.MouseButton.LeftButton, steps: int = 6,
         modifiers=Qt.KeyboardModifier.NoModifier) -> None:
    """A real press-move-release through the viewport (pyqtgraph's drag detection included)."""
    QtCore.QThread.msleep(12)
    send_mouse(view, QtCore.QEvent.Type.MouseButtonPress, a, button, button, modifiers)
    for n in range(1, steps + 1):
        QtCore.QThread.msleep(12)  # pyqtgraph drops mouse moves faster than its rate limit (100 Hz)
        p = QtCore.QPoint(round(a.x() + (b.x() - a.x()) * n / steps), round(a.y() + (b.y() - a.y()) * n / steps))
        send_mouse(view, QtCore.QEvent.Type.MouseMove, p, Qt.MouseButton.NoButton, button, modifiers)
    send_mouse(view, QtCore.QEvent.Type.MouseButtonRelease, b, button, Qt.MouseButton.NoButton, modifiers)


def click(view: SliceView, p: QtCore.QPoint) -> None:
    send_mouse(view, QtCore.QEvent.Type.MouseButtonPress, p, Qt.MouseButton.LeftButton, Qt.MouseButton.LeftButton)
    send_mouse(view, QtCore.QEvent.Type.MouseButtonRelease, p, Qt.MouseButton.LeftButton, Qt.MouseButton.NoButton)


def wheel(view: SliceView, pos: QtCore.QPoint, delta: int, modifiers=Qt.KeyboardModifier.NoModifier) -> None:
    g = view.viewport().mapToGlobal(pos)
    ev = QtGui.QWheelEvent(QPointF(pos), QPointF(g), QtCore.QPoint(0, 0), QtCore.QPoint(0, delta),
                           Qt.MouseButton.NoButton, modifiers, Qt.ScrollPhase.NoScrollPhase, False)
    QtWidgets.QApplication.sendEvent(view.viewport(), ev)


def voxel_centre_scene(view: SliceView, i: int, j: int, k: int) -> tuple[float, float]:
    return view.index_to_scene(np.array([i, j, k], dtype=float))


def test_aspect_slices_keys_wheel_and_slider(window: ViewerWindow, qtbot) -> None:
    model = window.show_volume(make_volume())
    view = window.views[0]
    rect = view.image_item.mapRectToParent(view.image_item.boundingRect())
    assert (rect.width(), rect.height()) == pytest.approx((120 * 0.5, 100 * 0.8))  # mm: aspect from spacing
    assert view.slice_index == 12  # opens in the middle
    assert view.image_item.image[7, 3] == 12 * 1000 + 7
    view.setFocus()
    qtbot.keyClick(view, Qt.Key.Key_Down)
    assert view.slice_index == 13
    qtbot.keyClick(view, Qt.Key.Key_End)
    assert view.slice_index == 23 and window.slider.value() == 23
    qtbot.keyClick(view, Qt.Key.Key_Home)
    assert view.slice_index == 0
    qtbot.keyClick(view, Qt.Key.Key_PageDown)
    assert view.slice_index == 2
    centre = view.viewport().rect().center()
    wheel(view, centre, -120)
    assert view.slice_index == 3
    wheel(view, centre, 120)
    assert view.slice_index == 2
    wheel(view, centre, -60)  # half a notch (trackpad): nothing yet, the second half scrolls
    assert view.slice_index == 2
    wheel(view, centre, -60)
    assert view.slice_index == 3
    window.slider.setValue(9)
    assert view.slice_index == 9 and view.image_item.image[0, 0] == 9000
    assert model.crosshair_index()[2] == pytest.approx(9)


def test_window_drag_presets_invert(window: ViewerWindow) -> None:
    model = window.show_volume(make_volume())
    view = window.views[0]
    assert (model.center, model.width) == (40, 400)  # the header window first
    c = view.viewport().rect().center()
    drag(view, c, c + QtCore.QPoint(64, 32), button=Qt.MouseButton.RightButton)
    assert model.width > 400 and model.center > 40  # right widens, down raises the level
    assert tuple(view.image_item.levels) == pytest.approx((model.center - model.width / 2,
                                                           model.center + model.width / 2))
    window.set_tool("window")  # the same with the left button (one-button mice, trackpads)
    before = model.width
    drag(view, c, c + QtCore.QPoint(64, 0))
    assert model.width > before
    lung = next(a for a in window._preset_actions if a.text().startswith("Lung"))
    lung.trigger()
    assert (model.center, model.width) == (-600, 1500)
    assert window._preset_actions[0].shortcut().toString() == "1"
    window.invert_action.trigger()
    assert model.invert and view.image_item.lut is not None and view.image_item.lut[0] == 255


def test_distance_measurement_on_non_square_pixels(window: ViewerWindow) -> None:
    window.show_volume(make_volume())
    view = window.views[0]
    window.set_tool("distance")
    a = voxel_centre_scene(view, 20, 10, 12)
    b = voxel_centre_scene(view, 80, 70, 12)
    drag(view, scene_to_viewport(view, *a), scene_to_viewport(view, *b))
    assert len(window.model.measurements) == 1
    rec = window.model.measurements[0]
    expected = math.hypot(60 * 0.5, 60 * 0.8)
    # the drag lands on viewport pixels: within one screen pixel of the exact points
    px = view.vb.viewPixelSize()[0]
    assert math.dist(rec.points[0], a) < 2 * px and math.dist(rec.points[1], b) < 2 * px
    g = view.graphics[0]
    assert g.text.endswith(" mm")
    assert float(g.text.split()[0]) == pytest.approx(expected, abs=4 * px)
    # exact API check: the same record with exact points measures exactly
    exact = view.commit_measurement(MeasurementRecord("distance", view.plane_name, 12, [a, b]))
    assert exact is not None and exact.text == f"{expected:.1f} mm"
    # kept per slice: another slice shows none, coming back shows both
    view.set_slice(3)
    assert view.graphics == []
    view.set_slice(12)
    assert len(view.graphics) == 2
    window.delete_measurement()
    assert len(window.model.measurements) == 1


def test_roi_mean_over_uniform_disc_and_angle(window: ViewerWindow) -> None:
    window.show_volume(make_volume())
    view = window.views[0]
    view.set_slice(5)
    window.set_tool("ellipse")
    cx, cy = (60 + 0.5) * 0.5, (50 + 0.5) * 0.8
    drag(view, scene_to_viewport(view, cx - 10, cy - 10), scene_to_viewport(view, cx + 10, cy + 10))
    g = view.graphics[-1]
    assert g.text.startswith("mean 500.0 HU  SD 0.0")
    assert "min 500  max 500" in g.text
    w, h = g.record.size
    assert f"area {math.pi * w * h / 4:.1f} mm²" in g.text
    window.set_tool("rect")
    drag(view, scene_to_viewport(view, 1.0, 1.0), scene_to_viewport(view, 10.0, 8.0))
    rect = view.graphics[-1]
    (_x0, y0), (w, h) = rect.record.pos, rect.record.size
    rows = [j for j in range(SHAPE[1]) if y0 <= (j + 0.5) * 0.8 <= y0 + h]  # pixel centres inside
    assert f"min {5000 + rows[0]}  max {5000 + rows[-1]}" in rect.text
    assert f"mean {5000 + np.mean(rows):.1f} HU" in rect.text
    # angle: drag the first arm, click the third point
    window.set_tool("angle")
    v0 = scene_to_viewport(view, 30, 40)
    drag(view, scene_to_viewport(view, 50, 40), v0)
    click(view, scene_to_viewport(view, 30, 20))
    angle = [gr for gr in view.graphics if gr.record.kind == "angle"][0]
    assert float(angle.text.rstrip("°")) == pytest.approx(90.0, abs=1.5)


def test_probe_reports_index_lps_and_value(window: ViewerWindow) -> None:
    window.show_volume(make_volume())
    view = window.views[0]
    x, y = voxel_centre_scene(view, 33, 44, 12)
    pos = scene_to_viewport(view, x, y)
    send_mouse(view, QtCore.QEvent.Type.MouseMove, pos, Qt.MouseButton.NoButton, Qt.MouseButton.NoButton)
    text = window.probe_label.text()
    assert "i 33, j 44, k 12" in text
    lps = np.add(ORIGIN, (33 * 0.5, 44 * 0.8, 12 * 2.0))
    assert f"({lps[0]:.1f}, {lps[1]:.1f}, {lps[2]:.1f}) mm" in text
    assert "value 12044 HU" in text


def test_probe_follows_wheel_and_key_scrolling_under_a_resting_mouse(window: ViewerWindow, qtbot) -> None:
    window.show_volume(make_volume())
    view = window.views[0]
    pos = scene_to_viewport(view, *voxel_centre_scene(view, 33, 44, 12))
    send_mouse(view, QtCore.QEvent.Type.MouseMove, pos, Qt.MouseButton.NoButton, Qt.MouseButton.NoButton)
    assert "value 12044 HU" in window.probe_label.text()
    wheel(view, pos, -120)
    assert view.slice_index == 13 and "i 33, j 44, k 13" in window.probe_label.text()
    assert "value 13044 HU" in window.probe_label.text()
    view.setFocus()
    qtbot.keyClick(view, Qt.Key.Key_Home)
    assert "value 44 HU" in window.probe_label.text() and "k 0)" in window.probe_label.text()


def test_switching_to_a_drawing_tool_during_a_drag_draws_from_there(window: ViewerWindow) -> None:
    """A crosshair or pan drag under way when D / R / E is pressed: the rest of the drag draws (it raised
    AttributeError: the drag's start was never set)."""
    model = window.show_volume(make_volume())
    view = window.views[0]
    window.set_tool("crosshair")
    view.tool_drag((5.0, 5.0), True, False, origin=(5.0, 5.0))
    for tool in ("distance", "rect", "ellipse"):
        window.set_tool(tool)
        view.tool_drag((10.0, 12.0), False, False)
        view.tool_drag((20.0, 22.0), False, True)
    kinds = [m.kind for m in model.measurements]
    assert kinds == ["distance", "rect", "ellipse"]
    assert model.measurements[0].points[0] == pytest.approx((10.0, 12.0))


def test_mpr_crosshair_sync_in_lps(window: ViewerWindow) -> None:
    model = window.show_volume(make_volume())
    window.set_layout("1x3")
    axial, coronal, sagittal = window.views
    assert [v.plane_name for v in window.views] == ["axial", "coronal", "sagittal"]
    assert window.tool == "crosshair"
    # click the centre of voxel (i=70, j=?, k=4) in the coronal view
    target = (70, coronal.slice_index, 4)
    click(coronal, scene_to_viewport(coronal, *voxel_centre_scene(coronal, *target)))
    ijk = model.crosshair_index()
    np.testing.assert_allclose(ijk, target, atol=0.1)
    assert axial.slice_index == 4 and sagittal.slice_index == 70
    # every view's crosshair lines sit on the same LPS point
    for v in window.views:
        lps = v.scene_to_lps(v._cross_v.value(), v._cross_h.value())
        np.testing.assert_allclose(lps, model.crosshair, atol=1e-6)
    # a drag in the axial view moves the coronal and sagittal slices
    a = scene_to_viewport(axial, *voxel_centre_scene(axial, 70, 50, 4))
    b = scene_to_viewport(axial, *voxel_centre_scene(axial, 30, 20, 4))
    drag(axial, a, b)
    assert sagittal.slice_index == pytest.approx(30, abs=1) and coronal.slice_index == pytest.approx(20, abs=1)
    # scrolling the sagittal view moves the crosshair along x only
    before = model.crosshair.copy()
    sagittal.step_slice(1)
    np.testing.assert_allclose(model.crosshair - before, (0.5, 0, 0), atol=1e-9)
    # coronal shows superior up, patient right on screen left
    assert coronal.plane.letters(model.volume.direction) == {"left": "R", "right": "L", "top": "S", "bottom": "I"}


@pytest.mark.parametrize("oblique", [False, True], ids=["axial", "sagittal-acquired"])
def test_overlay_sits_on_its_voxel_in_all_three_views(window: ViewerWindow, oblique: bool) -> None:
    direction = np.array([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, -1.0, 0.0]]) if oblique else np.eye(3)
    vol = make_volume(direction)
    vol.array[:] = -1000.0  # black image (lung window)
    model = window.show_volume(vol)
    window.set_layout("1x3")
    model.set_window(-600, 1500)
    voxel = (37, 61, 9)  # i, j, k
    heat = np.zeros(SHAPE, dtype=np.float32)
    heat[voxel[2], voxel[1], voxel[0]] = 1.0
    model.add_overlay(Overlay("mask", heat, overlay_lut("hot"), opacity=1.0))
    model.set_crosshair(vol.index_to_lps(voxel))
    for v in window.views:
        v.set_crosshair_visible(False)
        v.show_annotations = False
        v.one_to_one()
        v.vb.setRange(rect=QtCore.QRectF(*(np.subtract(voxel_centre_scene(v, *voxel), 15)), 30, 30), padding=0)
    QtWidgets.QApplication.processEvents()
    for v in window.views:
        img = v.grab().toImage()
        p = scene_to_viewport(v, *voxel_centre_scene(v, *voxel))
        hit = QtGui.QColor(img.pixel(p.x(), p.y()))
        assert hit.red() > 200 and hit.green() > 200, (v.plane_name, hit.name())  # white-hot voxel
        # one voxel away (in screen pixels: one voxel spacing + margin) it is dark again
        px = v.vb.viewPixelSize()
        off_x = int(math.ceil(v.spacing_xy[0] / px[0])) + 2
        off_y = int(math.ceil(v.spacing_xy[1] / px[1])) + 2
        for dx, dy in ((off_x, 0), (-off_x, 0), (0, off_y), (0, -off_y)):
            c = QtGui.QColor(img.pixel(p.x() + dx, p.y() + dy))
            assert c.red() < 60, (v.plane_name, dx, dy, c.name())


def test_annotations_hide_identifying_and_export(window: ViewerWindow, tmp_path) -> None:
    window.show_volume(make_volume())
    view = window.views[0]
    with_ann, without = tmp_path / "a.png", tmp_path / "b.png"
    window.export_png(str(with_ann))
    window.export_png(str(without), with_annotations=False)
    a, b = QtGui.QImage(str(with_ann)), QtGui.QImage(str(without))
    assert a.size() == b.size() and a != b
    # the top-left corner (patient name) has bright text pixels only with annotations
    def bright(img: QtGui.QImage) -> int:
        return sum(QtGui.QColor(img.pixel(x, y)).lightness() > 150 for x in range(0, 80) for y in range(0, 16))
    assert bright(a) > 10 and bright(b) == 0
    assert not window.settings.hide_identifying
    qt_hide = window.hide_id_action
    qt_hide.trigger()
    assert view.hide_identifying and window.settings.hide_identifying


def test_measurements_are_kept_per_series(window: ViewerWindow) -> None:
    window.show_volume(make_volume(stack_id="A"))
    view = window.views[0]
    view.commit_measurement(MeasurementRecord("distance", view.plane_name, view.slice_index, [(1, 1), (5, 4)]))
    window.show_volume(make_volume(stack_id="B"))
    assert window.model.measurements == [] and view.graphics == []
    window.show_volume(make_volume(stack_id="A"))
    assert len(window.model.measurements) == 1 and len(view.graphics) == 1
    assert view.graphics[0].text == "5.0 mm"


def test_single_slice_refuses_mpr_and_layout_is_saved(window: ViewerWindow) -> None:
    from viewer.display.settings import load_settings

    vol = make_volume()
    one = Volume(vol.array[:1].copy(), vol.origin, vol.spacing, vol.direction, ["1"], info=vol.info)
    window.show_volume(one)
    window.set_layout("1x3")
    assert window.layout_name == "1x1" and window.views[1].model is None
    window.show_volume(make_volume(stack_id="C"))
    window.set_layout("1x3")
    assert load_settings().layout == "1x3"
    with pytest.raises(ValueError, match="known: 1x1, 1x3"):
        window.set_layout("2x2")


def test_pending_slices_are_blank_until_they_land(qtbot) -> None:
    from viewer.qt.series_model import SeriesModel

    vol = make_volume()
    truth = vol.array.copy()
    vol.array[:] = 7e7  # undefined memory until a slice decodes
    loaded = np.zeros(SHAPE[0], dtype=bool)
    loaded[12] = True
    vol.array[12] = truth[12]
    model = SeriesModel(vol, loaded)
    axial, coronal = SliceView("axial"), SliceView("coronal")
    for v in (axial, coronal):
        qtbot.addWidget(v)
        v.set_model(model)
    assert axial.slice_index == 12 and not axial.is_pending()
    np.testing.assert_array_equal(axial.image_item.image, truth[12])
    axial.set_slice(3)
    lo = model.center - model.width / 2
    assert axial.is_pending() and np.all(axial.image_item.image == lo)
    assert "Im 4/24  (loading)" in corner_text(vol.info, axial.view_state())["bottom_left"]
    model.set_slice_data(3, truth[3])
    np.testing.assert_array_equal(axial.image_item.image, truth[3])
    assert coronal._reformat_timer.isActive()  # reformats redraw throttled while loading
    qtbot.waitUntil(lambda: not coronal._reformat_timer.isActive(), timeout=2000)
    row_of = {k: int(coronal.plane.index_to_plane(np.array([0, 0, float(k)]), SHAPE)[1]) for k in (3, 5, 12)}
    img = coronal.image_item.image
    j = coronal.slice_index
    assert img[row_of[5], 0] == lo and img[row_of[12], 0] == truth[12, j, 0] and img[row_of[3], 0] == truth[3, j, 0]


def test_colour_volume_shows_in_colour_and_probes_rgb(window: ViewerWindow) -> None:
    rgb = np.zeros((3, 20, 30, 3), dtype=np.uint8)
    rgb[1, 5, 7] = (200, 10, 30)
    vol = Volume(rgb, (0, 0, 0), (1, 1, 1), np.eye(3), ["a", "b", "c"], info=SeriesInfo(modality="OT"))
    window.show_volume(vol)
    view = window.views[0]
    assert view.image_item.image.shape == (20, 30, 3) and view.image_item.lut is None
    assert "value RGB (200, 10, 30)" in view.probe_text(7.5, 5.5)
    window.invert_action.trigger()  # invert applies to grey images only
    assert view.image_item.lut is None


def test_cine_help_and_recent(window: ViewerWindow, qtbot, tmp_path) -> None:
    window.show_volume(make_volume())
    view = window.views[0]
    start = view.slice_index
    window.fps.setValue(60)
    window.toggle_cine()
    qtbot.waitUntil(lambda: view.slice_index != start, timeout=2000)
    window.toggle_cine()
    assert not window._cine.isActive()
    window.show_help()
    assert window._help is not None and window._help.isVisible() and not window._help.isModal()
    folder = tmp_path / "empty"
    folder.mkdir()
    window.open_paths([str(folder)])
    qtbot.waitUntil(window.is_idle, timeout=10_000)
    assert window.settings.recent[0] == str(folder.resolve())
    assert [a.text() for a in window.recent_menu.actions()][0] == str(folder.resolve())


def test_active_view_drives_the_slider_in_mpr(window: ViewerWindow, qtbot) -> None:
    window.show_volume(make_volume())
    window.set_layout("1x3")
    axial, coronal, sagittal = window.views
    assert axial.active and not coronal.active
    sagittal.step_slice(1)  # interacting makes a view active
    assert sagittal.active and not axial.active
    assert window.slider.maximum() == SHAPE[2] - 1 and window.slider.value() == sagittal.slice_index
    window.slider.setValue(10)
    assert sagittal.slice_index == 10 and window.model.crosshair_index()[0] == pytest.approx(10)


def test_dragging_a_handle_edits_the_measurement(window: ViewerWindow) -> None:
    window.show_volume(make_volume())
    view = window.views[0]
    g = view.commit_measurement(MeasurementRecord("distance", view.plane_name, view.slice_index, [(0, 0), (3, 4)]))
    assert g is not None and g.text == "5.0 mm"
    handle = g.roi.getHandles()[1]
    g.roi.movePoint(handle, QPointF(6, 8), finish=True, coords="parent")  # what a handle drag calls
    assert g.record.points[1] == pytest.approx((6, 8)) and g.text == "10.0 mm"
    g.roi.sigRemoveRequested.emit(g.roi)  # the ROI's own "Remove" menu entry
    assert window.model.measurements == [] and view.graphics == []


def test_tilted_acquisition_reformats_keep_true_distances(window: ViewerWindow) -> None:
    t = math.radians(20)  # gantry tilt: slices step along (0, sin t, cos t)
    tilted = np.array([[1.0, 0, 0], [0, 1.0, math.sin(t)], [0, 0, math.cos(t)]])
    vol = make_volume(tilted)
    model = window.show_volume(vol)
    window.set_layout("1x3")
    for v in window.views:
        a, b = np.array([10.0, 20.0, 3.0]), np.array([10.0, 70.0, 17.0])  # same i: both in the sagittal plane
        if v.plane_name == "coronal":
            a, b = np.array([10.0, 20.0, 3.0]), np.array([90.0, 20.0, 17.0])  # same j
        if v.plane_name == "axial":
            a, b = np.array([10.0, 20.0, 3.0]), np.array([90.0, 70.0, 3.0])  # same k
        pa, pb = v.index_to_scene(a), v.index_to_scene(b)
        true = float(np.linalg.norm(vol.index_to_lps(b) - vol.index_to_lps(a)))
        if v.plane_name != "coronal":  # the coronal reformat is an oblique plane: its rows step out of it
            assert math.dist(pa, pb) == pytest.approx(true), v.plane_name
        in_plane = [2 - v.plane.col_axis, 2 - v.plane.row_axis]  # (i, j, k) positions of the view's axes
        np.testing.assert_allclose(v.scene_to_index(*pb)[in_plane], b[in_plane], atol=1e-9)
    sagittal = window.views[2]
    assert sagittal.scene_matrix[0, 1] != 0  # drawn sheared, as acquired
    model.set_crosshair(vol.index_to_lps((10, 20, 3)))
    for v in window.views:
        np.testing.assert_allclose(v.scene_to_lps(v._cross_v.value(), v._cross_h.value()), model.crosshair, atol=1e-6)


def test_zoom_and_pan_live_in_the_views_camera_in_patient_space(window: ViewerWindow, qtbot) -> None:  # type: ignore[no-untyped-def]
    """The user's Ctrl+wheel zoom and pan drag are written into the view's camera (LPS centre, mm); a range set
    on the camera moves the view; the range put back on a grown volume of the series (slices before its first:
    the scene's origin moved) shows the same anatomy; F fits and the camera says so."""
    from viewer.state.camera import CameraRange

    window.resize(900, 700)
    window.set_single_plane("coronal")
    window.show_volume(make_volume())
    view = window.views[0]
    camera = view.camera
    assert camera is window.session.camera(0) and camera.fitted
    seen: list[object] = []
    camera.rangeChanged.connect(seen.append)
    centre = view.viewport().rect().center()
    wheel(view, centre, 240, Qt.KeyboardModifier.ControlModifier)  # zoom in
    assert not camera.fitted and seen and view.fitted is False
    rect = view.vb.viewRect()
    rng = camera.range
    assert rng is not None and rng.plane == "coronal"
    assert (rng.width_mm, rng.height_mm) == pytest.approx((rect.width(), rect.height()))
    np.testing.assert_allclose(rng.center_lps, view.scene_to_lps(rect.center().x(), rect.center().y()), atol=1e-6)
    assert rect.width() < 120 * 0.5  # zoomed in: less than the image's 60 mm width shows
    drag(view, centre, centre + QtCore.QPoint(40, 0))  # pan (the pan tool)
    moved = camera.range
    assert moved is not None and not moved.close_to(rng)
    assert (moved.width_mm, moved.height_mm) == pytest.approx((rng.width_mm, rng.height_mm))
    # a range set on the camera: the view follows
    target = (-25.0, -40.0, 120.0)  # LPS: column 10, row 0, slice 10 of the phantom
    camera.zoom_to(CameraRange("coronal", target, 20.0, 20.0))
    c = view.vb.viewRect().center()  # (the view's own slice says where along the normal it is)
    np.testing.assert_allclose((c.x(), c.y()), view.lps_to_scene(np.array(target))[:2], atol=1e-6)
    np.testing.assert_allclose(view.scene_to_lps(c.x(), c.y())[[0, 2]], (target[0], target[2]), atol=1e-6)
    kept = camera.range
    before = view.lps_to_scene(np.array(target))[:2]
    # the series grows by 4 slices above its last one: a new volume whose coronal scene (superior at the top)
    # starts 8 mm higher
    grown = make_volume()
    grown = Volume(np.concatenate([grown.array, grown.array[-4:]]), ORIGIN, SPACING,
                   np.eye(3), [f"1.3.{n}" for n in range(SHAPE[0] + 4)], info=grown.info)
    window.show_volume(grown)
    assert camera.fitted  # a new volume fits first
    assert kept is not None
    camera.zoom_to(kept)  # what the PACS stream's snapshot does
    c = view.vb.viewRect().center()
    after = view.lps_to_scene(np.array(target))[:2]
    assert abs(after[1] - before[1]) == pytest.approx(8.0)  # the same point sits 8 mm elsewhere in the scene
    np.testing.assert_allclose(view.scene_to_lps(c.x(), c.y())[[0, 2]], (target[0], target[2]), atol=1e-6)
    assert view.vb.viewRect().height() == pytest.approx(20.0, rel=0.02) or view.vb.viewRect().width() == \
        pytest.approx(20.0, rel=0.02)
    view.setFocus()
    qtbot.keyClick(view, Qt.Key.Key_F)
    assert camera.fitted and seen[-1] is None
    full = view.image_item.mapRectToParent(view.image_item.boundingRect())
    assert view.vb.viewRect().contains(full)


def test_a_view_closed_on_its_own_closes_cleanly(qtbot) -> None:  # type: ignore[no-untyped-def]
    """pyqtgraph's close() clears the scene, then resizes the view: the fit must not touch the gone ViewBox
    (it crashed the process)."""
    from viewer.qt.series_model import SeriesModel

    view = SliceView("axial")
    view.resize(300, 260)
    view.show()
    view.set_model(SeriesModel(make_volume()))
    qtbot.waitExposed(view)
    assert view.fitted
    view.close()
    QtWidgets.QApplication.processEvents()
    assert view.closed and not view.isVisible()


def test_help_lists_every_shortcut_with_room_for_it(window: ViewerWindow) -> None:
    from viewer.qt.main_window import SHORTCUTS
    from viewer.qt.panels import PANELS

    window.show_help()
    table = window._help.table
    keys = [table.item(r, 0).text() for r in range(table.rowCount())]
    assert [k for k, _ in SHORTCUTS] == keys[: len(SHORTCUTS)]
    assert {p.shortcut for p in PANELS if p.shortcut} <= set(keys)
    avail = window.screen().availableGeometry()
    assert window._help.width() <= avail.width() and window._help.height() <= avail.height()
    long_row = next(r for r, (_, a) in enumerate(SHORTCUTS) if a.startswith("review verdict"))
    assert table.rowHeight(long_row) > table.rowHeight(0)  # the long action wraps instead of being cut off
    QtWidgets.QApplication.processEvents()  # the dialog's and the table's resize passes
    line = table.fontMetrics().height()
    width = table.columnWidth(1) - 12  # the cell's margins
    for r in range(table.rowCount()):  # each row as tall as its wrapped action needs at the widths in force
        lines = -(-table.fontMetrics().horizontalAdvance(table.item(r, 1).text()) // width)
        assert lines * line <= table.rowHeight(r) <= (lines + 1) * line, (r, table.item(r, 1).text())
    window._help.close()


def test_a_gap_in_the_series_is_said_on_the_image(window: ViewerWindow) -> None:
    vol = make_volume()
    vol.missing = np.zeros(SHAPE[0], dtype=bool)
    vol.missing[5] = True
    window.show_volume(vol)
    view = window.views[0]
    view.set_slice(6)

    def orange_pixels() -> int:
        img = view.grab().toImage().convertToFormat(QtGui.QImage.Format.Format_RGB888)
        buf = np.frombuffer(img.constBits(), np.uint8, img.sizeInBytes()).reshape(img.height(), img.bytesPerLine())
        rgb = buf[:, : img.width() * 3].reshape(img.height(), img.width(), 3).astype(int)
        return int(((abs(rgb[..., 0] - 255) < 30) & (abs(rgb[..., 1] - 160) < 30) & (abs(rgb[..., 2] - 80) < 30)).sum())

    with_gap_line = orange_pixels()
    assert with_gap_line > 20  # the series' gap notice above the bottom-left corner, on any slice
    vol.missing[5] = False
    view.set_slice(6)
    view.viewport().update()
    assert orange_pixels() < with_gap_line // 4  # (the yellow letters' antialiased edges aside)
