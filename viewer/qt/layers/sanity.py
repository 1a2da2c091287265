"""Sanity tab: the model-randomisation test of the explanation on the shown image."""

from __future__ import annotations

from typing import Any
from collections.abc import Callable


from viewer.qt.flow import flow_row
from viewer.qt.qt import Qt, QtWidgets
from viewer.qt.layers.widgets import (HColorBar, ImageTile, colour_image, fill_table, make_table, solid_lut)
from viewer.qt.layers.core import LayersCore

class SanityTab(LayersCore):
    """Sanity tab: the model-randomisation test of the explanation on the shown image."""

    def _build_sanity(self) -> QtWidgets.QWidget:
        W = QtWidgets
        w = W.QWidget()
        lay = W.QVBoxLayout(w)
        lay.addWidget(W.QLabel("Model-randomisation test (Adebayo et al. 2018): a heatmap that survives random "
                               "weights does not explain what the model learned."))
        self.sanity_button = W.QPushButton("Run on this image")
        self.sanity_button.clicked.connect(self.request_sanity)
        lay.addWidget(self.sanity_button, 0, Qt.AlignmentFlag.AlignLeft)
        self.sanity_original = ImageTile("original model", 170)
        self.sanity_random = ImageTile("all layers randomised", 170)
        lay.addWidget(flow_row(self.sanity_original, self.sanity_random))  # side by side when they fit
        self.sanity_bar = HColorBar("heatmap (relative, 0 .. 1)")
        self.sanity_bar.set_range(0, 1, lut=solid_lut("jet"))
        lay.addWidget(self.sanity_bar)
        self.sanity_summary = W.QLabel("")
        self.sanity_summary.setWordWrap(True)
        lay.addWidget(self.sanity_summary)
        self.sanity_table = make_table(["randomised down to", "Spearman", "SSIM"])
        lay.addWidget(self.sanity_table, 1)
        return w

    def request_sanity(self) -> None:
        if self.series is None:
            return
        target = self.target()
        image = target.image()
        method = getattr(self.ai, "method", "gradcam")

        def fn(model: Any, cancel: Any, progress: Callable[[int, int], None]) -> Any:
            from inference.explain import supported_methods
            from inference.probes import sanity_check

            use = method if method in supported_methods(model) else supported_methods(model)[0]
            return target.text, sanity_check(model, image, 0, use, cancel=cancel, progress=progress)

        self.submit("sanity", fn)

    def _show_sanity(self, value: Any) -> None:
        where, res = value
        jet = solid_lut("jet")
        self.sanity_original.set_image(colour_image(res.original, 0, 1, jet), f"original model, {where}")
        last = res.steps[-1] if res.steps else None
        self.sanity_random.set_image(colour_image(res.randomised, 0, 1, jet),
                                     "all layers randomised" + (f": Spearman {last.spearman:.2f}, SSIM {last.ssim:.2f}"
                                                                if last else ""))
        if float(res.original.max()) <= 0:
            self.sanity_summary.setText(f"{res.method}: the original heatmap is empty on this image (the model sees "
                                        "no finding here), so there is nothing to compare: run it on an image with a "
                                        "finding (AI panel: Findings).")
        elif last is not None:
            verdict = ("the heatmap changes when the weights are destroyed: it depends on what the model learned"
                       if last.spearman < 0.5 else "WARNING: the heatmap survives random weights")
            self.sanity_summary.setText(f"{res.method}: {verdict}.")
        fill_table(self.sanity_table, [[s.layer or "(top-level parameters)", f"{s.spearman:.3f}", f"{s.ssim:.3f}"]
                                        for s in res.steps])
