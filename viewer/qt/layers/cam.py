"""Layer CAM tab: Grad-CAM with the selected layer as the target, over the image."""

from __future__ import annotations

from typing import Any
from collections.abc import Callable


from viewer.qt.qt import QtWidgets
from viewer.qt.layers.widgets import (colour_image, solid_lut, tile_tab)
from viewer.qt.layers.core import LayersCore

class CamTab(LayersCore):
    """Layer CAM tab: Grad-CAM with the selected layer as the target, over the image."""

    def _build_cam(self) -> QtWidgets.QWidget:
        w, lay, self.cam_button, self.cam_tile, self.cam_bar = tile_tab(
            "Grad-CAM with the selected layer as target: localisation sharpens or blurs with depth.",
            "Compute at this layer", self.request_cam, "Grad-CAM (relative, 0 .. 1)", solid_lut("jet"))
        lay.addStretch(1)
        return w

    def request_cam(self) -> None:
        if self.layer is None or self.series is None:
            return
        layer, target = self.layer, self.target()
        image = target.image()

        def fn(model: Any, _cancel: Any, _progress: Callable[[int, int], None]) -> dict[str, Any]:
            from inference.probes import layer_gradcam

            return {"layer": layer, "target": target, "map": layer_gradcam(model, layer, image[None])[0]}

        self.submit("cam", fn)

    def _show_cam(self, value: dict[str, Any]) -> None:
        m = value["map"]
        empty = "" if float(m.max()) > 0 else " (empty: no evidence for the label on this image)"
        self.cam_tile.set_image(colour_image(m, 0, 1, solid_lut("jet")),
                                f"Grad-CAM at {value['layer']}, {value['target'].text}{empty}")
        self._overlay(m, value["target"], "jet", 0.55)
