"""Examples tab: the slices of the series where the selected channel fires most, one click away."""

from __future__ import annotations

from typing import Any
from collections.abc import Callable

import numpy as np

from viewer.qt.qt import Qt, QtCore, QtGui, QtWidgets
from viewer.qt.layers.widgets import (colour_image, fill_table, make_table)
from viewer.qt.layers.core import EXAMPLE_PX, LayersCore
from viewer.state.layer_inspector import ProbeTarget

class ExamplesTab(LayersCore):
    """Examples tab: the slices of the series where the selected channel fires most, one click away."""

    examples_target: ProbeTarget | None = None
    """What the examples were searched in (the acquired slices, or a run's reformat slices)."""

    def _build_examples(self) -> QtWidgets.QWidget:
        W = QtWidgets
        w = W.QWidget()
        lay = W.QVBoxLayout(w)
        lay.addWidget(W.QLabel("The slices of this series where the selected channel fires most; click one to "
                               "go there."))
        self.ex_button = W.QPushButton("Find in this series")
        self.ex_button.clicked.connect(self.request_examples)
        lay.addWidget(self.ex_button, 0, Qt.AlignmentFlag.AlignLeft)
        self.ex_table = make_table(["#", "image", "peak", "mean", "row", "column"])
        self.ex_table.setIconSize(QtCore.QSize(EXAMPLE_PX, EXAMPLE_PX))
        self.ex_table.cellClicked.connect(self._on_example_clicked)
        lay.addWidget(self.ex_table, 1)
        return w

    def request_examples(self) -> None:
        if self.layer is None or self.channel is None or self.series is None:
            return
        layer, channel = self.layer, self.channel
        target = self.target()
        volume: Any = target.view  # a lazy (k, rows, cols) view: read on the worker only
        if target.grid is None:
            loaded = [int(k) for k in np.flatnonzero(self.series.loaded)]
        else:  # every reformat slice reads the whole volume
            loaded = list(range(len(volume))) if self.series.fully_loaded else []
        self.examples_target = target

        def fn(model: Any, cancel: Any, progress: Callable[[int, int], None]) -> Any:
            from inference.probes import channel_examples

            return layer, channel, channel_examples(model, layer, channel, volume, loaded, top=10,
                                                    cancel=cancel, progress=progress)

        self.submit("examples", fn)

    def _show_examples(self, value: Any) -> None:
        layer, channel, found = value
        fill_table(self.ex_table, [[str(i + 1), str(e.slice_index + 1), f"{e.peak:.3g}", f"{e.mean:.3g}",
                                     f"{e.row:.0f}", f"{e.col:.0f}"] for i, e in enumerate(found)])
        for i, e in enumerate(found):
            item = self.ex_table.item(i, 0)
            if item is not None:
                item.setIcon(QtGui.QIcon(self._example_patch(e)))
        self.ex_table.resizeColumnsToContents()
        self.ex_table.resizeRowsToContents()
        self.ex_table.setToolTip(f"{layer} channel {channel}: click a row to jump to that image and place")

    def _example_patch(self, e: Any, px: int = EXAMPLE_PX) -> QtGui.QPixmap:
        """The neighbourhood of an example's peak (three cells each way) in the series' window, its cell boxed."""
        series = self.series
        target = self.examples_target
        img = series.volume.array[e.slice_index] if target is None or target.grid is None \
            else np.asarray(target.view[e.slice_index])
        rows, cols = img.shape
        hh, hw = max(e.half_height, 1.0), max(e.half_width, 1.0)
        r0, r1 = int(max(0, e.row - 3 * hh)), int(min(rows, e.row + 3 * hh + 1))
        c0, c1 = int(max(0, e.col - 3 * hw)), int(min(cols, e.col + 3 * hw + 1))
        lo = series.center - series.width / 2
        pix = QtGui.QPixmap.fromImage(colour_image(img[r0:r1, c0:c1], lo, lo + series.width)).scaled(
            px, px, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation)
        sx, sy = pix.width() / max(c1 - c0, 1), pix.height() / max(r1 - r0, 1)
        painter = QtGui.QPainter(pix)
        painter.setPen(QtGui.QPen(QtGui.QColor(255, 170, 40), 2))
        painter.drawRect(QtCore.QRectF((e.col - hw - c0) * sx, (e.row - hh - r0) * sy, 2 * hw * sx, 2 * hh * sy))
        painter.end()
        return pix

    def _on_example_clicked(self, row: int, _col: int) -> None:
        self.go_to_example(row)

    def go_to_example(self, row: int) -> None:
        """Move the views to an example's slice, centred on its peak."""
        if not 0 <= row < len(self.examples) or self.series is None:
            return
        e = self.examples[row]
        target = self.examples_target
        space = self.series.volume if target is None or target.grid is None else target.grid
        self.series.set_crosshair(space.index_to_lps(np.array([e.col, e.row, e.slice_index], float)))
