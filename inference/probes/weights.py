"""What a layer's weights look like: the first convolution's kernels as tiles, statistics deeper down."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


def _conv_weights(module: torch.nn.Module) -> list[tuple[str, torch.Tensor]]:
    """``(owner path, weight)`` of every 4-D weight (2-D convolution), in registration order."""
    return [(name.rsplit(".", 1)[0], p) for name, p in module.named_parameters()
            if p.ndim == 4 and name.rsplit(".", 1)[-1] == "weight"]


def first_conv_kernels(module: torch.nn.Module) -> tuple[str, np.ndarray]:
    """The first convolution's path and kernels ``(C_out, C_in, kh, kw)`` float32."""
    convs = _conv_weights(module)
    if not convs:
        raise ValueError("the model has no 2-D convolution weights")
    path, w = convs[0]
    return path, w.detach().float().cpu().numpy()


def kernel_tiles(kernels: np.ndarray) -> np.ndarray:
    """Kernels as displayable tiles ``(C_out, kh, kw)``: averaged over input channels, each scaled to
    [-1, 1] by its own largest magnitude (0 stays 0, so sign and shape read the same in every tile)."""
    tiles = kernels.mean(axis=1)
    peak = np.abs(tiles).max(axis=(1, 2), keepdims=True)
    return np.where(peak > 0, tiles / np.where(peak > 0, peak, 1.0), 0.0).astype(np.float32)


@dataclass(frozen=True)
class WeightStats:
    """Summary of one parameter tensor."""

    name: str
    shape: tuple[int, ...]
    mean: float
    std: float
    abs_max: float
    fraction_near_zero: float
    """Share of weights with magnitude below 1 % of the tensor's largest."""
    channel_norms: np.ndarray
    """L2 norm per output channel (first dimension), float64."""


def weight_stats(module: torch.nn.Module, prefix: str = "") -> list[WeightStats]:
    """Statistics of every parameter under module path ``prefix`` ("" = all), in registration order."""
    out = []
    for name, p in module.named_parameters():
        if prefix and not (name == prefix or name.startswith(prefix + ".")):
            continue
        w = p.detach().double().cpu()
        peak = float(w.abs().max()) if w.numel() else 0.0
        norms = w.reshape(w.shape[0], -1).norm(dim=1).numpy() if w.ndim >= 1 and w.numel() else np.zeros(0)
        out.append(WeightStats(name, tuple(w.shape), float(w.mean()), float(w.std(unbiased=False)), peak,
                               float((w.abs() < 0.01 * peak).double().mean()) if peak > 0 else 1.0, norms))
    return out
