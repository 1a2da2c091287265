"""Sampling grids and partial-volume rendering of tubes onto them (numpy only)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Grid:
    """Voxel centres of a (k, j, i) array in the phantom frame (mm): ``z[k]``, ``y[j]``, ``x[i]``."""

    x0: float
    y0: float
    z0: float
    sx: float
    sy: float
    sz: float
    ni: int
    nj: int
    nk: int
    thickness: float | None = None
    """Slice sensitivity width along z (mm); defaults to ``sz``."""

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.nk, self.nj, self.ni

    @property
    def x(self) -> np.ndarray:
        return (self.x0 + self.sx * np.arange(self.ni)).astype(np.float32)

    @property
    def y(self) -> np.ndarray:
        return (self.y0 + self.sy * np.arange(self.nj)).astype(np.float32)

    @property
    def z(self) -> np.ndarray:
        return (self.z0 + self.sz * np.arange(self.nk)).astype(np.float32)

    @property
    def extent(self) -> np.ndarray:
        """Voxel size (x, y, z) in mm, z being the slice sensitivity width."""
        return np.array([self.sx, self.sy, self.thickness or self.sz])

    def xyz(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Broadcastable coordinate arrays X (1,1,ni), Y (1,nj,1), Z (nk,1,1)."""
        return self.x[None, None, :], self.y[None, :, None], self.z[:, None, None]

    def index_box(self, lo: np.ndarray, hi: np.ndarray) -> tuple[slice, slice, slice] | None:
        """Array slices (k, j, i) covering the mm box [lo, hi] (x, y, z); None if outside."""
        origin = np.array([self.x0, self.y0, self.z0])
        step = np.array([self.sx, self.sy, self.sz])
        size = np.array([self.ni, self.nj, self.nk])
        a = np.maximum(np.floor((np.asarray(lo) - origin) / step).astype(int), 0)
        b = np.minimum(np.ceil((np.asarray(hi) - origin) / step).astype(int) + 1, size)
        if np.any(b <= a):
            return None
        return slice(a[2], b[2]), slice(a[1], b[1]), slice(a[0], b[0])

    def lookup(self, mask: np.ndarray, pts: np.ndarray) -> np.ndarray:
        """Nearest-voxel value of a bool mask on this grid at points (..., 3) mm; False outside."""
        pts = np.asarray(pts, dtype=np.float64)
        i = np.rint((pts[..., 0] - self.x0) / self.sx).astype(np.int64)
        j = np.rint((pts[..., 1] - self.y0) / self.sy).astype(np.int64)
        k = np.rint((pts[..., 2] - self.z0) / self.sz).astype(np.int64)
        ok = (i >= 0) & (i < self.ni) & (j >= 0) & (j < self.nj) & (k >= 0) & (k < self.nk)
        out = np.zeros(pts.shape[:-1], dtype=bool)
        out[ok] = mask[k[ok], j[ok], i[ok]]
        return out


def overlap_fraction(d: np.ndarray, r: np.ndarray | float, e: np.ndarray) -> np.ndarray:
    """Fraction of a voxel of width ``e`` centred at distance ``d`` that lies within radius ``r``.

    The 1-D overlap of [d - e/2, d + e/2] with [-r, r], divided by e: the partial-volume value of a
    boundary seen through a voxel whose extent across the boundary is ``e``.
    """
    half = 0.5 * e
    return np.clip(np.minimum(d + half, r) - np.maximum(d - half, -r), 0.0, None) / e


@dataclass
class Tubes:
    """Capsule segments with linearly varying radius: p0, p1 (n, 3) mm, r0, r1 (n,) mm."""

    p0: np.ndarray
    p1: np.ndarray
    r0: np.ndarray
    r1: np.ndarray

    @classmethod
    def empty(cls) -> "Tubes":
        return cls(np.zeros((0, 3)), np.zeros((0, 3)), np.zeros(0), np.zeros(0))

    @classmethod
    def polyline(cls, points: np.ndarray, radii: np.ndarray | float) -> "Tubes":
        pts = np.asarray(points, dtype=np.float64)
        rad = np.broadcast_to(np.asarray(radii, dtype=np.float64), (len(pts),))
        return cls(pts[:-1], pts[1:], rad[:-1].copy(), rad[1:].copy())

    def __len__(self) -> int:
        return len(self.r0)

    def concat(self, other: "Tubes") -> "Tubes":
        return Tubes(
            np.concatenate([self.p0, other.p0]),
            np.concatenate([self.p1, other.p1]),
            np.concatenate([self.r0, other.r0]),
            np.concatenate([self.r1, other.r1]),
        )

    def grown(self, dr: float) -> "Tubes":
        """The same tubes with radii changed by ``dr`` mm (negative: an inner lumen)."""
        return Tubes(self.p0, self.p1, np.maximum(self.r0 + dr, 0.0), np.maximum(self.r1 + dr, 0.0))

    def scaled(self, factor: float) -> "Tubes":
        """The same tubes with radii multiplied by ``factor`` (e.g. an airway lumen inside its wall)."""
        return Tubes(self.p0, self.p1, self.r0 * factor, self.r1 * factor)

    def distance(self, pts: np.ndarray) -> np.ndarray:
        """Signed distance (mm) of points (m, 3) to the union of tubes (m,): negative inside."""
        pts = np.asarray(pts, dtype=np.float64)
        if len(self) == 0:
            return np.full(len(pts), np.inf)
        best = np.full(len(pts), np.inf)
        for s in range(0, len(self), 256):
            p0, p1 = self.p0[s : s + 256], self.p1[s : s + 256]
            ab = p1 - p0
            t = np.einsum("mnc,nc->mn", pts[:, None, :] - p0[None], ab) / np.maximum((ab * ab).sum(1), 1e-12)
            t = np.clip(t, 0.0, 1.0)
            closest = p0[None] + t[..., None] * ab[None]
            r = self.r0[s : s + 256][None] + t * (self.r1[s : s + 256] - self.r0[s : s + 256])[None]
            d = np.linalg.norm(pts[:, None, :] - closest, axis=-1) - r
            best = np.minimum(best, d.min(axis=1))
        return best


