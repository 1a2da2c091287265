"""The AI controller: runs the model on the shown series and keeps its results, overlays and panel current.

``attach_ai(window) -> AIController`` is all the main window calls. The controller lives on the GUI
thread: it listens to the window's series / current-slice changes, starts runs on the single
:class:`~viewer.qt.ai_worker.AIWorker`, stores each batch in a :class:`viewer.ai.SeriesResults`
(dropping batches whose run key is stale, so an old series never paints on a new one) and shows
each label as an overlay layer of the series model on every view.

Finished runs are written to the results cache (``RADSCOPE_HOME/cache``, shared with ``radscope
infer``) off the GUI thread; a run first asks the cache (also off the GUI thread) and infers only on a
miss, so a series opened again with the same model and method shows its results without inference.

Overlay values are probabilities: the explainer's per-slice map (normalised to [0, 1]) times that
slice's score for the label, so a slice the model scores low shows little colour, and the colour
bar, threshold and contour level all read in probability units.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from pathlib import Path
from typing import Any
from collections.abc import Iterable

import numpy as np

from inference.cache import ResultCache
from viewer.ai import EtaEstimator, RunKey, SeriesResults
from viewer.ai.cached import stack_key
from viewer.ai.model_input import model_input
from viewer.ai.reformat_run import ReformatResults, input_for, new_results, reformat_key
from viewer.display.coded import CodedVolume
from viewer.qt.ai_cache import CacheIO, CacheReply
from viewer.qt.bind import Bindings
from viewer.state.ai import AIRunState, AISettings
from viewer.state.ai_models import ModelEntry
from viewer.qt.ai_panel import AIPanel
from viewer.qt.ai_scope import ScopeGuard
from viewer.qt.ai_worker import AIWorker, BatchOutput, BatchResult, ModelLoaded, ModelRef, SessionFactory
from viewer.qt.qt import QObject, QtCore, Signal
from viewer.qt.series_model import Overlay, SeriesModel

DEFAULT_METHOD = "gradcam"
OVERLAY_PREFIX = "AI "
SETTINGS_KEY = "ai_overlay"
"""``viewer-settings.json`` key of the saved overlay preferences (colour map, opacity, contour mode)."""
MEMO_BYTES = 768 * 2**20
"""Heatmaps of recent runs kept in memory, so switching back to a series shows its results at once."""


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


def model_ref(entry: ModelEntry, device: str = "auto") -> ModelRef:
    card = entry.card
    if card is None:
        raise ValueError(f"{entry.path}: not a usable model package ({entry.error})")
    sha = card.weights.sha256 or f"unverified:{entry.path}"
    return ModelRef(entry.path, card.name, sha, tuple(card.labels), device)


class _Sink:
    """Stores a run's batches into its :class:`SeriesResults` on the worker thread (the GUI thread
    then only repaints): each heatmap is weighted by its slice's score, i.e. put in probability units."""

    def __init__(self, results: SeriesResults) -> None:
        self.results = results

    def __call__(self, out: BatchOutput) -> None:
        self.results.add(out.indices, out.scores, out.heatmaps, weighted=True, ood=out.ood)


