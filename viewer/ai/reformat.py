"""Reformats for 2D models: a volume resampled onto the plane the model was built for, and maps back.

A 2D model whose card says ``planes: ["axial"]`` with ``reformat: true`` runs on axial slices even
when the series was acquired coronal, sagittal or oblique: `reformat` resamples the volume (trilinear,
scipy ``map_coordinates``) onto a grid whose axes are the patient axes of that plane (axial: rows
run to the patient's left, columns to the back, slices upwards), covering the whole acquired
volume, isotropic at the acquisition's finest spacing (coarser when that grid would exceed
``max_voxel_ratio`` times the acquired voxel count). `Reformat.to_acquired` resamples maps computed on
the reformat back onto the acquired grid (trilinear, 0 outside), so heatmaps are written and shown
where they were acquired. Numpy + scipy only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

PLANE_AXES = {
    # columns: the reformat's i (row direction), j (column direction), k (slice normal), LPS
    "axial": np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]),
    "coronal": np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]]),
    "sagittal": np.array([[0.0, 0.0, -1.0], [1.0, 0.0, 0.0], [0.0, -1.0, 0.0]]),
}


@dataclass
class Reformat:
    """Values on the reformat grid plus both grids' geometry (ITK conventions, as `viewer.dicom.Volume`)."""

    array: np.ndarray
    """(n, rows, cols) float32 on the reformat grid."""
    origin: np.ndarray
    spacing: np.ndarray
    """(x, y, z) = (column, row, slice) mm."""
    direction: np.ndarray
    plane: str
    source_origin: np.ndarray
    source_spacing: np.ndarray
    source_direction: np.ndarray
    source_shape: tuple[int, int, int]

    def slice_positions(self) -> np.ndarray:
        """(n,) position (mm) of each reformat slice along its normal."""
        normal = self.direction[:, 2]
        return float(self.origin @ normal) + np.arange(self.array.shape[0]) * float(self.spacing[2])

    def to_acquired(self, maps: np.ndarray) -> np.ndarray:
        """(n, rows, cols) maps on the reformat grid -> (k, j, i) float32 on the acquired grid (0 outside)."""
        from scipy import ndimage

        maps = np.asarray(maps, dtype=np.float32)
        if maps.shape != self.array.shape:
            raise ValueError(f"maps {maps.shape} do not match the reformat {self.array.shape}")
        out = np.zeros(self.source_shape, dtype=np.float32)
        index = _index_map(self.source_origin, self.source_spacing, self.source_direction,
                           self.origin, self.spacing, self.direction)
        nk, nj, ni = self.source_shape
        for k in range(nk):
            out[k] = ndimage.map_coordinates(maps, index(k, nj, ni), order=1, cval=0.0).reshape(nj, ni)
        return out


def _index_map(from_origin: np.ndarray, from_spacing: np.ndarray, from_direction: np.ndarray,
               to_origin: np.ndarray, to_spacing: np.ndarray, to_direction: np.ndarray):  # type: ignore[no-untyped-def]
    """A function (k, rows, cols) -> (3, rows*cols) array indices (k, j, i) in the ``to`` grid of the
    pixel centres of slice k of the ``from`` grid."""
    a = (np.linalg.inv(to_direction) @ from_direction) * from_spacing[None, :] / to_spacing[:, None]
    b = (np.linalg.inv(to_direction) @ (from_origin - to_origin)) / to_spacing

    def index(k: int, rows: int, cols: int) -> np.ndarray:
        jj, ii = np.meshgrid(np.arange(rows, dtype=np.float64), np.arange(cols, dtype=np.float64), indexing="ij")
        ijk = np.stack([ii.ravel(), jj.ravel(), np.full(ii.size, float(k))])
        to_ijk = a @ ijk + b[:, None]
        return to_ijk[::-1]

    return index


def reformat(array: np.ndarray, origin: np.ndarray, spacing: np.ndarray, direction: np.ndarray, plane: str,
             max_voxel_ratio: float = 4.0, fill: float | None = None) -> Reformat:
    """Resample a (k, j, i) volume with ITK geometry onto ``plane``'s patient axes (see module docstring).

    ``fill``: the value outside the acquired volume (default: the volume's minimum, air for CT).
    """
    from scipy import ndimage

    if plane not in PLANE_AXES:
        raise ValueError(f"unknown plane {plane!r}; choose one of {', '.join(PLANE_AXES)}")
    src = np.asarray(array, dtype=np.float32)
    origin, spacing = np.asarray(origin, np.float64), np.asarray(spacing, np.float64)
    direction = np.asarray(direction, np.float64).reshape(3, 3)
    nk, nj, ni = src.shape
    d_t = PLANE_AXES[plane]
    corners = np.array([[i, j, k] for i in (0, ni - 1) for j in (0, nj - 1) for k in (0, nk - 1)], dtype=np.float64)
    lps = origin + (corners * spacing) @ direction.T
    in_t = lps @ d_t  # coordinates along the reformat axes
    lo, hi = in_t.min(0), in_t.max(0)
    step = float(spacing.min())
    extent = hi - lo
    while np.prod(np.floor(extent / step + 1e-6) + 1) > max_voxel_ratio * src.size:
        step *= 1.25
    n = (np.floor(extent / step + 1e-6) + 1).astype(int)
    t_spacing = np.full(3, step)
    t_origin = d_t @ (lo + (extent - (n - 1) * step) / 2)  # centred on the acquired volume
    fill_value = float(np.nanmin(src)) if fill is None else float(fill)
    out = np.empty((n[2], n[1], n[0]), dtype=np.float32)
    index = _index_map(t_origin, t_spacing, d_t, origin, spacing, direction)
    for k in range(n[2]):
        out[k] = ndimage.map_coordinates(src, index(k, n[1], n[0]), order=1, cval=fill_value).reshape(n[1], n[0])
    return Reformat(out, t_origin, t_spacing, d_t.copy(), plane, origin, spacing, direction, (nk, nj, ni))
