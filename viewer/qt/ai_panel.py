"""The AI dock: model picker with its card, device, explanation method, overlay controls per label
(colour map + colour bar in probability units, opacity, threshold, contour mode, show/hide key),
the scores-along-the-series plot, the findings list, and progress with ETA and a cancel button.

The panel is a view of the Qt-free state (:class:`~viewer.state.ai.AISettings`: models, chosen model, per-label
overlay settings, status; :class:`~viewer.state.ai.AIRunState`: progress, methods, results): it renders their
events and turns the user's edits (model picker, overlay controls) into state changes. It holds no model and
imports no torch. The AI controller (:mod:`viewer.qt.ai_controller`) listens to the state and to the panel's
request signals (run, cancel, method, slice, finding).
"""

from __future__ import annotations

import html
from typing import Any
from collections.abc import Mapping, Sequence

import numpy as np

from viewer.ai import Finding, SeriesResults
from viewer.display.colormaps import COLORMAPS, overlay_lut
from viewer.qt.qt import QColor, QPainter, Qt, QtCore, QtGui, QtWidgets, Signal, pg
from viewer.qt.bind import Bindings
from viewer.qt.flow import WrapLabel
from viewer.qt.marks import mark_scale
from viewer.qt.progress import set_progress
from viewer.state.ai import (AIProgress, AIRunState, AISettings, findings_at, finding_text, no_finding_text,
                             ood_caption)
from viewer.state.ai_models import ModelEntry, OverlaySettings

__all__ = ["AIPanel", "ColorBar", "ModelEntry", "OverlaySettings", "ScoresPlot", "card_html", "device_text"]

CARD_HEIGHT = 130
"""Design pixels (at 96 DPI; times logical DPI / 96) for the model card (it scrolls): the scores plot needs the room."""
FINDINGS_HEIGHT = 110
"""Design pixels for the findings list at most (it scrolls)."""


def _unit(widget: QtWidgets.QWidget) -> float:
    """Logical DPI / 96 (at least 1): fixed sizes in design pixels grow with the text at high DPI."""
    return mark_scale(widget).unit
OVERLAY_KEY = "O"
"""Shortcut that shows/hides the AI overlay."""


def device_text(device: str) -> str:
    """``cuda:0`` -> ``GPU (CUDA, cuda:0)``; ``mps`` -> ``GPU (Apple MPS)``; ``cpu`` -> ``CPU``."""
    kind = device.split(":")[0].lower()
    if kind == "cuda":
        return f"GPU (CUDA, {device})"
    if kind == "mps":
        return "GPU (Apple MPS)"
    return "CPU" if kind == "cpu" else device


def card_html(card: Any) -> str:
    """The card facts a clinician needs, as rich text (with a red warning where it says so)."""
    esc = html.escape
    parts = [f"<b>{esc(card.name)}</b> v{esc(card.version)} &middot; labels: {esc(', '.join(card.labels))}"]
    modalities = getattr(card.input, "modalities", ()) or ()
    if modalities:
        parts.append(f"for {esc(', '.join(modalities))}")
    text = " ".join([card.description or "", card.intended_use or ""]).lower()
    if "not for clinical" in text or "not for diagnostic" in text:
        parts.append("<span style='color:#ff5050'><b>NOT FOR CLINICAL USE</b></span>")
    for title, value in (("Intended use", card.intended_use), ("Description", card.description),
                         ("Training data", card.training_data)):
        if value:
            parts.append(f"<b>{title}:</b> {esc(str(value))}")
    if card.metrics:
        metrics = ", ".join(f"{esc(str(k))} {_fmt_metric(v)}" for k, v in card.metrics.items())
        parts.append(f"<b>Metrics:</b> {metrics}")
    if card.thresholds:
        parts.append("<b>Thresholds:</b> " + ", ".join(f"{esc(k)} {v:.2f}" for k, v in card.thresholds.items()))
    if card.authors or card.license:
        parts.append(f"<b>Authors:</b> {esc(', '.join(card.authors))} &middot; <b>License:</b> {esc(card.license)}")
    return "<br>".join(parts)


def _fmt_metric(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3f}"
    if isinstance(value, dict):
        return "(" + ", ".join(f"{html.escape(str(k))} {_fmt_metric(v)}" for k, v in value.items()) + ")"
    return html.escape(str(value))