def render_tubes(grid: Grid, tubes: Tubes, out: np.ndarray | None = None, margin: float = 0.0) -> np.ndarray:
    """Partial-volume occupancy (0..1, float32) of the tubes on the grid, max-composited into ``out``.

    Each voxel's value is the overlap of its extent (projected across the tube wall) with the tube,
    so vessels thinner than a voxel appear faint rather than vanishing or aliasing.
    ``margin`` grows every radius (mm), e.g. for a dilated exclusion zone.
    """
    if out is None:
        out = np.zeros(grid.shape, dtype=np.float32)
    ex, ey, ez = (float(v) for v in grid.extent)
    emin = min(ex, ey, ez)
    pad = max(ex, ey, ez)
    X, Y, Z = grid.x, grid.y, grid.z
    for n in range(len(tubes)):
        a, b = tubes.p0[n], tubes.p1[n]
        ra, rb = float(tubes.r0[n] + margin), float(tubes.r1[n] + margin)
        rmax = max(ra, rb)
        if rmax <= 0:
            continue
        box = grid.index_box(np.minimum(a, b) - rmax - pad, np.maximum(a, b) + rmax + pad)
        if box is None:
            continue
        sk, sj, si = box
        px = X[si][None, None, :] - np.float32(a[0])
        py = Y[sj][None, :, None] - np.float32(a[1])
        pz = Z[sk][:, None, None] - np.float32(a[2])
        abx, aby, abz = (float(v) for v in (b - a))
        ll = abx * abx + aby * aby + abz * abz
        if ll > 1e-12:
            t = np.clip((px * abx + py * aby + pz * abz) * np.float32(1.0 / ll), 0.0, 1.0)
            inv_l = 1.0 / np.sqrt(ll)
            axx, axy, axz = abx * inv_l, aby * inv_l, abz * inv_l
        else:
            t = np.float32(0.0)
            axx, axy, axz = 0.0, 0.0, 1.0
        dx, dy, dz = px - t * np.float32(abx), py - t * np.float32(aby), pz - t * np.float32(abz)
        d = np.sqrt(dx * dx + dy * dy + dz * dz)
        r = np.float32(ra) + t * np.float32(rb - ra)
        inv = 1.0 / np.maximum(d, np.float32(1e-6))
        gx, gy, gz = dx * inv, dy * inv, dz * inv
        e1 = np.maximum(np.abs(gx) * ex + np.abs(gy) * ey + np.abs(gz) * ez, np.float32(emin))
        e2 = (
            np.abs(axy * gz - axz * gy) * ex + np.abs(axz * gx - axx * gz) * ey + np.abs(axx * gy - axy * gx) * ez
        )
        frac = overlap_fraction(d, r, e1) * np.minimum(np.float32(1.0), np.float32(np.pi / 2) * r / np.maximum(e2, np.float32(1e-6)))
        view = out[sk, sj, si]
        np.maximum(view, frac, out=view)
    return out


def blend(hu: np.ndarray, frac: np.ndarray, value: float | np.ndarray) -> None:
    """In place: hu <- hu * (1 - frac) + value * frac (a partial-volume mixture)."""
    hu += frac * (value - hu)


def subgrid(grid: Grid, box: tuple[slice, slice, slice]) -> Grid:
    """The part of ``grid`` covered by array slices ``box`` (k, j, i)."""
    sk, sj, si = box
    return Grid(
        x0=grid.x0 + si.start * grid.sx,
        y0=grid.y0 + sj.start * grid.sy,
        z0=grid.z0 + sk.start * grid.sz,
        sx=grid.sx,
        sy=grid.sy,
        sz=grid.sz,
        ni=si.stop - si.start,
        nj=sj.stop - sj.start,
        nk=sk.stop - sk.start,
        thickness=grid.thickness,
    )


def tube_fraction(grid: Grid, tubes: Tubes, margin: float = 0.0) -> tuple[tuple[slice, slice, slice], np.ndarray] | None:
    """Occupancy of ``tubes`` rendered only within their bounding box: (box, fraction) or None."""
    if len(tubes) == 0:
        return None
    r = np.maximum(tubes.r0, tubes.r1)[:, None] + margin + grid.extent.max()
    lo = np.minimum(tubes.p0 - r, tubes.p1 - r).min(axis=0)
    hi = np.maximum(tubes.p0 + r, tubes.p1 + r).max(axis=0)
    box = grid.index_box(lo, hi)
    if box is None:
        return None
    return box, render_tubes(subgrid(grid, box), tubes, margin=margin)


def paint_tubes(
    grid: Grid, hu: np.ndarray, tubes: Tubes, value: float, mask: np.ndarray | None = None, margin: float = 0.0
) -> None:
    """Blend ``value`` into ``hu`` (in place) where the tubes are; mark ``mask`` where they fill > half a voxel."""
    res = tube_fraction(grid, tubes, margin)
    if res is not None:
        box, frac = res
        blend(hu[box], frac, value)
        if mask is not None:
            mask[box] |= frac > 0.5


def mark_tubes(grid: Grid, mask: np.ndarray, tubes: Tubes, threshold: float = 0.5, margin: float = 0.0) -> None:
    """Set ``mask`` (in place) where the tubes occupy more than ``threshold`` of a voxel."""
    res = tube_fraction(grid, tubes, margin)
    if res is not None:
        box, frac = res
        mask[box] |= frac > threshold
