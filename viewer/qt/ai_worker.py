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
from pathlib import Path
from typing import Any, Protocol
from collections.abc import Callable, Iterable, Mapping, Sequence

import numpy as np

from viewer.ai import Batch, JobKind, JobScheduler, RunKey
from viewer.gc_policy import collection_paused
from viewer.heap import release_free_memory
from viewer.torch_import import import_torch
from viewer.threads import lower_thread_priority
from viewer.qt.qt import QObject, Signal


@dataclass(frozen=True)
class ModelRef:
    """Which model to run: a package path plus the card facts the GUI thread already read."""

    path: Path
    name: str
    sha256: str
    labels: tuple[str, ...]
    device: str = "auto"


@dataclass(frozen=True)
class BatchOutput:
    """What one inference batch produced (slice indices of the run's stack)."""

    indices: tuple[int, ...]
    scores: np.ndarray
    """(n, labels) float32 probabilities."""
    heatmaps: Mapping[str, np.ndarray]
    """{label: (n, rows, cols) float32 in [0, 1] on the native grid}; emitted empty when the run's sink
    has stored them (``run_series(sink=...)``)."""
    ood: np.ndarray | None = None
    """(n,) out-of-distribution distances (None: the model has no statistics)."""


@dataclass(frozen=True)
class BatchResult:
    """A batch output tagged with the run it belongs to (emitted by :attr:`AIWorker.batchReady`)."""

    key: RunKey
    kind: JobKind
    output: BatchOutput
    seconds: float
    device: str


@dataclass(frozen=True)
class ModelLoaded:
    """Emitted once the worker has a model ready (:attr:`AIWorker.modelLoaded`)."""

    ref: ModelRef
    device: str
    methods: tuple[str, ...]
    seconds: float


class InferenceSession(Protocol):
    """A loaded model on a device, used only from the worker thread."""

    device: str
    methods: tuple[str, ...]

    def run(
        self,
        volume: np.ndarray,
        indices: Sequence[int],
        method: str,
        cancel: threading.Event,
        notify: Callable[[str], None],
    ) -> Iterable[BatchOutput]: ...


SessionFactory = Callable[[ModelRef], InferenceSession]


class RunnerSession:
    """:class:`InferenceSession` over ``inference.runner.Runner`` (torch is imported on the worker thread)."""

    def __init__(self, ref: ModelRef, batch_size: int | None = None) -> None:
        import torch

        from inference.runner import Runner

        torch.set_grad_enabled(True)  # grad mode is thread-local: Grad-CAM needs it on this thread
        self._runner = Runner(ref.path, device=ref.device, batch_size=batch_size)
        self.methods: tuple[str, ...] = tuple(self._runner.methods)
        self._warm_up()

    def _warm_up(self) -> None:
        """One throw-away slice per method family now, so that graph splitting, BatchNorm folding and
        first-call allocations happen at load time, not on the first slice a user waits for."""
        size = tuple(self._runner.card.input.size)
        dummy = np.zeros((1, *size), dtype=np.float32)
        for _ in self._runner.run(dummy, method="default"):
            pass
        release_free_memory()  # what loading, BatchNorm folding and the first calls left free in the heaps

    @property
    def device(self) -> str:
        return str(self._runner.device)

    @property
    def batch_size(self) -> int:
        return int(self._runner.batch_size)

    def run(
        self,
        volume: np.ndarray,
        indices: Sequence[int],
        method: str,
        cancel: threading.Event,
        notify: Callable[[str], None],
    ) -> Iterable[BatchOutput]:
        def progress(event: Any) -> None:  # an inference.runner.RunnerEvent: only fallbacks, not counters
            if event.kind == "fallback":
                notify(event.message)

        from inference.runner import torch_threads

        # the visible slice: too little work to share; a second thread only waits at barriers
        single = len(indices) == 1 and self._runner.device.type == "cpu"
        with torch_threads(1 if single else None):
            for res in self._runner.run(volume, indices=list(indices), method=method, cancel=cancel,
                                        progress=progress):
                yield BatchOutput(tuple(int(k) for k in res.indices), np.asarray(res.scores), dict(res.heatmaps),
                                  res.ood)

    def probe(self, payload: Callable[[Any, threading.Event], Any], cancel: threading.Event) -> Any:
        """Run a layer probe on this (the worker) thread: ``payload(loaded_model, cancel)``, where
        ``loaded_model`` is the runner's ``inference.loading.LoadedModel``; its return value is
        emitted by :attr:`AIWorker.probeReady`."""
        return payload(self._runner.model, cancel)


@dataclass
class _RunSpec:
    volume: np.ndarray
    model: ModelRef
    method: str
    sink: Sink | None = None


Sink = Callable[[BatchOutput], None]
"""Called on the worker thread with each batch before ``batchReady`` is emitted: the place to do the
per-batch array work (weighting, copying into result volumes) so that the GUI thread does not."""


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
