"""``SliceView``: one 2D view of a :class:`SeriesModel` along a :class:`Plane` (acquisition, axial,
coronal or sagittal), with windowing, overlays, crosshair, measurements and painted annotations.

Scene (view-box) coordinates are mm in the plane (see :mod:`viewer.display.planes`), so aspect ratio,
distances and ROI areas come out right for any pixel spacing.

Mouse: wheel = slices (Ctrl+wheel = zoom), right-drag = window/level (Ctrl+right-drag = zoom),
middle-drag = pan, left = the active tool (pan, window, crosshair, distance, angle, ellipse, rect).
"""

from __future__ import annotations

import numpy as np

from viewer.display.annotations import ViewState, corner_text
from viewer.display.isolines import isolines
from viewer.display.measure import MeasurementRecord, modality_unit
from viewer.display.missing import bands, series_notice, slice_label
from viewer.display.orientation import orientation_known, spacing_known
from viewer.display.planes import Plane, clamp_slice, is_orthogonal, slice_position_mm
from viewer.display.scalebar import format_mm, scale_bar_length
from viewer.display.windowing import drag_window
from viewer.qt.marks import MarkScale, cosmetic_pen, mark_scale
from viewer.qt.measure_items import MeasurementGraphic
from viewer.qt.qt import QColor, QFont, QPainter, QPen, QPointF, QRectF, Qt, QtCore, QtGui, QtWidgets, Signal, pg
from viewer.qt.bind import Bindings
from viewer.qt.series_model import SeriesModel
from viewer.state.camera import CameraRange, CameraState

TOOLS = ("pan", "window", "crosshair", "distance", "angle", "ellipse", "rect")
_INVERT_LUT = np.arange(255, -1, -1, dtype=np.uint8)


def grey_lut(table: np.ndarray | None, invert: bool) -> np.ndarray | None:
    """pyqtgraph lookup table for a window's grey table ([0, 1] floats; None = linear), MONOCHROME1 inverted."""
    if table is None:
        return _INVERT_LUT if invert else None
    grey = np.rint(np.asarray(table, dtype=np.float64) * 255.0).astype(np.uint8)
    return 255 - grey if invert else grey
_CROSS_COLOUR = QColor(80, 220, 255, 200)
CROSS_PX = 1.0
"""Design pixels (96 DPI, see viewer.qt.marks) of the crosshair's dashed lines."""
ISOLINE_WIDTH_PX = 2.0
"""Design pixels of a contour-mode isoline at any zoom (plus a 1 px dark rim each side for contrast)."""


class IsolineItem(QtWidgets.QGraphicsPathItem):
    """A contour-mode overlay on the current slice: its isolines in image pixel coordinates (the image's
    own transform takes them to scene mm), drawn with a cosmetic pen so the width stays constant on screen."""

    def __init__(self, scale: MarkScale | None = None) -> None:
        super().__init__()
        self.setAcceptedMouseButtons(Qt.MouseButton.NoButton)  # clicks and drags go to the view's tools
        self.n_points = 0
        self.set_scale(scale or MarkScale())

    def set_scale(self, scale: MarkScale) -> None:
        """Line widths for the screen (cosmetic: the same on screen at any zoom)."""
        self._rim = cosmetic_pen(QColor(0, 0, 0, 170), ISOLINE_WIDTH_PX + 2.0, scale)
        colour = self.pen().color() if getattr(self, "_scaled", False) else QColor(255, 255, 255)
        self.setPen(cosmetic_pen(colour, ISOLINE_WIDTH_PX, scale))
        self._scaled = True

    def set_lines(self, image: np.ndarray, level: float, colour: QColor) -> None:
        """Trace ``image`` (rows, cols) at ``level``; pixel (c, r) covers [c, c + 1] x [r, r + 1] as in ImageItem."""
        x, y, connect = isolines(image, level)
        self.n_points = len(x)
        self.setPath(pg.arrayToQPath(x + 0.5, y + 0.5, connect=connect.astype(np.int32)) if len(x)
                     else QtGui.QPainterPath())
        pen = self.pen()
        pen.setColor(colour)
        self.setPen(pen)

    def points(self) -> np.ndarray:
        """(n, 2) vertices of the path in item (image pixel) coordinates (for tests)."""
        path = self.path()
        return np.array([[path.elementAt(i).x, path.elementAt(i).y] for i in range(path.elementCount())])

    def paint(self, painter: QPainter, option, widget=None) -> None:  # noqa: ANN001 (Qt signature)
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        painter.setPen(self._rim)
        painter.drawPath(self.path())
        painter.setPen(self.pen())
        painter.drawPath(self.path())
        painter.restore()


def _lut_colour(lut: np.ndarray, level: float) -> QColor:
    """The opaque colour an (n, 4) LUT over [0, 1] gives ``level``."""
    r, g, b = (int(v) for v in lut[int(round(float(np.clip(level, 0.0, 1.0)) * (len(lut) - 1))), :3])
    return QColor(r, g, b)


