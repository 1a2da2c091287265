"""Explainers: class activation maps through a split graph, and input-space attributions.

`normalize_maps` scales each map to [0, 1] (a map that is zero everywhere stays zero).
"""

from __future__ import annotations

import torch

from inference.explain.cam import CAM_METHODS, head_gradients, layer_cams


def normalize_maps(maps: torch.Tensor) -> torch.Tensor:
    """Scale every ``(..., h, w)`` map to [0, 1] by its own maximum (after clamping at 0)."""
    maps = maps.clamp(min=0)
    peak = maps.amax(dim=(-2, -1), keepdim=True)
    return torch.where(peak > 0, maps / torch.where(peak > 0, peak, torch.ones_like(peak)), torch.zeros_like(maps))


__all__ = ["CAM_METHODS", "head_gradients", "layer_cams", "normalize_maps"]
