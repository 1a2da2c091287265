"""Per-slice maps of a layer on the native grid: one channel's activation, and Grad-CAM at the layer."""

from __future__ import annotations

import numpy as np
import torch

from inference.explain import normalize_maps
from inference.explain.cam import layer_cams
from inference.loading import LoadedModel
from inference.preprocess import Preprocessor
from inference.probes.activations import as_maps
from inference.probes.tap import GraphTap


def activations(model: LoadedModel, layer: str, slices: np.ndarray, tap: GraphTap | None = None) -> torch.Tensor:
    """Layer output ``(n, C, h, w)`` (float32, CPU) for ``(n, rows, cols)`` slices in modality units."""
    tap = tap or GraphTap(model)
    x = Preprocessor(model.card.input).to_model(slices, device=model.device)
    with torch.inference_mode():
        return as_maps(tap.run(x, [layer])[layer]).float().cpu()


def to_native(maps: torch.Tensor | np.ndarray, native_shape: tuple[int, int]) -> np.ndarray:
    """``(n, h, w)`` layer-grid maps -> ``(n, rows, cols)`` float32 on the native grid (same pixel-centre
    mapping as every heatmap, so they overlay the image exactly)."""
    t = torch.as_tensor(np.asarray(maps, dtype=np.float32))
    return Preprocessor.to_native(t, native_shape).numpy()


def layer_gradcam(model: LoadedModel, layer: str, slices: np.ndarray, label: int = 0,
                  method: str = "gradcam") -> np.ndarray:
    """Grad-CAM (or another CAM method) with ``layer`` as the target, ``(n, rows, cols)`` in [0, 1] on
    the native grid."""
    x = Preprocessor(model.card.input).to_model(slices, device=model.device)
    _, maps = layer_cams(model.split(layer), x, [label], method)
    return to_native(normalize_maps(maps[0].float()).cpu(), slices.shape[-2:])
