"""A Qt-free inference engine and results cache for driving :class:`viewer.state.ai_control.AIControl` in tests.

:class:`InlineEngine` runs a real model (:class:`viewer.ai.session.RunnerSession`, any session factory) on the
test's own thread: :meth:`InlineEngine.pump` takes the scheduler's batches one by one, stores each through the
run's sink and hands it to the control, as the viewer's worker thread and its queued signals do.
:class:`InlineCache` reads and writes a real :class:`inference.cache.ResultCache` and answers lookups when pumped,
as the viewer's cache threads do.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from inference.cache import ResultCache
from viewer.ai import JobScheduler, RunKey, SeriesResults
from viewer.ai.batches import BatchResult, InferenceSession, ModelLoaded, ModelRef, Sink
from viewer.ai.cached import CacheEntryError, load_results, store_results


@dataclass
class _Run:
    volume: Any
    model: ModelRef
    method: str
    sink: Sink | None


class InlineEngine:
    """The :class:`viewer.state.ai_control.Engine` protocol on the calling thread."""

    def __init__(self, session_factory: Callable[[ModelRef], InferenceSession] | None = None,
                 batch_size: int = 4) -> None:
        from viewer.ai.session import RunnerSession

        self.scheduler = JobScheduler(batch_size=batch_size)
        self.factory = session_factory or RunnerSession
        self.runs: dict[RunKey, _Run] = {}
        self.wanted: ModelRef | None = None
        self.loaded: ModelRef | None = None
        self.session: InferenceSession | None = None
        self.ran: list[int] = []
        """Every slice index inferred, in order."""
        self.notices: deque[str] = deque()

    def preload(self, model: ModelRef) -> None:
        self.wanted = model

    def run_series(self, stack_id: str, volume: Any, model: ModelRef, method: str, current: int = 0, *,
                   available: np.ndarray | None = None, skip: np.ndarray | None = None,
                   sink: Sink | None = None) -> RunKey:
        self.wanted = model
        key = self.scheduler.start(stack_id, model.sha256, method, int(volume.shape[0]), current,
                                   available=available, skip=skip)
        self.runs = {key: _Run(volume, model, method, sink)}
        return key

    def update_volume(self, key: RunKey, volume: Any) -> None:
        if key in self.runs:
            self.runs[key].volume = volume

    def cancel(self) -> None:
        self.scheduler.cancel()
        self.runs = {}

    def stop(self, timeout: float = 10.0) -> None:
        self.scheduler.close()

    def _ensure_session(self, control: Any) -> InferenceSession | None:
        if self.wanted is not None and self.wanted != self.loaded:
            t0 = time.perf_counter()
            self.session, self.loaded = self.factory(self.wanted), self.wanted
            control.on_model_loaded(ModelLoaded(self.wanted, self.session.device, tuple(self.session.methods),
                                                time.perf_counter() - t0))
        return self.session

    def pump(self, control: Any, max_batches: int | None = None) -> int:
        """Load the wanted model, then run batches until none is ready (or ``max_batches``); each goes through
        the run's sink and :meth:`AIControl.on_batch`. Returns the batches run."""
        n = 0
        while max_batches is None or n < max_batches:
            session = self._ensure_session(control)
            batch = self.scheduler.next_batch(timeout=0)
            if batch is None:
                return n
            spec = self.runs.get(batch.key)
            if spec is None or batch.cancel.is_set() or session is None:
                continue
            t0 = time.perf_counter()
            for out in session.run(spec.volume, batch.indices, spec.method, batch.cancel, self.notices.append):
                self.ran.extend(out.indices)
                while self.notices:
                    control.on_notice(self.notices.popleft())
                if spec.sink is not None:
                    spec.sink(out)
                    out = replace(out, heatmaps={})
                now = time.perf_counter()
                control.on_batch(BatchResult(batch.key, batch.kind, out, now - t0, session.device))
                t0 = now
            n += 1
        return n


@dataclass(frozen=True)
class Reply:
    """What a lookup found (the fields :meth:`AIControl.on_cache_loaded` reads)."""

    token: int
    triple: tuple[str, str, str]
    results: SeriesResults | None
    error: str | None


class InlineCache:
    """The :class:`viewer.state.ai_control.CacheAccess` protocol over a real :class:`ResultCache`; lookups are
    answered by :meth:`pump` (as a queued signal would), writes happen at once."""

    def __init__(self, cache: ResultCache) -> None:
        self.cache = cache
        self.pending: deque[Reply] = deque()
        self.stored: list[str] = []

    def lookup(self, token: int, stack: str, key: RunKey, labels: Sequence[str], shape: tuple[int, int, int],
               thresholds: Mapping[str, float] | None = None, **how: Any) -> None:
        results, error = None, None
        try:
            results = load_results(self.cache, stack, key, list(labels), tuple(shape), dict(thresholds or {}), **how)
        except CacheEntryError as exc:
            error = str(exc)
        run_id = results.run_id(key.stack_id) if results is not None else key.stack_id
        self.pending.append(Reply(token, (run_id, key.model_sha256, key.method), results, error))

    def store(self, stack: str, results: SeriesResults, extra: Mapping[str, Any] | None = None,
              ood_sha256: str | None = None) -> None:
        store_results(self.cache, stack, results, dict(extra or {}), ood_sha256=ood_sha256)
        self.stored.append(stack)

    def flush(self, timeout_s: float = 60.0) -> bool:
        return True

    def shutdown(self, wait_s: float = 30.0) -> None:
        self.pending.clear()

    def pump(self, control: Any) -> int:
        n = 0
        while self.pending:
            control.on_cache_loaded(self.pending.popleft())
            n += 1
        return n


def settle(control: Any, engine: InlineEngine, cache: InlineCache | None = None, limit: int = 10_000) -> None:
    """Deliver cache answers and run batches until nothing is left to do."""
    for _ in range(limit):
        answered = cache.pump(control) if cache is not None else 0
        ran = engine.pump(control)
        if not answered and not ran:
            return
    raise AssertionError("the AI control never settled")


__all__ = ["InlineCache", "InlineEngine", "Reply", "settle"]
