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
