"""The layer inspector's small widgets and drawing helpers (colour tiles, colour bars, tables)."""

from __future__ import annotations


import numpy as np

from viewer.display.colormaps import overlay_lut
from viewer.qt.qt import Qt, QtCore, QtGui, QtWidgets

LAYER_OVERLAY = "Layer inspector"
GRID_CHANNELS = 24
TILE_PX = 72
EXAMPLE_PX = 64

def colour_image(values: np.ndarray, lo: float, hi: float, lut: np.ndarray | None = None) -> QtGui.QImage:
    """A ``(h, w)`` array as an RGB QImage through ``lut`` ((256, 3|4) uint8; grey without one)."""
    span = hi - lo if hi > lo else 1.0
    idx = np.clip((values.astype(np.float64) - lo) / span * 255.0, 0, 255).astype(np.uint8)
    rgb = np.repeat(idx[..., None], 3, axis=2) if lut is None else lut[idx][..., :3]
    rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
    h, w = rgb.shape[:2]
    return QtGui.QImage(rgb.data, w, h, 3 * w, QtGui.QImage.Format.Format_RGB888).copy()


def solid_lut(name: str) -> np.ndarray:
    """Opaque (256, 4) LUT of a named ramp (for tiles and colour bars)."""
    return overlay_lut(name, 256, alpha_floor=0.0, alpha_full=1e-6)


def grey_lut() -> np.ndarray:
    """Opaque grey ramp (256, 4)."""
    v = np.arange(256, dtype=np.uint8)
    return np.stack([v, v, v, np.full(256, 255, np.uint8)], axis=1)


def diverging_lut() -> np.ndarray:
    """Blue - black - red for signed kernel weights (index 128 is zero)."""
    x = np.linspace(-1, 1, 256)
    r = np.clip(x, 0, 1) * 255
    b = np.clip(-x, 0, 1) * 255
    g = np.abs(x) * 60
    return np.stack([r, g, b, np.full(256, 255.0)], axis=1).round().astype(np.uint8)


class ImageTile(QtWidgets.QWidget):
    """An image (pixel-exact, scaled with nearest neighbour) above a caption."""

    def __init__(self, caption: str = "", size: int = 160, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        lay = QtWidgets.QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(2)
        self.image = QtWidgets.QLabel()
        self.image.setFixedSize(size, size)
        self.image.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.image.setStyleSheet("background: #111; border: 1px solid #555;")
        self.caption = QtWidgets.QLabel(caption)
        self.caption.setWordWrap(True)
        self.caption.setFixedWidth(max(size, 220))
        self.caption.setMinimumHeight(3 * self.caption.fontMetrics().height())
        self.caption.setAlignment(Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop)
        self.setSizePolicy(QtWidgets.QSizePolicy.Policy.Fixed, QtWidgets.QSizePolicy.Policy.Fixed)
        lay.addWidget(self.image)
        lay.addWidget(self.caption)
        self._size = size

    def set_image(self, img: QtGui.QImage | None, caption: str | None = None) -> None:
        if img is None:
            self.image.clear()
        else:
            pix = QtGui.QPixmap.fromImage(img).scaled(self._size, self._size, Qt.AspectRatioMode.KeepAspectRatio,
                                                      Qt.TransformationMode.FastTransformation)
            self.image.setPixmap(pix)
        if caption is not None:
            self.caption.setText(caption)


class HColorBar(QtWidgets.QWidget):
    """A horizontal colour bar with a title and value ticks (activation units, weights ...)."""

    def __init__(self, title: str = "", parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.title, self.lo, self.hi = title, 0.0, 1.0
        self.lut = solid_lut("hot")
        self.setMinimumHeight(44)
        self.setSizePolicy(QtWidgets.QSizePolicy.Policy.Expanding, QtWidgets.QSizePolicy.Policy.Fixed)

    def set_range(self, lo: float, hi: float, title: str | None = None, lut: np.ndarray | None = None) -> None:
        self.lo, self.hi = float(lo), float(hi)
        if title is not None:
            self.title = title
        if lut is not None:
            self.lut = lut
        self.update()

    def paintEvent(self, event: QtGui.QPaintEvent) -> None:  # noqa: N802 (Qt name)
        p = QtGui.QPainter(self)
        fm = p.fontMetrics()
        p.setPen(QtGui.QColor(220, 220, 220))
        p.drawText(4, fm.ascent() + 1, self.title)
        top = fm.height() + 3
        bar = QtCore.QRect(8, top, self.width() - 16, 10)
        grad = QtGui.QLinearGradient(bar.left(), 0, bar.right(), 0)
        for pos in np.linspace(0, 1, 17):
            r, g, b = (int(v) for v in self.lut[int(pos * 255)][:3])
            grad.setColorAt(float(pos), QtGui.QColor(r, g, b))
        p.fillRect(bar, grad)
        p.drawRect(bar)
        for pos in (0.0, 0.5, 1.0):
            x = int(bar.left() + pos * bar.width())
            p.drawLine(x, bar.bottom(), x, bar.bottom() + 3)
            text = f"{self.lo + pos * (self.hi - self.lo):.3g}"
            tw = fm.horizontalAdvance(text)
            p.drawText(int(np.clip(x - tw / 2, 0, self.width() - tw)), bar.bottom() + 4 + fm.ascent(), text)
        p.end()


def make_table(headers: list[str]) -> QtWidgets.QTableWidget:
    t = QtWidgets.QTableWidget(0, len(headers))
    t.setHorizontalHeaderLabels(headers)
    t.verticalHeader().setVisible(False)
    t.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
    t.setSelectionBehavior(QtWidgets.QAbstractItemView.SelectionBehavior.SelectRows)
    t.horizontalHeader().setStretchLastSection(True)
    return t


def fill_table(t: QtWidgets.QTableWidget, rows: list[list[str]]) -> None:
    t.setRowCount(len(rows))
    for r, row in enumerate(rows):
        for c, text in enumerate(row):
            t.setItem(r, c, QtWidgets.QTableWidgetItem(text))
    t.resizeColumnsToContents()


def fmt_shape(shape: tuple[int, ...] | None) -> str:
    return "-" if shape is None else " x ".join(str(s) for s in shape[1:]) or "scalar"


def fmt_count(n: int) -> str:
    return f"{n / 1e6:.2f} M" if n >= 1e6 else f"{n / 1e3:.1f} k" if n >= 1e3 else str(n)


def tile_tab(caption: str, button_text: str, slot, bar_label: str, lut: np.ndarray
              ) -> tuple[QtWidgets.QWidget, QtWidgets.QVBoxLayout, QtWidgets.QPushButton, ImageTile, HColorBar]:
    """A tab with a caption, one action button, an image tile and its colour bar (0 .. 1)."""
    W = QtWidgets
    w = W.QWidget()
    lay = W.QVBoxLayout(w)
    lay.addWidget(W.QLabel(caption))
    row = W.QHBoxLayout()
    button = W.QPushButton(button_text)
    button.clicked.connect(slot)
    row.addWidget(button)
    row.addStretch(1)
    lay.addLayout(row)
    tile = ImageTile("", 220)
    lay.addWidget(tile, 0, Qt.AlignmentFlag.AlignHCenter)
    bar = HColorBar(bar_label)
    bar.set_range(0, 1, lut=lut)
    lay.addWidget(bar)
    return w, lay, button, tile, bar
