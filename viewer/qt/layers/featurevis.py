"""Feature visualisation tab: what input the selected channel responds to most (cached)."""

from __future__ import annotations

from typing import Any
from collections.abc import Callable

import numpy as np

from viewer.qt.qt import QtWidgets, pg
from viewer.qt.layers.widgets import (colour_image, grey_lut, tile_tab)
from viewer.qt.layers.core import LayersCore

class FeatureVisTab(LayersCore):
    """Feature visualisation tab: what input the selected channel responds to most (cached)."""

    def _build_featurevis(self) -> QtWidgets.QWidget:
        w, lay, self.fv_button, self.fv_tile, self.fv_bar = tile_tab(
            "Activation maximisation (Fourier-parameterised gradient ascent with jitter): "
            "the input that most excites the channel's centre cell.",
            "Visualise selected channel", self.request_featurevis,
            "model input, card window (0 = low end, 1 = high end)", grey_lut())
        self.fv_plot = pg.PlotWidget()
        self.fv_plot.setMaximumHeight(120)
        self.fv_plot.setLabel("bottom", "step")
        self.fv_plot.setLabel("left", "activation")
        self.fv_plot.setMouseEnabled(x=False, y=False)
        self.fv_plot.hideButtons()
        self.fv_plot.getAxis("left").enableAutoSIPrefix(False)
        lay.addWidget(self.fv_plot)
        lay.addStretch(1)
        return w

    def request_featurevis(self) -> None:
        if self.layer is None or self.channel is None:
            return
        layer, channel = self.layer, self.channel
        from viewer.paths import subdir

        cache = subdir("cache") / "featurevis"

        def fn(model: Any, cancel: Any, progress: Callable[[int, int], None]) -> Any:
            from inference.probes import cached_visualisation

            return cached_visualisation(model, layer, channel, cache, cancel=cancel, progress=progress)

        self.submit("featurevis", fn)

    def _show_featurevis(self, value: Any) -> None:
        vis, hit = value
        mean = ""
        if self.maps is not None and vis.layer == self.layer and vis.channel < len(self.maps):
            mean = f"; on this image: mean {self.maps[vis.channel].mean():.3g}, max {self.maps[vis.channel].max():.3g}"
        self.fv_tile.set_image(colour_image(vis.image, 0, 1), f"{vis.layer} #{vis.channel}: activation "
                               f"{vis.activation:.3g}{mean}" + (" (cached)" if hit else ""))
        self.fv_plot.clear()
        self.fv_plot.plot(np.arange(1, len(vis.trajectory) + 1), vis.trajectory, pen=pg.mkPen((255, 170, 80), width=2))
