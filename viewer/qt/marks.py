"""How big the marks drawn over images are on this screen: crosshair, measurement lines and handles, isolines,
annotation outlines and margins.

Sizes are given in design pixels (what they are on a 96 DPI screen) and drawn at the screen's scale:
``unit`` = the screen's logical DPI / 96 (text in points grows with it, so do the marks), and cosmetic pens,
whose width Qt takes in device pixels, also times the device pixel ratio (at ``QT_SCALE_FACTOR=2`` a 1 px
crosshair was half as thick as the text around it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from viewer.qt.qt import QColor, QPen, Qt, QtWidgets

BASE_DPI = 96.0
HANDLE_RADIUS = 5.0
"""Design pixels of a measurement handle's radius (pyqtgraph's own default)."""


@dataclass(frozen=True)
class MarkScale:
    """``unit``: logical pixels per design pixel (at least 1); ``dpr``: device pixels per logical pixel."""

    unit: float = 1.0
    dpr: float = 1.0

    def px(self, design_px: float) -> float:
        """A length in logical pixels (painter coordinates, widget geometry, handle radius)."""
        return design_px * self.unit

    def ipx(self, design_px: float) -> int:
        return max(1, round(design_px * self.unit))

    def pen_width(self, design_px: float) -> float:
        """A cosmetic pen's width (device pixels)."""
        return design_px * self.unit * self.dpr


def mark_scale(widget: QtWidgets.QWidget) -> MarkScale:
    """The scale of ``widget``'s screen (its logical DPI, its device pixel ratio)."""
    return MarkScale(max(1.0, widget.logicalDpiY() / BASE_DPI), float(widget.devicePixelRatioF()))


def cosmetic_pen(colour: QColor | tuple[int, ...], design_px: float, scale: MarkScale,
                 style: Qt.PenStyle = Qt.PenStyle.SolidLine) -> QPen:
    """A pen of constant on-screen width (``design_px`` at 96 DPI, scaled for the screen)."""
    pen = QPen(colour if isinstance(colour, QColor) else QColor(*colour))
    pen.setWidthF(scale.pen_width(design_px))
    pen.setCosmetic(True)
    pen.setStyle(style)
    return pen


def scale_handles(roi: Any, scale: MarkScale, colour: tuple[int, int, int] = (150, 255, 255),
                  hover: tuple[int, int, int] = (255, 255, 0)) -> None:
    """Size a pyqtgraph ROI's handles (radius and outline) for the screen."""
    roi.handleSize = scale.px(HANDLE_RADIUS)
    roi.handlePen = cosmetic_pen(colour, 1.0, scale)
    for handle in roi.getHandles():
        handle.radius = scale.px(HANDLE_RADIUS)
        handle.pen = cosmetic_pen(colour, 1.0, scale)
        handle.hoverPen = cosmetic_pen(hover, 1.0, scale)
        handle.currentPen = handle.pen
        handle.buildPath()
        handle._shape = None
        handle.update()
