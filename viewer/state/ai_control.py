"""The AI controller's logic, Qt-free: it changes only state (:class:`~viewer.state.ai.AISettings`,
:class:`~viewer.state.ai.AIRunState`, the shown :class:`~viewer.state.series.SeriesState`'s overlays, crosshair and
banner) and drives an inference engine and a results cache through small protocols.

:class:`AIControl` decides which model runs on which series (the chosen one if its card offers the modality or the
user chose it, else the first installed model offered for it, else a status line saying why not), whether an
automatic run may start (intended use: :class:`~viewer.ai.scope_guard.ScopeGuard`), memory or cache hit versus
inference, which batches may paint (stale run keys never do), the findings at the thresholds in force, moving the
crosshair to the top finding, and that the status line always belongs to the shown series and model.

The Qt adapter (:mod:`viewer.qt.ai_controller`) gives it the worker thread and the cache threads and hands their
signals (queued to the GUI thread) to :meth:`AIControl.on_batch`, :meth:`~AIControl.on_model_loaded`,
:meth:`~AIControl.on_failed`, :meth:`~AIControl.on_notice` and :meth:`~AIControl.on_cache_loaded`. Tests drive
the same methods without Qt (``tests/support/ai_engine.py`` runs a real model inline).

Overlay values are probabilities: the explainer's per-slice map (normalised to [0, 1]) times that slice's score
for the label, so a slice the model scores low shows little colour, and the colour bar, threshold and contour
level all read in probability units.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from psygnal import Signal

from viewer.ai import EtaEstimator, JobScheduler, RunKey, SeriesResults
from viewer.ai.batches import BatchOutput, BatchResult, ModelLoaded, ModelRef, Sink
from viewer.ai.cached import stack_key
from viewer.ai.model_input import card_bits, model_input
from viewer.ai.reformat_run import ReformatResults, input_for, new_results, reformat_key
from viewer.ai.scope_guard import ScopeGuard
from viewer.display.coded import CodedVolume
from viewer.state.ai import AIRunState, AISettings
from viewer.state.ai_models import ModelEntry
from viewer.state.layers import OverlayLayer
from viewer.state.series import SeriesState

DEFAULT_METHOD = "gradcam"
OVERLAY_PREFIX = "AI "
MEMO_BYTES = 768 * 2**20
"""Heatmaps of recent runs kept in memory, so switching back to a series shows its results at once."""
WAITS_FOR_LOAD = " once every slice has loaded"
"""The end of a run on reformats' status line while the series still decodes."""


class Engine(Protocol):
    """The inference engine the control drives (the viewer's: :class:`viewer.qt.ai_worker.AIWorker`)."""

    scheduler: JobScheduler

    def preload(self, model: ModelRef) -> None: ...

    def run_series(self, stack_id: str, volume: Any, model: ModelRef, method: str, current: int = 0, *,
                   available: np.ndarray | None = None, skip: np.ndarray | None = None,
                   sink: Sink | None = None) -> RunKey: ...

    def update_volume(self, key: RunKey, volume: Any) -> None: ...

    def cancel(self) -> None: ...

    def stop(self, timeout: float = 10.0) -> None: ...


class CacheAccess(Protocol):
    """The results cache the control asks (the viewer's: :class:`viewer.qt.ai_cache.CacheIO`); answers come back
    through :meth:`AIControl.on_cache_loaded` with a reply holding ``token``, ``triple``, ``results``, ``error``."""

    def lookup(self, token: int, stack: str, key: RunKey, labels: Sequence[str], shape: tuple[int, int, int],
               thresholds: Mapping[str, float] | None = None, **how: Any) -> None: ...

    def store(self, stack: str, results: SeriesResults, extra: Mapping[str, Any] | None = None,
              ood_sha256: str | None = None) -> None: ...

    def flush(self, timeout_s: float = 60.0) -> bool: ...

    def shutdown(self, wait_s: float = 30.0) -> None: ...


def model_ref(entry: ModelEntry, device: str = "auto") -> ModelRef:
    """What the engine loads for ``entry`` (an unverified package is keyed by its path)."""
    card = entry.card
    if card is None:
        raise ValueError(f"{entry.path}: not a usable model package ({entry.error})")
    sha = card.weights.sha256 or f"unverified:{entry.path}"
    return ModelRef(entry.path, card.name, sha, tuple(card.labels), device)


