"""Contour-mode overlays: true isolines at the threshold, in the image's scene mm on every view.

Truth: a sphere of radius R voxels (value 1 inside, 0 outside) on an anisotropic, flipped grid; every
plane through its centre cuts a disc of radius R pixels, so the 0.5 isoline must lie within half a
pixel of that disc's edge, the disc centred where the image shows the sphere.
"""

from __future__ import annotations

import numpy as np
import pytest

from viewer.display.isolines import isolines

pytestmark = [pytest.mark.qt_log_ignore("propagateSizeHints")]

R = 6
CENTRE_IJK = (25, 12, 8)
SHAPE = (18, 28, 44)  # k, j, i
SPACING = (0.6, 1.4, 2.0)  # x (i), y (j), z (k) mm
# mm per screen column and row of each view of this volume (i -> -x, j -> +y, k -> -z)
PIXEL_MM = {"acquisition": (0.6, 1.4), "axial": (0.6, 1.4), "coronal": (0.6, 2.0), "sagittal": (1.4, 2.0)}


def _unique(x: np.ndarray, y: np.ndarray, connect: np.ndarray) -> np.ndarray:
    """Vertices without the repeated first point of each closed line."""
    pts = np.column_stack([x, y])
    ends = np.flatnonzero(~connect)
    starts = np.concatenate(([0], ends[:-1] + 1))
    closed = np.all(pts[starts] == pts[ends], axis=1)
    keep = np.ones(len(pts), dtype=bool)
    keep[ends[closed]] = False
    return pts[keep]


def test_isoline_of_a_disc_runs_along_its_edge() -> None:
    rows, cols = np.mgrid[0:40, 0:50]
    disc = (((rows - 17) ** 2 + (cols - 31) ** 2) <= R**2).astype(np.float32)
    x, y, connect = isolines(disc, 0.5)
    assert connect.sum() == len(x) - 1  # one closed line
    pts = _unique(x, y, connect)
    rho = np.hypot(pts[:, 0] - 31, pts[:, 1] - 17)
    assert np.abs(rho - R).max() <= 0.5
    np.testing.assert_allclose(pts.mean(axis=0), [31, 17], atol=1e-9)
    # the cropped trace equals the whole-map trace (same lines, same order)
    from contourpy import LineType, contour_generator

    full = contour_generator(z=disc.astype(np.float64), line_type=LineType.ChunkCombinedOffset,
                             corner_mask=False).lines(0.5)[0][0]
    np.testing.assert_allclose(np.column_stack([x, y]), full)
    empty = isolines(np.zeros((8, 8)), 0.5)
    assert all(a.size == 0 for a in empty)
    two = np.zeros((20, 20))
    two[2:5, 2:5] = two[12:16, 10:18] = 1
    assert (~isolines(two, 0.5)[2]).sum() == 2  # two lines


def _sphere_volume():  # type: ignore[no-untyped-def]
    from viewer.dicom.volume import SeriesInfo, Volume

    kk, jj, ii = np.indices(SHAPE)
    ci, cj, ck = CENTRE_IJK
    inside = ((ii - ci) ** 2 + (jj - cj) ** 2 + (kk - ck) ** 2) <= R**2
    direction = np.array([[-1.0, 0, 0], [0, 1.0, 0], [0, 0, -1.0]])
    vol = Volume(np.where(inside, 1000.0, 0.0).astype(np.float32), origin=np.array([5.0, -3.0, 40.0]),
                 spacing=np.array(SPACING), direction=direction, sop_instance_uids=[str(k) for k in range(SHAPE[0])],
                 info=SeriesInfo(series_uid="1.2", stack_id="1.2", modality="CT"))
    return vol, inside.astype(np.float32)


