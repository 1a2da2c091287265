"""Dataset examples: the slices of a series (and where on them) that most activate one channel."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from collections.abc import Sequence

import numpy as np
import torch

from inference.loading import LoadedModel
from inference.preprocess import Preprocessor, model_to_native_coords
from inference.probes.activations import as_maps
from inference.probes.featurevis import ProbeCancelled, StepProgress
from inference.probes.tap import GraphTap


@dataclass(frozen=True)
class Example:
    """One slice where the channel fires: its peak activation and that peak's place on the native grid."""

    slice_index: int
    peak: float
    """Largest activation of the channel on the slice."""
    mean: float
    """Mean activation of the channel on the slice."""
    row: float
    col: float
    """Centre of the peak cell, native pixel coordinates (row, column; integers at pixel centres)."""
    half_height: float
    half_width: float
    """Half the size of one cell of the layer's grid on the native grid (the patch box)."""


def channel_examples(model: LoadedModel, layer: str, channel: int, volume: np.ndarray,
                     indices: Sequence[int] | None = None, top: int = 8, batch_size: int = 8,
                     cancel: threading.Event | None = None, progress: StepProgress | None = None,
                     tap: GraphTap | None = None) -> list[Example]:
    """The ``top`` slices of ``volume`` (``(k, rows, cols)``, modality units) with the highest peak
    activation of ``channel`` at ``layer``, best first."""
    if volume.ndim != 3:
        raise ValueError(f"expected a (k, rows, cols) volume, got shape {volume.shape}")
    tap = tap or GraphTap(model)
    pre = Preprocessor(model.card.input)
    ks = list(range(volume.shape[0])) if indices is None else [int(k) for k in indices]
    native = (int(volume.shape[1]), int(volume.shape[2]))
    found: list[Example] = []
    for start in range(0, len(ks), batch_size):
        if cancel is not None and cancel.is_set():
            raise ProbeCancelled(f"dataset examples of {layer}#{channel} cancelled")
        chunk = ks[start:start + batch_size]
        x = pre.to_model(volume[chunk], device=model.device)
        with torch.inference_mode():
            maps = as_maps(tap.run(x, [layer])[layer])
        if not 0 <= channel < maps.shape[1]:
            raise ValueError(f"layer {layer!r} has {maps.shape[1]} channels; channel {channel} does not exist")
        cmap = maps[:, channel].float().cpu().numpy()
        h, w = cmap.shape[-2:]
        for k, m in zip(chunk, cmap):
            r, c = np.unravel_index(int(np.argmax(m)), m.shape)
            nr, nc = model_to_native_coords(np.array([r, c], dtype=np.float64), (h, w), native)
            found.append(Example(k, float(m[r, c]), float(m.mean()), float(nr), float(nc),
                                 native[0] / h / 2.0, native[1] / w / 2.0))
        if progress is not None:
            progress(min(start + batch_size, len(ks)), len(ks))
    found.sort(key=lambda e: (-e.peak, e.slice_index))
    return found[:top]
