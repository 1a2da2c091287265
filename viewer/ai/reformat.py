"""Reformats for 2D models: a volume resampled onto the plane the model was built for, and maps back.

A 2D model whose card says ``planes: ["axial"]`` with ``reformat: true`` runs on axial slices even
when the series was acquired coronal, sagittal or oblique. `reformat_grid` lays out the reformat: a
grid whose axes are the patient axes of that plane (axial: rows run to the patient's left, columns to
the back, slices upwards), covering the whole acquired volume, its pixels at the acquisition's finest
spacing (coarser when that grid would exceed ``max_voxel_ratio`` times the acquired voxel count), its
slices as far apart as the data resolves along the normal (`resolution_along`: an axial reformat of a
sagittal CT with 2.5 mm rows has slices 2.5 mm apart, not 0.7 mm copies of interpolated rows).
`ReformatGrid.sample` resamples one reformat slice (trilinear, scipy ``map_coordinates``), so a caller
can feed a model slice by slice without holding the whole reformat; `reformat` resamples all of it at
once (`Reformat`: the grid plus its array). `ReformatGrid.to_acquired` resamples maps computed on the
reformat back onto the acquired grid (trilinear, 0 outside), so heatmaps are written and shown where
they were acquired. Numpy + scipy only.

Acquired gaps (``Volume.missing``: grid slices nobody acquired, blank in the volume) are never read as
data: the reformat interpolates across them between the nearest acquired slices on either side
(`separable_linear`'s ``bridge``), and marks what rests on them (`ReformatGrid.gap_mask`: the pixels
interpolated across a gap; `bridged_at`: the gaps within one acquired slice of a point, e.g. a peak). Intended use refuses a reformat across more than `MAX_BRIDGED_SLICES` consecutive missing
slices (`gap_reason`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

PLANE_AXES = {
    # columns: the reformat's i (row direction), j (column direction), k (slice normal), LPS
    "axial": np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]),
    "coronal": np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]]),
    "sagittal": np.array([[0.0, 0.0, -1.0], [1.0, 0.0, 0.0], [0.0, -1.0, 0.0]]),
}
NORMAL_NAMES = {"axial": "z", "coronal": "y", "sagittal": "x"}
"""The LPS coordinate a plane's slice position is along (axial z grows to the head; coronal slices step
to the front, so their position is -y; sagittal slices step to the patient's right, -x)."""

IndexMap = Callable[[int, int, int], np.ndarray]
Bridge = tuple[np.ndarray, np.ndarray]
"""(below, above): per acquired slice index, the nearest acquired slice at or below it, at or above it."""

MAX_BRIDGED_SLICES = 1
"""The most consecutive missing acquired slices a reformat interpolates across: one missing slice spans two
steps between acquired neighbours, as far as the loader itself interpolates a variable-pitch series
(`viewer.dicom.grid.RESAMPLE_MAX_RATIO`); a wider gap would put invented anatomy in front of the model."""