class SliceViewBox(pg.ViewBox):
    """A view box that routes wheel and drags to radiology conventions."""

    def __init__(self, view: SliceView) -> None:
        super().__init__(lockAspect=True, invertY=True, enableMenu=False, defaultPadding=0.0)
        self._view = view
        self._wheel = 0

    def wheelEvent(self, ev, axis=None):  # noqa: N802 (Qt name)
        if ev.modifiers() & Qt.KeyboardModifier.ControlModifier:
            super().wheelEvent(ev, axis)  # a zoom: sigRangeChangedManually writes it into the view's camera
        else:  # one slice per wheel notch (120 units); fine-grained wheels and trackpads accumulate
            self._wheel += ev.delta()
            steps = int(self._wheel / 120)
            if steps:
                self._wheel -= steps * 120
                self._view.step_slice(-steps)
        ev.accept()

    def mouseDragEvent(self, ev, axis=None):  # noqa: N802
        ctrl = bool(ev.modifiers() & Qt.KeyboardModifier.ControlModifier)
        right = ev.button() == Qt.MouseButton.RightButton and not ctrl
        if right or (ev.button() == Qt.MouseButton.LeftButton and self._view.tool == "window"):
            ev.accept()
            self._view.window_drag(ev.pos() - ev.lastPos(), ev.isStart())
            return
        if ev.button() == Qt.MouseButton.LeftButton and self._view.tool != "pan":
            ev.accept()
            p = self.mapToView(ev.pos())
            o = self.mapToView(ev.buttonDownPos())
            self._view.tool_drag((p.x(), p.y()), ev.isStart(), ev.isFinish(), origin=(o.x(), o.y()))
            return
        super().mouseDragEvent(ev, axis)  # a pan or zoom: sigRangeChangedManually writes it into the camera

    def mouseClickEvent(self, ev):  # noqa: N802
        if ev.button() == Qt.MouseButton.LeftButton:
            p = self.mapToView(ev.pos())
            self._view.tool_click((p.x(), p.y()))
            ev.accept()


_OUTLINE = ((-1, -1), (0, -1), (1, -1), (-1, 0), (1, 0), (-1, 1), (0, 1), (1, 1))
"""Offsets of the dark copies drawn under annotation text (an outline, not only a drop shadow)."""


