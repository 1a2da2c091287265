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
    def empty(cls) -> Tubes:
        return cls(np.zeros((0, 3)), np.zeros((0, 3)), np.zeros(0), np.zeros(0))

    @classmethod
    def polyline(cls, points: np.ndarray, radii: np.ndarray | float) -> Tubes:
        pts = np.asarray(points, dtype=np.float64)
        rad = np.broadcast_to(np.asarray(radii, dtype=np.float64), (len(pts),))
        return cls(pts[:-1], pts[1:], rad[:-1].copy(), rad[1:].copy())

    def __len__(self) -> int:
        return len(self.r0)

    def concat(self, other: Tubes) -> Tubes:
        return Tubes(
            np.concatenate([self.p0, other.p0]),
            np.concatenate([self.p1, other.p1]),
            np.concatenate([self.r0, other.r0]),
            np.concatenate([self.r1, other.r1]),
        )

    def grown(self, dr: float) -> Tubes:
        """The same tubes with radii changed by ``dr`` mm (negative: an inner lumen)."""
        return Tubes(self.p0, self.p1, np.maximum(self.r0 + dr, 0.0), np.maximum(self.r1 + dr, 0.0))

    def scaled(self, factor: float) -> Tubes:
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


def _capsule_fraction(px, py, pz, abx, aby, abz, ra, rb, extent: tuple[float, float, float]):  # type: ignore[no-untyped-def]
    """Partial-volume occupancy of capsules a->b (radius ra->rb) at offsets p - a (all broadcastable).

    The voxel's extent is projected across the tube wall (along the direction from the axis) and
    across the tube (perpendicular to it and to the axis), so vessels thinner than a voxel appear
    faint rather than vanishing or aliasing.
    """
    ex, ey, ez = extent
    f32 = np.float32
    ll = abx * abx + aby * aby + abz * abz
    inv_ll = 1.0 / np.maximum(ll, f32(1e-12))
    t = np.clip((px * abx + py * aby + pz * abz) * inv_ll, f32(0.0), f32(1.0))
    inv_l = np.sqrt(inv_ll)
    axx, axy, axz = abx * inv_l, aby * inv_l, abz * inv_l
    dx, dy, dz = px - t * abx, py - t * aby, pz - t * abz
    d = np.sqrt(dx * dx + dy * dy + dz * dz)
    r = ra + t * (rb - ra)
    inv = 1.0 / np.maximum(d, f32(1e-6))
    gx, gy, gz = dx * inv, dy * inv, dz * inv
    e1 = np.maximum(np.abs(gx) * ex + np.abs(gy) * ey + np.abs(gz) * ez, f32(min(extent)))
    e2 = np.abs(axy * gz - axz * gy) * ex + np.abs(axz * gx - axx * gz) * ey + np.abs(axx * gy - axy * gx) * ez
    across = np.minimum(f32(1.0), f32(np.pi / 2) * r / np.maximum(e2, f32(1e-6)))
    return overlap_fraction(d, r, e1) * across


BATCH_MAX_VOXELS = 24 * 24 * 12


def render_tubes(grid: Grid, tubes: Tubes, out: np.ndarray | None = None, margin: float = 0.0) -> np.ndarray:
    """Partial-volume occupancy (0..1, float32) of the tubes on the grid, max-composited into ``out``.

    ``margin`` grows every radius (mm), e.g. for a dilated exclusion zone. Small tubes (the many
    thin branches of a vessel tree) are computed in batches of equal box size; large ones one by one.
    """
    if out is None:
        out = np.zeros(grid.shape, dtype=np.float32)
    if len(tubes) == 0:
        return out
    extent = tuple(float(v) for v in grid.extent)
    # how far past the radius a voxel can still overlap (its extent projected on the radial direction)
    pad = (np.asarray(extent) + float(np.linalg.norm(extent))) / 4.0 * 1.02 + 1e-3
    ra = tubes.r0 + margin
    rb = tubes.r1 + margin
    rmax = np.maximum(ra, rb)
    lo = np.minimum(tubes.p0, tubes.p1) - rmax[:, None] - pad[None, :]
    hi = np.maximum(tubes.p0, tubes.p1) + rmax[:, None] + pad[None, :]
    origin = np.array([grid.x0, grid.y0, grid.z0])
    step = np.array([grid.sx, grid.sy, grid.sz])
    size = np.array([grid.ni, grid.nj, grid.nk])
    a_idx = np.maximum(np.floor((lo - origin) / step).astype(np.int64), 0)
    b_idx = np.minimum(np.ceil((hi - origin) / step).astype(np.int64) + 1, size)
    dims = b_idx - a_idx
    valid = np.all(dims > 0, axis=1) & (rmax > 0)
    # bucket the small boxes by their size rounded up to 1, 2, 3, 4, 6, 8, 12, 16, 24... voxels
    nice = np.array([1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024])
    pow2 = nice[np.minimum(np.searchsorted(nice, dims), len(nice) - 1)]
    pow2 = np.minimum(np.maximum(pow2, dims), size[None, :])
    small = valid & (np.prod(pow2, axis=1) <= BATCH_MAX_VOXELS)
    flat_out = out.reshape(-1)
    X, Y, Z = grid.x, grid.y, grid.z
    f32 = np.float32
    keys = pow2[small]
    idx_small = np.flatnonzero(small)
    for key in np.unique(keys, axis=0):
        sel = idx_small[np.all(keys == key, axis=1)]
        bi, bj, bk = (int(v) for v in key)
        start = np.minimum(a_idx[sel], size[None, :] - key[None, :])  # keep the box inside the grid
        ii = start[:, 0, None] + np.arange(bi)[None, :]
        jj = start[:, 1, None] + np.arange(bj)[None, :]
        kk = start[:, 2, None] + np.arange(bk)[None, :]
        a = tubes.p0[sel].astype(np.float32)
        ab = (tubes.p1[sel] - tubes.p0[sel]).astype(np.float32)
        px = (X[ii] - a[:, 0, None])[:, None, None, :]
        py = (Y[jj] - a[:, 1, None])[:, None, :, None]
        pz = (Z[kk] - a[:, 2, None])[:, :, None, None]
        col = (slice(None), None, None, None)
        frac = _capsule_fraction(px, py, pz, ab[:, 0][col], ab[:, 1][col], ab[:, 2][col],
                                 ra[sel].astype(f32)[col], rb[sel].astype(f32)[col], extent)
        flat = (kk[:, :, None, None] * grid.nj + jj[:, None, :, None]) * grid.ni + ii[:, None, None, :]
        hit = frac > 0
        np.maximum.at(flat_out, flat[hit], frac[hit])
    for n in np.flatnonzero(valid & ~small):
        si, sj, sk = (slice(int(a_idx[n, c]), int(b_idx[n, c])) for c in range(3))
        a = tubes.p0[n]
        ab = tubes.p1[n] - a
        frac = _capsule_fraction(
            X[si][None, None, :] - f32(a[0]), Y[sj][None, :, None] - f32(a[1]), Z[sk][:, None, None] - f32(a[2]),
            f32(ab[0]), f32(ab[1]), f32(ab[2]), f32(ra[n]), f32(rb[n]), extent,
        )
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
