"""The one inference worker thread: it owns the model and the device and runs scheduler jobs.

:class:`AIWorker` is a QObject living on the GUI thread; its loop runs on a plain Python thread that
blocks in :meth:`viewer.ai.JobScheduler.next_batch`. Torch (and the model) is imported and loaded
only on that thread; grad mode is thread-local, so the session enables it there itself. Results
are *emitted* from the worker thread and delivered, queued, to GUI-thread receivers: connect the
signals to bound methods of QObjects that live on the GUI thread, never to closures (a closure
slot runs on the emitting thread even with a queued connection).

The model is reached through an :class:`InferenceSession` made by a factory (default:
:class:`RunnerSession`, the ``inference`` package's runner); tests pass a factory of their own.
"""

from __future__ import annotations

import threading
import time
import traceback
from dataclasses import dataclass, replace

import numpy as np

from viewer.ai import Batch, JobKind, JobScheduler, RunKey
from viewer.gc_policy import collection_paused
from viewer.heap import release_free_memory
from viewer.torch_import import import_torch
from viewer.threads import lower_thread_priority
from viewer.qt.qt import QObject, Signal
from viewer.ai.batches import (BatchOutput, BatchResult, InferenceSession, ModelLoaded, ModelRef,  # noqa: F401
                               SessionFactory, Sink)
from viewer.ai.session import RunnerSession  # noqa: F401 (re-exported)


@dataclass
class _RunSpec:
    volume: np.ndarray
    model: ModelRef
    method: str
    sink: Sink | None = None


class AIWorker(QObject):
    """Owns the inference thread; the GUI thread starts runs, the thread streams batch results."""

    batchReady = Signal(object)  # BatchResult
    modelLoaded = Signal(object)  # ModelLoaded
    notice = Signal(str)  # e.g. "GPU out of memory: batch halved" / "... fell back to the CPU"
    failed = Signal(object, str)  # RunKey | None, message
    probeReady = Signal(object, object)  # RunKey, whatever the probe returned

    def __init__(
        self,
        scheduler: JobScheduler | None = None,
        session_factory: SessionFactory | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.scheduler = scheduler or JobScheduler()
        self._factory: SessionFactory = session_factory or RunnerSession
        self._lock = threading.Lock()
        self._runs: dict[RunKey, _RunSpec] = {}
        self._wanted: ModelRef | None = None
        self._session: InferenceSession | None = None
        self._loaded: ModelRef | None = None
        self._load_error: tuple[ModelRef, str] | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="radscope-inference", daemon=True)

    # -- GUI-thread API -----------------------------------------------------------------------
    def start(self) -> None:
        if not self._thread.is_alive():
            self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Cancel everything and end the thread (waits for the current batch to notice)."""
        self._stop.set()
        self.scheduler.close()
        if self._thread.is_alive():
            self._thread.join(timeout)

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def preload(self, model: ModelRef) -> None:
        """Load ``model`` on the worker thread now, before any series asks for it."""
        with self._lock:
            self._wanted = model
        self.start()

    def run_series(
        self,
        stack_id: str,
        volume: np.ndarray,
        model: ModelRef,
        method: str,
        current: int = 0,
        *,
        available: np.ndarray | None = None,
        skip: np.ndarray | None = None,
        sink: Sink | None = None,
    ) -> RunKey:
        """Cancel the previous run and queue every slice of ``volume`` (k, j, i) for ``model``.

        ``sink`` (optional) receives every batch of this run on the worker thread, before the signal.
        """
        n = int(volume.shape[0])
        with self._lock:
            self._wanted = model
            key = self.scheduler.start(stack_id, model.sha256, method, n, current, available=available, skip=skip)
            self._runs = {key: _RunSpec(volume, model, method, sink)}
        self.start()
        return key

    def update_volume(self, key: RunKey, volume: np.ndarray) -> None:
        """The run's stack finished loading into ``volume`` (same shape): use it from now on."""
        with self._lock:
            spec = self._runs.get(key)
            if spec is not None and spec.volume.shape == volume.shape:
                spec.volume = volume

    def cancel(self) -> None:
        """Stop the current run; a batch in flight stops at its next check and is dropped."""
        with self._lock:
            self.scheduler.cancel()
            self._runs = {}

    # -- worker thread ------------------------------------------------------------------------
    def _loop(self) -> None:
        lower_thread_priority()  # and torch's CPU pool threads, which this thread creates
        import_torch()  # under the lock scipy.stats imports take: they never meet a half-imported torch
        busy = False
        while not self._stop.is_set():
            batch = self.scheduler.next_batch(timeout=0.2)
            if batch is None:
                if busy:  # a run just ended: its per-batch buffers' freed space goes back to the system
                    busy = False
                    release_free_memory()
                with self._lock:
                    wanted = self._wanted
                if wanted is not None and wanted != self._loaded and not self._stop.is_set():
                    self._ensure_session(wanted)
                continue
            with self._lock:
                spec = self._runs.get(batch.key)
            if spec is None or batch.cancel.is_set():
                continue
            busy = True
            self._run_batch(batch, spec)
        self._session = None

    def _ensure_session(self, model: ModelRef) -> InferenceSession | None:
        if self._loaded == model and self._session is not None:
            return self._session
        if self._load_error is not None and self._load_error[0] == model:
            return None
        self._session, self._loaded = None, None
        t0 = time.perf_counter()
        try:
            with collection_paused(freeze="model"):  # no full GC passes (they hold the GIL) while it loads
                session = self._factory(model)
        except Exception as exc:  # a bad package must not kill the thread
            message = f"cannot load model {model.name} ({model.path}): {exc}"
            self._load_error = (model, message)
            self.failed.emit(None, message)
            return None
        self._session, self._loaded, self._load_error = session, model, None
        batch_size = getattr(session, "batch_size", None)
        if isinstance(batch_size, int) and batch_size > 0:
            self.scheduler.batch_size = batch_size  # e.g. larger on a GPU
        self.modelLoaded.emit(ModelLoaded(model, session.device, tuple(session.methods), time.perf_counter() - t0))
        return session

    def _run_batch(self, batch: Batch, spec: _RunSpec) -> None:
        session = self._ensure_session(spec.model)
        if session is None:
            self.scheduler.cancel()
            return
        if batch.kind == JobKind.PROBE:
            self._run_probe(batch, session)
            return
        t0 = time.perf_counter()
        try:
            for out in session.run(spec.volume, batch.indices, spec.method, batch.cancel, self.notice.emit):
                if batch.cancel.is_set():
                    return
                if spec.sink is not None:
                    spec.sink(out)
                    out = replace(out, heatmaps={})  # stored: batches queued for the GUI thread hold no maps
                now = time.perf_counter()
                self.batchReady.emit(BatchResult(batch.key, batch.kind, out, now - t0, session.device))
                t0 = now
        except Exception as exc:
            if batch.cancel.is_set():
                return
            self.failed.emit(batch.key, f"inference failed on slices {list(batch.indices)}: {exc}")
            traceback.print_exc()
            self.scheduler.cancel()

    def _run_probe(self, batch: Batch, session: InferenceSession) -> None:
        probe = getattr(session, "probe", None)
        if probe is None:
            self.failed.emit(batch.key, "this model session cannot run layer probes")
            return
        try:
            result = probe(batch.payload, batch.cancel)
        except Exception as exc:
            self.failed.emit(batch.key, f"layer probe failed: {exc}")
            return
        if not batch.cancel.is_set():
            self.probeReady.emit(batch.key, result)
