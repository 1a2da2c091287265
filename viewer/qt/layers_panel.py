"""The layer inspector dock: what each layer of the network computes on the shown image.

:class:`LayersPanel` lives on the GUI thread and never calls torch. Every computation is a *probe*: a
closure over copied inputs that the AI layer's single inference worker runs with its loaded model
(``AIWorker.scheduler.submit_probe`` -> ``RunnerSession.probe``, after the series' own slices), with
a cancel token and progress reported through :class:`ProbeBridge` signals (queued to this thread).
The probes themselves are ``inference.probes``. A channel map or layer-wise Grad-CAM is shown over
the image as the views' overlay ``LAYER_OVERLAY``, resized to the native grid with the same
pixel-centre mapping as the AI heatmaps, so both line up exactly.

``attach_layers(window, ai) -> LayersPanel`` adds the dock (hidden until opened: ``--panel layers``
or the Panels menu).
"""

from __future__ import annotations

import itertools
import threading
import time
from dataclasses import dataclass
from typing import Any
from collections.abc import Callable

import numpy as np

from viewer.ai.model_input import model_input
from viewer.display.coded import CodedVolume
from viewer.display.colormaps import overlay_lut
from viewer.display.channels import SORT_KEYS, channel_order, resize_to_native
from viewer.qt.bind import Bindings
from viewer.qt.wait import wait_until
from viewer.qt.qt import QObject, Qt, QtCore, QtGui, QtWidgets, Signal, pg
from viewer.qt.series_model import Overlay
from viewer.qt.progress import set_progress

LAYER_OVERLAY = "Layer inspector"
GRID_CHANNELS = 24
TILE_PX = 72
EXAMPLE_PX = 64



def colour_image(values: np.ndarray, lo: float, hi: float, lut: np.ndarray | None = None) -> QtGui.QImage:
    """A ``(h, w)`` array as an RGB QImage through ``lut`` ((256, 3|4) uint8; grey without one)."""
    span = hi - lo if hi > lo else 1.0
    idx = np.clip((values.astype(np.float64) - lo) / span * 255.0, 0, 255).astype(np.uint8)
    rgb = np.repeat(idx[..., None], 3, axis=2) if lut is None else lut[idx][..., :3]
    rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
    h, w = rgb.shape[:2]
    return QtGui.QImage(rgb.data, w, h, 3 * w, QtGui.QImage.Format.Format_RGB888).copy()


def solid_lut(name: str) -> np.ndarray:
    """Opaque (256, 4) LUT of a named ramp (for tiles and colour bars)."""
    return overlay_lut(name, 256, alpha_floor=0.0, alpha_full=1e-6)


def grey_lut() -> np.ndarray:
    """Opaque grey ramp (256, 4)."""
    v = np.arange(256, dtype=np.uint8)
    return np.stack([v, v, v, np.full(256, 255, np.uint8)], axis=1)


def diverging_lut() -> np.ndarray:
    """Blue - black - red for signed kernel weights (index 128 is zero)."""
    x = np.linspace(-1, 1, 256)
    r = np.clip(x, 0, 1) * 255
    b = np.clip(-x, 0, 1) * 255
    g = np.abs(x) * 60
    return np.stack([r, g, b, np.full(256, 255.0)], axis=1).round().astype(np.uint8)


# -- probe plumbing -------------------------------------------------------------------------------
@dataclass(frozen=True)
class ProbeOutcome:
    """What a probe sends back: its job, its value, or why it has none."""

    panel: int
    job: int
    kind: str
    value: Any = None
    error: str | None = None
    cancelled: bool = False
    seconds: float = 0.0
    thread: str = ""


class _AnyCancel:
    """Set when either the run's token or the job's own token is set."""

    def __init__(self, *events: threading.Event) -> None:
        self._events = events

    def is_set(self) -> bool:
        return any(e.is_set() for e in self._events)


class ProbeBridge(QObject):
    """Signals the worker thread emits; their receivers are bound methods of GUI-thread widgets."""

    progress = Signal(int, int, int)  # job, done, total


ProbeFn = Callable[[Any, Any, Callable[[int, int], None]], Any]


def _one_cpu_thread(fn: ProbeFn) -> ProbeFn:
    """Run a probe (batch-1 or small-batch passes) with one torch intra-op thread on a CPU.

    On a busy machine several intra-op threads waiting on each other are many times slower than one
    (demo model, load 8 on 2 cores: feature visualisation 84 s with 2 threads vs 7 s with 1; dataset
    examples over 120 slices 6.9 s vs 1.0 s).
    The worker's own setting is restored afterwards. Runs on the worker thread (torch imported there).
    """

    def wrapped(model: Any, cancel: Any, progress: Callable[[int, int], None]) -> Any:
        from inference.runner import torch_threads

        with torch_threads(1 if model.device.type == "cpu" else None):
            return fn(model, cancel, progress)

    return wrapped


