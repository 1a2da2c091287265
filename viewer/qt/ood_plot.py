"""The out-of-distribution distance along the series, plotted under the AI panel's scores plot."""

from __future__ import annotations

import numpy as np

from viewer.qt.qt import Qt, QtWidgets, pg


class OODPlot(pg.PlotWidget):
    """Each slice's OOD distance divided by the model's threshold (above 1: unlike the training data)."""

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMinimumHeight(60)
        self.setMaximumHeight(90)
        self.setMouseEnabled(x=False, y=False)
        self.hideButtons()
        self.setLabel("left", "OOD")
        self.showGrid(x=False, y=True, alpha=0.25)
        self.curve = self.plot(pen=pg.mkPen((200, 200, 255), width=2))
        self.flagged = self.plot(pen=None, symbol="o", symbolSize=5, symbolBrush=(255, 80, 80), symbolPen=None)
        self.threshold_line = pg.InfiniteLine(pos=1.0, angle=0, pen=pg.mkPen((255, 80, 80), style=Qt.PenStyle.DashLine))
        self.cursor = pg.InfiniteLine(pos=0, angle=90, pen=pg.mkPen((80, 200, 255)))
        self.addItem(self.threshold_line)
        self.addItem(self.cursor)

    def set_values(self, distances: np.ndarray, threshold: float) -> None:
        """``distances`` (n,) with NaN where not run yet; plotted as distance / threshold, 1-based x."""
        ratio = np.asarray(distances, dtype=np.float64) / threshold
        x = np.arange(1, ratio.size + 1)
        self.curve.setData(x, ratio, connect="finite")
        over = np.isfinite(ratio) & (ratio > 1.0)
        self.flagged.setData(x[over], ratio[over])
        top = float(np.nanmax(ratio)) if np.isfinite(ratio).any() else 2.0
        self.setYRange(0, max(2.0, min(top * 1.05, 20.0)), padding=0.02)
        if ratio.size > 3:
            self.setXRange(1, ratio.size, padding=0.01)
        else:
            self.setXRange(0.5, ratio.size + 0.5, padding=0.0)

    def set_cursor(self, k: int) -> None:
        self.cursor.setValue(k + 1)