class ColorBar(QtWidgets.QWidget):
    """A vertical colour bar labelled in probability (0 to 1) with the threshold marked."""

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self._settings = OverlaySettings()
        self.setSizePolicy(QtWidgets.QSizePolicy.Policy.Fixed, QtWidgets.QSizePolicy.Policy.Expanding)

    def minimumSizeHint(self) -> QtCore.QSize:  # noqa: N802 (Qt name)
        """Room for its caption and tick labels in the font in force (at 192 DPI 72 px clipped both)."""
        fm = self.fontMetrics()
        ticks = 4 + 16 + 7 + fm.horizontalAdvance("0.00") + 4
        return QtCore.QSize(max(fm.horizontalAdvance("probability") + 2, ticks), max(140, 9 * fm.height()))

    def sizeHint(self) -> QtCore.QSize:  # noqa: N802
        return self.minimumSizeHint()

    def set_settings(self, settings: OverlaySettings) -> None:
        self._settings = settings
        self.update()

    def paintEvent(self, event: QtGui.QPaintEvent) -> None:  # noqa: N802 (Qt name)
        p = QPainter(self)
        fm = p.fontMetrics()
        top, bottom = fm.height() * 3 // 2 + 4, self.height() - fm.height() // 2 - 2
        bar = QtCore.QRect(4, top, 16, bottom - top)
        lut = overlay_lut(self._settings.colormap, 256, alpha_floor=0.0, alpha_full=1e-6)
        grad = QtGui.QLinearGradient(0, bar.bottom(), 0, bar.top())
        for pos in np.linspace(0, 1, 17):
            r, g, b, _ = lut[int(pos * 255)]
            grad.setColorAt(float(pos), QColor(int(r), int(g), int(b)))
        p.fillRect(bar, grad)
        p.setPen(QColor(200, 200, 200))
        p.drawRect(bar)
        p.drawText(0, 0, self.width(), fm.height() + 2, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop, "probability")
        for v in (0.0, 0.25, 0.5, 0.75, 1.0):
            y = int(bar.bottom() - v * bar.height())
            p.drawLine(bar.right(), y, bar.right() + 4, y)
            p.drawText(bar.right() + 7, y + fm.ascent() // 2 - 1, f"{v:.2f}")
        y = int(bar.bottom() - self._settings.threshold * bar.height())
        p.setPen(QtGui.QPen(QColor(255, 255, 255), 2))
        p.drawLine(bar.left() - 3, y, bar.right() + 3, y)
        p.end()


class ScoresPlot(pg.PlotWidget):
    """Each label's score along the series, the threshold line and the current slice; click jumps."""

    sliceClicked = Signal(int)

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMinimumHeight(int(110 * mark_scale(self).unit))
        self.setMouseEnabled(x=False, y=False)
        self.hideButtons()
        self.setYRange(0, 1, padding=0.02)
        self.setLabel("left", "p")
        self.setLabel("bottom", "image (Im, as in the view)")
        self.showGrid(x=False, y=True, alpha=0.25)
        self._curves: dict[str, pg.PlotDataItem] = {}
        self._n = 0
        self.threshold_line = pg.InfiniteLine(pos=0.5, angle=0, pen=pg.mkPen((255, 255, 255), style=Qt.PenStyle.DashLine))
        self.cursor = pg.InfiniteLine(pos=0, angle=90, pen=pg.mkPen((80, 200, 255)))
        self.addItem(self.threshold_line)
        self.addItem(self.cursor)
        self.scene().sigMouseClicked.connect(self._clicked)

    def set_scores(self, labels: Sequence[str], scores: np.ndarray) -> None:
        colors = [(255, 120, 40), (80, 220, 120), (230, 80, 230), (255, 230, 60), (90, 160, 255)]
        for name in list(self._curves):
            if name not in labels:
                self.removeItem(self._curves.pop(name))
        self._n = int(scores.shape[0])
        x = np.arange(1, scores.shape[0] + 1)  # 1-based like the views' "Im k/n"
        for i, label in enumerate(labels):
            if label not in self._curves:
                self._curves[label] = self.plot(pen=pg.mkPen(colors[i % len(colors)], width=2), name=label)
            # NaN (not run yet) leaves gaps; a short series (a radiograph: one image) gets dots, not a line
            y = scores[:, i].astype(np.float64)
            few = scores.shape[0] <= 3 and bool(np.isfinite(y).any())
            self._curves[label].setData(x, y, connect="finite",
                                        symbol="o" if few else None, symbolSize=9,
                                        symbolBrush=colors[i % len(colors)], symbolPen=None)
        if scores.shape[0] <= 3:
            self.setXRange(0.5, scores.shape[0] + 0.5, padding=0.0)
        else:
            self.setXRange(1, scores.shape[0], padding=0.01)

    def curve_data(self, label: str) -> tuple[np.ndarray, np.ndarray]:
        """(x = 1-based image number, y = score) of a label's curve."""
        return self._curves[label].getData()

    def set_cursor(self, k: int) -> None:
        """Mark slice index ``k`` (0-based)."""
        self.cursor.setValue(k + 1)

    def _clicked(self, event: Any) -> None:
        pos = self.plotItem.vb.mapSceneToView(event.scenePos())
        if self._n:
            self.sliceClicked.emit(int(np.clip(round(pos.x()) - 1, 0, self._n - 1)))


class AIPanel(QtWidgets.QWidget):
    """The AI side panel (put it in a dock)."""

    modelChosen = Signal(object)  # ModelEntry
    """The user picked this model in the picker (the choice is already in the state)."""
    methodChosen = Signal(str)
    """The user picked this explanation method (the choice is already in the state)."""
    runRequested = Signal()
    cancelRequested = Signal()
    sliceRequested = Signal(int)
    """A click on the scores plot: go to this slice (the crosshair keeps its place in the image)."""
    findingRequested = Signal(int)
    """A finding was chosen: go to its peak slice and centre on the heatmap's peak there."""
    overlayChanged = Signal(str)  # label
    """A label's overlay settings changed in the state (from the controls or elsewhere)."""

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("aiPanel")
        self._findings: list[Finding] = []
        self._updating = False
        self._bindings = Bindings()
        self._build()
        self.follow(AISettings(), AIRunState())  # a panel of its own until a controller hands it its state

    # -- layout -------------------------------------------------------------------------------
    def heightForWidth(self, width: int) -> int:  # noqa: N802 (Qt name)
        """The least height (its captions wrap: a dock's scroll area sizes a height-for-width body to this; with
        the preferred height the model card took all its room and pushed the scores plot below a laptop's dock;
        now the card and the plot share what the dock has, scrolling only below the least height)."""
        return self.minimumSizeHint().height()

    def _build(self) -> None:
        W = QtWidgets
        outer = W.QVBoxLayout(self)
        outer.setContentsMargins(4, 4, 4, 4)

        model_box = W.QGroupBox("Model")
        form = W.QFormLayout(model_box)
        self.model_combo = W.QComboBox()
        self.model_combo.currentIndexChanged.connect(self._model_index_changed)
        self.method_combo = W.QComboBox()
        self.method_combo.currentTextChanged.connect(self._method_changed)
        self.device_label = WrapLabel("Device: (model not loaded yet)")
        self.card_label = W.QLabel()
        self.card_label.setWordWrap(True)
        self.card_label.setTextFormat(Qt.TextFormat.RichText)
        self.card_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.run_button = W.QPushButton("Run on series")
        self.run_button.clicked.connect(self.runRequested)
        form.addRow("Model", self.model_combo)
        form.addRow("Explain", self.method_combo)
        form.addRow(self.device_label)
        card_scroll = W.QScrollArea()
        card_scroll.setWidget(self.card_label)
        card_scroll.setWidgetResizable(True)
        card_scroll.setFrameShape(W.QFrame.Shape.NoFrame)
        card_scroll.setMaximumHeight(int(CARD_HEIGHT * _unit(self)))
        card_scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        form.addRow(card_scroll)
        form.addRow(self.run_button)
        outer.addWidget(model_box)

        progress_row = W.QHBoxLayout()
        self.progress = W.QProgressBar()
        self.progress.setFormat("%v / %m slices")
        self.eta_label = WrapLabel("")
        self.cancel_button = W.QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancelRequested)
        progress_row.addWidget(self.progress, 1)
        progress_row.addWidget(self.cancel_button)
        outer.addLayout(progress_row)
        outer.addWidget(self.eta_label)  # under the bar: beside it, "0 / 120 slices" was squeezed onto two lines
        self.eta_label.hide()
        self.status_label = WrapLabel("")
        self.status_label.setWordWrap(True)
        outer.addWidget(self.status_label)

        overlay_box = W.QGroupBox("Overlay")
        grid = W.QGridLayout(overlay_box)
        self.label_combo = W.QComboBox()
        self.label_combo.currentTextChanged.connect(self._label_changed)
        self.visible_check = W.QCheckBox(f"Show ({OVERLAY_KEY})")
        self.visible_check.setChecked(True)
        self.cmap_combo = W.QComboBox()
        self.cmap_combo.addItems(list(COLORMAPS))
        self.cmap_combo.setCurrentText(OverlaySettings().colormap)
        self.opacity_slider = W.QSlider(Qt.Orientation.Horizontal)
        self.opacity_slider.setRange(0, 100)
        self.opacity_slider.setValue(50)
        self.threshold_spin = W.QDoubleSpinBox()
        self.threshold_spin.setRange(0.0, 1.0)
        self.threshold_spin.setSingleStep(0.05)
        self.threshold_spin.setDecimals(2)
        self.threshold_spin.setValue(0.5)
        self.contour_check = W.QCheckBox("Contour")
        self.contour_check.setToolTip("Draw only the isoline at the threshold (a 2 px line at any zoom) instead of "
                                      "the filled map; remembered between sessions")
        for sig in (self.visible_check.toggled, self.cmap_combo.currentTextChanged, self.opacity_slider.valueChanged,
                    self.threshold_spin.valueChanged, self.contour_check.toggled):
            sig.connect(self._controls_changed)
        self.colorbar = ColorBar()
        grid.addWidget(WrapLabel("Label"), 0, 0)
        grid.addWidget(self.label_combo, 0, 1)
        grid.addWidget(self.visible_check, 1, 0, 1, 2)
        grid.addWidget(WrapLabel("Colours"), 2, 0)
        grid.addWidget(self.cmap_combo, 2, 1)
        grid.addWidget(WrapLabel("Opacity"), 3, 0)
        grid.addWidget(self.opacity_slider, 3, 1)
        grid.addWidget(WrapLabel("Threshold"), 4, 0)
        grid.addWidget(self.threshold_spin, 4, 1)
        grid.addWidget(self.contour_check, 5, 0, 1, 2)
        grid.addWidget(self.colorbar, 0, 2, 6, 1)
        outer.addWidget(overlay_box)

        self.toggle_action = QtGui.QAction("Toggle AI overlay", self)
        self.toggle_action.setShortcut(QtGui.QKeySequence(OVERLAY_KEY))
        self.toggle_action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        self.toggle_action.triggered.connect(self.visible_check.toggle)
        self.addAction(self.toggle_action)

        outer.addWidget(WrapLabel("Scores along the series (click to jump)"))
        self.plot = ScoresPlot()
        self.plot.sliceClicked.connect(self.sliceRequested)
        outer.addWidget(self.plot, 1)
        from viewer.qt.ood_plot import OODPlot

        self.ood_label = WrapLabel("Unlike the training data (OOD distance / threshold)")
        self.ood_label.setWordWrap(True)  # a long summary must never widen the dock
        self.ood_plot = OODPlot()
        self.ood_label.hide()
        self.ood_plot.hide()
        outer.addWidget(self.ood_label)
        outer.addWidget(self.ood_plot)
        outer.addWidget(WrapLabel("Findings (above threshold)"))
        self.findings_list = W.QListWidget()
        self.findings_list.setMaximumHeight(int(FINDINGS_HEIGHT * _unit(self)))
        self.findings_list.setWordWrap(True)  # a finding's note (e.g. a missing slice under its peak) stays in view
        self.findings_list.itemActivated.connect(self._finding_activated)
        self.findings_list.itemClicked.connect(self._finding_activated)
        outer.addWidget(self.findings_list)

    # -- models (rendered from the state; the picker changes the state) -----------------------------
    def set_models(self, entries: Sequence[ModelEntry], current: str | None = None) -> None:
        """Into the state: the installed packages (see :meth:`AISettings.set_models`)."""
        self.settings.set_models(list(entries), current)

    @property
    def entries(self) -> list[ModelEntry]:
        return list(self.settings.models)

    def current_entry(self) -> ModelEntry | None:
        return self.settings.entry

    def select_model(self, name: str) -> bool:
        """Into the state: choose a model by name; False if not installed or unusable."""
        return self.settings.select(name)

    def _render_models(self, entries: list[ModelEntry]) -> None:
        """The picker lists every package; those that failed to read are disabled, with their error."""
        self._updating = True
        self.model_combo.clear()
        for idx, entry in enumerate(entries):
            self.model_combo.addItem(entry.name if entry.error is None else f"{entry.name} (unusable)")
            if entry.error is not None:
                item = self.model_combo.model().item(idx)
                item.setEnabled(False)
                item.setToolTip(entry.error)
        self._updating = False
        self._render_model()

    def _render_model(self, *_: Any) -> None:
        """The chosen model: the picker's row, its card, the Run button."""
        entry = self.settings.entry
        models = self.settings.models
        index = next((i for i, e in enumerate(models) if e is entry), -1)
        if index < 0 and entry is not None:
            index = next((i for i, e in enumerate(models) if e == entry), -1)
        self._updating = True
        self.model_combo.setCurrentIndex(index)
        self._updating = False
        if entry is None:
            self.card_label.setText("<i>No model packages installed.</i>" if not models else
                                    "<i>No usable model package.</i>")
        else:
            self.card_label.setText(card_html(entry.card))
        self.run_button.setEnabled(entry is not None and entry.usable)

    def _model_index_changed(self, index: int) -> None:
        if self._updating:
            return
        models = self.settings.models
        entry = models[index] if 0 <= index < len(models) else None
        if entry is None or not entry.usable:
            self._render_model()
            return
        self.settings.choose(entry)
        self.modelChosen.emit(entry)

    def set_methods(self, methods: Sequence[str], current: str | None = None) -> None:
        """The loaded model's methods and the one in force (the list is refilled only when it changed: the user's
        pick in this very combo comes back here as the method in force)."""
        self._updating = True
        if [self.method_combo.itemText(i) for i in range(self.method_combo.count())] != list(methods):
            self.method_combo.clear()
            self.method_combo.addItems(list(methods))
        if current in methods:
            self.method_combo.setCurrentText(current)
        self._updating = False

    def current_method(self) -> str:
        return self.method_combo.currentText()

    def _method_changed(self, text: str) -> None:
        if not self._updating and text:
            self.settings.set_method(text)
            self.methodChosen.emit(text)

    def set_device(self, device: str) -> None:
        self.device_label.setText(f"Device: {device_text(device)}")

    # -- overlay controls (rendered from the state; edits change the state) ---------------------------
    def set_preferences(self, prefs: Mapping[str, Any]) -> None:
        """Into the state: saved overlay preferences (see :meth:`AISettings.set_preferences`)."""
        self.settings.set_preferences(prefs)

    def preferences(self) -> dict[str, Any]:
        """The overlay preferences in force (what the viewer saves when they change)."""
        return dict(self.settings.preferences)

    def overlay_settings(self, label: str) -> OverlaySettings:
        return self.settings.overlay_settings(label)

    def _render_labels(self, labels: list[str]) -> None:
        self._updating = True
        self.label_combo.clear()
        self.label_combo.addItems(list(labels))
        self._updating = False
        if labels:
            self._label_changed(labels[0])

    def _render_overlay(self, label: str) -> None:
        if label == self.label_combo.currentText():
            self._label_changed(label)
        self.overlayChanged.emit(label)

    def _label_changed(self, label: str) -> None:
        if not label or self._updating:
            return
        s = self.overlay_settings(label)
        self._updating = True
        self.visible_check.setChecked(s.visible)
        self.cmap_combo.setCurrentText(s.colormap)
        self.opacity_slider.setValue(round(s.opacity * 100))
        self.threshold_spin.setValue(s.threshold)
        self.contour_check.setChecked(s.contour)
        self._updating = False
        self.colorbar.set_settings(s)
        self.plot.threshold_line.setValue(s.threshold)

    def _controls_changed(self, *_: Any) -> None:
        label = self.label_combo.currentText()
        if self._updating or not label:
            return
        self.settings.set_overlay(label, visible=self.visible_check.isChecked(), colormap=self.cmap_combo.currentText(),
                                  opacity=self.opacity_slider.value() / 100.0,
                                  threshold=float(self.threshold_spin.value()), contour=self.contour_check.isChecked())

    # -- results ------------------------------------------------------------------------------
    def set_results(self, results: SeriesResults | None) -> None:
        """Redraw the scores plot and the findings list (thresholds from the overlay settings)."""
        if results is None:
            self.show_results(None, [])
            return
        thresholds = {lab: self.overlay_settings(lab).threshold for lab in results.labels}
        self.show_results(results, findings_at(results, thresholds))

    def show_results(self, results: SeriesResults | None, findings: list[Finding]) -> None:
        """Render ``results``' scores and their ``findings`` (derived by the state)."""
        if results is None:
            self.plot.set_scores([], np.zeros((0, 0)))
        else:
            self.plot.set_scores(results.labels, results.scores)
            if self.plot.getAxis("bottom").labelText != results.axis_text:  # a run on reformats counts its slices
                self.plot.setLabel("bottom", results.axis_text)
        self._findings = list(findings)
        self.findings_list.clear()
        for f in findings:
            item = QtWidgets.QListWidgetItem(finding_text(f, results))
            if results is not None and results.gap_note(f.peak_slice):  # rests on a slice never acquired
                item.setForeground(QtGui.QColor(255, 160, 80))  # the views' gap readout colour
                item.setToolTip(item.text())
            self.findings_list.addItem(item)
        quiet = no_finding_text(results, findings)
        if quiet:
            item = QtWidgets.QListWidgetItem(quiet)
            item.setFlags(Qt.ItemFlag.NoItemFlags)
            self.findings_list.addItem(item)

    @property
    def findings(self) -> list[Finding]:
        return list(self._findings)

    def _finding_activated(self, item: QtWidgets.QListWidgetItem) -> None:
        row = self.findings_list.row(item)
        if 0 <= row < len(self._findings):
            self.findingRequested.emit(self._findings[row].peak_slice)

    def set_current_slice(self, k: int) -> None:
        self.plot.set_cursor(k)
        self.ood_plot.set_cursor(k)

    def set_ood(self, distances: np.ndarray | None, threshold: float | None, summary: str = "") -> None:
        """Plot the OOD distances (hidden when the model has no statistics or nothing ran)."""
        shown = distances is not None and threshold is not None and bool(np.isfinite(distances).any())
        self.ood_label.setVisible(shown)
        self.ood_plot.setVisible(shown)
        if distances is not None and threshold is not None:
            self.ood_plot.set_values(distances, threshold)
            self.ood_label.setText(ood_caption(summary))

    # -- progress and messages ----------------------------------------------------------------
    def follow(self, settings: AISettings, run: AIRunState) -> Bindings:
        """Render ``settings`` (models, chosen model, labels and their overlay settings, status line, device)
        and ``run`` (progress, methods, results, OOD, cursor) now and on each of their events (the state it
        followed before is let go); the picker and the overlay controls change ``settings``."""
        self._bindings.clear()
        self.settings, self.run_state = settings, run
        b = self._bindings
        b.connect(settings.modelsChanged, self._render_models)
        b.connect(settings.modelChanged, self._render_model)
        b.connect(settings.labelsChanged, self._render_labels)
        b.connect(settings.overlay.changed, self._render_overlay)
        b.connect(settings.statusChanged, self.set_status)
        b.connect(settings.deviceChanged, self.set_device)
        b.connect(run.progressChanged, self.show_progress)
        b.connect(run.methodsChanged, self.set_methods)
        b.connect(run.resultsChanged, self.show_results)
        b.connect(run.oodChanged, self.set_ood)
        b.connect(run.currentSliceChanged, self.set_current_slice)
        self._render_models(settings.models)
        self._render_labels(settings.labels)
        self.set_status(settings.status)
        if run.methods:
            self.set_methods(run.methods, run.method)
        self.show_progress(run.progress)
        return b

    def set_progress(self, done: int, total: int, eta_s: float | None, running: bool) -> None:
        self.show_progress(AIProgress(done, total, eta_s, running))

    def show_progress(self, p: AIProgress) -> None:
        set_progress(self.progress, p.done, p.total)
        self.progress.setFormat(p.count_format)
        self.cancel_button.setEnabled(p.running)
        self.eta_label.setText(p.eta_text)
        self.eta_label.setVisible(bool(p.eta_text))  # its own line under the bar, only while it says something

    def set_status(self, text: str) -> None:
        self.status_label.setText(text)
