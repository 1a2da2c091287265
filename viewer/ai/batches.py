"""What the inference worker and the AI controller pass each other (Qt-free): the model to run
(:class:`ModelRef`), what a batch produced (:class:`BatchOutput`, :class:`BatchResult`), that a model is loaded
(:class:`ModelLoaded`), the session protocol a worker runs (:class:`InferenceSession`) and a run's sink."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from viewer.ai.scheduler import JobKind, RunKey


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


Sink = Callable[[BatchOutput], None]
"""Called on the worker thread with each batch before ``batchReady`` is emitted: the place to do the
per-batch array work (weighting, copying into result volumes) so that the GUI thread does not."""
