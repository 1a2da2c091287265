"""Integrated gradients (Sundararajan et al. 2017): an input-space method for any model.

It needs only ``forward(x) -> logits`` and autograd through it, so it also works for TorchScript
models, whose layers cannot be reached. Attribution per pixel is ``(x - x0) * mean_alpha dF/dx``
summed over channels; the positive part (evidence for the label) is returned.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch


def integrated_gradients(forward: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, labels: Sequence[int],
                         baseline: torch.Tensor | None = None, steps: int = 16
                         ) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits ``(n, L)`` and maps ``(len(labels), n, H, W)`` (non-negative, unnormalised).

    Midpoint Riemann sum over ``steps`` points of the straight path from ``baseline``
    (default: zeros) to ``x``.
    """
    if steps < 1:
        raise ValueError("steps must be >= 1")
    x = x.detach()
    x0 = torch.zeros_like(x) if baseline is None else baseline.to(x).expand_as(x)
    diff = x - x0
    total = x.new_zeros((len(labels), *x.shape))
    with torch.enable_grad():  # grad mode is thread-local; workers switch it on here
        for step in range(steps):
            alpha = (step + 0.5) / steps
            xi = (x0 + alpha * diff).requires_grad_(True)
            out = forward(xi).float()
            for j, label in enumerate(labels):
                (g,) = torch.autograd.grad(out[:, label].sum(), xi, retain_graph=j < len(labels) - 1)
                total[j] += g
    with torch.inference_mode():
        logits = forward(x).float()
    maps = (diff.unsqueeze(0) * total / steps).sum(dim=2).clamp_(min=0)
    return logits, maps