@pytest.mark.gui
@pytest.mark.parametrize("plane", ["acquisition", "axial", "coronal", "sagittal"])
def test_isoline_lies_on_the_disc_edge_in_scene_mm(qtbot, plane: str) -> None:  # type: ignore[no-untyped-def]
    from viewer.display.colormaps import overlay_lut
    from viewer.qt.qt import QPointF
    from viewer.qt.series_model import Overlay, SeriesModel
    from viewer.qt.slice_view import ISOLINE_WIDTH_PX, SliceView

    vol, heat = _sphere_volume()
    series = SeriesModel(vol)
    view = SliceView(plane)
    qtbot.addWidget(view, before_close_func=lambda v: v.set_model(None))  # deleted on the GUI thread, not by gc
    view.resize(420, 380)
    view.show()
    view.set_model(series)
    lut = overlay_lut("jet")
    series.add_overlay(Overlay("AI nodule", heat, lut, 0.5, contour=0.5))
    series.set_crosshair(vol.index_to_lps(np.array(CENTRE_IJK, dtype=float)))
    sx, sy = PIXEL_MM[plane]
    assert view.spacing_xy == pytest.approx((sx, sy))

    # where the image shows the sphere's centre, in scene mm (through the image item's own transform)
    img = view.image_item.image
    rows, cols = np.nonzero(img > 500)
    centre = view.image_item.mapToParent(QPointF(cols.mean() + 0.5, rows.mean() + 0.5))
    line = view.isoline_items["AI nodule"]
    assert line.isVisible() and not view.overlay_items["AI nodule"].isVisible()  # a line, not the fill
    pts = line.points()
    assert len(pts) > 20
    mm = np.array([[p.x(), p.y()] for p in (line.mapToParent(QPointF(*xy)) for xy in pts)])
    dx, dy = (mm[:, 0] - centre.x()) / sx, (mm[:, 1] - centre.y()) / sy  # pixels along the screen axes
    assert np.abs(np.hypot(dx, dy) - R).max() <= 0.5 + 1e-9  # within half a pixel of the disc edge
    closed = np.all(pts[0] == pts[-1])
    assert closed and abs(dx[:-1].mean()) < 0.02 and abs(dy[:-1].mean()) < 0.02  # centred on the image's disc
    # drawn as a constant-width screen line in the colour map's colour at the level
    pen = line.pen()
    assert pen.isCosmetic() and pen.widthF() == ISOLINE_WIDTH_PX
    assert (pen.color().red(), pen.color().green(), pen.color().blue()) == tuple(int(v) for v in lut[128, :3])
    # back to the filled map: the line goes, the fill comes back
    series.overlays[0].contour = None
    series.overlaysChanged.emit()
    assert not line.isVisible() and view.overlay_items["AI nodule"].isVisible()


@pytest.mark.gui
def test_contour_follows_slice_changes_and_the_panel(qtbot) -> None:  # type: ignore[no-untyped-def]
    """Off the sphere no line; the panel's contour switch and threshold move the isoline."""
    from viewer.qt.ai_panel import OverlaySettings
    from viewer.qt.series_model import Overlay, SeriesModel
    from viewer.qt.slice_view import SliceView

    vol, heat = _sphere_volume()
    series = SeriesModel(vol)
    view = SliceView("acquisition")
    qtbot.addWidget(view, before_close_func=lambda v: v.set_model(None))
    view.set_model(series)
    s = OverlaySettings(threshold=0.5, contour=True)
    blurred = heat * np.linspace(0.2, 1.0, SHAPE[2], dtype=np.float32)  # rises along i: the 0.5 line moves
    series.add_overlay(Overlay("AI x", blurred, s.lut(), s.opacity, contour=s.contour_level))
    series.set_crosshair(vol.index_to_lps(np.array(CENTRE_IJK, dtype=float)))
    line = view.isoline_items["AI x"]
    n_on = line.n_points
    assert n_on > 0
    view.set_slice(0)  # no sphere on this slice
    assert line.n_points == 0 and line.path().isEmpty()
    view.set_slice(CENTRE_IJK[2])
    assert line.n_points == n_on
    series.overlays[0].contour = 0.7  # a higher level: only the part of the disc where i >= 27 (0.2 + 0.8 i / 43)
    series.overlaysChanged.emit()
    xs = line.points()[:, 0] - 0.5  # columns (= i on the acquisition view)
    assert line.n_points > 0 and 26 < xs.min() < 27 and xs.max() <= CENTRE_IJK[0] + R + 0.5