# -- small widgets ----------------------------------------------------------------------------------
class ImageTile(QtWidgets.QWidget):
    """An image (pixel-exact, scaled with nearest neighbour) above a caption."""

    def __init__(self, caption: str = "", size: int = 160, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        lay = QtWidgets.QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(2)
        self.image = QtWidgets.QLabel()
        self.image.setFixedSize(size, size)
        self.image.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.image.setStyleSheet("background: #111; border: 1px solid #555;")
        self.caption = QtWidgets.QLabel(caption)
        self.caption.setWordWrap(True)
        self.caption.setFixedWidth(max(size, 220))
        self.caption.setMinimumHeight(3 * self.caption.fontMetrics().height())
        self.caption.setAlignment(Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop)
        self.setSizePolicy(QtWidgets.QSizePolicy.Policy.Fixed, QtWidgets.QSizePolicy.Policy.Fixed)
        lay.addWidget(self.image)
        lay.addWidget(self.caption)
        self._size = size

    def set_image(self, img: QtGui.QImage | None, caption: str | None = None) -> None:
        if img is None:
            self.image.clear()
        else:
            pix = QtGui.QPixmap.fromImage(img).scaled(self._size, self._size, Qt.AspectRatioMode.KeepAspectRatio,
                                                      Qt.TransformationMode.FastTransformation)
            self.image.setPixmap(pix)
        if caption is not None:
            self.caption.setText(caption)


class HColorBar(QtWidgets.QWidget):
    """A horizontal colour bar with a title and value ticks (activation units, weights ...)."""

    def __init__(self, title: str = "", parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.title, self.lo, self.hi = title, 0.0, 1.0
        self.lut = solid_lut("hot")
        self.setMinimumHeight(44)
        self.setSizePolicy(QtWidgets.QSizePolicy.Policy.Expanding, QtWidgets.QSizePolicy.Policy.Fixed)

    def set_range(self, lo: float, hi: float, title: str | None = None, lut: np.ndarray | None = None) -> None:
        self.lo, self.hi = float(lo), float(hi)
        if title is not None:
            self.title = title
        if lut is not None:
            self.lut = lut
        self.update()

    def paintEvent(self, event: QtGui.QPaintEvent) -> None:  # noqa: N802 (Qt name)
        p = QtGui.QPainter(self)
        fm = p.fontMetrics()
        p.setPen(QtGui.QColor(220, 220, 220))
        p.drawText(4, fm.ascent() + 1, self.title)
        top = fm.height() + 3
        bar = QtCore.QRect(8, top, self.width() - 16, 10)
        grad = QtGui.QLinearGradient(bar.left(), 0, bar.right(), 0)
        for pos in np.linspace(0, 1, 17):
            r, g, b = (int(v) for v in self.lut[int(pos * 255)][:3])
            grad.setColorAt(float(pos), QtGui.QColor(r, g, b))
        p.fillRect(bar, grad)
        p.drawRect(bar)
        for pos in (0.0, 0.5, 1.0):
            x = int(bar.left() + pos * bar.width())
            p.drawLine(x, bar.bottom(), x, bar.bottom() + 3)
            text = f"{self.lo + pos * (self.hi - self.lo):.3g}"
            tw = fm.horizontalAdvance(text)
            p.drawText(int(np.clip(x - tw / 2, 0, self.width() - tw)), bar.bottom() + 4 + fm.ascent(), text)
        p.end()


def _table(headers: list[str]) -> QtWidgets.QTableWidget:
    t = QtWidgets.QTableWidget(0, len(headers))
    t.setHorizontalHeaderLabels(headers)
    t.verticalHeader().setVisible(False)
    t.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
    t.setSelectionBehavior(QtWidgets.QAbstractItemView.SelectionBehavior.SelectRows)
    t.horizontalHeader().setStretchLastSection(True)
    return t


def _fill_table(t: QtWidgets.QTableWidget, rows: list[list[str]]) -> None:
    t.setRowCount(len(rows))
    for r, row in enumerate(rows):
        for c, text in enumerate(row):
            t.setItem(r, c, QtWidgets.QTableWidgetItem(text))
    t.resizeColumnsToContents()


def _fmt_shape(shape: tuple[int, ...] | None) -> str:
    return "-" if shape is None else " x ".join(str(s) for s in shape[1:]) or "scalar"


def _fmt_count(n: int) -> str:
    return f"{n / 1e6:.2f} M" if n >= 1e6 else f"{n / 1e3:.1f} k" if n >= 1e3 else str(n)


# -- the panel --------------------------------------------------------------------------------------
class LayersPanel(QtWidgets.QWidget):
    """Layer tree, activations, filters, layer CAM, feature visualisation, examples, sanity, statistics."""

    layerChanged = Signal(str)
    channelChanged = Signal(int)
    idle = Signal()  # no probe pending any more

    _ids = itertools.count(1)

    def __init__(self, ai: Any, window: Any = None, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.ai = ai
        self.window = window
        self.dock: QtWidgets.QDockWidget | None = None
        self.panel_id = next(self._ids)
        self.bridge = ProbeBridge(self)
        self.bridge.progress.connect(self._on_progress)
        ai.worker.probeReady.connect(self._on_probe_ready)
        self._jobs = itertools.count(1)
        self._pending: dict[int, tuple[str, threading.Event, Any]] = {}  # job -> (kind, cancel, run key)
        self._latest: dict[str, int] = {}
        self.threads: list[str] = []  # worker threads probes ran on (shown in tests and the status line)
        self.follow: QObject | None = None
        self.model_key: tuple[str, str] | None = None  # (sha256, stack id) the tree was built for
        self.info: dict[str, Any] = {}
        self.layer: str | None = None
        self.channel: int | None = None
        self.maps: np.ndarray | None = None  # (C, h, w) of the selected layer on `slice_index`
        self.slice_index = 0
        self.examples: list[Any] = []
        self.sanity: Any = None
        self.featurevis: Any = None
        self._auto_channel = True
        self._raise_on_fill = False
        self._build()
        for label in self.findChildren(QtWidgets.QLabel):  # captions wrap: the dock's width, not theirs, rules
            label.setWordWrap(True)
        self._refresh_timer = QtCore.QTimer(self)
        self._refresh_timer.setSingleShot(True)
        self._refresh_timer.timeout.connect(self.refresh)
        self._reap_timer = QtCore.QTimer(self)
        self._reap_timer.setInterval(300)
        self._reap_timer.timeout.connect(self._reap)

    # -- layout ---------------------------------------------------------------------------------
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

    def _build_activations(self) -> QtWidgets.QWidget:
        W = QtWidgets
        w = W.QWidget()
        lay = W.QVBoxLayout(w)
        row = W.QHBoxLayout()
        row.addWidget(W.QLabel("Sort channels by"))
        self.sort_combo = W.QComboBox()
        self.sort_combo.addItems([f"{k} activation" for k in SORT_KEYS])
        self.sort_combo.currentIndexChanged.connect(lambda _i: self._show_grid())
        row.addWidget(self.sort_combo)
        row.addStretch(1)
        lay.addLayout(row)
        self.act_caption = W.QLabel("")
        self.act_caption.setWordWrap(True)
        lay.addWidget(self.act_caption)
        self.grid = W.QListWidget()
        self.grid.setViewMode(W.QListView.ViewMode.IconMode)
        self.grid.setIconSize(QtCore.QSize(TILE_PX, TILE_PX))
        self.grid.setResizeMode(W.QListView.ResizeMode.Adjust)
        self.grid.setMovement(W.QListView.Movement.Static)
        self.grid.setSpacing(4)
        self.grid.setUniformItemSizes(True)
        # the selected tile keeps its colours (a frame, not Qt's tinted fill)
        self.grid.setStyleSheet("QListWidget::item:selected { background: transparent; border: 2px solid #3af; "
                                "color: #6cf; }")
        self.grid.itemSelectionChanged.connect(self._on_grid_selection)
        lay.addWidget(self.grid, 1)
        self.act_bar = HColorBar("tiles: activation (one scale for all tiles)")
        lay.addWidget(self.act_bar)
        self.overlay_bar = HColorBar("over the image: selected channel")
        lay.addWidget(self.overlay_bar)
        self.overlay_check = W.QCheckBox("Show the selected channel over the image")
        self.overlay_check.setChecked(True)
        self.overlay_check.toggled.connect(lambda _v: self._show_channel_overlay())
        lay.addWidget(self.overlay_check)
        return w

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
        self.weights_table = _table(["parameter", "shape", "mean", "std", "|max|", "~0 %"])
        lay.addWidget(self.weights_table, 1)
        return w

    @staticmethod
    def _tile_tab(caption: str, button_text: str, slot, bar_label: str, lut: np.ndarray
                  ) -> tuple[QtWidgets.QWidget, QtWidgets.QVBoxLayout, QtWidgets.QPushButton, ImageTile, HColorBar]:
        """A tab with a caption, one action button, an image tile and its colour bar (0 .. 1)."""
        W = QtWidgets
        w = W.QWidget()
        lay = W.QVBoxLayout(w)
        lay.addWidget(W.QLabel(caption))
        row = W.QHBoxLayout()
        button = W.QPushButton(button_text)
        button.clicked.connect(slot)
        row.addWidget(button)
        row.addStretch(1)
        lay.addLayout(row)
        tile = ImageTile("", 220)
        lay.addWidget(tile, 0, Qt.AlignmentFlag.AlignHCenter)
        bar = HColorBar(bar_label)
        bar.set_range(0, 1, lut=lut)
        lay.addWidget(bar)
        return w, lay, button, tile, bar

    def _build_cam(self) -> QtWidgets.QWidget:
        w, lay, self.cam_button, self.cam_tile, self.cam_bar = self._tile_tab(
            "Grad-CAM with the selected layer as target: localisation sharpens or blurs with depth.",
            "Compute at this layer", self.request_cam, "Grad-CAM (relative, 0 .. 1)", solid_lut("jet"))
        lay.addStretch(1)
        return w

    def _build_featurevis(self) -> QtWidgets.QWidget:
        w, lay, self.fv_button, self.fv_tile, self.fv_bar = self._tile_tab(
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

    def _build_examples(self) -> QtWidgets.QWidget:
        W = QtWidgets
        w = W.QWidget()
        lay = W.QVBoxLayout(w)
        lay.addWidget(W.QLabel("The slices of this series where the selected channel fires most; click one to "
                               "go there."))
        self.ex_button = W.QPushButton("Find in this series")
        self.ex_button.clicked.connect(self.request_examples)
        lay.addWidget(self.ex_button, 0, Qt.AlignmentFlag.AlignLeft)
        self.ex_table = _table(["#", "image", "peak", "mean", "row", "column"])
        self.ex_table.setIconSize(QtCore.QSize(EXAMPLE_PX, EXAMPLE_PX))
        self.ex_table.cellClicked.connect(self._on_example_clicked)
        lay.addWidget(self.ex_table, 1)
        return w

    def _build_sanity(self) -> QtWidgets.QWidget:
        W = QtWidgets
        w = W.QWidget()
        lay = W.QVBoxLayout(w)
        lay.addWidget(W.QLabel("Model-randomisation test (Adebayo et al. 2018): a heatmap that survives random "
                               "weights does not explain what the model learned."))
        self.sanity_button = W.QPushButton("Run on this image")
        self.sanity_button.clicked.connect(self.request_sanity)
        lay.addWidget(self.sanity_button, 0, Qt.AlignmentFlag.AlignLeft)
        row = W.QHBoxLayout()
        self.sanity_original = ImageTile("original model", 170)
        self.sanity_random = ImageTile("all layers randomised", 170)
        row.addWidget(self.sanity_original)
        row.addWidget(self.sanity_random)
        lay.addLayout(row)
        self.sanity_bar = HColorBar("heatmap (relative, 0 .. 1)")
        self.sanity_bar.set_range(0, 1, lut=solid_lut("jet"))
        lay.addWidget(self.sanity_bar)
        self.sanity_summary = W.QLabel("")
        self.sanity_summary.setWordWrap(True)
        lay.addWidget(self.sanity_summary)
        self.sanity_table = _table(["randomised down to", "Spearman", "SSIM"])
        lay.addWidget(self.sanity_table, 1)
        return w

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

    # -- context from the AI layer ----------------------------------------------------------------
    @property
    def series(self) -> Any:
        return getattr(self.ai, "series", None)

    def current_slice(self) -> int:
        s = self.series
        if s is None:
            return 0
        k = int(np.floor(s.crosshair_index()[2] + 0.5))
        return int(np.clip(k, 0, s.volume.shape[0] - 1))

    def _context_key(self) -> tuple[str, str] | None:
        entry = getattr(self.ai, "model_entry", None)
        if entry is None or entry.card is None or self.series is None:
            return None
        return (entry.card.weights.sha256 or str(entry.path), str(getattr(self.ai, "stack_id", "")))

    def schedule_refresh(self) -> None:
        """Recompute what the shown image changes (debounced; only while the panel is visible)."""
        if self.isVisible():
            self._refresh_timer.start(150)

    def refresh(self) -> None:
        """Build the tree for a new model/series, else recompute the selected layer on the current slice."""
        key = self._context_key()
        if key is None:
            self.header.setText("Layer inspector: open a series with a model")
            return
        if key != self.model_key:
            self.model_key = key
            for _kind, ev, _run in self._pending.values():
                ev.set()
            self._pending.clear()
            self.layer, self.channel, self.maps = None, None, None
            self._clear_overlay()
            self.request_tree()
        elif self.layer is not None and self.current_slice() != self.slice_index:
            self.request_layer(self.layer)

    def open(self) -> None:
        """Show and raise the dock (beside the AI dock when that is shown) and fill it."""
        if self.dock is None or self.window is None:
            return
        ai_dock = getattr(self.ai, "dock", None)
        if ai_dock is not None and not ai_dock.isHidden():  # (before the window is shown nothing is "visible")
            self.window.tabifyDockWidget(ai_dock, self.dock)
        self.dock.show()
        self.dock.raise_()
        self._raise_on_fill = True  # again when the tree arrives: before the window shows, tabs ignore raise_
        self.window.size_dock(self.dock, "right", want_em=30)
        self.schedule_refresh()

    def _on_dock_visibility(self, visible: bool) -> None:
        if visible:
            self.schedule_refresh()
        else:  # closed (not merely behind another tab): its channel overlay leaves the image with it
            QtCore.QTimer.singleShot(0, self._clear_overlay_if_closed)

    def _clear_overlay_if_closed(self) -> None:
        if self.dock is not None and self.dock.isHidden():
            self._clear_overlay()

    # -- jobs ---------------------------------------------------------------------------------------
    def submit(self, kind: str, fn: ProbeFn) -> int | None:
        """Queue ``fn(model, cancel, progress)`` on the inference worker (replacing a pending job of the
        same kind); returns the job id, or None when no model run is active to attach it to."""
        old = self._latest.get(kind)
        if old in self._pending:
            self._pending[old][1].set()
        job = next(self._jobs)
        own = threading.Event()
        panel, bridge = self.panel_id, self.bridge
        fn = _one_cpu_thread(fn)

        def payload(model: Any, cancel: threading.Event) -> ProbeOutcome:
            either = _AnyCancel(cancel, own)
            t0 = time.perf_counter()
            name = threading.current_thread().name
            if either.is_set():
                return ProbeOutcome(panel, job, kind, cancelled=True, thread=name)
            try:
                value = fn(model, either, lambda done, total: bridge.progress.emit(job, done, total))
            except Exception as exc:  # reported in the panel; never marks the AI run as failed
                cancelled = type(exc).__name__ == "ProbeCancelled"
                return ProbeOutcome(panel, job, kind, error=None if cancelled else f"{kind}: {exc}",
                                    cancelled=cancelled, thread=name)
            return ProbeOutcome(panel, job, kind, value, seconds=time.perf_counter() - t0, thread=name)

        run_key = self.ai.worker.scheduler.submit_probe(payload)
        if run_key is None:
            self.status.setText("Run the model on this series first (AI panel: Run); probes share its worker.")
            return None
        self._pending[job] = (kind, own, run_key)
        self._latest[kind] = job
        self._show_busy()
        return job

    def cancel(self) -> None:
        """Cancel every pending probe of this panel."""
        for _kind, ev, _key in self._pending.values():
            ev.set()
        self._pending.clear()
        self._show_busy()
        self.status.setText("cancelled")
        self.idle.emit()

    @property
    def busy(self) -> bool:
        return bool(self._pending)

    def _show_busy(self) -> None:
        busy = bool(self._pending)
        self.progress.setVisible(busy)
        self.cancel_button.setVisible(busy)
        if busy and not self._reap_timer.isActive():
            self._reap_timer.start()
        elif not busy:
            self._reap_timer.stop()
        if busy:
            kinds = sorted({k for k, _e, _r in self._pending.values()})
            self.progress.setRange(0, 0)
            self.progress.setFormat(", ".join(kinds) + " ...")

    def _on_progress(self, job: int, done: int, total: int) -> None:
        if job in self._pending:
            set_progress(self.progress, done, total)
            self.progress.setFormat(f"{self._pending[job][0]}: {done} / {total}")

    def _on_probe_ready(self, _key: Any, result: Any) -> None:
        if not isinstance(result, ProbeOutcome) or result.panel != self.panel_id:
            return
        if self._pending.pop(result.job, None) is None or self._latest.get(result.kind) != result.job:
            self._after_job()
            return
        self.threads.append(result.thread)
        if result.error:
            self.status.setText(result.error)
        elif not result.cancelled:
            getattr(self, f"_show_{result.kind}")(result.value)
            self.status.setText(f"{result.kind}: {result.seconds:.2f} s on the inference worker")
        self._after_job()

    def _reap(self) -> None:
        """Forget probes whose AI run was superseded (a new run drops queued probes) and redo the view."""
        scheduler = self.ai.worker.scheduler
        stale = [job for job, (_k, _e, key) in self._pending.items() if not scheduler.is_current(key)]
        if not stale:
            return
        kinds = {self._pending.pop(job)[0] for job in stale}
        if "tree" in kinds:
            self.model_key = None
        self._after_job()
        if kinds & {"tree", "layer"}:
            self.slice_index = -1
            self.schedule_refresh()

    def _after_job(self) -> None:
        self._show_busy()
        if not self._pending:
            self.idle.emit()

    def wait_done(self, timeout_s: float = 120.0) -> bool:
        """Process events until no probe is pending (screenshots, tests); True when done."""
        return wait_until(self.is_idle, timeout_s)

    def is_idle(self) -> bool:
        """No probe pending and no refresh scheduled."""
        return not self._pending and not self._refresh_timer.isActive()

    def _model_slice(self, k: int) -> np.ndarray:
        """Slice ``k`` as the model sees it (MONOCHROME1 inverted: `viewer.ai.model_input`), a float32 copy."""
        assert self.series is not None
        return np.array(model_input(self.series.volume)[k], dtype=np.float32)

    # -- tree ---------------------------------------------------------------------------------------
    def request_tree(self) -> None:
        k = self.current_slice()
        image = self._model_slice(k)

        def fn(model: Any, _cancel: Any, _progress: Callable[[int, int], None]) -> dict[str, Any]:
            from inference.preprocess import Preprocessor
            from inference.probes import TORCHSCRIPT_NOTE, first_conv_kernels, kernel_tiles, layer_tree

            x = Preprocessor(model.card.input).to_model(image[None], device=model.device)
            try:
                path, kernels = first_conv_kernels(model.source)
                tiles = kernel_tiles(kernels)
            except ValueError:
                path, tiles = "", np.zeros((0, 1, 1), np.float32)
            return {"rows": layer_tree(model, x), "name": model.card.name, "format": model.format,
                    "sha256": model.sha256, "target": model.card.target_layer, "has_layers": model.has_layers,
                    "note": "" if model.has_layers else TORCHSCRIPT_NOTE, "first_conv": path, "tiles": tiles,
                    "labels": list(model.card.labels)}

        self.submit("tree", fn)

    def _show_tree(self, info: dict[str, Any]) -> None:
        self.info = info
        total = info["rows"][0].n_params if info["rows"] else 0
        self.header.setText(f"<b>{info['name']}</b> ({info['format']}, sha256 {info['sha256'][:12]}): "
                            f"{len(info['rows']) - 1} layers, {_fmt_count(total)} parameters"
                            + (f"<br><i>{info['note']}</i>" if info["note"] else ""))
        if self._raise_on_fill and self.dock is not None:
            self._raise_on_fill = False
            self.dock.raise_()
        self.tree.clear()
        items: dict[str, QtWidgets.QTreeWidgetItem] = {}
        for row in info["rows"]:
            parent_path = row.path.rsplit(".", 1)[0] if "." in row.path else ("" if row.path else None)
            shape = _fmt_shape(row.output_shape) if row.output_shape is not None or not row.note else row.note
            cols = [row.name if row.path else info["name"], row.type_name, shape, _fmt_count(row.n_params)]
            parent = items.get(parent_path) if parent_path is not None else None
            item = QtWidgets.QTreeWidgetItem(parent if parent is not None else self.tree, cols)
            item.setData(0, Qt.ItemDataRole.UserRole, row.path)
            item.setToolTip(0, row.path or "the whole model")
            items[row.path] = item
        self.tree.expandToDepth(1)
        for c in range(4):
            self.tree.resizeColumnToContents(c)
        self._show_filters(info["first_conv"], info["tiles"])
        target = info["target"] if info["target"] in items else None
        if target and info["has_layers"]:
            self._auto_channel = True
            item = items[target]
            self.tree.scrollToItem(item)
            item.setSelected(True)
            self.tree.setCurrentItem(item)

    def _filter_tree(self, text: str) -> None:
        text = text.strip().lower()

        def visit(item: QtWidgets.QTreeWidgetItem) -> bool:
            path = str(item.data(0, Qt.ItemDataRole.UserRole) or "")
            child_hit = any([visit(item.child(i)) for i in range(item.childCount())])
            hit = not text or text in path.lower() or text in item.text(1).lower() or child_hit
            item.setHidden(not hit)
            if text and child_hit:
                item.setExpanded(True)
            return hit

        for i in range(self.tree.topLevelItemCount()):
            visit(self.tree.topLevelItem(i))

    def select_layer(self, path: str) -> bool:
        """Select a layer by module path (as the tree shows it)."""
        it = QtWidgets.QTreeWidgetItemIterator(self.tree)
        while it.value() is not None:
            item = it.value()
            if item.data(0, Qt.ItemDataRole.UserRole) == path:
                self.tree.setCurrentItem(item)
                return True
            it += 1
        return False

    def _on_tree_selection(self) -> None:
        items = self.tree.selectedItems()
        if not items:
            return
        path = str(items[0].data(0, Qt.ItemDataRole.UserRole) or "")
        if not path or not self.info.get("has_layers"):
            return
        if path != self.layer:
            self.channel = None
            self._auto_channel = True
        self.request_layer(path)

    # -- one layer on the current slice -------------------------------------------------------------
    def request_layer(self, layer: str) -> None:
        series = self.series
        if series is None:
            return
        self.layer = layer
        k = self.current_slice()
        image = self._model_slice(k)

        def fn(model: Any, _cancel: Any, _progress: Callable[[int, int], None]) -> dict[str, Any]:
            from inference.probes import layer_stats, weight_stats
            from inference.probes.maps import activations

            act = activations(model, layer, image[None])
            return {"layer": layer, "slice": k, "maps": act[0].numpy(), "stats": layer_stats(act),
                    "weights": weight_stats(model.source, layer)}

        self.layerChanged.emit(layer)
        self.submit("layer", fn)

    def _show_layer(self, value: dict[str, Any]) -> None:
        if value["layer"] != self.layer:
            return
        self.maps, self.slice_index = value["maps"], value["slice"]
        self._show_grid()
        self._show_weights(value["weights"])
        self._show_stats(value["stats"])

    def _show_grid(self) -> None:
        maps = self.maps
        if maps is None:
            return
        key = SORT_KEYS[max(self.sort_combo.currentIndex(), 0)]
        order = channel_order(maps, key)[:GRID_CHANNELS]
        hi = float(max(maps.max(), 1e-12))
        lo = float(min(maps.min(), 0.0))
        lut = solid_lut("hot")
        means = maps.reshape(maps.shape[0], -1).mean(1)
        self.grid.blockSignals(True)
        self.grid.clear()
        for c in order:
            pix = QtGui.QPixmap.fromImage(colour_image(maps[c], lo, hi, lut)).scaled(
                TILE_PX, TILE_PX, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.FastTransformation)
            icon = QtGui.QIcon(pix)
            icon.addPixmap(pix, QtGui.QIcon.Mode.Selected)  # no tint: the frame marks the selection
            item = QtWidgets.QListWidgetItem(icon, f"#{c}  {means[c]:.3g}")
            item.setData(Qt.ItemDataRole.UserRole, int(c))
            item.setToolTip(f"channel {c}: mean {means[c]:.4g}, max {maps[c].max():.4g}")
            self.grid.addItem(item)
        self.grid.blockSignals(False)
        h, w = maps.shape[-2:]
        self.act_caption.setText(f"<b>{self.layer}</b> on image {self.slice_index + 1}: {maps.shape[0]} channels of "
                                 f"{h} x {w}; top {len(order)} by {key} (caption: channel, mean)")
        self.act_bar.set_range(lo, hi, "tiles: activation (one scale for all tiles)", lut)
        if self._auto_channel or self.channel is None:  # until the user picks one: the most active here
            self._select_channel(int(channel_order(maps, "mean")[0]))
        else:
            self._select_channel(self.channel)

    def set_channel(self, channel: int) -> None:
        """Select a channel of the current layer (the user's choice: it stays when the slice changes)."""
        self._auto_channel = False
        self._select_channel(channel)

    def _select_channel(self, channel: int) -> None:
        """Highlight ``channel`` and show its map over the image."""
        self.channel = int(channel)
        self.grid.blockSignals(True)
        for i in range(self.grid.count()):
            item = self.grid.item(i)
            item.setSelected(item.data(Qt.ItemDataRole.UserRole) == self.channel)
        self.grid.blockSignals(False)
        self._show_channel_overlay()
        self.channelChanged.emit(self.channel)

    def _on_grid_selection(self) -> None:
        items = self.grid.selectedItems()
        if items:
            self.set_channel(int(items[0].data(Qt.ItemDataRole.UserRole)))

    # -- overlays -----------------------------------------------------------------------------------
    def _overlay(self, values: np.ndarray, k: int, lut_name: str, opacity: float) -> None:
        series = self.series
        if series is None:
            return
        shape = series.volume.shape
        lut = overlay_lut(lut_name, alpha_floor=0.1, alpha_full=0.35)
        ov = series.overlay(LAYER_OVERLAY)
        if ov is None or ov.array.shape != shape:
            # uint8 codes (a quarter of float32; values within half a code): one slice of it is ever non-zero
            ov = Overlay(LAYER_OVERLAY, CodedVolume.zeros(shape), lut, opacity, True)
            ov.array[k] = np.clip(values, 0.0, 1.0)
            series.add_overlay(ov)
            return
        with series.overlaysChanged.blocked():  # one redraw for the values and the settings together
            ov.array[:] = 0.0
            ov.array[k] = np.clip(values, 0.0, 1.0)
            ov.update(lut=lut, opacity=opacity, visible=True)
        ov.refresh()

    def _clear_overlay(self) -> None:
        series = self.series
        if series is not None and series.overlay(LAYER_OVERLAY) is not None:
            series.remove_overlay(LAYER_OVERLAY)

    def _show_channel_overlay(self) -> None:
        if self.maps is None or self.channel is None or self.series is None:
            return
        if not self.overlay_check.isChecked():
            self._clear_overlay()
            return
        m = self.maps[self.channel]
        native = resize_to_native(m, self.series.volume.shape[1:])
        lo, hi = float(m.min()), float(m.max())
        span = hi - lo if hi > lo else 1.0
        self._overlay(np.clip((native - lo) / span, 0, 1), self.slice_index, "hot", 0.65)
        self.overlay_bar.set_range(lo, hi, f"over the image: {self.layer} channel #{self.channel} "
                                           f"(image {self.slice_index + 1}, its own min .. max)", solid_lut("hot"))

    # -- filters / weights / stats --------------------------------------------------------------------
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
        _fill_table(self.weights_table, [[s.name, "x".join(map(str, s.shape)), f"{s.mean:.3g}", f"{s.std:.3g}",
                                          f"{s.abs_max:.3g}", f"{100 * s.fraction_near_zero:.1f}"] for s in stats])

    def _show_stats(self, st: Any) -> None:
        self.stats_label.setText(
            f"<b>{self.layer}</b> on image {self.slice_index + 1}: {st.n_channels} channels, "
            f"<b>{st.n_dead} dead</b> (never above zero on this image)"
            + (f": {', '.join(map(str, st.dead_channels[:20]))}" if st.n_dead else "")
            + f"; {100 * st.fraction_zero:.1f} % of values are zero; mean {st.mean:.3g}, std {st.std:.3g}")
        self.hist.clear()
        counts = np.log10(st.counts.astype(np.float64) + 1.0)
        self.hist.addItem(pg.PlotDataItem(st.edges, counts, stepMode="center", fillLevel=0,
                                          brush=(230, 120, 40, 160), pen=pg.mkPen((255, 170, 80))))

    # -- layer-wise CAM -------------------------------------------------------------------------------
    def request_cam(self) -> None:
        if self.layer is None or self.series is None:
            return
        layer, k = self.layer, self.current_slice()
        image = self._model_slice(k)

        def fn(model: Any, _cancel: Any, _progress: Callable[[int, int], None]) -> dict[str, Any]:
            from inference.probes import layer_gradcam

            return {"layer": layer, "slice": k, "map": layer_gradcam(model, layer, image[None])[0]}

        self.submit("cam", fn)

    def _show_cam(self, value: dict[str, Any]) -> None:
        m = value["map"]
        empty = "" if float(m.max()) > 0 else " (empty: no evidence for the label on this image)"
        self.cam_tile.set_image(colour_image(m, 0, 1, solid_lut("jet")),
                                f"Grad-CAM at {value['layer']}, image {value['slice'] + 1}{empty}")
        self._overlay(m, value["slice"], "jet", 0.55)

    # -- feature visualisation ------------------------------------------------------------------------
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
        self.featurevis = vis
        mean = ""
        if self.maps is not None and vis.layer == self.layer and vis.channel < len(self.maps):
            mean = f"; on this image: mean {self.maps[vis.channel].mean():.3g}, max {self.maps[vis.channel].max():.3g}"
        self.fv_tile.set_image(colour_image(vis.image, 0, 1), f"{vis.layer} #{vis.channel}: activation "
                               f"{vis.activation:.3g}{mean}" + (" (cached)" if hit else ""))
        self.fv_plot.clear()
        self.fv_plot.plot(np.arange(1, len(vis.trajectory) + 1), vis.trajectory, pen=pg.mkPen((255, 170, 80), width=2))

    # -- dataset examples -----------------------------------------------------------------------------
    def request_examples(self) -> None:
        if self.layer is None or self.channel is None or self.series is None:
            return
        layer, channel = self.layer, self.channel
        volume = model_input(self.series.volume)  # read (and converted) on the worker only
        loaded = np.flatnonzero(self.series.loaded)

        def fn(model: Any, cancel: Any, progress: Callable[[int, int], None]) -> Any:
            from inference.probes import channel_examples

            return layer, channel, channel_examples(model, layer, channel, volume, loaded, top=10,
                                                    cancel=cancel, progress=progress)

        self.submit("examples", fn)

    def _show_examples(self, value: Any) -> None:
        layer, channel, found = value
        self.examples = list(found)
        _fill_table(self.ex_table, [[str(i + 1), str(e.slice_index + 1), f"{e.peak:.3g}", f"{e.mean:.3g}",
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
        img = series.volume.array[e.slice_index]
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
        self.series.set_crosshair(self.series.volume.index_to_lps(np.array([e.col, e.row, e.slice_index], float)))

    # -- sanity check ---------------------------------------------------------------------------------
    def request_sanity(self) -> None:
        if self.series is None:
            return
        k = self.current_slice()
        image = self._model_slice(k)
        method = getattr(self.ai, "method", "gradcam")

        def fn(model: Any, cancel: Any, progress: Callable[[int, int], None]) -> Any:
            from inference.explain import supported_methods
            from inference.probes import sanity_check

            use = method if method in supported_methods(model) else supported_methods(model)[0]
            return k, sanity_check(model, image, 0, use, cancel=cancel, progress=progress)

        self.submit("sanity", fn)

    def _show_sanity(self, value: Any) -> None:
        k, res = value
        self.sanity = res
        jet = solid_lut("jet")
        self.sanity_original.set_image(colour_image(res.original, 0, 1, jet), f"original model, image {k + 1}")
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
        _fill_table(self.sanity_table, [[s.layer or "(top-level parameters)", f"{s.spearman:.3f}", f"{s.ssim:.3f}"]
                                        for s in res.steps])


# -- wiring into the main window ----------------------------------------------------------------------
class _Follow(QObject):
    """Refreshes the panel when the window shows a series, the slice changes or a model loads."""

    def __init__(self, panel: LayersPanel, window: Any) -> None:
        super().__init__(panel)
        self.panel, self.window = panel, window
        self._series: Any = None
        self._bindings = Bindings()
        window.seriesShown.connect(self.on_series)
        panel.ai.worker.modelLoaded.connect(self.on_model)
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
    """Add the layer inspector dock to ``window`` (hidden; ``panel.open()`` shows it), driven by ``ai``."""
    panel = LayersPanel(ai, window)
    dock = QtWidgets.QDockWidget("Layers", window)
    dock.setObjectName("dock_layers")
    dock.setWidget(panel)
    window.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, dock)
    dock.hide()
    for menu in window.menuBar().findChildren(QtWidgets.QMenu):
        if menu.title().replace("&", "") == "Panels":
            menu.addAction(dock.toggleViewAction())
    dock.visibilityChanged.connect(panel._on_dock_visibility)
    panel.dock = dock
    panel.follow = _Follow(panel, window)
    return panel


def layers_panel(app: Any) -> LayersPanel:
    """The registry's factory (:mod:`viewer.qt.panels`): the layer inspector, driven by the AI panel."""
    return attach_layers(app.window, app.ai)
