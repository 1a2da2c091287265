"""The AI controller, Qt part: a thin adapter around the Qt-free :class:`~viewer.state.ai_control.AIControl`
(which holds every decision: which model runs on which series, scope, memory/cache hit or run, stale batches,
findings, status lines). It owns the inference thread (:class:`~viewer.qt.ai_worker.AIWorker`) and the cache
threads (:class:`~viewer.qt.ai_cache.CacheIO`), hands their signals (queued to the GUI thread, onto this
object's bound methods) to the control, throttles the panel's refresh with a timer, and wires the AI panel:
the panel renders the control's state (:meth:`AIPanel.follow`) and its requests (run, cancel, slice,
finding) call the control; the model, method and overlay pickers change the control's state.

``attach_ai(window)`` (:mod:`viewer.qt.ai_integration`) is all the main window calls.
"""

from __future__ import annotations

from pathlib import Path
from collections.abc import Iterable
from typing import Any

from inference.cache import ResultCache
from viewer.ai import RunKey, SeriesResults
from viewer.ai.batches import BatchResult, ModelLoaded, ModelRef
from viewer.ai.scope_guard import ScopeGuard as _RulesGuard
from viewer.qt.ai_cache import CacheIO, CacheReply
from viewer.qt.ai_panel import AIPanel
from viewer.qt.ai_scope import ScopeGuard
from viewer.qt.ai_worker import AIWorker, SessionFactory
from viewer.qt.qt import QObject, QtCore, Signal
from viewer.state.ai import AIRunState, AISettings
from viewer.state.ai_control import (DEFAULT_METHOD, MEMO_BYTES, OVERLAY_PREFIX, AIControl,  # noqa: F401 (re-exported)
                                     model_ref)
from viewer.state.ai_models import ModelEntry
from viewer.state.series import SeriesState

SETTINGS_KEY = "ai_overlay"
"""``viewer-settings.json`` key of the saved overlay preferences (colour map, opacity, contour mode)."""
PANEL_REFRESH_MS = 200
"""While a run streams in, the scores plot and findings redraw at most this often."""


def model_folders() -> list[tuple[Path, bool]]:
    """(folder, bundled) pairs searched for model packages: bundled first, then RADSCOPE_HOME/models."""
    from viewer.paths import resources_dir, subdir

    return [(resources_dir() / "models", True), (subdir("models"), False)]


def installed_models(folders: Iterable[tuple[Path, bool]] | None = None) -> list[ModelEntry]:
    """Every package in the model folders; one that fails to read is listed with its error."""
    from inference.registry import find_packages  # card reading is torch-free

    entries: list[ModelEntry] = []
    for folder, bundled in folders if folders is not None else model_folders():
        for found in find_packages([folder]):
            if found.card is not None:
                entries.append(ModelEntry(found.card.name, found.path, card=found.card, bundled=bundled))
            else:
                entries.append(ModelEntry(found.path.stem, found.path, error=found.error, bundled=bundled))
    return entries


