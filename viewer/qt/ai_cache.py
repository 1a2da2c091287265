"""The AI results cache in the viewer: reads and writes on two background :class:`~viewer.qt.jobs.Worker`
threads, never the GUI thread.

:class:`CacheIO` is a QObject on the GUI thread. :meth:`CacheIO.lookup` reads an entry on the reader
thread and emits :attr:`CacheIO.loaded` with a :class:`CacheReply` (the whole series' weighted
results, or None, plus why an entry was unusable); :meth:`CacheIO.store` encodes and writes a
complete run on the writer thread (one at a time, atomic, the folder kept under its cap). Both
signals are emitted from those threads and delivered, queued, to bound methods of GUI-thread objects.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any
from collections.abc import Mapping, Sequence

from inference.cache import ResultCache
from viewer.ai import RunKey, SeriesResults
from viewer.ai.cached import CacheEntryError, load_results, store_results
from viewer.qt.jobs import Worker
from viewer.qt.qt import QObject, Signal


@dataclass(frozen=True)
class CacheReply:
    """What a lookup found for ``triple`` = (the run's id: its key's stack id, or `reformat_key` of it; model sha256,
    method)."""

    token: int
    triple: tuple[str, str, str]
    results: SeriesResults | None
    error: str | None
    """Why an entry that was there could not be used (then ``results`` is None)."""
    seconds: float


class CacheIO(QObject):
    """Background reader and writer of one :class:`ResultCache` (see the module docstring)."""

    loaded = Signal(object)  # CacheReply
    stored = Signal(str, float)  # stack id, seconds the write took
    failed = Signal(str)  # a write that did not happen, and why

    def __init__(self, cache: ResultCache, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.cache = cache
        self._reader = Worker("radscope-cache-read", parent=self)
        self._writer = Worker("radscope-cache-write", parent=self)

    def lookup(self, token: int, stack: str, key: RunKey, labels: Sequence[str], shape: tuple[int, int, int],
               thresholds: Mapping[str, float] | None = None, **how: Any) -> None:
        """Read ``(stack, key.model_sha256, key.method)`` off the GUI thread; answers through :attr:`loaded`.
        ``how``: `load_results`' keywords (``ood_sha256``, ``grid``)."""
        self._reader.submit(self._lookup, token, stack, key, list(labels), tuple(shape), dict(thresholds or {}), how)

    def _lookup(self, token: int, stack: str, key: RunKey, labels: list[str], shape: tuple[int, int, int],
                thresholds: dict[str, float], how: dict[str, Any]) -> None:
        t0 = time.perf_counter()
        results, error = None, None
        try:
            results = load_results(self.cache, stack, key, labels, shape, thresholds, **how)
        except CacheEntryError as exc:
            error = str(exc)
        except Exception as exc:  # noqa: BLE001  (a cache must never take the viewer down)
            error = f"{self.cache.entry_path(stack, key.model_sha256, key.method)}: {type(exc).__name__}: {exc}"
        run_id = results.run_id(key.stack_id) if results is not None else key.stack_id
        self.loaded.emit(CacheReply(token, (run_id, key.model_sha256, key.method), results, error,
                                    time.perf_counter() - t0))

    def store(self, stack: str, results: SeriesResults, extra: Mapping[str, Any] | None = None,
              ood_sha256: str | None = None) -> None:
        """Write a complete run off the GUI thread (its arrays must not change any more)."""
        self._writer.submit(self._store, stack, results, dict(extra or {}), ood_sha256)

    def _store(self, stack: str, results: SeriesResults, extra: dict[str, Any], ood_sha256: str | None) -> None:
        t0 = time.perf_counter()
        try:
            store_results(self.cache, stack, results, extra, ood_sha256=ood_sha256)
        except Exception as exc:  # noqa: BLE001  (disk full, read-only folder ...: say so, keep going)
            self.failed.emit(f"results not cached in {self.cache.root}: {type(exc).__name__}: {exc}")
            return
        self.stored.emit(stack, time.perf_counter() - t0)

    def flush(self, timeout_s: float = 60.0) -> bool:
        """Wait until every write asked for so far is on disk (tests, benchmarks); True when done."""
        return self._writer.flush(timeout_s)

    def shutdown(self, wait_s: float = 30.0) -> None:
        """Drop pending reads; let the writes already asked for finish (up to ``wait_s``: the window is
        closing, and a write must not outlive the Qt objects it reports to)."""
        self._reader.shutdown(cancel_pending=True)
        self.flush(wait_s)
        self._writer.shutdown(cancel_pending=False)
