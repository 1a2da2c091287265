"""The layer inspector's core: probe jobs on the AI's inference thread, the layer tree and the image overlay.
What it shows and which probe outcomes count are decided Qt-free (:mod:`viewer.state.layer_inspector`:
:class:`InspectorSelection`, :class:`ProbeJobs`). Tabs (one module each) subclass :class:`LayersCore`."""

from __future__ import annotations

import itertools
import threading
import time
from typing import Any
from collections.abc import Callable

import numpy as np

from viewer.ai.model_input import card_bits, model_input
from viewer.display.coded import CodedVolume
from viewer.display.colormaps import overlay_lut
from viewer.qt.bind import Bindings
from viewer.qt.wait import wait_until
from viewer.qt.qt import QObject, Qt, QtCore, QtWidgets, Signal
from viewer.qt.series_model import Overlay
from viewer.qt.progress import set_progress
from viewer.qt.layers.widgets import (fmt_count, fmt_shape)
from viewer.qt.layers.probes import AnyCancel, ProbeBridge, ProbeFn, ProbeOutcome, one_cpu_thread
from viewer.state.layer_inspector import InspectorResults, InspectorSelection, ProbeJobs, ProbeTarget, probe_target

LAYER_OVERLAY = "Layer inspector"
GRID_CHANNELS = 24
TILE_PX = 72
EXAMPLE_PX = 64