@dataclass
class ReformatGrid:
    """Where a reformat lies, and the acquired grid it came from (ITK conventions, as `viewer.dicom.Volume`)."""

    origin: np.ndarray
    spacing: np.ndarray
    """(x, y, z) = (column, row, slice) mm."""
    direction: np.ndarray
    plane: str
    shape: tuple[int, int, int]
    """(slices, rows, cols) of the reformat."""
    source_origin: np.ndarray
    source_spacing: np.ndarray
    source_direction: np.ndarray
    source_shape: tuple[int, int, int]
    source_missing: np.ndarray | None = None
    """bool (acquired slices,): the acquired grid's gaps (`viewer.dicom.Volume.missing`), None without any."""

    @property
    def bridge(self) -> Bridge | None:
        """How acquired gaps are bridged (`bridge_of`); None without gaps."""
        return bridge_of(self.source_missing)

    def slice_positions(self) -> np.ndarray:
        """(n,) position (mm) of each reformat slice along its normal (LPS projection onto the normal)."""
        normal = self.direction[:, 2]
        return float(self.origin @ normal) + np.arange(self.shape[0]) * float(self.spacing[2])

    def patient_position(self, k: int) -> float:
        """Slice ``k``'s position in the patient coordinate the plane is named by (axial: z, LPS; coronal: y;
        sagittal: x), as a radiologist reads it off the views."""
        axis = "xyz".index(NORMAL_NAMES[self.plane])
        return float(self.index_to_lps((0.0, 0.0, float(k)))[axis])

    def index_to_lps(self, ijk: np.ndarray | tuple[float, float, float]) -> np.ndarray:
        """LPS of continuous reformat indices ``(i, j, k)``."""
        return self.origin + self.direction @ (np.asarray(ijk, dtype=np.float64) * self.spacing)

    def lps_to_index(self, xyz: np.ndarray) -> np.ndarray:
        """Continuous reformat indices ``(i, j, k)`` of an LPS point."""
        return (np.linalg.inv(self.direction) @ (np.asarray(xyz, dtype=np.float64) - self.origin)) / self.spacing

    def source_index(self) -> IndexMap:
        """(k, rows, cols) -> (3, rows*cols) acquired-array indices (k, j, i) of reformat slice k's pixels."""
        return _index_map(self.origin, self.spacing, self.direction,
                          self.source_origin, self.source_spacing, self.source_direction)

    def from_source(self) -> tuple[np.ndarray, np.ndarray]:
        """(a, b): reformat index (i, j, k) = a @ acquired index (i, j, k) + b."""
        return _affine(self.source_origin, self.source_spacing, self.source_direction,
                       self.origin, self.spacing, self.direction)

    def sample(self, src: np.ndarray, k: int, fill: float, index: IndexMap | None = None) -> np.ndarray:
        """Reformat slice ``k`` (float32, trilinear) of ``src`` (the acquired (k, j, i) array, any real
        dtype), ``fill`` outside it. An acquisition along the patient axes (sagittal, coronal) is resampled
        axis by axis (`separable_linear`: a few gathers); a tilted one point by point (``map_coordinates``)."""
        from scipy import ndimage

        n, rows, cols = self.shape
        a, b = _affine(self.origin, self.spacing, self.direction,
                       self.source_origin, self.source_spacing, self.source_direction)
        follows = axis_permutation(a)
        bridge = self.bridge
        if follows is not None:
            ranges = [np.arange(cols, dtype=np.float64)[None, :], np.arange(rows, dtype=np.float64)[:, None],
                      np.full((1, 1), float(k))]
            per_axis = [a[s, follows[s]] * ranges[follows[s]] + b[s] for s in (2, 1, 0)]
            values, valid = separable_linear(src, per_axis, bridge)
            return np.where(valid, values, np.float32(fill)).astype(np.float32, copy=False)
        coords = (index or self.source_index())(int(k), rows, cols)
        out = np.empty(rows * cols, dtype=np.float32)
        ndimage.map_coordinates(src, coords, output=out, order=1, cval=fill)
        if bridge is not None:  # the points beside a gap again, point by point across it
            lo, hi, w = _bridged(coords[0], bridge)
            near = np.flatnonzero((hi - lo > 1) & (w > 1e-6) & (w < 1 - 1e-6))
            if near.size:
                values, valid = separable_linear(src, [c[near] for c in coords], bridge)
                out[near] = np.where(valid, values, np.float32(fill))
        return out.reshape(rows, cols)

    def _acquired_coords(self, k: int) -> list[np.ndarray]:
        """Reformat slice ``k``'s pixels as (rows, cols) acquired-array coordinates (k, j, i)."""
        a, b = _affine(self.origin, self.spacing, self.direction,
                       self.source_origin, self.source_spacing, self.source_direction)
        n, rows, cols = self.shape
        ii, jj = np.arange(cols, dtype=np.float64)[None, :], np.arange(rows, dtype=np.float64)[:, None]
        return [a[s, 0] * ii + a[s, 1] * jj + a[s, 2] * float(k) + b[s] for s in (2, 1, 0)]

    def gap_mask(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(on_gap, inside), bool (rows, cols): the pixels of reformat slice ``k`` interpolated across a missing
        acquired slice, and those inside the acquired volume at all."""
        coords = self._acquired_coords(k)
        inside = np.ones(coords[0].shape, dtype=bool)
        for c, n in zip(coords, self.source_shape):
            inside &= (c > -1e-6) & (c < n - 1 + 1e-6)
        bridge = self.bridge
        if bridge is None:
            return np.zeros(inside.shape, dtype=bool), inside
        lo, hi, w = _bridged(coords[0], bridge)
        return inside & (hi - lo > 1) & (w > 1e-6) & (w < 1 - 1e-6), inside

    def gap_fraction(self, k: int) -> float:
        """The share of reformat slice ``k``'s pixels inside the acquired volume that rest on a missing slice."""
        on_gap, inside = self.gap_mask(k)
        return float(on_gap.sum()) / max(int(inside.sum()), 1)

    def bridged_at(self, ijk: Sequence[float]) -> list[int]:
        """The missing acquired slices within one acquired slice of the reformat point at continuous indices
        ``ijk`` ([] when none): a point between acquired neighbours across a gap is interpolated across it, and
        one on the acquired slice beside a gap is no more trustworthy as a peak (a flat run of the map across the
        bridged values, a model's evidence spreading over its receptive field)."""
        if self.source_missing is None:
            return []
        a, b = _affine(self.origin, self.spacing, self.direction,
                       self.source_origin, self.source_spacing, self.source_direction)
        c = float((a @ np.asarray(ijk, dtype=np.float64) + b)[2])
        if not -1e-6 < c < self.source_shape[0] - 1 + 1e-6:
            return []
        return [int(m) for m in np.flatnonzero(self.source_missing) if abs(c - m) <= 1 + 1e-6]

    def to_acquired(self, maps: np.ndarray) -> np.ndarray:
        """(n, rows, cols) maps on the reformat grid -> (k, j, i) float32 on the acquired grid (0 outside)."""
        from scipy import ndimage

        maps = np.asarray(maps, dtype=np.float32)
        if maps.shape != tuple(self.shape):
            raise ValueError(f"maps {maps.shape} do not match the reformat {tuple(self.shape)}")
        out = np.zeros(self.source_shape, dtype=np.float32)
        index = _index_map(self.source_origin, self.source_spacing, self.source_direction,
                           self.origin, self.spacing, self.direction)
        nk, nj, ni = self.source_shape
        for k in range(nk):
            out[k] = ndimage.map_coordinates(maps, index(k, nj, ni), order=1, cval=0.0).reshape(nj, ni)
        return out

    def describe(self) -> dict[str, object]:
        """The grid as JSON-ready numbers (a results-cache entry records it; equal grids give equal dicts)."""
        return {"plane": self.plane, "shape": [int(v) for v in self.shape],
                "origin_mm": [round(float(v), 4) for v in self.origin],
                "spacing_mm": [round(float(v), 4) for v in self.spacing],
                "direction": [round(float(v), 6) for v in self.direction.ravel()],
                **({"missing_slices": [int(v) for v in np.flatnonzero(self.source_missing)]}
                   if self.source_missing is not None and self.source_missing.any() else {})}


@dataclass
class Reformat(ReformatGrid):
    """A reformat grid with its values (`reformat`)."""

    array: np.ndarray = field(default_factory=lambda: np.zeros((0, 0, 0), dtype=np.float32))
    """(n, rows, cols) float32 on the reformat grid."""


def axis_permutation(a: np.ndarray, tol: float = 1e-9) -> np.ndarray | None:
    """For the linear part ``a`` of an index map (to = a @ from + b, (i, j, k) order): the from-axis each
    to-axis follows, when each follows exactly one (grids along the same patient axes); else None."""
    nz = np.abs(a) > tol * float(np.abs(a).max() or 1.0)
    if not ((nz.sum(axis=0) == 1).all() and (nz.sum(axis=1) == 1).all()):
        return None
    return np.argmax(nz, axis=1)


def bridge_of(missing: np.ndarray | None) -> Bridge | None:
    """(below, above) for an acquired grid's gaps (bool per slice): the nearest acquired slice at or below and
    at or above each slice index; None without gaps. The grid's first and last slices are always acquired."""
    if missing is None or not np.any(missing):
        return None
    m = np.asarray(missing, dtype=bool)
    idx = np.arange(m.size)
    below = np.maximum.accumulate(np.where(m, 0, idx))
    above = np.minimum.accumulate(np.where(m, m.size - 1, idx)[::-1])[::-1]
    return below, above


def _bridged(c: np.ndarray, bridge: Bridge) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(lo, hi, w) along the acquired slice axis at coordinates ``c``: the acquired slices either side (across
    missing ones) and the weight of ``hi``."""
    below, above = bridge
    n = below.size
    c = np.clip(np.asarray(c, dtype=np.float64), 0.0, n - 1.0)
    f = np.minimum(np.floor(c), max(n - 2, 0)).astype(np.intp)
    lo, hi = below[f], above[np.minimum(f + 1, n - 1)]
    return lo, hi, (c - lo) / np.maximum(hi - lo, 1)


def separable_linear(src: np.ndarray, coords: Sequence[np.ndarray],
                     bridge: Bridge | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Linear interpolation of ``src`` (3D) at index coordinates given per axis (``coords[d]``: the index
    along axis d, broadcastable to the output shape; cheapest when each depends on one output axis): (float32
    values, bool inside). A point is inside when every coordinate lies within ``[0, n_d - 1]`` (as scipy's
    ``map_coordinates`` with ``mode="constant"``); a coordinate falling on a grid line reads one neighbour.
    ``bridge`` (`bridge_of`): along axis 0 (the acquired slices) missing slices are never read; values are
    interpolated between the acquired slices either side of them."""
    axes: list[list[tuple[np.ndarray, np.ndarray]]] = []
    inside: np.ndarray | bool = True
    for d, c in enumerate(coords):
        n = src.shape[d]
        c = np.asarray(c, dtype=np.float64)
        inside = inside & (c > -1e-6) & (c < n - 1 + 1e-6)
        if d == 0 and bridge is not None:
            lo, hi, wb = _bridged(c, bridge)
            axes.append([(lo, (1.0 - wb).astype(np.float32)), (hi, wb.astype(np.float32))])
            continue
        c = np.clip(c, 0.0, n - 1.0)
        f = np.minimum(np.floor(c), max(n - 2, 0)).astype(np.intp)
        w = (c - f).astype(np.float32)
        corners = [(f, 1.0 - w)]
        if n > 1 and bool((w > 1e-6).any()):
            corners.append((f + 1, w))
        axes.append(corners)
    out: np.ndarray | None = None
    for i0, w0 in axes[0]:
        for i1, w1 in axes[1]:
            for i2, w2 in axes[2]:
                term = (w0 * w1 * w2) * src[i0, i1, i2]
                out = term if out is None else out + term
    assert out is not None
    shape = np.broadcast_shapes(out.shape, np.shape(inside))
    return np.broadcast_to(out, shape).astype(np.float32), np.broadcast_to(inside, shape)


def _affine(from_origin: np.ndarray, from_spacing: np.ndarray, from_direction: np.ndarray,
            to_origin: np.ndarray, to_spacing: np.ndarray, to_direction: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a = (np.linalg.inv(to_direction) @ from_direction) * from_spacing[None, :] / to_spacing[:, None]
    b = (np.linalg.inv(to_direction) @ (from_origin - to_origin)) / to_spacing
    return a, b


def _index_map(from_origin: np.ndarray, from_spacing: np.ndarray, from_direction: np.ndarray,
               to_origin: np.ndarray, to_spacing: np.ndarray, to_direction: np.ndarray) -> IndexMap:
    """A function (k, rows, cols) -> (3, rows*cols) array indices (k, j, i) in the ``to`` grid of the
    pixel centres of slice k of the ``from`` grid."""
    a, b = _affine(from_origin, from_spacing, from_direction, to_origin, to_spacing, to_direction)

    def index(k: int, rows: int, cols: int) -> np.ndarray:
        jj, ii = np.meshgrid(np.arange(rows, dtype=np.float64), np.arange(cols, dtype=np.float64), indexing="ij")
        ijk = np.stack([ii.ravel(), jj.ravel(), np.full(ii.size, float(k))])
        to_ijk = a @ ijk + b[:, None]
        return to_ijk[::-1]

    return index


def reformat_grid(shape: tuple[int, int, int], origin: np.ndarray, spacing: np.ndarray, direction: np.ndarray,
                  plane: str, max_voxel_ratio: float = 4.0, missing: np.ndarray | None = None) -> ReformatGrid:
    """The reformat of a (k, j, i) volume of ``shape`` with ITK geometry onto ``plane`` (module docstring);
    ``missing``: the acquired grid's gaps (bool per slice), bridged and marked."""
    if plane not in PLANE_AXES:
        raise ValueError(f"unknown plane {plane!r}; choose one of {', '.join(PLANE_AXES)}")
    origin, spacing = np.asarray(origin, np.float64), np.asarray(spacing, np.float64)
    direction = np.asarray(direction, np.float64).reshape(3, 3)
    nk, nj, ni = (int(v) for v in shape)
    d_t = PLANE_AXES[plane]
    corners = np.array([[i, j, k] for i in (0, ni - 1) for j in (0, nj - 1) for k in (0, nk - 1)], dtype=np.float64)
    lps = origin + (corners * spacing) @ direction.T
    in_t = lps @ d_t  # coordinates along the reformat axes
    lo, hi = in_t.min(0), in_t.max(0)
    step = float(spacing.min())
    along = resolution_along(direction, spacing, plane)[2]
    extent = hi - lo

    def steps(s: float) -> np.ndarray:  # in-plane at s, slices no closer than the data resolves along the normal
        return np.array([s, s, max(s, along)])

    while np.prod(np.floor(extent / steps(step) + 1e-6) + 1) > max_voxel_ratio * nk * nj * ni:
        step *= 1.25
    t_spacing = steps(step)
    n = (np.floor(extent / t_spacing + 1e-6) + 1).astype(int)
    t_origin = d_t @ (lo + (extent - (n - 1) * t_spacing) / 2)  # centred on the acquired volume
    gaps = None if missing is None or not np.any(missing) else np.asarray(missing, dtype=bool).copy()
    if gaps is not None and gaps.shape != (nk,):
        raise ValueError(f"missing {gaps.shape} is not one flag per acquired slice ({nk})")
    return ReformatGrid(t_origin, t_spacing, d_t.copy(), plane, (int(n[2]), int(n[1]), int(n[0])),
                        origin, spacing, direction, (nk, nj, ni), gaps)


def gap_reason(missing: np.ndarray | None, step_mm: float, plane: str) -> str:
    """Why a reformat to ``plane`` may not bridge the acquired gaps (a run of more than `MAX_BRIDGED_SLICES`
    missing slices: its 1-based images and width), '' when it may."""
    if missing is None or not np.any(missing):
        return ""
    m = np.concatenate(([0], np.asarray(missing, dtype=np.int8), [0]))
    starts, ends = np.flatnonzero(np.diff(m) == 1), np.flatnonzero(np.diff(m) == -1)
    longest = int(np.argmax(ends - starts))
    run = int(ends[longest] - starts[longest])
    if run <= MAX_BRIDGED_SLICES:
        return ""
    return (f"acquired gap: images {starts[longest] + 1}-{ends[longest]} missing ({run} slices, "
            f"{(run + 1) * step_mm:.1f} mm between acquired images); a {plane} reformat interpolates across at "
            f"most {MAX_BRIDGED_SLICES} missing slice")


def resolution_along(direction: np.ndarray | None, spacing: Sequence[float] | np.ndarray,
                     plane: str) -> tuple[float, float, float]:
    """The acquired data's resolution (mm) along a reformat's column, row and slice axes: what a model reading
    ``plane`` reformats sees (an axial reformat of a sagittal series: its slice spacing across, its row
    spacing from slice to slice). Along an axis the acquired axes contribute their spacing weighted by how
    much they point that way (exact for axis-aligned acquisitions)."""
    d = np.eye(3) if direction is None else np.asarray(direction, dtype=np.float64).reshape(3, 3)
    s = np.asarray(spacing, dtype=np.float64).reshape(3)
    out = [float(np.sqrt(((d.T @ PLANE_AXES[plane][:, n]) ** 2 * s**2).sum())) for n in range(3)]
    return out[0], out[1], out[2]


def reformat(array: np.ndarray, origin: np.ndarray, spacing: np.ndarray, direction: np.ndarray, plane: str,
             max_voxel_ratio: float = 4.0, fill: float | None = None, missing: np.ndarray | None = None) -> Reformat:
    """Resample a (k, j, i) volume with ITK geometry onto ``plane``'s patient axes (see module docstring;
    ``missing``: the acquired gaps, interpolated across).

    ``fill``: the value outside the acquired volume (default: the volume's minimum, air for CT).
    """
    src = np.asarray(array, dtype=np.float32)
    grid = reformat_grid(src.shape, origin, spacing, direction, plane, max_voxel_ratio, missing)
    fill_value = float(np.nanmin(src)) if fill is None else float(fill)
    out = np.empty(grid.shape, dtype=np.float32)
    index = grid.source_index()
    for k in range(grid.shape[0]):
        out[k] = grid.sample(src, k, fill_value, index)
    return Reformat(grid.origin, grid.spacing, grid.direction, grid.plane, grid.shape, grid.source_origin,
                    grid.source_spacing, grid.source_direction, grid.source_shape, grid.source_missing, array=out)
