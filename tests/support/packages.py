"""Tiny real model packages for tests (torch.export of a small DemoCNN; seconds to export)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

TINY_FIELDS: dict[str, Any] = {
    "name": "tiny", "version": "0.1", "dims": 2, "labels": ["a", "b"], "output": "sigmoid",
    "input": {"size": [32, 32], "channels": 1, "window": {"center": 40, "width": 400}, "modalities": ["CT"]},
    "explain": {"target_layer": "features"},
}


LUNG_INPUT: dict[str, Any] = {"size": [32, 32], "channels": 1, "window": {"center": -600, "width": 1500}}
"""A lung window input (no modality restriction): ``write_tiny_package(out, input=LUNG_INPUT)``."""


def write_tiny_package(out: Path, seed: int = 0, **overrides: Any) -> Path:
    """Export a DemoCNN (widths 4, 8) with ``TINY_FIELDS`` (updated by ``overrides``) into ``out``."""
    import torch

    from inference.architectures import DemoCNN
    from inference.package import save_package

    fields = {**TINY_FIELDS, **overrides}
    torch.manual_seed(seed)
    save_package(DemoCNN(1, len(fields["labels"]), widths=(4, 8)), fields, out, torch.zeros(2, 1, 32, 32))
    return out


def odd_net() -> Any:
    """A small model using what the ``.pt2`` graph reader (inference/pt2graph.py) must rebuild beyond a plain
    CNN: multi-output operators (``split``, ``max.dim``), the symbolic batch inside a ``reshape``, a lifted
    tensor constant and a non-persistent buffer. 1 x 32 x 32 -> 2 logits; layer ``features`` for CAMs."""
    import torch
    from torch import nn

    class OddNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.features = nn.Sequential(nn.Conv2d(1, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU())
            self.head = nn.Linear(3, 2)
            self.register_buffer("scale", torch.full((1,), 0.5), persistent=False)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            f = self.features(x)
            a, b = f.split([3, 3], dim=1)
            peak, _ = torch.max(a + b, dim=1)
            pooled = peak.reshape(x.shape[0], -1).mean(1)
            v = torch.stack([a.mean((2, 3)).sum(1), b.mean((2, 3)).sum(1), pooled], 1)
            return self.head(v) * self.scale + torch.tensor([0.1, -0.1])

    torch.manual_seed(3)
    net = OddNet()
    with torch.no_grad():  # BatchNorm statistics that are not the identity
        net.features[1].running_mean.uniform_(-0.2, 0.2)
        net.features[1].running_var.uniform_(0.5, 2.0)
    return net.eval()


def write_odd_package(out: Path) -> Path:
    """``odd_net()`` exported (dynamic batch) with ``TINY_FIELDS`` into ``out``."""
    import torch

    from inference.package import save_package

    save_package(odd_net(), TINY_FIELDS, out, torch.zeros(2, 1, 32, 32))
    return out
