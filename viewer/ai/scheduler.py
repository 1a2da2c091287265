"""The inference job queue: what the single worker thread runs next.

Order: the visible slice first (alone, for latency), then the rest of the series nearest-first from
the visible slice (re-prioritised whenever it changes), then layer probes. A *run* is one
(stack, model, method) triple under a generation number; :meth:`JobScheduler.start` and
:meth:`JobScheduler.cancel` bump the generation and set the previous run's cancel token, so a batch
already in flight stops at its next check and any result it still delivers carries a stale
:class:`RunKey` that :meth:`JobScheduler.is_current` rejects.

Thread-safe: the GUI thread calls ``start``/``set_current``/``cancel``/``submit_probe``; the worker
thread blocks in :meth:`JobScheduler.next_batch`.
"""

from __future__ import annotations

import enum
import threading
from dataclasses import dataclass, field
from typing import Any

import numpy as np


class JobKind(enum.IntEnum):
    """Job priority classes, most urgent first."""

    VISIBLE = 0
    SERIES = 1
    PROBE = 2


@dataclass(frozen=True)
class RunKey:
    """Identifies the run a result belongs to; results whose key is not current are dropped."""

    stack_id: str
    model_sha256: str
    method: str
    generation: int


@dataclass(frozen=True)
class Batch:
    """One unit of work for the worker: slice indices of a run (or a probe) plus its cancel token."""

    key: RunKey
    kind: JobKind
    indices: tuple[int, ...]
    cancel: threading.Event = field(compare=False, repr=False)
    payload: Any = field(default=None, compare=False)


class JobScheduler:
    """Priority queue of slice batches and probes for one inference worker."""

    def __init__(self, batch_size: int = 8) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.batch_size = batch_size
        self._cond = threading.Condition()
        self._generation = 0
        self._key: RunKey | None = None
        self._cancel = threading.Event()
        self._pending = np.zeros(0, dtype=bool)
        self._available = np.zeros(0, dtype=bool)
        self._current = 0
        self._probes: list[tuple[RunKey, Any]] = []
        self._closed = False

    # -- GUI-thread side ----------------------------------------------------------------------
    def start(
        self,
        stack_id: str,
        model_sha256: str,
        method: str,
        n_slices: int,
        current: int = 0,
        *,
        available: np.ndarray | None = None,
        skip: np.ndarray | None = None,
    ) -> RunKey:
        """Cancel whatever runs and queue every slice of a new run; returns its key.

        ``available`` (bool per slice, default all) says which slices have decoded; others wait for
        :meth:`mark_available`. ``skip`` marks slices already known (e.g. from a cache).
        """
        if n_slices < 0:
            raise ValueError("n_slices must be >= 0")
        with self._cond:
            self._supersede()
            self._key = RunKey(stack_id, model_sha256, method, self._generation)
            self._pending = np.ones(n_slices, dtype=bool)
            if skip is not None:
                self._pending &= ~np.asarray(skip, dtype=bool)
            self._available = (
                np.ones(n_slices, dtype=bool) if available is None else np.asarray(available, dtype=bool).copy()
            )
            if self._available.shape != (n_slices,):
                raise ValueError(f"available must have one flag per slice ({n_slices})")
            self._current = int(np.clip(current, 0, max(n_slices - 1, 0)))
            self._cond.notify_all()
            return self._key

    def cancel(self) -> None:
        """Stop the current run: its pending jobs go, its in-flight batch's token is set."""
        with self._cond:
            self._supersede()
            self._key = None
            self._pending = np.zeros(0, dtype=bool)
            self._available = np.zeros(0, dtype=bool)
            self._cond.notify_all()

    def set_current(self, k: int) -> None:
        """The visible slice changed: it and its neighbours go first from now on."""
        with self._cond:
            if self._pending.size:
                self._current = int(np.clip(k, 0, self._pending.size - 1))
                self._cond.notify_all()

    def mark_available(self, indices: Any) -> None:
        """Slices that finished decoding can now be scheduled."""
        with self._cond:
            if self._available.size:
                self._available[np.asarray(indices, dtype=np.intp)] = True
                self._cond.notify_all()

    def skip(self, indices: Any) -> None:
        """Slices known from elsewhere (e.g. the results cache) need not run: they leave the queue. The run
        stays current (probes may still join it)."""
        with self._cond:
            if self._pending.size:
                self._pending[np.asarray(indices, dtype=np.intp)] = False

    def submit_probe(self, payload: Any) -> RunKey | None:
        """Queue a low-priority layer probe for the current run (None when nothing runs)."""
        with self._cond:
            if self._key is None:
                return None
            self._probes.append((self._key, payload))
            self._cond.notify_all()
            return self._key

    def requeue(self, batch: Batch) -> None:
        """Put a batch's slices back (e.g. after an out-of-memory retry) if its run is current."""
        with self._cond:
            if batch.key == self._key and batch.kind != JobKind.PROBE:
                self._pending[list(batch.indices)] = True
                self._cond.notify_all()

    def close(self) -> None:
        """Wake and release the worker for good (``next_batch`` returns None from now on)."""
        with self._cond:
            self._supersede()
            self._closed = True
            self._cond.notify_all()

    # -- queries ------------------------------------------------------------------------------
    def is_current(self, key: RunKey) -> bool:
        """True when results carrying ``key`` may still be shown."""
        with self._cond:
            return key == self._key

    @property
    def key(self) -> RunKey | None:
        with self._cond:
            return self._key

    @property
    def n_pending(self) -> int:
        with self._cond:
            return int(self._pending.sum())

    # -- worker side --------------------------------------------------------------------------
    def next_batch(self, timeout: float | None = None) -> Batch | None:
        """Block until there is work (or ``timeout`` s pass, or :meth:`close`); pop the best batch."""
        with self._cond:
            batch = self._pop()
            if batch is None and not self._closed:
                self._cond.wait_for(lambda: self._closed or self._has_work(), timeout)
                batch = self._pop()
            return batch

    def order(self) -> list[int]:
        """The order pending, decoded slices would be run in from now (for display and tests)."""
        with self._cond:
            return [int(k) for k in self._ordered_ready()]

    # -- internals (lock held) ----------------------------------------------------------------
    def _supersede(self) -> None:
        self._cancel.set()
        self._cancel = threading.Event()
        self._generation += 1
        self._probes.clear()

    def _has_work(self) -> bool:
        return bool((self._pending & self._available).any()) or bool(self._probes)

    def _ordered_ready(self) -> np.ndarray:
        ready = np.flatnonzero(self._pending & self._available)
        distance = np.abs(ready - self._current)
        return ready[np.lexsort((ready, distance))]

    def _pop(self) -> Batch | None:
        if self._closed or self._key is None:
            return None
        ready = self._ordered_ready()
        if ready.size:
            if ready[0] == self._current:
                chosen, kind = ready[:1], JobKind.VISIBLE
            else:
                chosen, kind = np.sort(ready[: self.batch_size]), JobKind.SERIES
            self._pending[chosen] = False
            return Batch(self._key, kind, tuple(int(k) for k in chosen), self._cancel)
        if self._probes:
            key, payload = self._probes.pop(0)
            return Batch(key, JobKind.PROBE, (), self._cancel, payload)
        return None
