"""What a layer's channels do on a batch: ranking by mean activation, per-channel maps, statistics.

Activations are ``(n, C, h, w)`` tensors from `inference.probes.tap.GraphTap` (a ``(n, C)`` output
counts as ``C`` channels of 1 x 1 maps).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

DEAD_EPS = 1e-6
"""A channel whose every value over the batch is at most this is dead (never fires)."""


def as_maps(act: torch.Tensor) -> torch.Tensor:
    """``(n, C, h, w)`` view of a layer output: ``(n, C)`` -> 1 x 1 maps; other ranks refused."""
    if act.ndim == 4:
        return act
    if act.ndim == 2:
        return act[:, :, None, None]
    raise ValueError(f"layer output of shape {tuple(act.shape)} has no channel maps (expected (n, C, h, w) or (n, C))")


def channel_means(act: torch.Tensor) -> np.ndarray:
    """Mean activation per channel over batch and space, ``(C,)`` float64."""
    return as_maps(act).detach().double().mean(dim=(0, 2, 3)).cpu().numpy()


def top_channels(act: torch.Tensor, k: int | None = None, key: str = "mean") -> np.ndarray:
    """Channel indices sorted by ``key`` (``mean``, ``max`` or ``std`` over batch and space),
    largest first; ties keep channel order. ``k`` limits the count."""
    maps = as_maps(act).detach().double().transpose(0, 1).flatten(1)  # (C, n*h*w)
    if key == "mean":
        value = maps.mean(dim=1)
    elif key == "max":
        value = maps.amax(dim=1)
    elif key == "std":
        value = maps.std(dim=1, unbiased=False)
    else:
        raise ValueError(f"unknown channel ranking {key!r}; choose mean, max or std")
    order = np.argsort(-value.cpu().numpy(), kind="stable")
    return order if k is None else order[:k]


@dataclass(frozen=True)
class LayerStats:
    """Distribution of one layer's activations on a batch."""

    counts: np.ndarray
    """Histogram counts, ``(bins,)`` int64."""
    edges: np.ndarray
    """Bin edges, ``(bins + 1,)`` float64."""
    n_channels: int
    dead_channels: np.ndarray
    """Indices of channels that never exceed `DEAD_EPS` on the batch."""
    fraction_zero: float
    """Share of all values at or below `DEAD_EPS` (ReLU sparsity)."""
    mean: float
    std: float

    @property
    def n_dead(self) -> int:
        return int(self.dead_channels.size)


def layer_stats(act: torch.Tensor, bins: int = 64) -> LayerStats:
    """Histogram, dead channels and sparsity of a layer output ``act``."""
    maps = as_maps(act).detach().float().cpu()
    values = maps.flatten().numpy().astype(np.float64)
    if values.size == 0:
        raise ValueError("empty activation")
    lo, hi = float(values.min()), float(values.max())
    if hi <= lo:
        hi = lo + 1.0
    counts, edges = np.histogram(values, bins=bins, range=(lo, hi))
    peak = maps.transpose(0, 1).flatten(1).amax(dim=1).numpy()
    dead = np.flatnonzero(peak <= DEAD_EPS)
    return LayerStats(counts.astype(np.int64), edges, int(maps.shape[1]), dead,
                      float(np.mean(values <= DEAD_EPS)), float(values.mean()), float(values.std()))
