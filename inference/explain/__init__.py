"""Explainers: class activation maps through a split graph, and input-space attributions.

`explain_batch(model, x, labels, method)` is the one entry point (see `METHODS`);
`normalize_maps` scales each map to [0, 1] (a map that is zero everywhere stays zero).
"""

from __future__ import annotations

import torch


def normalize_maps(maps: torch.Tensor) -> torch.Tensor:
    """Scale every ``(..., h, w)`` map to [0, 1] by its own maximum (after clamping at 0)."""
    maps = maps.clamp(min=0)
    peak = maps.amax(dim=(-2, -1), keepdim=True)
    return torch.where(peak > 0, maps / torch.where(peak > 0, peak, torch.ones_like(peak)), torch.zeros_like(maps))


from inference.explain.cam import CAM_METHODS, head_gradients, layer_cams  # noqa: E402
from inference.explain.methods import METHODS, default_method, explain_batch, supported_methods  # noqa: E402

__all__ = ["CAM_METHODS", "METHODS", "default_method", "explain_batch", "head_gradients", "layer_cams",
           "normalize_maps", "supported_methods"]
