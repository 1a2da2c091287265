"""Where a view shows slices that were never acquired (a gap) or were interpolated (variable pitch).

A volume keeps every slice at its true place (:mod:`viewer.dicom.grid`): a missing position is a blank
slice flagged in ``Volume.missing``, an interpolated one is flagged in ``Volume.interpolated``. Views draw
such slices hatched with a label, and the series' notice on every image.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from viewer.dicom.volume import Volume
from viewer.display.planes import Plane


@dataclass(frozen=True)
class Band:
    """Screen pixels of a view showing missing (or interpolated) slices: rows ``start..stop-1`` (``axis``
    ``"row"``) or columns (``"col"``), or the whole image (``"all"``)."""

    axis: str
    start: int
    stop: int
    kind: str
    """``missing`` or ``interpolated``."""


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    edges = np.diff(np.concatenate(([0], mask.astype(np.int8), [0])))
    return [(int(a), int(b)) for a, b in zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1))]


def bands(volume: Volume, plane: Plane, s: int) -> list[Band]:
    """The bands of slice ``s`` of ``plane`` that show missing or interpolated volume slices."""
    out: list[Band] = []
    for kind, mask in (("missing", volume.missing), ("interpolated", volume.interpolated)):
        if mask is None or not mask.any():
            continue
        if plane.slice_axis == 0:
            if mask[int(s)]:
                out.append(Band("all", 0, 0, kind))
            continue
        n = len(mask)
        on_rows = plane.row_axis == 0
        flip = plane.flip_row if on_rows else plane.flip_col
        for a, b in _runs(mask):
            start, stop = (n - b, n - a) if flip else (a, b)
            out.append(Band("row" if on_rows else "col", start, stop, kind))
    return out


def slice_label(volume: Volume, k: int) -> str | None:
    """What to write on acquisition slice ``k`` when it was not acquired as shown."""
    if volume.missing is not None and volume.missing[k]:
        return "missing slice: not acquired (blank)"
    if volume.interpolated is not None and volume.interpolated[k]:
        return "interpolated slice (variable spacing resampled)"
    return None


def series_notice(volume: Volume) -> str | None:
    """The one-line gap / resampling warning shown on every image of the series, or None."""
    parts = []
    if volume.missing is not None and volume.missing.any():
        n = int(volume.missing.sum())
        parts.append(f"gap: {n} missing slice{'s' if n > 1 else ''} (hatched)")
    if volume.interpolated is not None and volume.interpolated.any():
        parts.append(f"variable spacing: resampled to {volume.spacing[2]:.3g} mm")
    return "; ".join(parts) or None
