"""Where the model errs, by group: a forest plot of error rates with their 95% intervals.

One row per subgroup (sex, age band, manufacturer, scanner, kVp, body part: :data:`PLOT_SPLITS`),
the dot at the error rate, the bar its 95% Wilson interval, a dashed line at the rate over all
flags. A group whose rate differs from the rest beyond chance (Fisher's exact test, Holm-adjusted
over its split) is drawn red with an up triangle when higher, blue with a down triangle when lower,
and says so beside its bar ("higher p<0.001": Holm-adjusted p). The rows come from :func:`viewer.review.summary.rate_rows`.
"""

from __future__ import annotations

import numpy as np

from viewer.qt.qt import Qt, QtWidgets, pg
from viewer.review.summary import ALPHA, RateRow, Summary, rate_rows

ROW_PX = 22
COLOURS = {"higher": (235, 80, 70), "lower": (90, 160, 255), "": (200, 200, 200)}
SYMBOLS = {"higher": "t1", "lower": "t", "": "o"}  # pyqtgraph: t1 points up, t points down
NAME_CHARS = 26


class ErrorRatePlot(QtWidgets.QWidget):
    """The panel's "Error by group" page: :meth:`set_summary` redraws it."""

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.rows: list[RateRow] = []
        self.row_y: dict[tuple[str, str], int] = {}
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.plot = pg.PlotWidget()
        self.plot.setMenuEnabled(False)
        self.plot.setMouseEnabled(x=False, y=False)
        self.plot.hideButtons()
        self.plot.invertY(True)
        self.plot.showGrid(x=True, y=False, alpha=0.15)
        self.plot.showAxis("top")  # the scale stays in sight above a long list of groups
        self.plot.setLabel("top", "error rate (%)")
        self.plot.setLabel("bottom", "error rate (%)")
        self.scroll_area = QtWidgets.QScrollArea(widgetResizable=True)
        self.scroll_area.setWidget(self.plot)
        layout.addWidget(self.scroll_area, 1)
        self.caption = QtWidgets.QLabel(wordWrap=True)
        self.caption.setText(
            "Dot: error rate (false positive, false negative, mislocalised) · bar: 95% Wilson interval · dashed: "
            f"all flags. <span style='color:#eb5046'>▲ red</span>: higher than the rest of its group beyond chance, "
            f"<span style='color:#5aa0ff'>▼ blue</span>: lower (Fisher's exact test, Holm-adjusted p &lt; {ALPHA:g}).")
        self.caption.setTextFormat(Qt.TextFormat.RichText)
        layout.addWidget(self.caption)
        self.empty = QtWidgets.QLabel("No flags yet: the plot appears once reviewers have flagged images.",
                                      wordWrap=True)
        layout.addWidget(self.empty)
        self.scatter = pg.ScatterPlotItem(pxMode=True)
        self.bars = pg.ErrorBarItem(beam=0.25)
        self.overall = pg.InfiniteLine(angle=90, movable=False,
                                       pen=pg.mkPen((255, 255, 255), width=1, style=Qt.PenStyle.DashLine))
        self.texts: list[pg.TextItem] = []

    def marked(self) -> dict[str, str]:
        """``"Split: group" -> "higher" | "lower"`` of the groups drawn as different."""
        return {f"{r.title}: {r.group}": r.mark for r in self.rows if r.mark}

    def set_summary(self, summary: Summary) -> None:
        """Redraw from a :class:`Summary` (an empty one shows the "no flags" note)."""
        self.rows = rate_rows(summary)
        item = self.plot.getPlotItem()
        item.clear()
        self.texts.clear()
        self.empty.setVisible(not self.rows)
        self.scroll_area.setVisible(bool(self.rows))
        if not self.rows:
            return
        ticks: list[tuple[float, str]] = []
        y = 0
        self.row_y = {}
        previous = None
        for r in self.rows:
            if r.split != previous:
                ticks.append((y, r.title.upper()))
                y += 1
                previous = r.split
            name = r.group if len(r.group) <= NAME_CHARS else r.group[:NAME_CHARS - 1] + "…"
            ticks.append((y, f"{name}  (n={r.total})"))
            self.row_y[(r.split, r.group)] = y
            y += 1
        ys = np.array([self.row_y[(r.split, r.group)] for r in self.rows], dtype=float)
        rate = np.array([100 * r.rate for r in self.rows])
        low = np.array([100 * r.low for r in self.rows])
        high = np.array([100 * r.high for r in self.rows])
        self.bars.setData(x=rate, y=ys, left=rate - low, right=high - rate, pen=pg.mkPen((170, 170, 170), width=2))
        self.scatter.setData([
            {"pos": (x, yy), "size": 13 if r.mark else 9, "symbol": SYMBOLS[r.mark],
             "brush": pg.mkBrush(*COLOURS[r.mark]), "pen": pg.mkPen(COLOURS[r.mark])}
            for x, yy, r in zip(rate, ys, self.rows)
        ])
        item.addItem(self.bars)
        item.addItem(self.scatter)
        self.overall.setValue(100 * summary.overall.error_rate)
        item.addItem(self.overall)
        right = min(100.0, 10 * np.ceil(high.max() / 10) + 10)  # 0 stays in view: rates read against it
        for r, yy, lo, hi in zip(self.rows, ys, low, high):
            if not r.mark:
                continue
            p = "p<0.001" if (r.p_adjusted or 0) < 0.001 else f"p={r.p_adjusted:.3f}"
            # words on the side with room: right of a bar in the left half, left of one in the right half
            left_side = hi > right / 2
            text = pg.TextItem(f"{r.mark} {p}", color=COLOURS[r.mark], anchor=(1 if left_side else 0, 0.5))
            text.setPos(lo - 1 if left_side else hi + 1, yy)
            item.addItem(text)
            self.texts.append(text)
        self.plot.getAxis("left").setTicks([ticks, []])
        self.plot.setXRange(0, right, padding=0.02)
        self.plot.setYRange(-0.5, y - 0.5, padding=0)
        self.plot.setMinimumHeight(ROW_PX * y + 60)
