"""Qt-free rules of the layer inspector: maps back onto the image grid, channels ranked by activity."""

from __future__ import annotations

import numpy as np

SORT_KEYS = ("mean", "max", "std")


def resize_to_native(m: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of a ``(h, w)`` map to ``shape`` with ``align_corners=False`` pixel centres
    (``u -> (u + 0.5) * n_out / n_in - 0.5``), as ``inference.preprocess.Preprocessor.to_native``."""
    h, w = m.shape
    rows, cols = int(shape[0]), int(shape[1])

    def axis(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        src = np.clip((np.arange(n_out) + 0.5) * n_in / n_out - 0.5, 0, n_in - 1)
        lo = np.floor(src).astype(np.intp)
        hi = np.minimum(lo + 1, n_in - 1)
        return lo, hi, (src - lo).astype(np.float32)

    r0, r1, fr = axis(h, rows)
    c0, c1, fc = axis(w, cols)
    m = m.astype(np.float32)
    top = m[r0][:, c0] * (1 - fc) + m[r0][:, c1] * fc
    bottom = m[r1][:, c0] * (1 - fc) + m[r1][:, c1] * fc
    return (top * (1 - fr[:, None]) + bottom * fr[:, None]).astype(np.float32)


def channel_order(maps: np.ndarray, key: str) -> np.ndarray:
    """Channels of ``(C, h, w)`` maps sorted by ``key`` (mean, max, std), largest first (ties: lower index)."""
    if key not in SORT_KEYS:
        raise ValueError(f"unknown channel order {key!r}; choose one of {', '.join(SORT_KEYS)}")
    flat = maps.reshape(maps.shape[0], -1).astype(np.float64)
    value = {"mean": flat.mean(1), "max": flat.max(1), "std": flat.std(1)}[key]
    return np.argsort(-value, kind="stable")
