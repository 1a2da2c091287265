"""Run a model (and an explainer) over the slices of a series, batch by batch, on the best device.

`Runner.run` yields one `BatchResult` per batch: probabilities ``(n, labels)`` and, per label, a
heatmap ``(n, rows, cols)`` float32 in [0, 1] on each slice's native grid (each map scaled by its
own maximum on the model's grid, then resized). Jobs take a cancel token (checked between batches) and a progress callback
(``progress(event)``, a `RunnerEvent` whose ``kind`` says what it is and ``message`` says it in words).
The runner never touches Qt.

Device: ``auto`` picks CUDA, then MPS, then CPU. Weights and inputs are channels_last. On CUDA the
trunk runs under bf16 autocast, the batch size follows free memory, and batch-1 trunk passes replay a
CUDA graph (``precision="bf16"`` turns autocast on for the CPU too; float32 is its default).
On a CUDA out-of-memory error the batch is halved and retried; at batch 1 the job moves to the CPU;
both are reported through ``progress`` as ``fallback`` events. On the CPU: inference mode for the trunk,
BatchNorm folded into the convolutions, and torch's intra-op threads set to the cores available.
"""

from __future__ import annotations

import os
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from collections.abc import Callable, Iterator, Sequence

import numpy as np
import torch

from inference.explain import CAM_METHODS, explain_batch, normalize_maps, supported_methods
from inference.loading import LoadedModel, load_model
from inference.ood import OODStats, pool_features, read_stats
from inference.package import ModelCard
from inference.preprocess import Preprocessor

NO_EXPLANATION = "none"
EventKind = Literal["progress", "cancelled", "fallback"]


@dataclass(frozen=True)
class RunnerEvent:
    """What a running job reports: ``progress`` (``slices done/total`` after each batch), ``cancelled``
    (the cancel token stopped the job) or ``fallback`` (GPU out of memory: a smaller batch, or the CPU;
    the one kind a user must be told about). ``str(event)`` is the message."""

    kind: EventKind
    message: str

    def __str__(self) -> str:
        return self.message


Progress = Callable[[RunnerEvent], None]


@dataclass(frozen=True)
class BatchResult:
    """One batch of a job: slice indices, scores and native-grid heatmaps."""

    indices: tuple[int, ...]
    scores: np.ndarray
    """(n, labels) float32 probabilities (sigmoid or softmax, as the card says)."""
    heatmaps: dict[str, np.ndarray]
    """{label: (n, rows, cols) float32 in [0, 1]} on each slice's native grid; empty without a method."""
    seconds: float
    device: str
    ood: np.ndarray | None = None
    """(n,) float64 out-of-distribution distances (Mahalanobis; `inference.ood`), None without statistics."""


def pick_device(requested: str | torch.device = "auto") -> torch.device:
    """``auto``: CUDA, then MPS, then CPU; a named device that is missing raises ValueError."""
    name = str(requested)
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device cuda was asked for but no CUDA device is available")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError("device mps was asked for but MPS is not available")
    return device


