"""Filters tab: the first convolution's kernels and the selected layer's weight statistics."""

from __future__ import annotations

from typing import Any

import numpy as np

from viewer.qt.qt import Qt, QtCore, QtGui, QtWidgets
from viewer.qt.layers.widgets import (HColorBar, colour_image, diverging_lut, fill_table, make_table)
from viewer.qt.layers.core import LayersCore

class FiltersTab(LayersCore):
    """Filters tab: the first convolution's kernels and the selected layer's weight statistics."""

    def _build_filters(self) -> QtWidgets.QWidget:
        W = QtWidgets
        w = W.QWidget()
        lay = W.QVBoxLayout(w)
        self.filters_caption = W.QLabel("First convolution's kernels (mean over input channels)")
        self.filters_caption.setWordWrap(True)
        lay.addWidget(self.filters_caption)
        self.filters = W.QListWidget()
        self.filters.setViewMode(W.QListView.ViewMode.IconMode)
        self.filters.setIconSize(QtCore.QSize(44, 44))
        self.filters.setMovement(W.QListView.Movement.Static)
        self.filters.setResizeMode(W.QListView.ResizeMode.Adjust)
        lay.addWidget(self.filters, 1)
        self.filters_bar = HColorBar("kernel weight / its tile's largest |weight|")
        self.filters_bar.set_range(-1, 1, lut=diverging_lut())
        lay.addWidget(self.filters_bar)
        lay.addWidget(W.QLabel("Weights of the selected layer"))
        self.weights_table = make_table(["parameter", "shape", "mean", "std", "|max|", "~0 %"])
        lay.addWidget(self.weights_table, 1)
        return w

    def _show_filters(self, path: str, tiles: np.ndarray) -> None:
        self.filters.clear()
        if not len(tiles):
            self.filters_caption.setText("No 2-D convolution weights in this model.")
            return
        self.filters_caption.setText(f"First convolution <b>{path}</b>: {len(tiles)} kernels of "
                                     f"{tiles.shape[1]} x {tiles.shape[2]} (mean over input channels)")
        lut = diverging_lut()
        for c, t in enumerate(tiles):
            pix = QtGui.QPixmap.fromImage(colour_image(t, -1.0, 1.0, lut)).scaled(
                44, 44, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.FastTransformation)
            self.filters.addItem(QtWidgets.QListWidgetItem(QtGui.QIcon(pix), f"#{c}"))

    def _show_weights(self, stats: list[Any]) -> None:
        fill_table(self.weights_table, [[s.name, "x".join(map(str, s.shape)), f"{s.mean:.3g}", f"{s.std:.3g}",
                                          f"{s.abs_max:.3g}", f"{100 * s.fraction_near_zero:.1f}"] for s in stats])