class ResultsSink:
    """Stores a run's batches into its :class:`SeriesResults` on the engine's thread (the GUI thread then only
    repaints): each heatmap is weighted by its slice's score, i.e. put in probability units."""

    def __init__(self, results: SeriesResults) -> None:
        self.results = results

    def __call__(self, out: BatchOutput) -> None:
        self.results.add(out.indices, out.scores, out.heatmaps, weighted=True, ood=out.ood)


class AIControl:
    """The AI of one viewer window, without Qt. Events: ``finished(RunKey)`` (every slice of the run is in),
    ``busyChanged(bool)``, ``notify(str)`` (errors and notices for the window's errors panel)."""

    finished = Signal(object)
    busyChanged = Signal(bool)
    notify = Signal(str)

    def __init__(self, engine: Engine, models: list[ModelEntry], *, cache: CacheAccess | None = None,
                 scope: ScopeGuard | None = None, auto_run: bool = True) -> None:
        self.engine = engine
        self.cache = cache
        self.auto_run = auto_run
        self.state = AISettings(DEFAULT_METHOD)
        """Installed models, the chosen one, method, device, per-label overlay settings and thresholds and the
        status line in force (the panel renders it and changes it on the user's edits; the review reads it)."""
        self.run_state = AIRunState()
        """The run's progress, the loaded model's methods, results and findings, OOD, the plots' cursor."""
        self.scope = scope if scope is not None else ScopeGuard()
        """Intended use of the shown series for the chosen model (rules, OOD gate, forced runs' banner)."""
        self.shows_any: Callable[[tuple[int, ...]], bool] = lambda indices: True
        """Would these slices change what is on screen? (The window's views answer; without them: yes.)"""
        self.defer_refresh: Callable[[], None] = self.refresh
        """How a batch asks for the panel's refresh (the Qt adapter throttles it to ~5 a second)."""
        self.device = "auto"
        self.device_name = "(model not loaded)"
        self.series: SeriesState | None = None
        self.stack_id = ""
        self.results: SeriesResults | None = None
        self.run_input: Any = None
        """The lazy model input the engine reads for the shown series' run (`input_for`: the acquired model
        input, or the `ReformatInput` of a run on reformats); the layer inspector probes the same."""
        self.first_heatmap_at: float | None = None
        self.run_started_at: float | None = None
        self._eta = EtaEstimator()
        self._busy = False
        self._shut_down = False
        self._series_links: list[tuple[Any, Callable[..., None]]] = []
        self._memo: OrderedDict[tuple[str, str, str], SeriesResults] = OrderedDict()
        self._explicit = False  # the user named the model (--model): no auto-switching
        self._lookup_token = 0  # bumped by every run/cancel: a cache answer for an older one only fills the memo
        self._awaiting_cache = False  # the current run waits for the cache's answer before it infers
        self._gate_pending = False  # an automatic run's overlay waits for its first slices' OOD verdict
        self._follow_once: bool | None = None  # follow_findings: None = not following
        self._adopting_method = False  # a loaded model's own method replaces one it lacks: no new run for that
        self.run_state.set_methods([DEFAULT_METHOD], DEFAULT_METHOD)
        self.state.modelChanged.connect(self._on_model_changed)
        self.state.methodChanged.connect(self._on_method_changed)
        self.state.overlay.changed.connect(self._on_overlay_changed)
        self.state.set_models(models)

    # -- facts -------------------------------------------------------------------------------------
    @property
    def model_entry(self) -> ModelEntry | None:
        return self.state.entry

    @property
    def current(self) -> int:
        """The model's slice the views show (the scheduler runs it first; the plots' cursor marks it)."""
        return self.run_state.current_slice

    @property
    def busy(self) -> bool:
        return self._busy

    @property
    def method(self) -> str:
        """The explanation method in force (``state.method``)."""
        return self.state.method

    @staticmethod
    def overlay_name(label: str) -> str:
        return OVERLAY_PREFIX + label

    def model_input(self, volume: Any) -> Any:
        """What reaches the chosen model: a lazy per-slice view (viewer.ai.model_input), read on the engine's
        thread."""
        entry = self.state.entry
        return model_input(volume, card_bits(entry.card if entry is not None else None))

    def most_suspicious_slice(self) -> int | None:
        return None if self.results is None else self.results.most_suspicious_slice()

    def _set_busy(self, busy: bool) -> None:
        if busy != self._busy:
            self._busy = busy
            self.busyChanged.emit(busy)

    # -- the shown series ----------------------------------------------------------------------------
    def set_series(self, series: SeriesState | None, stack_id: str = "") -> None:
        """A new series is shown: drop the old run and its status line, and (auto-run) start a model on it."""
        if series is self.series and stack_id == self.stack_id:
            return
        self.cancel()
        self.results = None
        self.run_input = None
        self.state.set_status("")  # a status line belongs to the series it was said about
        for signal, slot in self._series_links:
            signal.disconnect(slot)
        self._series_links = []
        self.series = series
        self.scope.reset()
        self.stack_id = stack_id or (series.volume.info.stack_id or series.volume.info.series_uid if series else "")
        self.refresh()  # no results yet: no plot, no "n/n done" left from the last series
        if series is None:
            return
        for signal, slot in ((series.loadFinished, self._on_load_finished), (series.sliceLoaded, self._on_slice_loaded),
                             (series.crosshairChanged, self._on_crosshair_changed)):
            signal.connect(slot)
            self._series_links.append((signal, slot))
        self.run_state.set_current_slice(self._crosshair_slice())
        if self.auto_run:
            self._auto_run(series.volume.info.modality)

    def _auto_run(self, modality: str) -> None:
        """Run the chosen model if it suits the modality (or the user named it); else the first installed model
        offered for it; else say why nothing runs."""
        entry = self.state.entry
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

    def _on_crosshair_changed(self, *_: Any) -> None:
        if self.series is not None:
            k = self._crosshair_slice()
            if k != self.current:
                self.set_current_slice(k)

    def set_current_slice(self, k: int) -> None:
        self.engine.scheduler.set_current(k)
        if self._busy and not self._awaiting_cache and self.series is not None and not self._on_reformat() \
                and self.series.loaded[k]:
            self.engine.scheduler.mark_available([k])  # scrolled during loading: this one may run
        self.run_state.set_current_slice(k)

    def _on_load_finished(self, *_: Any) -> None:
        if self.series is not None and self._busy and self.results is not None:
            # the engine may hand over a new array for the finished volume: run on that one
            self.run_input = input_for(self.results, self.model_input(self.series.volume))
            self.engine.update_volume(self.results.key, self.run_input)
            if not self._awaiting_cache:
                self.engine.scheduler.mark_available(np.arange(self.results.shape[0]))
            if self.state.status.endswith(WAITS_FOR_LOAD):
                self._say_reformat(self.results)

    def _on_slice_loaded(self, k: int) -> None:
        if self._busy and not self._awaiting_cache and k == self.current and not self._on_reformat():
            self.engine.scheduler.mark_available([k])

    def _on_reformat(self) -> bool:
        return isinstance(self.results, ReformatResults)

    def _say_reformat(self, results: SeriesResults) -> None:
        """The status line of a run on reformats: what the model reads, and whether it waits for the load."""
        entry = self.state.entry
        if isinstance(results, ReformatResults) and self.series is not None and entry is not None:
            acquired = self.scope.decision.plane if self.scope.decision is not None else "acquired"
            self.state.set_status(f"{entry.name} reads {results.plane} slices: it runs on {results.shape[0]} "
                                  f"{results.plane} reformat slices of this {acquired} series"
                                  + ("" if self.series.fully_loaded else WAITS_FOR_LOAD))

    def _schedulable(self, results: SeriesResults | None = None) -> np.ndarray:
        """Slices the engine may take now. While the series is still decoding only the visible slice (once
        decoded) competes with the decoder threads for the CPU; the rest waits for the load (all of a run on
        reformats, whose every slice needs the whole volume)."""
        assert self.series is not None
        results = results if results is not None else self.results
        if isinstance(results, ReformatResults):
            return np.full(results.shape[0], self.series.fully_loaded)
        loaded = self.series.loaded.copy()
        if self.series.fully_loaded:
            return loaded
        only = np.zeros_like(loaded)
        only[self.current] = loaded[self.current]
        return only

    # -- moving the views ---------------------------------------------------------------------------
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

    def show_most_suspicious(self) -> int | None:
        """Jump to the slice the model scores highest, centred on its heatmap peak."""
        k = self.most_suspicious_slice()
        if k is not None:
            self.go_to_slice(k, centre_on_peak=True)
        return k

    def follow_findings(self, *, once: bool = False) -> None:
        """Jump to the most suspicious slice (crosshair on its heatmap peak) whenever a run finishes (the demo),
        or only when the next one does (``radscope PATH --model NAME``)."""
        if self._follow_once is None:
            self.finished.connect(self._on_finished_jump)
        self._follow_once = once

    def _on_finished_jump(self, key: RunKey) -> None:
        if self._follow_once:
            self._follow_once = None
            self.finished.disconnect(self._on_finished_jump)
        self.show_most_suspicious()

    # -- choosing the model --------------------------------------------------------------------------
    def select_model(self, name: str) -> bool:
        """Pick an installed model by name (as ``--model NAME``); starts it on the open series."""
        return self.state.select(name)

    def use_model(self, name_or_path: str) -> bool:
        """``--model NAME|PATH``: an installed package by name, or a package folder/.zip by path. A failure is
        reported through :attr:`notify` (naming what is installed) and returns False."""
        self._explicit = True
        path = Path(name_or_path)
        if path.exists():
            from inference.package import read_card  # torch-free

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

    def _on_model_changed(self, name: str) -> None:
        """Another model is in force (the picker, auto-selection, ``--model``): load it, and run it on the shown
        series if its intended use allows (its status line was cleared by the state)."""
        entry = self.state.entry
        if entry is None:
            return
        self.engine.preload(model_ref(entry, self.device))
        self.scope.reset()
        if self.series is not None:
            self.series.set_banner("")
            self._start_if_in_scope()

    def choose_method(self, method: str) -> None:
        """Another explanation method (as the panel's picker does: into the state)."""
        self.state.set_method(method)

    def _on_method_changed(self, method: str) -> None:
        """Another explanation method is in force: the picker shows it, and a series with results runs again."""
        if self.run_state.methods:
            self.run_state.set_methods(self.run_state.methods, method)
        if not self._adopting_method and self.series is not None and self.results is not None:
            self.run()

    # -- intended use -------------------------------------------------------------------------------
    def _ood_threshold(self) -> float | None:
        entry = self.state.entry
        spec = getattr(entry.card if entry is not None else None, "ood", None)
        return float(spec.threshold) if spec is not None else None

    def _ood_sha256(self) -> str | None:
        entry = self.state.entry
        spec = getattr(entry.card if entry is not None else None, "ood", None)
        return str(spec.sha256) if spec is not None else None

    def _start_if_in_scope(self) -> RunKey | None:
        """Run the model by itself only on a series its card's rules accept; else say why on the status line."""
        entry = self.state.entry
        if self.series is None or entry is None or entry.card is None:
            return None
        if not self.scope.forced:
            self.scope.evaluate(entry.card, self.series.volume)
            if self.scope.blockers():
                self.state.set_status(self.scope.not_run_text(entry.name))
                self.refresh()
                return None
        return self.run()

    def run_by_hand(self) -> RunKey | None:
        """The Run button: outside intended use, only after the user confirms; then every view carries the
        'outside intended use' banner while these results show."""
        entry = self.state.entry
        if self.series is None or entry is None:
            return self.run()
        if entry.card is not None and self.scope.decision is None:
            self.scope.evaluate(entry.card, self.series.volume)
        if self.scope.blockers() and not self.scope.forced:
            if not self.scope.ask(entry.name):
                return None
        self.series.set_banner(self.scope.banner())
        return self.run()

    # -- runs ---------------------------------------------------------------------------------------
    def run(self) -> RunKey | None:
        """(Re)start the current model on the current series. Results kept in memory are reused; else the run
        starts with nothing allowed to infer while the results cache is asked: a hit fills the run and leaves
        nothing to infer, a miss lets the slices run. Either way the run's key stays the same, so layer probes
        queued meanwhile stay valid."""
        series, entry = self.series, self.state.entry
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
            self.run_state.set_current_slice(prior.slice_under(vol, series.crosshair))
            self.run_input = input_for(prior, self.model_input(vol))
            key = self.engine.run_series(self.stack_id, self.run_input, ref, self.method,
                                         self.current, skip=np.ones(prior.shape[0], dtype=bool))
            prior.key = key
            self._remember(triple, prior)
            self._finish_reused(prior)
            return key
        self._awaiting_cache = prior is None and self.cache is not None and not ref.sha256.startswith("unverified:")
        results = prior or new_results(RunKey(self.stack_id, ref.sha256, self.method, -1), list(ref.labels), vol,
                                       plane, card.thresholds)
        if prior is None and plane is None and vol.missing_mask.any():  # a gap's blank slices never run: score 0
            results.scores[vol.missing_mask] = 0.0
            results.done |= vol.missing_mask
        self._say_reformat(results)
        self.run_state.set_current_slice(results.slice_under(vol, series.crosshair))
        available = np.zeros(results.shape[0], dtype=bool) if self._awaiting_cache else self._schedulable(results)
        self.run_input = input_for(results, self.model_input(vol))
        key = self.engine.run_series(self.stack_id, self.run_input, ref, self.method,
                                     self.current, available=available, skip=results.done, sink=ResultsSink(results))
        results.key = key
        self._remember(triple, results)
        self._gate_pending = self._ood_threshold() is not None and not self.scope.forced
        if self._gate_pending:
            self.results = results  # the overlay waits for the first slices' OOD verdict
        else:
            self._show(results)
        # a fresh run finishes in on_batch, after the engine's signals queued before it (notices) are handled,
        # even if the engine has already stored every slice by now
        self._set_busy(True)
        self.refresh()
        if self._awaiting_cache:
            assert self.cache is not None
            self.cache.lookup(self._lookup_token, self._cache_stack(results), key, ref.labels, vol.shape,
                              card.thresholds, ood_sha256=self._ood_sha256(),
                              grid=results.grid if isinstance(results, ReformatResults) else None)
        return key

    def cancel(self) -> None:
        was = self._busy
        self._lookup_token += 1  # a cache answer still on its way starts nothing
        self._awaiting_cache = False
        self.engine.cancel()
        self._set_busy(False)
        if was:
            self.refresh()

    def _finish_reused(self, results: SeriesResults) -> None:
        """Show complete results that needed no inference (memory or cache) and say the run is done (unless, for
        a run the user did not force, most of their slices are unlike the training data)."""
        self._gate_pending = False
        if self.scope.ood_check(results, self._ood_threshold()):
            self._stop_outside_scope()
            return
        self._show(results)
        self.first_heatmap_at = time.perf_counter()
        self._set_busy(False)
        self.refresh()
        self.finished.emit(results.key)

    def _stop_outside_scope(self) -> None:
        """Most of the first slices are unlike the training data: nothing is shown, the status line says why."""
        self.results = None
        self._set_busy(False)
        entry = self.state.entry
        if entry is not None:
            self.state.set_status(self.scope.not_run_text(entry.name))
        self.refresh()

    def _usable_memo(self, triple: tuple[str, str, str]) -> SeriesResults | None:
        prior = self._memo.get(triple)
        entry = self.state.entry
        if prior is None or self.series is None or entry is None or entry.card is None:
            return None
        shown_on = prior.heatmap(prior.labels[0]).shape  # the acquired grid, for runs on reformats too
        if shown_on != self.series.volume.shape or prior.labels != list(entry.card.labels):
            self._memo.pop(triple)
            return None
        return prior

    def _remember(self, triple: tuple[str, str, str], results: SeriesResults) -> None:
        """Keep recent runs (live objects, filled as batches arrive) so a revisited series is instant."""
        self._memo[triple] = results
        self._memo.move_to_end(triple)
        while len(self._memo) > 1 and sum(r.nbytes for r in self._memo.values()) > MEMO_BYTES:
            self._memo.popitem(last=False)

    def forget_runs(self) -> None:
        """Drop the runs kept in memory (then only the results cache knows them, as after a restart)."""
        self._memo.clear()

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

    def _overlay(self, label: str, array: np.ndarray | CodedVolume) -> OverlayLayer:
        s = self.state.overlay_settings(label)
        return OverlayLayer(self.overlay_name(label), array, s.lut(), s.opacity, s.visible, contour=s.contour_level,
                            threshold=s.threshold)

    def _on_overlay_changed(self, label: str) -> None:
        """A label's overlay settings changed in the state: onto its layer, and findings at its threshold."""
        if self.series is None:
            return
        layer = self.series.overlay(self.overlay_name(label))
        if layer is not None:
            layer.update(**self.state.overlay_settings(label).layer_fields())
        if self.results is not None:
            self.run_state.set_results(self.results, self.state.thresholds)

    def refresh(self) -> None:
        """The run state from the results so far: scores and findings at the thresholds in force, OOD, progress."""
        res = self.results
        self.run_state.set_results(res, self.state.thresholds)
        threshold = self._ood_threshold()
        self.run_state.set_ood(res.ood if res is not None and threshold is not None else None, threshold,
                               self.scope.ood_summary(res, threshold) if res is not None else "")
        total = res.shape[0] if res is not None else 0
        done = res.n_done if res is not None else 0
        self.run_state.set_progress(done, total, self._eta.eta(total - done), self._busy)

    # -- the cache -----------------------------------------------------------------------------------
    def on_cache_loaded(self, reply: Any) -> None:
        """The cache's answer (``token``, ``triple``, ``results`` or None, ``error``): a hit for the current run
        finishes it without inference; a miss lets its slices run; an answer for another run fills the memory."""
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
            self.engine.scheduler.skip(np.arange(reply.results.shape[0]))  # nothing left to infer
            entry = self.state.entry
            if entry is not None:
                self.state.set_status(f"{entry.name}: results from the cache (computed before with {self.method})")
            self._finish_reused(reply.results)
        else:
            self.engine.scheduler.mark_available(np.flatnonzero(self._schedulable()))

    def _store(self, results: SeriesResults) -> None:
        """Write a run that just completed to the cache (off the GUI thread)."""
        entry = self.state.entry
        if self.cache is None or self.series is None or entry is None or entry.card is None \
                or results.key.model_sha256.startswith("unverified:"):
            return
        card = entry.card
        self.cache.store(self._cache_stack(results), results, {
            "device": self.device_name, "model": {"name": card.name, "version": card.version},
            "written_by": "radscope viewer", "written": time.strftime("%Y-%m-%dT%H:%M:%S%z")},
            ood_sha256=self._ood_sha256())

    def flush_cache(self, timeout_s: float = 60.0) -> bool:
        """Wait until finished runs are written to the cache (tests, screenshots); True when done."""
        return self.cache is None or self.cache.flush(timeout_s)

    def shutdown(self) -> None:
        """Stop the engine (window closing); cache writes already asked for finish first. A run whose last batch
        is stored but whose signal has not been handled yet is cached now; later batches are ignored."""
        self.engine.stop()
        self._shut_down = True
        res = self.results
        if self._busy and res is not None and res.complete:
            self._busy = False
            self._store(res)
        if self.cache is not None:
            self.cache.shutdown()

    # -- the engine's reports -------------------------------------------------------------------------
    def on_batch(self, result: BatchResult) -> None:
        """A batch of the engine (already stored in the run's results by its sink)."""
        res = self.results
        if self._shut_down or res is None or result.key != res.key or not self.engine.scheduler.is_current(result.key):
            return  # a stale run: never paint it
        out = result.output
        if self._gate_pending:
            verdict = self.scope.ood_check(res, self._ood_threshold())
            if verdict:  # most of the first slices are unlike the training data: stop, show nothing
                self._gate_pending = False
                self.cancel()
                self._stop_outside_scope()
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
        if self.series is not None and (res.maps_span_slices or self.shows_any(out.indices)):
            self.series.overlaysChanged.emit()  # values landed in place in the layers' arrays: one redraw
        if res.complete:
            if self._busy:  # the sink may have stored later batches already: finish once
                self._set_busy(False)
                self.refresh()
                self._store(res)
                self.finished.emit(res.key)
        else:
            self.defer_refresh()  # the plot redraws at most ~5 times a second

    def on_model_loaded(self, info: ModelLoaded) -> None:
        self.device_name = info.device
        self.state.set_device(info.device)
        methods = list(info.methods) or [DEFAULT_METHOD]
        self.run_state.set_methods(methods, self.method if self.method in methods else methods[0])
        if self.method not in methods:
            self._adopting_method = True
            try:
                self.state.set_method(methods[0])
            finally:
                self._adopting_method = False
        self.run_state.set_loaded_model(info.ref.sha256)

    def on_failed(self, key: RunKey | None, message: str) -> None:
        if key is not None and self.results is not None and key != self.results.key:
            return
        self._set_busy(False)
        self.state.set_status(message)
        self.notify.emit(f"AI: {message}")
        self.refresh()

    def on_notice(self, message: str) -> None:
        if self.state.notice(message):  # one line per event, not one per batch
            self.notify.emit(f"AI: {message}")
