"""Statistics tab: the selected layer's activation histogram, dead channels and zero fraction."""

from __future__ import annotations

from typing import Any

import numpy as np

from viewer.qt.qt import QtWidgets, pg
from viewer.qt.layers.core import LayersCore

class StatsTab(LayersCore):
    """Statistics tab: the selected layer's activation histogram, dead channels and zero fraction."""

    def _build_stats(self) -> QtWidgets.QWidget:
        W = QtWidgets
        w = W.QWidget()
        lay = W.QVBoxLayout(w)
        self.stats_label = W.QLabel("")
        self.stats_label.setWordWrap(True)
        lay.addWidget(self.stats_label)
        self.hist = pg.PlotWidget()
        self.hist.setLabel("bottom", "activation")
        self.hist.setLabel("left", "count (log10)")
        self.hist.setMouseEnabled(x=False, y=False)
        self.hist.hideButtons()
        self.hist.getAxis("bottom").enableAutoSIPrefix(False)
        lay.addWidget(self.hist, 1)
        return w

    def _show_stats(self, st: Any) -> None:
        self.stats_label.setText(
            f"<b>{self.layer}</b> on {self.selection.slice_text}: {st.n_channels} channels, "
            f"<b>{st.n_dead} dead</b> (never above zero on this image)"
            + (f": {', '.join(map(str, st.dead_channels[:20]))}" if st.n_dead else "")
            + f"; {100 * st.fraction_zero:.1f} % of values are zero; mean {st.mean:.3g}, std {st.std:.3g}")
        self.hist.clear()
        counts = np.log10(st.counts.astype(np.float64) + 1.0)
        self.hist.addItem(pg.PlotDataItem(st.edges, counts, stepMode="center", fillLevel=0,
                                          brush=(230, 120, 40, 160), pen=pg.mkPen((255, 170, 80))))