class LayersCore(QtWidgets.QWidget):
    """The inspector's state, probe jobs, layer tree and overlay (the tabs subclass it; see the package
    docstring)."""

    layerChanged = Signal(str)
    channelChanged = Signal(int)
    idle = Signal()  # no probe pending any more

    _ids = itertools.count(1)

    # built by the panel's layout (:meth:`_build`), used here
    header: QtWidgets.QLabel
    search: QtWidgets.QLineEdit
    tree: QtWidgets.QTreeWidget
    tabs: QtWidgets.QTabWidget
    status: QtWidgets.QLabel
    progress: QtWidgets.QProgressBar
    cancel_button: QtWidgets.QPushButton

    # -- what the layout and the tabs provide ------------------------------------------------------
    def _build(self) -> None:
        raise NotImplementedError  # LayersPanel lays the core and the tabs out

    def _show_grid(self) -> None:
        raise NotImplementedError  # activations tab

    def _show_channel_overlay(self) -> None:
        raise NotImplementedError  # activations tab

    def _show_filters(self, path: str, tiles: np.ndarray) -> None:
        raise NotImplementedError  # filters tab

    def _show_weights(self, stats: list[Any]) -> None:
        raise NotImplementedError  # filters tab

    def _show_stats(self, st: Any) -> None:
        raise NotImplementedError  # statistics tab


    def __init__(self, ai: Any, window: Any = None, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.ai = ai
        self.viewer_window = window
        self.dock: QtWidgets.QDockWidget | None = None
        self.panel_id = next(self._ids)
        self.bridge = ProbeBridge(self)
        self.bridge.progress.connect(self._on_progress)
        ai.worker.probeReady.connect(self._on_probe_ready)
        self.jobs = ProbeJobs()
        """This panel's probe jobs (which outcome counts, which were dropped with their AI run)."""
        self.selection = InspectorSelection()
        """What the panel shows: the model/series of its tree, layer, channel, maps of the shown slice."""
        self.results = InspectorResults()
        """The probes' outcomes (state): the tabs render from its ``shown`` event and read each other's there."""
        self._results_bindings = Bindings()
        self._results_bindings.connect(self.results.shown, self._render_result)
        self.follow: QObject | None = None
        self.shown_target: ProbeTarget | None = None
        """The image the shown layer maps were probed on (where their overlay goes)."""
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

    # -- the outcomes and the selection (state) under the names the tabs use ---------------------------
    @property
    def info(self) -> dict[str, Any]:
        return self.results.model_info

    @property
    def examples(self) -> list[Any]:
        return self.results.examples

    @property
    def sanity(self) -> Any:
        return self.results.sanity

    @property
    def featurevis(self) -> Any:
        return self.results.featurevis

    @property
    def threads(self) -> list[str]:
        """Worker threads probes ran on (the status line, tests)."""
        return self.results.threads

    @property
    def model_key(self) -> tuple[str, str] | None:
        return self.selection.model_key

    @property
    def layer(self) -> str | None:
        return self.selection.layer

    @property
    def channel(self) -> int | None:
        return self.selection.channel

    @channel.setter
    def channel(self, value: int | None) -> None:
        self.selection.channel = value

    @property
    def maps(self) -> np.ndarray | None:
        return self.selection.maps

    @property
    def slice_index(self) -> int:
        return self.selection.slice_index

    @property
    def series(self) -> Any:
        return getattr(self.ai, "series", None)

    def current_slice(self) -> int:
        """The index of the probed slice under the crosshair (a reformat slice for a run on reformats)."""
        return 0 if self.series is None else self.target().k

    def target(self) -> ProbeTarget:
        """What the probes read: the slice the AI run feeds the model at the crosshair (`probe_target`)."""
        s = self.series
        assert s is not None
        return probe_target(s.volume, s.crosshair, self.model_view(), getattr(self.ai, "results", None),
                            getattr(self.ai, "run_input", None))

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
        where = self.target().where if self.series is not None else ("", 0)
        step = self.selection.next_step(self._context_key(), where[1], where[0])
        if step == "none":
            self.header.setText("Layer inspector: open a series with a model")
        elif step == "tree":
            entry = getattr(self.ai, "model_entry", None)
            self.header.setText(f"Layer inspector: reading the layers of {getattr(entry, 'name', 'the model')}… "
                                "(once the model has loaded; the series' own slices run first)")
            self.jobs.cancel_all()
            self._clear_overlay()
            self.request_tree()
        elif step == "layer" and self.layer is not None:
            self.request_layer(self.layer)

    @property
    def widget(self) -> QtWidgets.QWidget:
        """The panel itself: the body of the dock the window makes for it (``install_panel``)."""
        return self

    def open(self) -> None:
        """Show and raise the dock (in the right-side tab group, beside the AI dock) and fill it."""
        if self.dock is None or self.viewer_window is None:
            return
        self.viewer_window.open_panel("layers")
        self._raise_on_fill = True  # again when the tree arrives: before the window shows, tabs ignore raise_
        self.schedule_refresh()

    def dock_visibility_changed(self, visible: bool) -> None:
        if visible:
            self.schedule_refresh()
        else:  # closed (not merely behind another tab): its channel overlay leaves the image with it
            QtCore.QTimer.singleShot(0, self._clear_overlay_if_closed)

    def _clear_overlay_if_closed(self) -> None:
        if self.dock is not None and self.dock.isHidden():
            self._clear_overlay()

    def submit(self, kind: str, fn: ProbeFn) -> int | None:
        """Queue ``fn(model, cancel, progress)`` on the inference worker (replacing a pending job of the
        same kind); returns the job id, or None when no model run is active to attach it to."""
        job, own = self.jobs.open(kind)
        panel, bridge = self.panel_id, self.bridge
        fn = one_cpu_thread(fn)

        def payload(model: Any, cancel: threading.Event) -> ProbeOutcome:
            either = AnyCancel(cancel, own)
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
        self.jobs.queued(job, kind, own, run_key)
        self._show_busy()
        return job

    def cancel(self) -> None:
        """Cancel every pending probe of this panel."""
        self.jobs.cancel_all()
        self._show_busy()
        self.status.setText("cancelled")
        self.idle.emit()

    @property
    def busy(self) -> bool:
        return self.jobs.busy

    def _show_busy(self) -> None:
        busy = self.jobs.busy
        self.progress.setVisible(busy)
        self.cancel_button.setVisible(busy)
        if busy and not self._reap_timer.isActive():
            self._reap_timer.start()
        elif not busy:
            self._reap_timer.stop()
        if busy:
            kinds = self.jobs.kinds()
            self.progress.setRange(0, 0)
            self.progress.setFormat(", ".join(kinds) + " ...")

    def _on_progress(self, job: int, done: int, total: int) -> None:
        if job in self.jobs.pending:
            set_progress(self.progress, done, total)
            self.progress.setFormat(f"{self.jobs.pending[job][0]}: {done} / {total}")

    def _on_probe_ready(self, _key: Any, result: Any) -> None:
        if not isinstance(result, ProbeOutcome) or result.panel != self.panel_id:
            return
        if not self.jobs.finish(result.job, result.kind):
            self._after_job()
            return
        self.results.ran_on(result.thread)
        if result.error:
            self.status.setText(result.error)
        elif not result.cancelled:
            self.results.put(result.kind, result.value)  # the tab renders it (_render_result)
            self.status.setText(f"{result.kind}: {result.seconds:.2f} s on the inference worker")
        self._after_job()

    def _reap(self) -> None:
        """Forget probes whose AI run was superseded (a new run drops queued probes) and redo the view."""
        kinds = self.jobs.drop_stale(self.ai.worker.scheduler.is_current)
        if not kinds:
            return
        if "tree" in kinds:
            self.selection.forget_tree()
        self._after_job()
        if kinds & {"tree", "layer"}:
            self.selection.slice_index = -1  # the layer's maps are redone on the next refresh
            self.schedule_refresh()

    def _after_job(self) -> None:
        self._show_busy()
        if not self.jobs.busy:
            self.idle.emit()

    def wait_done(self, timeout_s: float = 120.0) -> bool:
        """Process events until no probe is pending (screenshots, tests); True when done."""
        return wait_until(self.is_idle, timeout_s)

    def is_idle(self) -> bool:
        """No probe pending and no refresh scheduled."""
        return not self.jobs.busy and not self._refresh_timer.isActive()

    def model_view(self) -> Any:
        """The shown series as the chosen model sees it (lazy; `viewer.ai.model_input`)."""
        assert self.series is not None
        entry = getattr(self.ai, "model_entry", None)
        return model_input(self.series.volume, card_bits(getattr(entry, "card", None)))

    def request_tree(self) -> None:
        image = self.target().image()

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

    def _render_result(self, kind: str, value: Any) -> None:
        getattr(self, f"_show_{kind}")(value)

    def _show_tree(self, info: dict[str, Any]) -> None:
        total = info["rows"][0].n_params if info["rows"] else 0
        self.header.setText(f"<b>{info['name']}</b> ({info['format']}, sha256 {info['sha256'][:12]}): "
                            f"{len(info['rows']) - 1} layers, {fmt_count(total)} parameters"
                            + (f"<br><i>{info['note']}</i>" if info["note"] else ""))
        if self._raise_on_fill and self.dock is not None:
            self._raise_on_fill = False
            self.dock.raise_()
        self.tree.clear()
        items: dict[str, QtWidgets.QTreeWidgetItem] = {}
        for row in info["rows"]:
            parent_path = row.path.rsplit(".", 1)[0] if "." in row.path else ("" if row.path else None)
            shape = fmt_shape(row.output_shape) if row.output_shape is not None or not row.note else row.note
            cols = [row.name if row.path else info["name"], row.type_name, shape, fmt_count(row.n_params)]
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
            top = self.tree.topLevelItem(i)
            if top is not None:
                visit(top)

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
        self.selection.choose_layer(path)
        self.request_layer(path)

    def request_layer(self, layer: str) -> None:
        series = self.series
        if series is None:
            return
        self.selection.choose_layer(layer)
        target = self.target()
        image, k = target.image(), target.k

        def fn(model: Any, _cancel: Any, _progress: Callable[[int, int], None]) -> dict[str, Any]:
            from inference.probes import layer_stats, weight_stats
            from inference.probes.maps import activations

            act = activations(model, layer, image[None])
            return {"layer": layer, "slice": k, "target": target, "maps": act[0].numpy(),
                    "stats": layer_stats(act), "weights": weight_stats(model.source, layer)}

        self.layerChanged.emit(layer)
        self.submit("layer", fn)

    def _show_layer(self, value: dict[str, Any]) -> None:
        target: ProbeTarget = value["target"]
        if not self.selection.set_maps(value["layer"], value["maps"], target.k, target.plane, target.text):
            return
        self.shown_target = target
        self._show_grid()
        self._show_weights(value["weights"])
        self._show_stats(value["stats"])

    def _overlay(self, values: np.ndarray, target: ProbeTarget, lut_name: str, opacity: float) -> None:
        """``values`` over the probed image (``target``) as the overlay on the acquired grid the views draw."""
        series = self.series
        if series is None:
            return
        shape = series.volume.shape
        lut = overlay_lut(lut_name, alpha_floor=0.1, alpha_full=0.35)
        ov = series.overlay(LAYER_OVERLAY)
        if ov is None or ov.array.shape != shape:
            # uint8 codes (a quarter of float32; values within half a code): one slice of it is ever non-zero
            ov = Overlay(LAYER_OVERLAY, CodedVolume.zeros(shape), lut, opacity, True)
            for index, part in target.on_acquired(np.clip(values, 0.0, 1.0)):
                ov.array[index] = part
            series.add_overlay(ov)
            return
        with series.overlaysChanged.blocked():  # one redraw for the values and the settings together
            ov.array[:] = 0.0
            for index, part in target.on_acquired(np.clip(values, 0.0, 1.0)):
                ov.array[index] = part
            ov.update(lut=lut, opacity=opacity, visible=True)
        ov.refresh()

    def _clear_overlay(self) -> None:
        series = self.series
        if series is not None and series.overlay(LAYER_OVERLAY) is not None:
            series.remove_overlay(LAYER_OVERLAY)