class AIController(QObject):
    """The AI layer of one main window (GUI thread): :attr:`control` decides, this object connects Qt."""

    finished = Signal(object)  # RunKey: every slice of the run is in
    busyChanged = Signal(bool)
    notify = Signal(str)  # errors and notices for the window's notification panel

    def __init__(
        self,
        panel: AIPanel | None = None,
        worker: AIWorker | None = None,
        *,
        session_factory: SessionFactory | None = None,
        models: list[ModelEntry] | None = None,
        auto_run: bool = True,
        use_cache: bool = True,
        cache: ResultCache | None = None,
        parent: QObject | None = None,
    ) -> None:
        """``use_cache``: read and write the results cache (``cache``, default ``RADSCOPE_HOME/cache``)."""
        super().__init__(parent)
        self.panel = panel or AIPanel()
        self.worker = worker or AIWorker(session_factory=session_factory, parent=self)
        self.cache_io: CacheIO | None = None
        if use_cache:
            from viewer.paths import subdir

            self.cache_io = CacheIO(cache if cache is not None else ResultCache(subdir("cache")), parent=self)
            self.cache_io.loaded.connect(self._on_cache_loaded)
            self.cache_io.failed.connect(self._on_cache_failed)
        self._panel_timer = QtCore.QTimer(self)
        self._panel_timer.setSingleShot(True)
        self._panel_timer.timeout.connect(self._refresh_panel)
        w, p = self.worker, self.panel
        w.batchReady.connect(self._on_batch)
        w.modelLoaded.connect(self._on_model_loaded)
        w.failed.connect(self._on_failed)
        w.notice.connect(self._on_notice)
        self.control = AIControl(w, models if models is not None else installed_models(), cache=self.cache_io,
                                 scope=ScopeGuard(), auto_run=auto_run)
        """The Qt-free controller: every decision and all state changes."""
        c = self.control
        c.shows_any = self._shows_any
        c.defer_refresh = self._defer_refresh
        c.finished.connect(self._emit_finished)
        c.busyChanged.connect(self._emit_busy)
        c.notify.connect(self._emit_notify)
        p.runRequested.connect(c.run_by_hand)
        p.cancelRequested.connect(c.cancel)
        p.sliceRequested.connect(c.go_to_slice)
        p.findingRequested.connect(c.go_to_finding)
        self._panel_bindings = p.follow(c.state, c.run_state)

    # -- the control's state and facts -------------------------------------------------------------
    @property
    def state(self) -> AISettings:
        return self.control.state

    @property
    def run_state(self) -> AIRunState:
        return self.control.run_state

    @property
    def scope(self) -> _RulesGuard:
        return self.control.scope

    @property
    def series(self) -> SeriesState | None:
        return self.control.series

    @property
    def stack_id(self) -> str:
        return self.control.stack_id

    @property
    def results(self) -> SeriesResults | None:
        return self.control.results

    @property
    def run_input(self) -> Any:
        return self.control.run_input

    @property
    def method(self) -> str:
        return self.control.method

    @property
    def device_name(self) -> str:
        return self.control.device_name

    @property
    def model_entry(self) -> ModelEntry | None:
        return self.control.model_entry

    @property
    def busy(self) -> bool:
        return self.control.busy

    @property
    def first_heatmap_at(self) -> float | None:
        return self.control.first_heatmap_at

    @property
    def run_started_at(self) -> float | None:
        return self.control.run_started_at

    def overlay_name(self, label: str) -> str:
        return self.control.overlay_name(label)

    def most_suspicious_slice(self) -> int | None:
        return self.control.most_suspicious_slice()

    # -- what the window and the command line call -------------------------------------------------
    def set_series(self, series: SeriesState | None, stack_id: str = "") -> None:
        self.control.set_series(series, stack_id)

    def select_model(self, name: str) -> bool:
        return self.control.select_model(name)

    def use_model(self, name_or_path: str) -> bool:
        return self.control.use_model(name_or_path)

    def run(self) -> RunKey | None:
        return self.control.run()

    def run_by_hand(self) -> RunKey | None:
        return self.control.run_by_hand()

    def cancel(self) -> None:
        self.control.cancel()

    def go_to_slice(self, k: int, *, centre_on_peak: bool = False) -> None:
        self.control.go_to_slice(k, centre_on_peak=centre_on_peak)

    def go_to_finding(self, k: int) -> None:
        self.control.go_to_finding(k)

    def show_most_suspicious(self) -> int | None:
        return self.control.show_most_suspicious()

    def follow_findings(self, *, once: bool = False) -> None:
        self.control.follow_findings(once=once)

    def flush_cache(self, timeout_s: float = 60.0) -> bool:
        return self.control.flush_cache(timeout_s)

    def shutdown(self) -> None:
        """Stop the worker thread (window closing); cache writes already asked for finish first."""
        self._panel_timer.stop()
        self.control.shutdown()

    # -- Qt plumbing ---------------------------------------------------------------------------------
    def _shows_any(self, indices: tuple[int, ...]) -> bool:
        """Would slices ``indices`` change what is on screen? (Without a window: assume so.)"""
        return True

    def _defer_refresh(self) -> None:
        if not self._panel_timer.isActive():
            self._panel_timer.start(PANEL_REFRESH_MS)

    def _refresh_panel(self) -> None:
        self.control.refresh()

    def _emit_finished(self, key: RunKey) -> None:
        self.finished.emit(key)

    def _emit_busy(self, busy: bool) -> None:
        self.busyChanged.emit(busy)

    def _emit_notify(self, message: str) -> None:
        self.notify.emit(message)

    # worker and cache signals, queued onto the GUI thread (bound methods of this GUI-thread object)
    def _on_batch(self, result: BatchResult) -> None:
        self.control.on_batch(result)

    def _on_model_loaded(self, info: ModelLoaded) -> None:
        self.control.on_model_loaded(info)

    def _on_failed(self, key: RunKey | None, message: str) -> None:
        self.control.on_failed(key, message)

    def _on_notice(self, message: str) -> None:
        self.control.on_notice(message)

    def _on_cache_loaded(self, reply: CacheReply) -> None:
        self.control.on_cache_loaded(reply)

    def _on_cache_failed(self, message: str) -> None:
        self.notify.emit(f"AI: {message}")


__all__ = ["DEFAULT_METHOD", "MEMO_BYTES", "OVERLAY_PREFIX", "SETTINGS_KEY", "AIController", "ModelEntry", "ModelRef",
           "installed_models", "model_folders", "model_ref"]
