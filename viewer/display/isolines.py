"""Isolines of a 2D map at one level (contourpy's C++ marching squares), for contour-mode overlays.

Coordinates are (column, row) pixel indices with pixel centres at integers, as the map is stored;
values between pixel centres are linear, so the isoline of a 0/1 mask at 0.5 runs midway between an
inside and an outside pixel centre. Only the bounding box of the pixels at or above the level (plus one
pixel) is traced: the lines are the same as over the whole map, at a fraction of the cost.
"""

from __future__ import annotations

import numpy as np
from contourpy import LineType, contour_generator

_EMPTY = (np.zeros(0), np.zeros(0), np.zeros(0, dtype=bool))


def isolines(image: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(x, y, connect)`` of every isoline of ``image`` (rows, cols) at ``level``: point coordinates
    (column, row) and, per point, whether a line runs on to the next point (False ends a line; closed
    lines repeat their first point). Empty arrays when nothing crosses the level."""
    img = np.asarray(image)
    if img.ndim != 2:
        raise ValueError(f"isolines need a 2D map, got shape {img.shape}")
    above = img >= level
    rows = np.flatnonzero(above.any(axis=1))
    if rows.size == 0:
        return _EMPTY
    cols = np.flatnonzero(above[rows[0]:rows[-1] + 1].any(axis=0))
    r0, r1 = max(int(rows[0]) - 1, 0), min(int(rows[-1]) + 2, img.shape[0])
    c0, c1 = max(int(cols[0]) - 1, 0), min(int(cols[-1]) + 2, img.shape[1])
    if r1 - r0 < 2 or c1 - c0 < 2:
        return _EMPTY
    sub = np.array(img[r0:r1, c0:c1], dtype=np.float64)
    gen = contour_generator(z=sub, name="serial", line_type=LineType.ChunkCombinedOffset, corner_mask=False)
    points, offsets = gen.lines(float(level))
    if not points or points[0] is None or len(points[0]) == 0:
        return _EMPTY
    pts, offs = points[0], offsets[0]
    connect = np.ones(len(pts), dtype=bool)
    connect[offs[1:] - 1] = False
    return pts[:, 0] + c0, pts[:, 1] + r0, connect
