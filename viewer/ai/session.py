"""The model session the inference worker runs (Qt-free): :class:`RunnerSession`, an
:class:`~viewer.ai.batches.InferenceSession` over ``inference.runner.Runner``. Torch is imported when a session
is made, on the thread that makes it (the viewer's inference thread; a test's own thread)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

from viewer.ai.batches import BatchOutput, ModelRef
from viewer.heap import release_free_memory


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
