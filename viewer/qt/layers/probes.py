"""Probe plumbing of the layer inspector: a probe is a closure the AI's one inference thread runs with its
loaded model; progress comes back through :class:`ProbeBridge` (queued to the GUI thread)."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any
from collections.abc import Callable


from viewer.qt.qt import QObject, Signal



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


class AnyCancel:
    """Set when either the run's token or the job's own token is set."""

    def __init__(self, *events: threading.Event) -> None:
        self._events = events

    def is_set(self) -> bool:
        return any(e.is_set() for e in self._events)


class ProbeBridge(QObject):
    """Signals the worker thread emits; their receivers are bound methods of GUI-thread widgets."""

    progress = Signal(int, int, int)  # job, done, total


ProbeFn = Callable[[Any, Any, Callable[[int, int], None]], Any]
"""A probe: ``fn(model, cancel, progress(done, total)) -> value``, run on the inference thread."""


def one_cpu_thread(fn: ProbeFn) -> ProbeFn:
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
