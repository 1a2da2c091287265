"""The layer inspector dock: :class:`LayersPanel` (all tabs over one core), following the window's series and the
AI's model; ``attach_layers(window, ai)`` adds it (hidden until opened; its dock comes from the panel registry)."""

from __future__ import annotations

from typing import Any


from viewer.qt.bind import Bindings
from viewer.qt.qt import QObject, Qt, QtWidgets
from viewer.qt.layers.activations import ActivationsTab
from viewer.qt.layers.filters import FiltersTab
from viewer.qt.layers.cam import CamTab
from viewer.qt.layers.featurevis import FeatureVisTab
from viewer.qt.layers.examples import ExamplesTab
from viewer.qt.layers.sanity import SanityTab
from viewer.qt.layers.stats import StatsTab

class LayersPanel(ActivationsTab, FiltersTab, CamTab, FeatureVisTab, ExamplesTab, SanityTab, StatsTab):
    """The layer inspector dock's widget: every tab over one core (see the package docstring)."""

    def _build(self) -> None:
        W = QtWidgets
        lay = W.QVBoxLayout(self)
        lay.setContentsMargins(6, 6, 6, 6)
        self.header = W.QLabel("Layer inspector: open a series with a model")
        self.header.setWordWrap(True)
        self.search = W.QLineEdit()
        self.search.setPlaceholderText("Search layers by name (e.g. block3, conv)")
        self.search.setClearButtonEnabled(True)
        self.search.textChanged.connect(self._filter_tree)
        self.tree = W.QTreeWidget()
        self.tree.setHeaderLabels(["Layer", "Type", "Output (C x h x w)", "Params"])
        self.tree.setAlternatingRowColors(True)
        self.tree.setMinimumHeight(170)
        self.tree.itemSelectionChanged.connect(self._on_tree_selection)
        split = W.QSplitter(Qt.Orientation.Vertical)
        split.setChildrenCollapsible(False)
        top = W.QWidget()
        tl = W.QVBoxLayout(top)
        tl.setContentsMargins(0, 0, 0, 0)
        tl.addWidget(self.search)
        tl.addWidget(self.tree)
        split.addWidget(top)
        self.tabs = W.QTabWidget()
        self.tabs.addTab(self._build_activations(), "Activations")
        self.tabs.addTab(self._build_filters(), "Filters")
        self.tabs.addTab(self._build_cam(), "Layer CAM")
        self.tabs.addTab(self._build_featurevis(), "Feature vis")
        self.tabs.addTab(self._build_examples(), "Examples")
        self.tabs.addTab(self._build_sanity(), "Sanity")
        self.tabs.addTab(self._build_stats(), "Statistics")
        split.addWidget(self.tabs)
        split.setStretchFactor(0, 2)
        split.setStretchFactor(1, 5)
        self.status = W.QLabel("")
        self.status.setWordWrap(True)
        self.progress = W.QProgressBar()
        self.progress.setTextVisible(True)
        self.progress.setMaximumHeight(16)
        self.progress.hide()
        self.cancel_button = W.QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancel)
        self.cancel_button.hide()
        row = W.QHBoxLayout()
        row.addWidget(self.progress, 1)
        row.addWidget(self.cancel_button)
        lay.addWidget(self.header)
        lay.addWidget(split, 1)
        lay.addLayout(row)
        lay.addWidget(self.status)


class _Follow(QObject):
    """Refreshes the panel when the window shows a series, the slice changes or a model loads."""

    def __init__(self, panel: LayersPanel, window: Any) -> None:
        super().__init__(panel)
        self.panel, self.viewer_window = panel, window
        self._series: Any = None
        self._bindings = Bindings()
        window.seriesShown.connect(self.on_series)
        self._bindings_ai = Bindings()
        self._bindings_ai.connect(panel.ai.run_state.modelLoaded, self.on_model)
        panel.ai.finished.connect(self.on_model)

    def on_series(self, _stack_id: str = "") -> None:
        series = self.panel.series
        if series is not self._series:
            self._bindings.clear()
            self._series = series
            if series is not None:
                self._bindings.connect(series.crosshairChanged, self.panel.schedule_refresh)
        self.panel.schedule_refresh()

    def on_model(self, *_args: Any) -> None:
        self.on_series()


def attach_layers(window: Any, ai: Any) -> LayersPanel:
    """Add the layer inspector to ``window`` (its dock placed by ``window.install_panel`` from the registry's
    ``layers`` spec: hidden; ``panel.open()`` shows it), driven by ``ai``."""
    from viewer.qt.panels import get_panel

    panel = LayersPanel(ai, window)
    panel.follow = _Follow(panel, window)
    window.install_panel(get_panel("layers"), panel)
    return panel


def layers_panel(app: Any) -> LayersPanel:
    """The registry's factory (:mod:`viewer.qt.panels`): the layer inspector, driven by the AI panel."""
    return attach_layers(app.window, app.ai)
