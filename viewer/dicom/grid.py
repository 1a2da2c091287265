"""The slice grid of a stack: where each acquired slice sits on a uniform grid of volume slices.

A volume has one slice spacing, so slices at irregular positions need a decision, never a silent
compression of the geometry:

* **Regular with gaps** (every slice within :func:`grid_tolerance` of ``origin + n * step`` for an
  integer ``n``; the step is the typical one): each slice keeps its place, positions nobody acquired
  become *missing* slices (filled with the volume's minimum and flagged in ``Volume.missing``).
* **Variable pitch** (steps that are no multiples of one step): the volume is resampled, linearly
  along the step direction, onto a uniform grid (``SliceGrid.resample``), and the warning says so.
* **Too sparse** (gaps so large the grid would hold more than ``MAX_MISSING_RATIO`` times the acquired
  slices): refused (``SliceGrid.refusal``), :func:`~viewer.dicom.loader.load_volume` raises with it.

The fit is a least-squares line through the 3-D positions (so gantry tilt keeps its true step
direction) against the integer grid index of every slice.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

GRID_TOL_REL = 0.01
"""A slice within this fraction of the step (and at least GRID_TOL_MM) of its grid position is on the grid."""
GRID_TOL_MM = 0.01
ROUNDING_TOL = 0.2
"""A position this far (in steps) from an integer multiple of the typical step is not on any grid."""
MAX_MISSING_RATIO = 2.0
"""A regular grid may hold at most this many missing slots per acquired slice (plus MAX_MISSING_EXTRA)."""
MAX_MISSING_EXTRA = 16
RESAMPLE_MAX_RATIO = 2.0
"""A resampled grid holds at most this many slices per acquired slice."""


@dataclass
class SliceGrid:
    """Volume slice ``g`` of a stack with ``n`` grid slices, given its ``m`` sorted acquired slices.

    Direct grids: ``slots[s]`` is the grid index of acquired slice ``s``; the other grid slices are
    missing. Resampled grids: grid slice ``g`` is ``(1 - w[g]) * src[lo[g]] + w[g] * src[hi[g]]``.
    """

    n: int
    slots: np.ndarray
    resample: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
    refusal: str | None = None
    warnings: list[str] = field(default_factory=list)

    @classmethod
    def identity(cls, m: int) -> SliceGrid:
        return cls(m, np.arange(m))

    @property
    def is_identity(self) -> bool:
        return self.resample is None and self.n == len(self.slots)

    @property
    def missing(self) -> np.ndarray:
        """bool (n,): grid slices no acquired slice fills (always none for a resampled grid)."""
        out = np.zeros(self.n, dtype=bool)
        if self.resample is None:
            out[:] = True
            out[self.slots] = False
        return out

    @property
    def source_of(self) -> np.ndarray:
        """int (n,): the acquired slice at each grid slice, -1 where none sits exactly there."""
        out = np.full(self.n, -1, dtype=np.int64)
        if self.resample is None:
            out[self.slots] = np.arange(len(self.slots))
        else:
            lo, hi, w = self.resample
            out[w == 0.0] = lo[w == 0.0]
            out[w == 1.0] = hi[w == 1.0]
        return out

    @property
    def nearest_source(self) -> np.ndarray:
        """int (n,): the acquired slice nearest each grid slice (per-slice header facts such as rescale)."""
        if self.resample is not None:
            lo, hi, w = self.resample
            return np.where(w > 0.5, hi, lo)
        grid_of = self.slots.astype(np.float64)
        idx = np.clip(np.searchsorted(grid_of, np.arange(self.n)), 0, len(grid_of) - 1)
        below = np.clip(idx - 1, 0, len(grid_of) - 1)
        closer_below = np.abs(grid_of[below] - np.arange(self.n)) <= np.abs(grid_of[idx] - np.arange(self.n))
        return np.where(closer_below, below, idx)


def grid_tolerance(step: float) -> float:
    """How far (mm) a slice may lie from its grid position and still count as on the grid."""
    return max(GRID_TOL_MM, GRID_TOL_REL * abs(step))


@dataclass
class GridFit:
    origin: np.ndarray
    """LPS of grid slice 0's first voxel."""
    step: np.ndarray
    """LPS vector from one grid slice to the next (its length is the slice spacing)."""
    grid: SliceGrid


