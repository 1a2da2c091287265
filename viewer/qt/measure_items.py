"""On-screen measurements: editable pyqtgraph ROIs bound to a :class:`MeasurementRecord`, with a label
showing the value (mm, degrees, or ROI statistics in modality units). Dragging a handle edits the record;
the ROI's context menu or the Delete key removes it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from viewer.display.measure import MeasurementRecord, angle_deg, distance_mm, modality_unit, roi_stats
from viewer.qt.marks import MarkScale, cosmetic_pen, scale_handles
from viewer.qt.qt import QColor, QPointF, pg

if TYPE_CHECKING:
    from viewer.qt.slice_view import SliceView

_COLOUR, _HOVER_COLOUR = (255, 220, 0), (255, 255, 160)
LINE_PX, HOVER_PX = 1.5, 2.0
"""Design pixels (96 DPI) of a measurement's line and of its line under the mouse (viewer.qt.marks)."""


class MeasurementGraphic:
    """One measurement drawn in a view; ``text`` is what its label shows."""

    def __init__(self, view: SliceView, record: MeasurementRecord) -> None:
        self.view = view
        self.record = record
        r = record
        scale = view.marks
        _PEN, _HOVER = cosmetic_pen(_COLOUR, LINE_PX, scale), cosmetic_pen(_HOVER_COLOUR, HOVER_PX, scale)
        if r.kind == "distance":
            self.roi: pg.ROI = pg.LineSegmentROI(positions=[QPointF(*r.points[0]), QPointF(*r.points[1])],
                                                  pen=_PEN, hoverPen=_HOVER, removable=True)
        elif r.kind == "angle":
            self.roi = pg.PolyLineROI([QPointF(*p) for p in r.points], closed=False, pen=_PEN, hoverPen=_HOVER,
                                      removable=True)
        elif r.kind == "ellipse":
            self.roi = pg.EllipseROI(r.pos, r.size, angle=r.angle, pen=_PEN, hoverPen=_HOVER, removable=True)
        else:
            self.roi = pg.RectROI(r.pos, r.size, angle=r.angle, pen=_PEN, hoverPen=_HOVER, removable=True,
                                  centered=False)
        self.roi.setZValue(30)
        scale_handles(self.roi, scale)
        self.label = pg.TextItem("", color=QColor(255, 230, 80), anchor=(0, 1), fill=pg.mkBrush(0, 0, 0, 140))
        self.label.setZValue(31)
        view.vb.addItem(self.roi, ignoreBounds=True)
        view.vb.addItem(self.label, ignoreBounds=True)
        self.roi.sigRegionChangeFinished.connect(self._on_edited)
        self.roi.sigRegionChanged.connect(self._on_moving)
        self.roi.sigRemoveRequested.connect(self._on_remove_requested)
        self.roi.setAcceptedMouseButtons(pg.QtCore.Qt.MouseButton.LeftButton)
        self.roi.sigClicked.connect(self._on_clicked)
        self.text = ""
        self.update_label()

    def apply_scale(self, scale: MarkScale) -> None:
        """Redraw lines and handles at the screen's scale (the view moved to another screen)."""
        self.roi.setPen(cosmetic_pen(_COLOUR, LINE_PX, scale))
        self.roi.hoverPen = cosmetic_pen(_HOVER_COLOUR, HOVER_PX, scale)
        scale_handles(self.roi, scale)

    # -- geometry ----------------------------------------------------------------------------
    def _points(self) -> list[tuple[float, float]]:
        out = []
        for h in self.roi.getHandles():
            p = self.roi.mapToParent(h.pos())
            out.append((p.x(), p.y()))
        return out

    def _sync_record(self) -> None:
        r = self.record
        if r.kind in ("distance", "angle"):
            r.points = self._points()
        else:
            pos, size = self.roi.pos(), self.roi.size()
            r.pos, r.size, r.angle = (pos.x(), pos.y()), (size.x(), size.y()), float(self.roi.angle())

    def value_text(self) -> str:
        r = self.record
        if r.kind == "distance":
            return f"{distance_mm(*r.points):.1f} mm"
        if r.kind == "angle":
            return f"{angle_deg(*r.points):.1f}°"
        assert self.view.model is not None
        stats = roi_stats(self.view.current_image(), self.view.scene_matrix, r.kind, r.pos, r.size, r.angle)
        info = self.view.model.volume.info
        return stats.text(modality_unit(info.modality, info.dose_units))

    def update_label(self) -> None:
        self.text = self.value_text()
        self.label.setText(self.text)
        r = self.record
        if r.kind in ("distance", "angle"):
            anchor = max(r.points, key=lambda p: p[0])
        else:
            anchor = (r.pos[0] + r.size[0], r.pos[1])
        self.label.setPos(*anchor)

    # -- events ------------------------------------------------------------------------------
    def _on_moving(self) -> None:
        self._sync_record()
        self.update_label()

    def _on_edited(self) -> None:
        self._sync_record()
        self.update_label()

    def _on_clicked(self, *args) -> None:
        self.view.selected = self

    def _on_remove_requested(self) -> None:
        if self.view.model is not None:
            self.view.model.remove_measurement(self.record)

    def remove(self) -> None:
        """Take the graphic off the view (the record stays with the series unless removed there)."""
        for sig, slot in ((self.roi.sigRegionChangeFinished, self._on_edited),
                          (self.roi.sigRegionChanged, self._on_moving),
                          (self.roi.sigRemoveRequested, self._on_remove_requested),
                          (self.roi.sigClicked, self._on_clicked)):
            sig.disconnect(slot)
        self.view.vb.removeItem(self.roi)
        self.view.vb.removeItem(self.label)