class SliceView(pg.GraphicsView):
    """A 2D view of one plane of a series model."""

    probed = Signal(str)
    """Status-bar text for the pixel under the mouse (voxel index, LPS mm, value)."""
    activated = Signal(object)
    """Emitted with the view when the user interacts with it (the main window tracks the active view)."""

    def __init__(self, plane_name: str = "acquisition", parent: QtWidgets.QWidget | None = None,
                 camera: CameraState | None = None) -> None:
        super().__init__(parent, background="k")
        self.setViewportUpdateMode(QtWidgets.QGraphicsView.ViewportUpdateMode.FullViewportUpdate)
        self.setMinimumSize(120, 120)
        self.plane_name = plane_name
        self.model: SeriesModel | None = None
        self._bindings = Bindings()
        self.plane = Plane("acquisition", 0, 1, 2)
        self.slice_index = 0
        self.tool = "pan"
        self.camera = camera if camera is not None else CameraState()
        """What this view shows (fitted, or the user's range): the view writes zooms and pans into it and
        follows its events (viewer.state.camera)."""
        self._camera_bindings = Bindings()
        self.show_annotations = True
        self.hide_identifying = False
        self.show_crosshair = False
        self.compact = False
        """Narrow (MPR) view: one line of text on top."""
        self.show_patient = True
        self.empty_text = "Drop DICOM files or folders here, or press Ctrl+O"
        self.active = False
        """The view the slider and keys drive (framed when several views are shown)."""
        self.vb = SliceViewBox(self)
        self.setCentralItem(self.vb)
        self.image_item = pg.ImageItem(axisOrder="row-major")
        self.vb.addItem(self.image_item)
        self.overlay_items: dict[str, pg.ImageItem] = {}
        self.isoline_items: dict[str, IsolineItem] = {}
        """Contour-mode overlays: their isolines on the current slice (the filled image item is hidden)."""
        self.marks = MarkScale()
        """How big crosshair, measurement lines/handles, isolines and annotation outlines are drawn on this
        screen (viewer.qt.marks; brought up to date before each paint)."""
        cross = cosmetic_pen(_CROSS_COLOUR, CROSS_PX, self.marks, Qt.PenStyle.DashLine)
        self._cross_v = pg.InfiniteLine(angle=90, movable=False, pen=cross)
        self._cross_h = pg.InfiniteLine(angle=0, movable=False, pen=cross)
        for line in (self._cross_v, self._cross_h):
            line.setZValue(20)
            line.setVisible(False)
            self.vb.addItem(line, ignoreBounds=True)
        self.graphics: list[MeasurementGraphic] = []
        self.selected: MeasurementGraphic | None = None
        self._drawing: MeasurementGraphic | None = None
        self._angle_arm: tuple[tuple[float, float], tuple[float, float]] | None = None
        self._drag_start: tuple[float, float] | None = None
        """Where the current measurement drag began (None: no drag with a drawing tool under way)."""
        self._mouse_scene: QPointF | None = None
        """The mouse's last scene position over the image (the probe follows slice changes under it)."""
        self._shape: tuple[int, int] = (0, 0)
        self.spacing_xy: tuple[float, float] = (1.0, 1.0)
        """mm per screen column and per (perpendicular part of a) screen row."""
        self.scene_matrix = np.eye(2)
        """2x2 (col, row) pixel step -> scene mm (sheared for tilted acquisitions), see Plane.scene_matrix."""
        self._reformat_timer = QtCore.QTimer(self)
        self._reformat_timer.setSingleShot(True)
        self._reformat_timer.setInterval(100)
        self._reformat_timer.timeout.connect(self._refresh_reformat)
        self.scene().sigMouseMoved.connect(self._on_mouse_moved)
        self.vb.sigRangeChangedManually.connect(self._on_manual_range)
        self._camera_bindings.connect(self.camera.rangeChanged, self._follow_camera)
        self._font = QFont(self.font())
        self._font.setPointSizeF(9.0)
        self._letter_font = QFont(self.font())
        self._letter_font.setPointSizeF(12.0)
        self._letter_font.setBold(True)

    # -- screen scale ------------------------------------------------------------------------
    def update_marks(self) -> None:
        """Size crosshair, measurement lines and handles and isolines for the screen the view is on now."""
        scale = mark_scale(self)
        if scale == self.marks:
            return
        self.marks = scale
        cross = cosmetic_pen(_CROSS_COLOUR, CROSS_PX, scale, Qt.PenStyle.DashLine)
        for line in (self._cross_v, self._cross_h):
            line.setPen(cross)
        for item in self.isoline_items.values():
            item.set_scale(scale)
        for graphic in [*self.graphics, *([self._drawing] if self._drawing is not None else [])]:
            graphic.apply_scale(scale)

    def showEvent(self, ev: QtGui.QShowEvent) -> None:  # noqa: N802 (Qt name)
        super().showEvent(ev)
        self.update_marks()

    # -- model -------------------------------------------------------------------------------
    def set_model(self, model: SeriesModel | None) -> None:
        """Show ``model`` (or nothing); connects to its signals with bound methods."""
        self._bindings.clear()
        self.model = model
        self.selected = None
        if model is None:
            self.image_item.clear()
            for item in [*self.overlay_items.values(), *self.isoline_items.values()]:
                self.vb.removeItem(item)
            self.overlay_items.clear()
            self.isoline_items.clear()
            self._clear_graphics()
            self.viewport().update()
            return
        for sig, slot in self._connections():
            self._bindings.connect(sig, slot)
        self._setup_plane()

    def _connections(self):
        m = self.model
        assert m is not None
        return ((m.sliceLoaded, self._on_slice_loaded), (m.loadFinished, self._on_load_finished),
                (m.windowChanged, self._on_window_changed), (m.crosshairChanged, self._on_crosshair_changed),
                (m.overlaysChanged, self._on_overlays_changed), (m.measurementsChanged, self._rebuild_graphics))

    def set_plane(self, name: str) -> None:
        self.plane_name = name
        if self.model is not None:
            self._setup_plane()

    def _setup_plane(self) -> None:
        m = self.model
        assert m is not None
        vol = m.volume
        self.plane = Plane.for_view(self.plane_name, vol.direction)
        self._shape = self.plane.image_shape(vol.shape)
        self.scene_matrix = self.plane.scene_matrix(vol.direction, vol.spacing)
        self.spacing_xy = (float(self.scene_matrix[0, 0]), float(self.scene_matrix[1, 1]))
        self.slice_index = self.slice_for_crosshair()
        self._update_image()
        self.image_item.setTransform(self._pixel_transform())
        self._on_overlays_changed()
        self._on_window_changed()
        self._update_crosshair_lines()
        self._rebuild_graphics()
        self.fit()

    # -- geometry helpers --------------------------------------------------------------------
    def _pixel_transform(self) -> QtGui.QTransform:
        """Image pixel (col, row) -> scene mm, the same for the image and every overlay."""
        a = self.scene_matrix
        return QtGui.QTransform(a[0, 0], a[1, 0], a[0, 1], a[1, 1], 0.0, 0.0)

    @property
    def n_slices(self) -> int:
        return self.plane.n_slices(self.model.volume.shape) if self.model else 0

    def slice_for_crosshair(self) -> int:
        """The slice of this view that holds the shared crosshair point."""
        m = self.model
        assert m is not None
        _, _, s = self.plane.index_to_plane(m.crosshair_index(), m.volume.shape)
        return clamp_slice(s, self.n_slices)

    def scene_to_index(self, x: float, y: float) -> np.ndarray:
        """Continuous voxel index (i, j, k) of a scene point on the current slice."""
        assert self.model is not None
        col, row = Plane.scene_to_plane(x, y, self.scene_matrix)
        return self.plane.plane_to_index(col, row, self.slice_index, self.model.volume.shape)

    def scene_to_lps(self, x: float, y: float) -> np.ndarray:
        assert self.model is not None
        return self.model.volume.index_to_lps(self.scene_to_index(x, y))

    def lps_to_scene(self, lps: np.ndarray) -> tuple[float, float, float]:
        """(x mm, y mm, slice) of an LPS point in this view."""
        assert self.model is not None
        col, row, s = self.plane.index_to_plane(self.model.volume.lps_to_index(lps), self.model.volume.shape)
        x, y = Plane.plane_to_scene(col, row, self.scene_matrix)
        return x, y, s

    def index_to_scene(self, ijk: np.ndarray) -> tuple[float, float]:
        """Scene point (mm) of a continuous voxel index (i, j, k) in this view's plane."""
        assert self.model is not None
        col, row, _ = self.plane.index_to_plane(np.asarray(ijk, dtype=np.float64), self.model.volume.shape)
        return Plane.plane_to_scene(col, row, self.scene_matrix)

    def current_image(self) -> np.ndarray:
        """The current slice as shown (rows, cols), modality units."""
        assert self.model is not None
        return self.plane.image(self.model.volume.array, self.slice_index)

    @property
    def spacing_unknown(self) -> bool:
        """The engine assumed 1 mm pixels (no spacing in the header): no scale bar, a warning instead."""
        return self.model is not None and not spacing_known(self.model.volume.info, self.model.volume.warnings)

    def orientation_letters(self) -> dict[str, str]:
        """Letters drawn at the left/right/top/bottom edges; none when the series has no patient orientation."""
        if self.model is None or not orientation_known(self.model.volume.info):
            return {}
        return self.plane.letters(self.model.volume.direction)

    @property
    def zoom(self) -> float:
        """Screen pixels per image pixel along x (1.0 = 1:1)."""
        px = self.vb.viewPixelSize()[0]
        return self.spacing_xy[0] / px if px > 0 else 1.0

    # -- slices ------------------------------------------------------------------------------
    def set_slice(self, s: int) -> None:
        """Show slice ``s`` (clamped); moves the shared crosshair along this view's normal."""
        if self.model is None:
            return
        s = clamp_slice(s, self.n_slices)
        col, row, _ = self.plane.index_to_plane(self.model.crosshair_index(), self.model.volume.shape)
        ijk = self.plane.plane_to_index(col, row, s, self.model.volume.shape)
        self.model.set_crosshair(self.model.volume.index_to_lps(ijk))
        if self.slice_index != s:  # a crosshair clamp can leave the slice unchanged
            self._show_slice(s)

    def step_slice(self, delta: int) -> None:
        self.activated.emit(self)
        self.set_slice(self.slice_index + delta)

    def _show_slice(self, s: int) -> None:
        self.slice_index = s
        self._update_image()
        self._update_overlay_images()
        self._rebuild_graphics()
        self._reprobe()
        self.viewport().update()

    def _update_image(self) -> None:
        m = self.model
        assert m is not None
        img = self.plane.image(m.volume.array, self.slice_index)
        if img.dtype.kind in "iu" and not m.is_color:  # stored integers: only the drawn plane becomes float32
            img = img.astype(np.float32)
        (lo, hi), _ = m.display_mapping()
        if not m.fully_loaded:
            img = self._mask_pending(img, lo)
        self.image_item.setImage(img, autoLevels=False, levels=(lo, hi))

    def _mask_pending(self, img: np.ndarray, fill: float) -> np.ndarray:
        """The image with pixels of slices that have not decoded yet blanked (their memory is undefined)."""
        m = self.model
        assert m is not None
        shape = m.volume.shape
        if self.plane.slice_axis == 0:
            return img if m.loaded[self.slice_index] else np.full_like(img, 0 if m.is_color else fill)
        loaded = np.broadcast_to(m.loaded[:, None, None], shape)
        mask = self.plane.image(loaded, self.slice_index)
        if m.is_color:
            mask = mask[..., None]
        return np.where(mask, img, np.zeros((), img.dtype) if m.is_color else np.asarray(fill, img.dtype))

    def is_pending(self) -> bool:
        """Is any pixel of the current image on a slice that has not decoded yet?"""
        m = self.model
        if m is None or m.fully_loaded:
            return False
        if self.plane.slice_axis == 0:
            return not bool(m.loaded[self.slice_index])
        return True

    # -- model signals -----------------------------------------------------------------------
    def _on_slice_loaded(self, k: int) -> None:
        if self.plane.slice_axis == 0:
            if k == self.slice_index:
                self._update_image()
                self.viewport().update()
        elif not self._reformat_timer.isActive():  # reformats: redraw at most every 100 ms while loading
            self._reformat_timer.start()

    def _refresh_reformat(self) -> None:
        if self.model is not None:
            self._update_image()
            self.viewport().update()

    def _on_load_finished(self) -> None:
        self._update_image()
        self._update_overlay_images()
        self.viewport().update()

    def _on_window_changed(self) -> None:
        m = self.model
        assert m is not None
        (lo, hi), table = m.display_mapping()
        self.image_item.setLevels((lo, hi))
        self.image_item.setLookupTable(None if m.is_color else grey_lut(table, m.invert))
        self.viewport().update()

    def _on_crosshair_changed(self) -> None:
        s = self.slice_for_crosshair()
        if s != self.slice_index:
            self._show_slice(s)
        self._update_crosshair_lines()
        self.viewport().update()

    def _update_crosshair_lines(self) -> None:
        if self.model is None:
            return
        x, y, _ = self.lps_to_scene(self.model.crosshair)
        self._cross_v.setPos(x)
        self._cross_h.setPos(y)
        for line in (self._cross_v, self._cross_h):
            line.setVisible(self.show_crosshair)

    def set_crosshair_visible(self, visible: bool) -> None:
        self.show_crosshair = visible
        self._update_crosshair_lines()

    # -- overlays ----------------------------------------------------------------------------
    def _on_overlays_changed(self) -> None:
        m = self.model
        assert m is not None
        names = {o.name for o in m.overlays}
        for items in (self.overlay_items, self.isoline_items):
            for name in [n for n in items if n not in names]:
                self.vb.removeItem(items.pop(name))
        for z, ov in enumerate(m.overlays):
            item = self.overlay_items.get(ov.name)
            if item is None:
                item = pg.ImageItem(axisOrder="row-major")
                item.setZValue(10 + z)
                self.vb.addItem(item)
                self.overlay_items[ov.name] = item
            item.setLookupTable(ov.lut)
            item.setOpacity(ov.opacity)
            item.setVisible(ov.visible and ov.contour is None)
            line = self.isoline_items.get(ov.name)
            if line is None and ov.contour is not None:
                line = IsolineItem(self.marks)
                line.setZValue(10 + z)
                self.vb.addItem(line, ignoreBounds=True)
                self.isoline_items[ov.name] = line
            if line is not None:
                line.setVisible(ov.visible and ov.contour is not None)
        self._update_overlay_images()
        for item in [*self.overlay_items.values(), *self.isoline_items.values()]:
            item.setTransform(self._pixel_transform())
        self.viewport().update()

    def _update_overlay_images(self) -> None:
        m = self.model
        assert m is not None
        for ov in m.overlays:
            if not ov.visible:
                continue
            if ov.contour is None:
                item = self.overlay_items.get(ov.name)
                if item is not None:
                    item.setImage(self.plane.image(ov.array, self.slice_index), autoLevels=False, levels=(0.0, 1.0))
            elif ov.name in self.isoline_items:
                self.isoline_items[ov.name].set_lines(self.plane.image(ov.array, self.slice_index), ov.contour,
                                                      _lut_colour(ov.lut, ov.contour))

    # -- window ------------------------------------------------------------------------------
    def window_drag(self, delta: QPointF, start: bool) -> None:
        """Right-drag: horizontal = width, vertical = level; speed scales with the current width."""
        m = self.model
        if m is None:
            return
        if start:
            self.activated.emit(self)
        sens = max(m.width, 1.0) / 256.0
        c, w = drag_window(m.center, m.width, delta.x(), delta.y(), sens)
        m.set_window(c, w)

    # -- view range --------------------------------------------------------------------------
    @property
    def fitted(self) -> bool:
        """The view fits its whole image (its camera holds no user range)."""
        return self.camera.fitted

    def fit(self) -> None:
        """Fit the whole image in the view."""
        if self.camera.fitted:
            self._fit_image()
        else:
            self.camera.fit()  # the view follows (_follow_camera)

    def _fit_image(self) -> None:
        r = self.image_item.mapRectToParent(self.image_item.boundingRect())
        if r.width() > 0 and r.height() > 0:
            self.vb.setRange(rect=r, padding=0.02)
        self.viewport().update()

    def one_to_one(self) -> None:
        """One screen pixel per image pixel, keeping the centre."""
        centre = self.vb.viewRect().center()
        w = self.vb.width() * self.spacing_xy[0]
        h = self.vb.height() * self.spacing_xy[0]
        self._zoom_camera(QRectF(centre.x() - w / 2, centre.y() - h / 2, w, h))

    def camera_range(self, rect: QRectF) -> CameraRange | None:
        """The camera range of a scene rectangle of this view (None without a series)."""
        if self.model is None or not (rect.width() > 0 and rect.height() > 0):
            return None
        c = rect.center()
        lps = self.scene_to_lps(c.x(), c.y())
        return CameraRange(self.plane_name, (float(lps[0]), float(lps[1]), float(lps[2])), float(rect.width()),
                           float(rect.height()))

    def _zoom_camera(self, rect: QRectF) -> None:
        rng = self.camera_range(rect)
        if rng is not None:
            self.camera.zoom_to(rng)
            self._follow_camera(rng)  # (no event when the camera already held it: show it anyway)

    def _on_manual_range(self, *args) -> None:
        """The user zoomed or panned (pyqtgraph moved the range): the camera records it."""
        rng = self.camera_range(self.vb.viewRect())
        if rng is not None:
            self.camera.zoom_to(rng)

    def _follow_camera(self, rng: CameraRange | None) -> None:
        """Show what the camera holds: its range (a zoom or pan, a kept view put back), or the whole image."""
        if self.model is None:
            return
        if rng is None:
            self._fit_image()
            return
        if rng.plane != self.plane_name:
            return
        shown = self.camera_range(self.vb.viewRect())
        if rng.close_to(shown):  # the view's own zoom or pan, recorded
            return
        x, y, _ = self.lps_to_scene(np.asarray(rng.center_lps, dtype=np.float64))
        self.vb.setRange(rect=QRectF(x - rng.width_mm / 2, y - rng.height_mm / 2, rng.width_mm, rng.height_mm),
                         padding=0)
        self.viewport().update()

    def resizeEvent(self, ev) -> None:  # noqa: N802
        super().resizeEvent(ev)
        if getattr(self, "closed", False):  # pyqtgraph's close() cleared the scene (the ViewBox is gone)
            return
        if getattr(self, "fitted", False) and getattr(self, "model", None) is not None:
            self.fit()

    # -- tools -------------------------------------------------------------------------------
    def set_tool(self, tool: str) -> None:
        if tool not in TOOLS:
            raise ValueError(f"unknown tool {tool!r}; known: {', '.join(TOOLS)}")
        self.tool = tool
        self._angle_arm = None
        self._drag_start = None
        self._discard_drawing()

    def tool_click(self, p: tuple[float, float]) -> None:
        self.activated.emit(self)
        if self.model is None:
            return
        if self.tool == "crosshair":
            self.move_crosshair(p)
        elif self.tool == "angle" and self._angle_arm is not None:
            a, vertex = self._angle_arm
            self._angle_arm = None
            self._discard_drawing()
            self.commit_measurement(MeasurementRecord("angle", self.plane_name, self.slice_index, [a, vertex, p]))

    def move_crosshair(self, p: tuple[float, float]) -> None:
        """Put the shared crosshair on the centre of the voxel under scene point ``p``."""
        assert self.model is not None
        ijk = np.floor(self.scene_to_index(*p) + 0.5)
        self.model.set_crosshair(self.model.volume.index_to_lps(ijk))

    def tool_drag(self, p: tuple[float, float], start: bool, finish: bool,
                  origin: tuple[float, float] | None = None) -> None:
        """Left-drag with the active tool: the crosshair follows, or a measurement is drawn from ``origin``
        (where the button went down; ``p`` at the start) to ``p``."""
        if self.model is None:
            return
        if self.tool == "crosshair":
            self.move_crosshair(p)
            return
        if start or self._drag_start is None:  # a drag begun with another tool (pan, crosshair) starts here
            if start:
                self.activated.emit(self)
            self._drag_start = origin if origin is not None else p
        begin = self._drag_start
        record = self._record_between(self.tool, begin, p)
        self._discard_drawing()
        if finish:
            self._drag_start = None
            if self.tool == "angle":
                self._angle_arm = (begin, p)
                self._drawing = MeasurementGraphic(self, MeasurementRecord("distance", self.plane_name,
                                                                           self.slice_index, [begin, p]))
            else:
                self.commit_measurement(record)
        else:
            self._drawing = MeasurementGraphic(self, record if self.tool != "angle" else
                                               MeasurementRecord("distance", self.plane_name, self.slice_index,
                                                                 [begin, p]))

    def _record_between(self, kind: str, a: tuple[float, float], b: tuple[float, float]) -> MeasurementRecord:
        if kind in ("distance", "angle"):
            return MeasurementRecord("distance", self.plane_name, self.slice_index, [a, b])
        x0, y0 = min(a[0], b[0]), min(a[1], b[1])
        return MeasurementRecord(kind, self.plane_name, self.slice_index, [],
                                 pos=(x0, y0), size=(abs(b[0] - a[0]), abs(b[1] - a[1])))

    def _discard_drawing(self) -> None:
        if self._drawing is not None:
            self._drawing.remove()
            self._drawing = None

    def commit_measurement(self, record: MeasurementRecord) -> MeasurementGraphic | None:
        """Keep a measurement with the series and show it; returns its graphic."""
        assert self.model is not None
        self.model.add_measurement(record)
        return next((g for g in self.graphics if g.record is record), None)

    def _clear_graphics(self) -> None:
        for g in self.graphics:
            g.remove()
        self.graphics = []

    def _rebuild_graphics(self) -> None:
        self._clear_graphics()
        if self.model is None:
            return
        for rec in self.model.measurements:
            if rec.plane == self.plane_name and rec.slice_index == self.slice_index:
                self.graphics.append(MeasurementGraphic(self, rec))
        if self.selected is not None and self.selected.record not in self.model.measurements:
            self.selected = None

    def delete_selected(self) -> bool:
        """Delete the selected (else the last drawn) measurement on this slice."""
        target = self.selected or (self.graphics[-1] if self.graphics else None)
        if target is None or self.model is None:
            return False
        self.selected = None
        self.model.remove_measurement(target.record)
        return True

    # -- keys ------------------------------------------------------------------------------
    def handle_key(self, key: int) -> bool:
        """Slice navigation keys (arrows, Page Up/Down = 10 %, Home/End); True when handled."""
        if self.model is None:
            return False
        page = max(1, self.n_slices // 10)
        steps = {Qt.Key.Key_Down: 1, Qt.Key.Key_Right: 1, Qt.Key.Key_Up: -1, Qt.Key.Key_Left: -1,
                 Qt.Key.Key_PageDown: page, Qt.Key.Key_PageUp: -page}
        if key in steps:
            self.step_slice(steps[key])
        elif key == Qt.Key.Key_Home:
            self.activated.emit(self)
            self.set_slice(0)
        elif key == Qt.Key.Key_End:
            self.activated.emit(self)
            self.set_slice(self.n_slices - 1)
        else:
            return False
        return True

    def keyPressEvent(self, ev) -> None:  # noqa: N802
        if not self.handle_key(ev.key()):
            super().keyPressEvent(ev)

    # -- probe -------------------------------------------------------------------------------
    def _on_mouse_moved(self, scene_pos: QPointF) -> None:
        if self.model is None or not self.vb.sceneBoundingRect().contains(scene_pos):
            self._mouse_scene = None
            return
        self._mouse_scene = QPointF(scene_pos)
        p = self.vb.mapSceneToView(scene_pos)
        self.probed.emit(self.probe_text(p.x(), p.y()))

    def _reprobe(self) -> None:
        """The slice under a resting mouse changed (wheel, keys, cine): the probe says what is there now."""
        if self.model is not None and self._mouse_scene is not None:
            p = self.vb.mapSceneToView(self._mouse_scene)
            self.probed.emit(self.probe_text(p.x(), p.y()))

    def leaveEvent(self, ev: QtCore.QEvent) -> None:  # noqa: N802
        self._mouse_scene = None
        super().leaveEvent(ev)

    def probe_text(self, x: float, y: float) -> str:
        """``i j k | x y z mm | value`` for a scene point (empty outside the image)."""
        m = self.model
        assert m is not None
        ijk = self.scene_to_index(x, y)
        value = m.value_at(ijk)
        if value is None:
            return ""
        idx = np.floor(ijk + 0.5).astype(int)
        lps = m.volume.index_to_lps(idx)
        unit = "" if m.is_color else modality_unit(m.volume.info.modality, m.volume.info.dose_units)
        unit = f" {unit}" if unit else ""
        v = f"RGB {value}" if isinstance(value, tuple) else f"{value:.6g}{unit}"
        return (f"voxel (i {idx[0]}, j {idx[1]}, k {idx[2]})   "
                f"LPS ({lps[0]:.1f}, {lps[1]:.1f}, {lps[2]:.1f}) mm   value {v}")

    # -- annotations -------------------------------------------------------------------------
    def view_state(self) -> ViewState:
        m = self.model
        assert m is not None
        pos = None
        if self.n_slices > 1:
            v = m.volume
            pos = slice_position_mm(self.plane, v.origin, v.spacing, v.direction, self.slice_index)
        return ViewState(self.plane_name, self.slice_index, self.n_slices, pos, m.center, m.width, self.zoom,
                         pending=self.is_pending())

    def _draw_banner(self, painter: QPainter, text: str) -> None:
        """A red strip across the top of the view with ``text`` (elided to the view's width)."""
        painter.setFont(self._font)
        fm = painter.fontMetrics()
        vp = self.viewport().rect()
        pad = self.marks.ipx(6)
        strip = QtCore.QRect(vp.left(), vp.top(), vp.width(), fm.height() + pad)
        painter.fillRect(strip, QColor(170, 20, 20, 215))
        painter.setPen(QColor(255, 255, 255))
        painter.drawText(strip.adjusted(pad, 0, -pad, 0), int(Qt.AlignmentFlag.AlignCenter),
                         fm.elidedText(text, Qt.TextElideMode.ElideRight, strip.width() - 2 * pad))

    def drawForeground(self, painter: QPainter, rect: QRectF) -> None:  # noqa: N802
        super().drawForeground(painter, rect)
        self.update_marks()  # moved to a screen of another DPI or pixel ratio: the next paint has the new sizes
        m = self.marks
        if self.model is None:
            painter.save()
            painter.resetTransform()
            painter.setFont(self._letter_font)
            painter.setPen(QColor(120, 120, 120))
            painter.drawText(self.viewport().rect(), int(Qt.AlignmentFlag.AlignCenter), self.empty_text)
            painter.restore()
            return
        painter.save()
        painter.resetTransform()
        if self.active and self.compact:
            painter.setPen(QPen(QColor(42, 110, 180), m.px(2)))
            painter.drawRect(self.viewport().rect().adjusted(1, 1, -1, -1))
        banner = getattr(self.model, "banner", "")
        if banner:  # persistent: shown even with the annotations hidden
            self._draw_banner(painter, banner)
        if not self.show_annotations:
            painter.restore()
            return
        painter.setRenderHint(QPainter.RenderHint.TextAntialiasing, True)
        vp = self.viewport().rect().adjusted(m.ipx(6), m.ipx(4), -m.ipx(6), -m.ipx(4))
        if banner:
            vp = vp.adjusted(0, QtGui.QFontMetrics(self._font).height() + m.ipx(8), 0, 0)
        texts = corner_text(self.model.volume.info, self.view_state(), self.hide_identifying, self.compact,
                            self.show_patient)
        painter.setFont(self._letter_font)
        letters = self.orientation_letters()
        letter_w = painter.fontMetrics().horizontalAdvance("W") if letters else 0
        painter.setFont(self._font)
        fm = painter.fontMetrics()
        flags = {
            "top_left": Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop,
            "top_right": Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignTop,
            "bottom_left": Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignBottom,
            "bottom_right": Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignBottom,
        }
        half = max(20, vp.width() // 2 - letter_w // 2 - fm.horizontalAdvance(" "))  # corners never meet
        for corner, lines in texts.items():
            shown = [fm.elidedText(line, Qt.TextElideMode.ElideRight, half) for line in lines]
            self._shadow_text(painter, vp, flags[corner], "\n".join(shown), QColor(235, 235, 235))
        bottom_lines = max(len(texts.get("bottom_right", [])), 1)
        notice = series_notice(self.model.volume)
        if notice:  # a gap (or resampled variable spacing) is said on the image, not only in the Errors panel
            above = vp.adjusted(0, 0, 0, -len(texts.get("bottom_left", [])) * fm.height())
            self._shadow_text(painter, above, flags["bottom_left"],
                              fm.elidedText(notice, Qt.TextElideMode.ElideRight, half), QColor(255, 160, 80))
        mid = Qt.AlignmentFlag.AlignVCenter
        centre = Qt.AlignmentFlag.AlignHCenter
        colour = QColor(255, 210, 90)
        self._shadow_text(painter, vp, Qt.AlignmentFlag.AlignLeft | mid, letters.get("left", ""), colour)
        self._shadow_text(painter, vp, Qt.AlignmentFlag.AlignRight | mid, letters.get("right", ""), colour)
        self._shadow_text(painter, vp, Qt.AlignmentFlag.AlignTop | centre, letters.get("top", ""), colour)
        self._shadow_text(painter, vp, Qt.AlignmentFlag.AlignBottom | centre, letters.get("bottom", ""), colour)
        self._draw_scale_bar(painter, vp, bottom_lines)
        if self.plane.slice_axis != 0 and not is_orthogonal(self.model.volume.direction):
            painter.setFont(self._font)
            self._shadow_text(painter, vp.adjusted(0, 2 * painter.fontMetrics().height(), 0, 0),
                              Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop,
                              "gantry tilt: reformat along the tilted slices, drawn sheared", QColor(255, 160, 80))
        self._draw_missing(painter, vp)
        if self.plane.slice_axis == 0 and self.is_pending():
            painter.setFont(self._letter_font)
            self._shadow_text(painter, vp, Qt.AlignmentFlag.AlignCenter, "decoding this slice…",
                              QColor(160, 160, 160))
        painter.restore()

    def _draw_missing(self, painter: QPainter, vp: QtCore.QRect) -> None:
        """Hatch the parts of the image showing slices that were never acquired (or were interpolated) and
        label a missing acquisition slice (the series' notice is written above the bottom-left corner)."""
        m = self.model
        assert m is not None
        vol = m.volume
        if series_notice(vol) is None:
            return
        rows, cols = self.plane.image_shape(vol.shape)
        for band in bands(vol, self.plane, self.slice_index):
            if band.axis == "all":
                local = QRectF(0, 0, cols, rows)
            elif band.axis == "row":
                local = QRectF(0, band.start, cols, band.stop - band.start)
            else:
                local = QRectF(band.start, 0, band.stop - band.start, rows)
            area = self.mapFromScene(self.image_item.mapRectToScene(local)).boundingRect()
            colour = QColor(255, 90, 90, 170) if band.kind == "missing" else QColor(255, 200, 90, 120)
            painter.fillRect(area, QtGui.QBrush(colour, Qt.BrushStyle.BDiagPattern))
            painter.setPen(QPen(colour, self.marks.px(1)))
            painter.drawRect(area)
        label = slice_label(vol, self.slice_index) if self.plane.slice_axis == 0 else None
        if label:
            painter.setFont(self._letter_font)
            self._shadow_text(painter, vp, Qt.AlignmentFlag.AlignCenter, label, QColor(255, 120, 120))

    def _shadow_text(self, painter: QPainter, rect, flags, text: str, colour: QColor) -> None:
        """Text with a dark outline all round (1 design pixel), legible on black, on bright and on inverted
        images."""
        if not text:
            return
        painter.setPen(QColor(0, 0, 0, 230))
        d = self.marks.px(1)
        for dx, dy in _OUTLINE:
            painter.drawText(QRectF(rect).translated(dx * d, dy * d), int(flags), text)
        painter.setPen(colour)
        painter.drawText(rect, int(flags), text)

    def _draw_scale_bar(self, painter: QPainter, vp, bottom_lines: int = 2) -> None:
        """The mm scale bar (or the warning that the spacing is unknown) above the ``bottom_lines`` lines of
        the bottom-right corner text."""
        painter.setFont(self._font)
        fm = painter.fontMetrics()
        mm_per_px = self.vb.viewPixelSize()[0]
        if not np.isfinite(mm_per_px) or mm_per_px <= 0:
            return
        m = self.marks
        if self.spacing_unknown:
            above = vp.adjusted(0, 0, 0, -bottom_lines * fm.height() - m.ipx(2))
            text = fm.elidedText("pixel spacing unknown: mm = pixels", Qt.TextElideMode.ElideLeft, vp.width())
            self._shadow_text(painter, above, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignBottom, text,
                              QColor(255, 160, 80))
            return
        mm, px = scale_bar_length(mm_per_px, max_pixels=max(vp.width() / 5, 20))
        tick = m.px(4)
        y = vp.bottom() - bottom_lines * fm.height() - m.px(10)
        x1 = vp.right() - tick
        x0 = x1 - px
        lines = [QtCore.QLineF(x0, y, x1, y)] + [QtCore.QLineF(x, y - tick, x, y + tick) for x in (x0, x1)]
        for colour, width in ((QColor(0, 0, 0, 230), 4), (QColor(235, 235, 235), 2)):  # outlined, as the text
            pen = QPen(colour)
            pen.setWidthF(m.px(width))
            painter.setPen(pen)
            painter.drawLines(lines)
        label = QRectF(x0 - m.px(40), y - m.px(6) - fm.height(), px + m.px(80), fm.height())
        self._shadow_text(painter, label, Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignBottom, format_mm(mm),
                          QColor(235, 235, 235))

    # -- export ------------------------------------------------------------------------------
    def render_png(self, path: str, with_annotations: bool = True) -> None:
        """Save the view as shown (optionally without the painted annotations)."""
        old = self.show_annotations
        self.show_annotations = with_annotations
        try:
            pixmap = self.grab()
        finally:
            self.show_annotations = old
            self.viewport().update()
        if not pixmap.save(path, "PNG"):
            raise OSError(f"could not write {path}")