def fit_grid(positions: np.ndarray, normal: np.ndarray) -> GridFit:
    """The grid of ``positions`` ((m, 3) LPS, m >= 2, sorted by increasing ``positions @ normal``,
    distinct)."""
    positions = np.asarray(positions, dtype=np.float64)
    m = len(positions)
    d = positions @ normal
    steps = np.diff(d)
    for typical in dict.fromkeys((float(np.median(steps)), float(np.min(steps)))):  # the usual step, else the smallest
        ratio = (d - d[0]) / typical
        slots = np.rint(ratio).astype(np.int64)
        if float(np.max(np.abs(ratio - slots))) > ROUNDING_TOL or np.any(np.diff(slots) < 1):
            continue
        a = np.column_stack([np.ones(m), slots.astype(np.float64)])
        coef, *_ = np.linalg.lstsq(a, positions, rcond=None)
        origin, step = coef[0], coef[1]
        residual = np.linalg.norm(positions - a @ coef, axis=1)
        spacing = float(np.linalg.norm(step))
        if float(residual.max()) <= grid_tolerance(spacing):
            n = int(slots[-1]) + 1
            grid = SliceGrid(n, slots)
            if n > m:
                missing = np.nonzero(grid.missing)[0]
                if n - m > MAX_MISSING_RATIO * m + MAX_MISSING_EXTRA:
                    grid.refusal = (
                        f"slices too sparse for one volume: {m} slices spread over {n} positions {spacing:.3f} mm "
                        f"apart ({n - m} missing); load the parts as separate series")
                else:
                    grid.warnings.append(
                        f"gap in slice positions: {n - m} missing slice(s) at {_ranges(missing)} "
                        f"(step {spacing:.3f} mm, largest gap {float(steps.max()):.3f} mm): every slice is kept at its "
                        "position and the missing ones are blank, marked missing")
            return GridFit(origin, step, grid)
    return _resampled(positions, steps)


def _resampled(positions: np.ndarray, steps: np.ndarray) -> GridFit:
    """Variable pitch: a uniform grid from the first to the last slice, values interpolated linearly."""
    m = len(positions)
    total = positions[-1] - positions[0]
    extent = float(np.linalg.norm(total))
    direction = total / extent
    along = (positions - positions[0]) @ direction
    pitch = max(float(np.min(steps)), extent / (RESAMPLE_MAX_RATIO * (m - 1)))
    n = int(np.ceil(extent / pitch - 1e-6)) + 1
    pitch = extent / (n - 1)
    t = np.arange(n) * pitch
    hi = np.clip(np.searchsorted(along, t, side="left"), 1, m - 1)
    lo = hi - 1
    w = np.clip((t - along[lo]) / (along[hi] - along[lo]), 0.0, 1.0)
    tol = grid_tolerance(pitch)
    w[np.abs(t - along[lo]) <= tol] = 0.0
    w[np.abs(t - along[hi]) <= tol] = 1.0
    grid = SliceGrid(n, np.full(m, -1, dtype=np.int64), resample=(lo, hi, w))
    grid.warnings.append(
        f"variable slice spacing: steps from {float(steps.min()):.3f} to {float(steps.max()):.3f} mm; resampled "
        f"(linear along the slice direction) onto a uniform {pitch:.3f} mm grid of {n} slices from {m} acquired")
    return GridFit(positions[0].copy(), direction * pitch, grid)


def _ranges(indices: np.ndarray, limit: int = 6) -> str:
    """``3, 7-9`` for [3, 7, 8, 9] (the first ``limit`` runs)."""
    runs: list[tuple[int, int]] = []
    for k in (int(v) for v in indices):
        if runs and k == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], k)
        else:
            runs.append((k, k))
    text = ", ".join(f"{a}" if a == b else f"{a}-{b}" for a, b in runs[:limit])
    return text + (", ..." if len(runs) > limit else "")