def cpu_threads() -> int:
    """Cores this process may use (affinity-aware)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


@contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """torch's intra-op threads set to ``n`` inside (None: unchanged), restored on leaving.

    For small jobs on a CPU (one slice, layer probes): intra-op threads waiting on each other at every
    op are many times slower than one thread on a busy machine.
    """
    before = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class _GraphedTrunk:
    """Batch-1 trunk replayed from a captured CUDA graph (launch-bound single-slice latency)."""

    def __init__(self, trunk: torch.nn.Module, example: torch.Tensor) -> None:
        self.static_in = example.clone()
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        bf16 = torch.autocast("cuda", dtype=torch.bfloat16, cache_enabled=False)  # no cast cache across capture
        with torch.cuda.stream(stream), torch.inference_mode(), bf16:
            for _ in range(3):
                trunk(self.static_in)
        torch.cuda.current_stream().wait_stream(stream)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph), torch.inference_mode(), bf16:
            self.static_out = trunk(self.static_in)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        self.static_in.copy_(x)
        self.graph.replay()
        return self.static_out


class Runner:
    """A loaded model on a device, ready to run jobs over slices."""

    def __init__(self, package: LoadedModel | ModelCard | str | Path, device: str | torch.device = "auto",
                 batch_size: int | None = None, threads: int | None = None, cuda_graphs: bool = True,
                 precision: str = "auto", channels_last: bool = True) -> None:
        """``precision``: ``auto`` (bf16 autocast on CUDA, float32 elsewhere), ``bf16`` or ``fp32``."""
        if precision not in ("auto", "bf16", "fp32"):
            raise ValueError(f"precision must be auto, bf16 or fp32, not {precision!r}")
        self.device = pick_device(device)
        if self.device.type == "cpu":
            torch.set_num_threads(threads or cpu_threads())
        self.model = package if isinstance(package, LoadedModel) else load_model(package)
        self.model.to(self.device)
        self.card = self.model.card
        self.pre = Preprocessor(self.card.input)
        self.methods: tuple[str, ...] = supported_methods(self.model)
        self.ood: OODStats | None = read_stats(self.card) if self.model.has_layers else None
        """The package's out-of-distribution statistics (None: no check for this model)."""
        self._requested_batch = batch_size
        self.batch_size = batch_size or self._default_batch_size()
        self.cuda_graphs = cuda_graphs
        self.precision = precision
        self.channels_last = channels_last
        self._graphed: dict[str, _GraphedTrunk] = {}
        self._prepare_memory_format()

    # -- device set-up ------------------------------------------------------------------------
    def _default_batch_size(self) -> int:
        if self.device.type != "cuda":
            return 8
        return self._cuda_batch_size()

    def _cuda_batch_size(self, limit: int = 128) -> int:
        """Largest power of two whose measured per-slice memory fits half of the free memory."""
        h, w = self.card.input.size
        x = torch.zeros(2, self.card.input.channels, h, w, device=self.device)
        torch.cuda.synchronize(self.device)
        torch.cuda.reset_peak_memory_stats(self.device)
        base = torch.cuda.memory_allocated(self.device)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            if self.model.has_layers and self.card.target_layer:
                explain_batch(self.model, x, list(range(len(self.card.labels))), CAM_METHODS[0])
            else:
                with torch.inference_mode():
                    self.model(x)
        per_slice = max(1, (torch.cuda.max_memory_allocated(self.device) - base) // 2)
        free, _total = torch.cuda.mem_get_info(self.device)
        n = 1
        while n * 2 <= limit and n * 2 * per_slice < free // 2:
            n *= 2
        return n

    def _prepare_memory_format(self) -> None:
        """channels_last weights (oneDNN on the CPU and cuDNN both run NHWC convolutions faster)."""
        if not self.channels_last:
            return
        if self.model.has_layers and self.card.target_layer:
            self.model.split()  # build it now so that it is converted too
        if self.ood is not None:
            self.model.split(self.ood.layer)
        for m in (self.model.module, *(p for s in self.model._splits.values() for p in (s.trunk, s.head))):
            m.to(memory_format=torch.channels_last)

    @property
    def bf16(self) -> bool:
        return self.precision == "bf16" or (self.precision == "auto" and self.device.type == "cuda")

    def _fall_back_to_cpu(self, progress: Progress | None) -> None:
        self._graphed.clear()
        self.model.to("cpu")
        self.device = torch.device("cpu")
        self._prepare_memory_format()
        torch.set_num_threads(cpu_threads())
        self.batch_size = self._requested_batch or 8
        if progress:
            progress(RunnerEvent("fallback", "GPU out of memory even at batch size 1: continuing on the CPU"))

    # -- one batch -----------------------------------------------------------------------------
    def _autocast(self) -> torch.autocast:
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16)

    @staticmethod
    def _read(volume: np.ndarray | Sequence[np.ndarray], indices: Sequence[int]) -> np.ndarray:
        """Slices ``indices`` of ``volume`` as one float32 ``(n, rows, cols)`` array, each converted
        straight into it (no list of float32 slices beside the batch)."""
        first = np.asarray(volume[indices[0]], dtype=np.float32)
        if first.ndim != 2:
            raise ValueError("each slice must be a 2D (rows, cols) array of modality values")
        out = np.empty((len(indices), *first.shape), dtype=np.float32)
        out[0] = first
        for j, i in enumerate(indices[1:], 1):
            s = np.asarray(volume[i])
            if s.ndim != 2:
                raise ValueError("each slice must be a 2D (rows, cols) array of modality values")
            if s.shape != first.shape:
                raise ValueError("all slices of a run must share one (rows, cols) shape")
            out[j] = s
        return out

    def _prepare(self, slices: np.ndarray) -> torch.Tensor:
        """Model input of ``(n, rows, cols)`` float32 slices (from :meth:`_read`)."""
        return self._prepare_tensor(self.pre.to_model(slices, device=self.device))

    def _prepare_tensor(self, x: torch.Tensor) -> torch.Tensor:
        """A model-input batch on this runner's device and memory format."""
        x = x.to(self.device)
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x.contiguous()

    def _step(self, x: torch.Tensor, method: str | None, labels: Sequence[int]
              ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """Logits ``(n, L)``, maps ``(len(labels), n, h, w)`` (None without a method) and the pooled
        features of the OOD layer ``(n, F)`` (None without OOD statistics), from one trunk pass where
        the explainer's layer is the OOD layer."""
        ood_layer = self.ood.layer if self.ood is not None else None
        if method in CAM_METHODS:
            from inference.explain.cam import CAM_FORMULAS, head_gradients_from_activation

            split = self.model.split()
            graphed = None
            if self.device.type == "cuda" and self.cuda_graphs and x.shape[0] == 1 and split.n_carried == 0:
                graphed = self._graphed.get(split.target_layer)
                if graphed is None:
                    graphed = self._graphed[split.target_layer] = _GraphedTrunk(split.trunk, x)
            with self._autocast():
                if graphed is not None:
                    act, carried = graphed(x), ()
                else:
                    with torch.inference_mode():
                        act, carried = split.activation(x)
                feats = self._features(act) if ood_layer == split.target_layer else None
                logits, act, grads = head_gradients_from_activation(split, act, carried, labels)
            maps = torch.stack([CAM_FORMULAS[method](act, g) for g in grads])
        elif method is None:
            with torch.inference_mode(), self._autocast():
                logits, maps, feats = self.model(x).float(), None, None
        else:
            with self._autocast():
                logits, maps = explain_batch(self.model, x, labels, method)
            feats = None
        if feats is None and ood_layer is not None:
            with torch.inference_mode(), self._autocast():
                feats = self._features(self.model.split(ood_layer).activation(x)[0])
        return logits, maps, feats

    def _features(self, act: torch.Tensor) -> torch.Tensor:
        assert self.ood is not None
        return pool_features(act, self.ood.pooling)

    def ood_distances(self, volume: np.ndarray | Sequence[np.ndarray], indices: Sequence[int] | None = None
                      ) -> np.ndarray | None:
        """Out-of-distribution distances of slices (trunk only, no explanation); None without statistics."""
        if self.ood is None:
            return None
        order = list(range(len(volume))) if indices is None else [int(i) for i in indices]
        out = []
        for start in range(0, len(order), self.batch_size):
            x = self._prepare(self._read(volume, order[start: start + self.batch_size]))
            with torch.inference_mode(), self._autocast():
                out.append(self._features(self.model.split(self.ood.layer).activation(x)[0]).cpu().numpy())
        return self.ood.distances(np.concatenate(out)) if out else np.zeros(0)

    # -- jobs ----------------------------------------------------------------------------------
    def run(self, volume: np.ndarray | Sequence[np.ndarray], indices: Sequence[int] | None = None,
            method: str | None = "default", labels: Sequence[str] | None = None,
            cancel: threading.Event | None = None, progress: Progress | None = None) -> Iterator[BatchResult]:
        """Stream results over ``indices`` (default: every slice) of a ``(k, rows, cols)`` volume.

        ``volume`` may also be a sequence of same-shape 2D slices. ``method``: one of
        `methods`, ``"default"`` (the first), or None / ``"none"`` for scores only. ``labels``
        restricts the heatmaps (scores always cover every label).
        """
        method = self._resolve_method(method)
        n_slices = len(volume)
        order = list(range(n_slices)) if indices is None else [int(i) for i in indices]
        bad = [i for i in order if not 0 <= i < n_slices]
        if bad:
            raise IndexError(f"slice indices {bad[:5]} are outside the volume's {n_slices} slices")
        names = list(self.card.labels) if labels is None else list(labels)
        unknown = [n for n in names if n not in self.card.labels]
        if unknown:
            raise ValueError(f"unknown labels {unknown}; the model has {list(self.card.labels)}")
        label_idx = [self.card.labels.index(n) for n in names]
        done = 0
        while done < len(order):
            if cancel is not None and cancel.is_set():
                if progress:
                    progress(RunnerEvent("cancelled", f"cancelled after {done}/{len(order)} slices"))
                return
            batch = order[done: done + self.batch_size]
            slices = self._read(volume, batch)
            t0 = time.perf_counter()
            native_shape = (int(slices.shape[1]), int(slices.shape[2]))
            x = self._prepare(slices)
            del slices  # only the model input stays alive through the step
            try:
                logits, maps, feats = self._step(x, method, label_idx)
            except torch.cuda.OutOfMemoryError:
                if self.device.type == "cuda":
                    torch.cuda.empty_cache()
                if self.batch_size > 1:
                    self.batch_size //= 2
                    if progress:
                        progress(RunnerEvent("fallback",
                                             f"GPU out of memory: retrying with batch size {self.batch_size}"))
                else:
                    self._fall_back_to_cpu(progress)
                continue
            del x
            heatmaps = self._native_maps(maps, names, native_shape) if maps is not None else {}
            scores = self.model.probabilities(logits).cpu().numpy().astype(np.float32)
            done += len(batch)
            if progress:
                progress(RunnerEvent("progress", f"slices {done}/{len(order)}"))
            ood = self.ood.distances(feats.cpu().numpy()) if self.ood is not None and feats is not None else None
            yield BatchResult(tuple(batch), scores, heatmaps, time.perf_counter() - t0, str(self.device), ood)

    def _resolve_method(self, method: str | None) -> str | None:
        if method is None or method == NO_EXPLANATION:
            return None
        if method == "default":
            return self.methods[0]
        if method not in self.methods:
            raise ValueError(f"method {method!r} is not available for this {self.model.format} model; "
                             f"choose one of {', '.join(self.methods)}")
        return method

    def _native_maps(self, maps: torch.Tensor, names: Sequence[str], native_shape: tuple[int, int]
                     ) -> dict[str, np.ndarray]:
        maps = maps.float()
        out: dict[str, np.ndarray] = {}
        for j, name in enumerate(names):
            # scale on the small grid, then resize: bilinear keeps [0, 1] (clamp guards rounding)
            native = Preprocessor.to_native(normalize_maps(maps[j]), native_shape).clamp_(0.0, 1.0)
            out[name] = native.cpu().numpy().astype(np.float32, copy=False)
        return out
