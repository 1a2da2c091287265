"""Choice of a round scale-bar length."""

from __future__ import annotations

import math


def scale_bar_length(mm_per_pixel: float, max_pixels: float = 120.0) -> tuple[float, float]:
    """The longest 1/2/5 x 10^n mm length that fits in ``max_pixels``: returns (mm, pixels)."""
    if mm_per_pixel <= 0 or not math.isfinite(mm_per_pixel):
        raise ValueError(f"mm per pixel must be positive, got {mm_per_pixel}")
    limit_mm = max_pixels * mm_per_pixel
    exponent = math.floor(math.log10(limit_mm))
    best = 10.0 ** (exponent - 1)
    for e in (exponent - 1, exponent):
        for m in (1, 2, 5):
            cand = m * 10.0 ** e
            if cand <= limit_mm + 1e-12:
                best = max(best, cand)
    return best, best / mm_per_pixel


def format_mm(mm: float) -> str:
    """``5 mm``, ``2 cm``, ``0.5 mm``."""
    if mm >= 10 and mm % 10 == 0:
        return f"{mm / 10:g} cm"
    return f"{mm:g} mm"
