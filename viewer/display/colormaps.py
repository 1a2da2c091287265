"""Lookup tables for heat-map overlays: RGBA, transparent where the value is low."""

from __future__ import annotations

import numpy as np

# (position, r, g, b) control points of a perceptually ordered "hot" ramp (black-red-yellow-white).
_HOT = np.array([[0.0, 0, 0, 0], [0.35, 230, 20, 0], [0.7, 255, 210, 0], [1.0, 255, 255, 255]], dtype=np.float64)
# A blue-to-red "jet"-like ramp commonly used for saliency maps.
_JET = np.array([[0.0, 0, 0, 160], [0.25, 0, 120, 255], [0.5, 40, 255, 120], [0.75, 255, 220, 0],
                 [1.0, 220, 0, 0]], dtype=np.float64)
COLORMAPS = {"hot": _HOT, "jet": _JET}


def mask_lut(rgb: tuple[int, int, int] = (255, 255, 0), n: int = 256) -> np.ndarray:
    """(n, 4) uint8 RGBA table for a 0/1 mask: 0 transparent, anything above it opaque ``rgb``."""
    lut = np.zeros((n, 4), dtype=np.uint8)
    lut[1:] = (*rgb, 255)
    return lut


def overlay_lut(name: str = "jet", n: int = 256, alpha_floor: float = 0.05, alpha_full: float = 0.4) -> np.ndarray:
    """(n, 4) uint8 RGBA table: colour from the named ramp, alpha 0 below ``alpha_floor`` rising to 255 at
    ``alpha_full`` (so an overlay of zeros leaves the image untouched)."""
    if name not in COLORMAPS:
        raise ValueError(f"unknown colour map {name!r}; known: {', '.join(COLORMAPS)}")
    pts = COLORMAPS[name]
    x = np.linspace(0.0, 1.0, n)
    rgb = np.stack([np.interp(x, pts[:, 0], pts[:, c]) for c in (1, 2, 3)], axis=1)
    alpha = np.clip((x - alpha_floor) / max(alpha_full - alpha_floor, 1e-6), 0.0, 1.0) * 255
    return np.concatenate([rgb, alpha[:, None]], axis=1).round().astype(np.uint8)