class AIController(QObject):
    """The AI layer of one main window (GUI thread)."""

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
        self.auto_run = auto_run
        self.device = "auto"
        self.device_name = "(model not loaded)"
        self.method = DEFAULT_METHOD
        self.series: SeriesModel | None = None
        self._series_bindings = Bindings()
        self.state = AISettings(DEFAULT_METHOD)
        """Installed models, the chosen one, method, device, per-label overlay settings and thresholds and the
        status line in force (the panel renders it and changes it on the user's edits; the review reads it)."""
        self.run_state = AIRunState()
        """The run's progress and the loaded model's methods (the panel follows it)."""
        self.stack_id = ""
        self.results: SeriesResults | None = None
        self.first_heatmap_at: float | None = None
        self.run_started_at: float | None = None
        self._eta = EtaEstimator()
        self._busy = False
        self._shut_down = False
        self._current = 0
        self._memo: OrderedDict[tuple[str, str, str], SeriesResults] = OrderedDict()
        self._explicit = False  # the user picked the model (--model, the picker): no auto-switching
        self._lookup_token = 0  # bumped by every run/cancel: a cache answer for an older one only fills the memo
        self._awaiting_cache = False  # the current run waits for the cache's answer before it infers
        self.scope = ScopeGuard()
        """Intended use of the shown series for the chosen model (rules, OOD gate, forced runs' banner)."""
        self._gate_pending = False  # an automatic run's overlay waits for its first slices' OOD verdict
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
        p.methodChosen.connect(self._on_method_chosen)
        p.runRequested.connect(self.run_by_hand)
        p.cancelRequested.connect(self.cancel)
        p.sliceRequested.connect(self.go_to_slice)
        p.findingRequested.connect(self.go_to_finding)
        self.run_state.set_methods([DEFAULT_METHOD], DEFAULT_METHOD)
        self._panel_bindings = p.follow(self.state, self.run_state)
        self.state.modelChanged.connect(self._on_model_changed)
        self.state.overlay.changed.connect(self._on_overlay_changed)
        self.state.set_models(models if models is not None else installed_models())

    @staticmethod
    def _model_input(volume: Any) -> Any:
        """What reaches the model: a lazy per-slice view (viewer.ai.model_input), read on the worker thread."""
        return model_input(volume)

    # -- state --------------------------------------------------------------------------------
    @property
    def _entry(self) -> ModelEntry | None:
        return self.state.entry

    @property
    def busy(self) -> bool:
        return self._busy

    @property
    def model_entry(self) -> ModelEntry | None:
        return self._entry

    def overlay_name(self, label: str) -> str:
        return OVERLAY_PREFIX + label

    def _set_busy(self, busy: bool) -> None:
        if busy != self._busy:
            self._busy = busy
            self.busyChanged.emit(busy)

    # -- inputs from the window ---------------------------------------------------------------
    def set_series(self, series: SeriesModel | None, stack_id: str = "") -> None:
        """A new series is shown: drop the old run and (auto-run) start the model on it."""
        if series is self.series and stack_id == self.stack_id:
            return
        self.cancel()
        self.results = None
        self.state.set_status("")  # a status line belongs to the series it was said about
        self._series_bindings.clear()
        self.series = series
        self.scope.reset()
        self.stack_id = stack_id or (series.volume.info.stack_id or series.volume.info.series_uid if series else "")
        self._refresh_panel()  # no results yet: no plot, no "n/n done" left from the last series
        if series is not None:
            self._series_bindings.connect(series.loadFinished, self._on_load_finished)
            self._series_bindings.connect(series.sliceLoaded, self._on_slice_loaded)
            self._series_bindings.connect(series.crosshairChanged, self._on_crosshair_changed)
            self._current = self._crosshair_slice()
            self.run_state.set_current_slice(self._current)
            if self.auto_run:
                self._auto_run(series.volume.info.modality)

    def _auto_run(self, modality: str) -> None:
        """Run the chosen model if it suits the modality; else (unless the user chose one) the first
        installed model offered for it."""
        entry = self._entry
        if entry is not None and (self._explicit or entry.offered_for(modality)):
            self._start_if_in_scope()
            return
        for candidate in self.state.models:
            if candidate.offered_for(modality):
                self.state.choose(candidate)  # -> _on_model_changed -> run
                return
        if entry is not None:
            self.state.set_status(f"{entry.name} is not offered for {modality or 'this'} series; press Run to force it")

    def _crosshair_slice(self) -> int:
        """The model's slice under the crosshair (a reformat slice for a run on reformats)."""
        assert self.series is not None
        if self.results is not None:
            return self.results.slice_under(self.series.volume, self.series.crosshair)
        k = int(np.floor(self.series.crosshair_index()[2] + 0.5))
        return int(np.clip(k, 0, self.series.volume.shape[0] - 1))

    def _on_crosshair_changed(self) -> None:
        if self.series is not None:
            k = self._crosshair_slice()
            if k != self._current:
                self.set_current_slice(k)

    def go_to_slice(self, k: int, *, centre_on_peak: bool = False) -> None:
        """Move the views to the model's slice ``k`` (an acquisition slice, or a reformat slice for a run on
        reformats), optionally onto the heatmap's peak there."""
        series = self.series
        if series is None:
            return
        if self.results is not None:
            series.set_crosshair(self.results.crosshair_to(series.volume, series.crosshair, k, centre_on_peak))
            return
        ijk = series.crosshair_index()  # no results yet: an acquisition slice
        ijk[2] = int(np.clip(k, 0, series.volume.shape[0] - 1))
        series.set_crosshair(series.volume.index_to_lps(ijk))

    def go_to_finding(self, k: int) -> None:
        """Move the views to a finding's peak slice ``k``, crosshair on the heatmap's peak (every MPR view shows it)."""
        self.go_to_slice(k, centre_on_peak=True)

    def follow_findings(self, *, once: bool = False) -> None:
        """Jump to the most suspicious slice (crosshair on its heatmap peak) whenever a run finishes (the
        demo), or only when the next one does (``radscope PATH --model NAME``)."""
        self._follow_once = once
        self.finished.connect(self._on_finished_jump)

    def _on_finished_jump(self, key: RunKey) -> None:
        if getattr(self, "_follow_once", False):
            self.finished.disconnect(self._on_finished_jump)
        self.show_most_suspicious()

    def show_most_suspicious(self) -> int | None:
        """Jump to the slice the model scores highest, centred on its heatmap peak."""
        k = self.most_suspicious_slice()
        if k is not None:
            self.go_to_slice(k, centre_on_peak=True)
        return k

    def set_current_slice(self, k: int) -> None:
        self._current = int(k)
        self.worker.scheduler.set_current(k)
        if self._busy and not self._awaiting_cache and self.series is not None and not self._on_reformat() \
                and self.series.loaded[k]:
            self.worker.scheduler.mark_available([k])  # scrolled during loading: this one may run
        self.run_state.set_current_slice(k)

    def select_model(self, name: str) -> bool:
        """Pick an installed model by name (as ``--model NAME``); starts it on the open series."""
        return self.state.select(name)

    def use_model(self, name_or_path: str) -> bool:
        """``--model NAME|PATH``: an installed package by name, or a package folder/.zip by path.
        A failure is reported through :attr:`notify` (naming what is installed) and returns False."""
        self._explicit = True
        path = Path(name_or_path)
        if path.exists():
            from inference.package import read_card

            try:
                card = read_card(path)
            except Exception as exc:
                self.notify.emit(f"cannot use model package {path}: {exc}")
                return False
            self.state.add_model(ModelEntry(card.name, path, card=card))  # -> _on_model_changed
            return True
        if self.select_model(name_or_path):
            return True
        names = ", ".join(self.state.usable_names()) or "none"
        self.notify.emit(f"model {name_or_path!r} is not installed (installed: {names})")
        return False

    # -- intended use -------------------------------------------------------------------------
    def _ood_threshold(self) -> float | None:
        card = self._entry.card if self._entry is not None else None
        spec = getattr(card, "ood", None)
        return float(spec.threshold) if spec is not None else None

    def _ood_sha256(self) -> str | None:
        spec = getattr(self._entry.card if self._entry is not None else None, "ood", None)
        return str(spec.sha256) if spec is not None else None

    def _on_reformat(self) -> bool:
        return isinstance(self.results, ReformatResults)

    def _start_if_in_scope(self) -> RunKey | None:
        """Run the model by itself only on a series its card's rules accept; else say why in the panel."""
        if self.series is None or self._entry is None or self._entry.card is None:
            return None
        if not self.scope.forced:
            self.scope.evaluate(self._entry.card, self.series.volume)
            if self.scope.blockers():
                self.state.set_status(self.scope.not_run_text(self._entry.name))
                self._refresh_panel()
                return None
        return self.run()

    def run_by_hand(self) -> RunKey | None:
        """The Run button: outside intended use, only after the user confirms; then every view carries the
        'outside intended use' banner while these results show."""
        if self.series is None or self._entry is None:
            return self.run()
        if self._entry.card is not None and self.scope.decision is None:
            self.scope.evaluate(self._entry.card, self.series.volume)
        if self.scope.blockers() and not self.scope.forced:
            if not self.scope.ask(self._entry.name):
                return None
        self.series.set_banner(self.scope.banner())
        return self.run()

    # -- runs ---------------------------------------------------------------------------------
    def run(self) -> RunKey | None:
        """(Re)start the current model on the current series. Results kept in memory are reused; else the
        run starts with nothing allowed to infer while the results cache is asked (off the GUI thread): a
        hit fills the run and leaves nothing to infer, a miss lets the slices run. Either way the run's key
        stays the same, so layer probes queued meanwhile stay valid."""
        series, entry = self.series, self._entry
        if series is None or entry is None or series.is_color:
            if series is not None and series.is_color:
                self.notify.emit("AI: colour images are not supported by the installed models")
            return None
        ref = model_ref(entry, self.device)
        vol = series.volume
        card = entry.card
        assert card is not None  # model_ref refused a package without one
        if self.scope.decision is None:
            self.scope.evaluate(card, vol)
        plane = self.scope.decision.reformat_to if self.scope.decision is not None else None
        triple = (reformat_key(self.stack_id, plane), ref.sha256, self.method)
        self._lookup_token += 1
        self._eta.reset()
        self.state.new_run()
        self.run_started_at = time.perf_counter()
        self.first_heatmap_at = None
        prior = self._usable_memo(triple)
        if prior is not None and prior.complete:  # seen in this session: nothing to infer, a run for layer probes
            self._current = prior.slice_under(vol, series.crosshair)
            key = self.worker.run_series(self.stack_id, input_for(prior, self._model_input(vol)), ref, self.method,
                                         self._current, skip=np.ones(prior.shape[0], dtype=bool))
            prior.key = key
            self._remember(triple, prior)
            self._finish_reused(prior)
            return key
        self._awaiting_cache = prior is None and self.cache_io is not None and not ref.sha256.startswith("unverified:")
        results = prior or new_results(RunKey(self.stack_id, ref.sha256, self.method, -1), list(ref.labels), vol,
                                       plane, card.thresholds)
        if prior is None and plane is None and vol.missing_mask.any():  # a gap's blank slices never run: score 0
            results.scores[vol.missing_mask] = 0.0
            results.done |= vol.missing_mask
        if plane is not None:
            self.state.set_status(f"{entry.name} reads {plane} slices: it runs on {results.shape[0]} {plane} reformat "
                                  f"slices of this {self.scope.decision.plane if self.scope.decision else ''} series"
                                  + ("" if series.fully_loaded else " once every slice has loaded"))
        self._current = results.slice_under(vol, series.crosshair)
        self.run_state.set_current_slice(self._current)
        available = np.zeros(results.shape[0], dtype=bool) if self._awaiting_cache else self._schedulable(results)
        key = self.worker.run_series(self.stack_id, input_for(results, self._model_input(vol)), ref, self.method,
                                     self._current, available=available, skip=results.done, sink=_Sink(results))
        results.key = key
        self._remember(triple, results)
        self._gate_pending = self._ood_threshold() is not None and not self.scope.forced
        if self._gate_pending:
            self.results = results  # the overlay waits for the first slices' OOD verdict
        else:
            self._show(results)
        # a fresh run finishes in _on_batch, after the worker's signals queued before it (notices) are handled,
        # even if the worker has already stored every slice by now
        self._set_busy(True)
        self._refresh_panel()
        if self._awaiting_cache:
            assert self.cache_io is not None
            self.cache_io.lookup(self._lookup_token, self._cache_stack(results), key, ref.labels, vol.shape,
                                 card.thresholds, ood_sha256=self._ood_sha256(),
                                 grid=results.grid if isinstance(results, ReformatResults) else None)
        return key

    def _finish_reused(self, results: SeriesResults) -> None:
        """Show complete results that needed no inference (memory or cache) and say the run is done
        (unless, for a run the user did not force, most of their slices are unlike the training data)."""
        self._gate_pending = False
        if self.scope.ood_check(results, self._ood_threshold()):
            self.results = None
            self._set_busy(False)
            if self._entry is not None:
                self.state.set_status(self.scope.not_run_text(self._entry.name))
            self._refresh_panel()
            return
        self._show(results)
        self.first_heatmap_at = time.perf_counter()
        self._set_busy(False)
        self._refresh_panel()
        self.finished.emit(results.key)

    def _usable_memo(self, triple: tuple[str, str, str]) -> SeriesResults | None:
        prior = self._memo.get(triple)
        if prior is None or self.series is None or self._entry is None or self._entry.card is None:
            return None
        shown_on = prior.heatmap(prior.labels[0]).shape  # the acquired grid, for runs on reformats too
        if shown_on != self.series.volume.shape or prior.labels != list(self._entry.card.labels):
            self._memo.pop(triple)
            return None
        return prior

    def _cache_stack(self, results: SeriesResults) -> str:
        """The cache's id of ``results`` on the shown stack (as ``radscope infer`` computes it)."""
        assert self.series is not None
        return results.run_id(stack_key(self.stack_id, self.series.volume.sop_instance_uids))

    def _show(self, results: SeriesResults) -> None:
        """Make ``results`` the shown ones: one overlay per label on the series."""
        assert self.series is not None
        self.results = results
        for label in results.labels:
            self.series.add_overlay(self._overlay(label, results.heatmap(label)))

    def _overlay(self, label: str, array: np.ndarray | CodedVolume) -> Overlay:
        s = self.state.overlay_settings(label)
        return Overlay(self.overlay_name(label), array, s.lut(), s.opacity, s.visible, contour=s.contour_level,
                       threshold=s.threshold)

    def _on_cache_loaded(self, reply: CacheReply) -> None:
        current = self._awaiting_cache and reply.token == self._lookup_token and self.results is not None
        if reply.error is not None and current:
            self.notify.emit(f"AI: cached results ignored, recomputing: {reply.error}")
        if reply.results is not None:
            if current:
                assert self.results is not None
                reply.results.key = self.results.key
            self._remember(reply.triple, reply.results)  # valid for its series even if another is shown now
        if not current or self.series is None:
            return
        self._awaiting_cache = False
        if reply.results is not None:
            self.worker.scheduler.skip(np.arange(reply.results.shape[0]))  # nothing left to infer
            if self._entry is not None:
                self.state.set_status(f"{self._entry.name}: results from the cache (computed before with "
                                      f"{self.method})")
            self._finish_reused(reply.results)
        else:
            self.worker.scheduler.mark_available(np.flatnonzero(self._schedulable()))

    def _on_cache_failed(self, message: str) -> None:
        self.notify.emit(f"AI: {message}")

    def _store(self, results: SeriesResults) -> None:
        """Write a run that just completed to the cache (off the GUI thread)."""
        if self.cache_io is None or self.series is None or self._entry is None \
                or results.key.model_sha256.startswith("unverified:"):
            return
        card = self._entry.card
        if card is None:
            return
        self.cache_io.store(self._cache_stack(results), results, {
            "device": self.device_name, "model": {"name": card.name, "version": card.version},
            "written_by": "radscope viewer", "written": time.strftime("%Y-%m-%dT%H:%M:%S%z")},
            ood_sha256=self._ood_sha256())

    def flush_cache(self, timeout_s: float = 60.0) -> bool:
        """Wait until finished runs are written to the cache (tests, screenshots); True when done."""
        return self.cache_io is None or self.cache_io.flush(timeout_s)

    def _remember(self, triple: tuple[str, str, str], results: SeriesResults) -> None:
        """Keep recent runs (live objects, filled as batches arrive) so a revisited series is instant."""
        self._memo[triple] = results
        self._memo.move_to_end(triple)
        while len(self._memo) > 1 and sum(r.nbytes for r in self._memo.values()) > MEMO_BYTES:
            self._memo.popitem(last=False)

    def cancel(self) -> None:
        was = self._busy
        self._lookup_token += 1  # a cache answer still on its way starts nothing
        self._awaiting_cache = False
        self.worker.cancel()
        self._set_busy(False)
        if was:
            self._refresh_panel()

    def shutdown(self) -> None:
        """Stop the worker thread (window closing); cache writes already asked for finish first.

        A run whose last batch is stored but whose signal has not been handled yet is cached now; batch
        signals still queued are ignored from here on."""
        self.worker.stop()
        self._shut_down = True
        res = self.results
        if self._busy and res is not None and res.complete:
            self._busy = False
            self._store(res)
        if self.cache_io is not None:
            self.cache_io.shutdown()

    # -- worker signals (queued onto the GUI thread) -----------------------------------------
    def _on_batch(self, result: BatchResult) -> None:
        res = self.results
        if self._shut_down or res is None or result.key != res.key or not self.worker.scheduler.is_current(result.key):
            return  # a stale run: never paint it
        out = result.output  # already stored in ``res`` by the run's _Sink, on the worker thread
        if self._gate_pending:
            verdict = self.scope.ood_check(res, self._ood_threshold())
            if verdict:  # most of the first slices are unlike the training data: stop, show nothing
                self._gate_pending = False
                self.cancel()
                self.results = None
                if self._entry is not None:
                    self.state.set_status(self.scope.not_run_text(self._entry.name))
                self._refresh_panel()
                return
            if verdict == "":
                self._gate_pending = False
                self._show(res)
        if result.device != self.device_name:  # e.g. after an out-of-memory fallback to the CPU
            self.device_name = result.device
            self.state.set_device(result.device)
        self._eta.add(len(out.indices), result.seconds)
        if self.first_heatmap_at is None:
            self.first_heatmap_at = time.perf_counter()
        if self.series is not None and (res.maps_span_slices or self._shows_any(out.indices)):
            self.series.overlaysChanged.emit()  # values landed in place in the layers' arrays: one redraw
        if res.complete:
            if self._busy:  # the sink may have stored later batches already: finish once
                self._set_busy(False)
                self._refresh_panel()
                self._store(res)
                self.finished.emit(res.key)
        elif not self._panel_timer.isActive():  # the plot redraws at most ~5 times a second
            self._panel_timer.start(200)

    def _shows_any(self, indices: tuple[int, ...]) -> bool:
        """Would slices ``indices`` change what is on screen? (Without a window: assume so.)"""
        return True

    def _on_model_loaded(self, info: ModelLoaded) -> None:
        self.device_name = info.device
        self.state.set_device(info.device)
        methods = list(info.methods) or [DEFAULT_METHOD]
        if self.method not in methods:
            self.method = methods[0]
            self.state.set_method(self.method)
        self.run_state.set_methods(methods, self.method)

    def _on_failed(self, key: RunKey | None, message: str) -> None:
        if key is not None and self.results is not None and key != self.results.key:
            return
        self._set_busy(False)
        self.state.set_status(message)
        self.notify.emit(f"AI: {message}")
        self._refresh_panel()

    def _on_notice(self, message: str) -> None:
        if self.state.notice(message):  # one line per event, not one per batch
            self.notify.emit(f"AI: {message}")

    def _on_load_finished(self) -> None:
        if self.series is not None and self._busy and self.results is not None:
            # the engine may hand over a new array for the finished volume: run on that one
            self.worker.update_volume(self.results.key, input_for(self.results, self._model_input(self.series.volume)))
            if not self._awaiting_cache:
                self.worker.scheduler.mark_available(np.arange(self.results.shape[0]))

    def _schedulable(self, results: SeriesResults | None = None) -> np.ndarray:
        """Slices the worker may take now. While the series is still decoding only the visible slice
        (once decoded) competes with the decoder threads for the CPU; the rest waits for the load (all of a
        run on reformats, whose every slice needs the whole volume)."""
        assert self.series is not None
        results = results if results is not None else self.results
        if isinstance(results, ReformatResults):
            return np.full(results.shape[0], self.series.fully_loaded)
        loaded = self.series.loaded.copy()
        if self.series.fully_loaded:
            return loaded
        only = np.zeros_like(loaded)
        only[self._current] = loaded[self._current]
        return only

    def _on_slice_loaded(self, k: int) -> None:
        if self._busy and not self._awaiting_cache and k == self._current and not self._on_reformat():
            self.worker.scheduler.mark_available([k])

    # -- state and panel signals ---------------------------------------------------------------
    def _on_model_changed(self, name: str) -> None:
        """Another model is in force (the picker, auto-selection, ``--model``): load it, and run it on the
        shown series if its intended use allows (its status line was cleared by the state)."""
        entry = self._entry
        if entry is None:
            return
        self.worker.preload(model_ref(entry, self.device))
        self.scope.reset()
        if self.series is not None:
            self.series.set_banner("")
            self._start_if_in_scope()

    def _on_method_chosen(self, method: str) -> None:
        if method != self.method:
            self.method = method
            self.state.set_method(method)
            if self.series is not None and self.results is not None:
                self.run()

    def _on_overlay_changed(self, label: str) -> None:
        """A label's overlay settings changed in the state: onto its layer, and findings at its threshold."""
        if self.series is None:
            return
        layer = self.series.overlay(self.overlay_name(label))
        if layer is not None:
            layer.update(**self.state.overlay_settings(label).layer_fields())
        if self.results is not None:
            self.run_state.set_results(self.results, self._thresholds(self.results))

    def _thresholds(self, results: SeriesResults) -> dict[str, float]:
        """Each of ``results``' labels' threshold in force."""
        return {lab: self.state.overlay_settings(lab).threshold for lab in results.labels}

    def _refresh_panel(self) -> None:
        res = self.results
        self.run_state.set_results(res, self._thresholds(res) if res is not None else {})
        threshold = self._ood_threshold()
        self.run_state.set_ood(res.ood if res is not None and threshold is not None else None, threshold,
                           self.scope.ood_summary(res, threshold) if res is not None else "")
        total = res.shape[0] if res is not None else 0
        done = res.n_done if res is not None else 0
        self.run_state.set_progress(done, total, self._eta.eta(total - done), self._busy)

    # -- convenience --------------------------------------------------------------------------
    def most_suspicious_slice(self) -> int | None:
        return None if self.results is None else self.results.most_suspicious_slice()
