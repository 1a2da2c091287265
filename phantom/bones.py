"""The skeleton of the chest (spine, ribs with cartilage, sternum, clavicles, scapulae) and the table."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from phantom.anatomy import CARTILAGE, CSF, DISC, Anatomy
from phantom.grid import Grid, Tubes, paint_tubes, tube_fraction

CORTEX_MM = 1.3


@dataclass
class Skeleton:
    """Bone tubes in mm (each painted as a cortical shell around marrow) and rib-end positions."""

    ribs: Tubes
    cartilage: Tubes
    clavicles: Tubes
    rib_ends: np.ndarray
    """(n, 3) mm: anterior ends of the bony ribs (hard negatives for a nodule detector)."""


def _rib_polyline(anat: Anatomy, n: int, side: float) -> tuple[np.ndarray, np.ndarray, int]:
    """Points along rib ``n`` (0 = first rib) on one side: bony part then costal cartilage."""
    z_head = anat.apex + 8.0 - n * anat.vert_height * 0.98
    drop = anat.rib_drop[n] * (0.55 if n == 0 else 1.0)
    theta_end = 2.55 if n < 7 else (2.1 - 0.15 * (n - 7) if n < 10 else 1.45)
    theta_cart = 2.95 if n < 7 else (2.6 if n < 10 else theta_end)
    theta = np.linspace(0.3, theta_cart, 28)
    t = np.clip((theta - 0.3) / (2.95 - 0.3), 0.0, 1.0)
    z = z_head - drop * (0.5 * t + 0.5 * t**2)  # posterior part slopes down laterally, anterior part medially
    # radius of the cavity at that height (apical ribs hug the narrow apex)
    top = np.clip((z - (anat.apex - 85.0)) / 95.0, 0.0, 0.95)
    narrow = np.sqrt(1.0 - top**2)
    ra = (anat.cav_a + 6.0) * (0.55 + 0.45 * narrow)
    rp = anat.cav_post + 6.0
    ra_y = anat.cav_ant + 6.0
    x = side * ra * np.sin(theta)
    y = np.where(np.cos(theta) > 0, rp * np.cos(theta), ra_y * np.cos(theta) * (0.6 + 0.4 * narrow))
    pts = np.stack([x, y, z], axis=1)
    n_bone = int(np.searchsorted(theta, theta_end))
    return pts, theta, max(n_bone, 2)


def build_skeleton(anat: Anatomy, rng: np.random.Generator) -> Skeleton:
    ribs, cart = Tubes.empty(), Tubes.empty()
    ends = []
    for n in range(12):
        for side in (-1.0, 1.0):
            pts, theta, nb = _rib_polyline(anat, n, side)
            r = anat.rib_radius * (0.8 if n == 0 or n >= 10 else 1.0)
            ribs = ribs.concat(Tubes.polyline(pts[:nb], r))
            ends.append(pts[nb - 1])
            if nb < len(pts) - 1:
                cart = cart.concat(Tubes.polyline(pts[nb - 1 :], r * 0.85))
    za = anat.apex - 40.0
    clav = Tubes.empty()
    for side in (-1.0, 1.0):
        clav = clav.concat(
            Tubes.polyline(
                [[side * 18.0, -anat.cav_ant - 8.0, za], [side * 70.0, -anat.cav_ant + 5.0, za + 22.0],
                 [side * (anat.a - 22.0), 0.0, za + 32.0]],
                rng.uniform(5.5, 7.0),
            )
        )
    return Skeleton(ribs=ribs, cartilage=cart, clavicles=clav, rib_ends=np.asarray(ends))


def paint_bone_tubes(grid: Grid, hu: np.ndarray, tubes: Tubes, cortical: float, marrow: float) -> np.ndarray | None:
    """Cortical shell + marrow for a set of tubes; returns the (box, occupancy) of the bone."""
    res = tube_fraction(grid, tubes)
    if res is None:
        return None
    box, outer = res
    view = hu[box]
    view += outer * (cortical - view)
    inner = tube_fraction(grid, tubes.grown(-CORTEX_MM))
    if inner is not None:
        ibox, frac = inner
        sub = hu[ibox]
        sub += frac * (marrow - sub)
    mask = np.zeros(grid.shape, dtype=bool)
    mask[box] = outer > 0.5
    return mask


def _box2d(grid: Grid, x_lo: float, x_hi: float, y_lo: float, y_hi: float) -> tuple[slice, slice] | None:
    box = grid.index_box(np.array([x_lo, y_lo, grid.z0]), np.array([x_hi, y_hi, grid.z0]))
    return None if box is None else (box[1], box[2])


def paint_spine(grid: Grid, hu: np.ndarray, anat: Anatomy) -> np.ndarray:
    """Vertebral bodies with discs, spinal canal with posterior arch, spinous and transverse processes."""
    mask = np.zeros(grid.shape, dtype=bool)
    yv = anat.y_vertebra
    yc = yv + 14.0 + 10.0
    box = _box2d(grid, -40.0, 40.0, yv - 18.0, yc + 42.0)
    if box is None:
        return mask
    sj, si = box
    X, Y = grid.x[si][None, :], grid.y[sj][:, None]
    body_outer = (X / 16.5) ** 2 + ((Y - yv) / 14.0) ** 2 <= 1.0
    body_inner = (X / 15.0) ** 2 + ((Y - yv) / 12.5) ** 2 <= 1.0
    rc = np.sqrt(X**2 + (Y - yc) ** 2)
    canal = rc <= 8.0
    cord = rc <= 4.5
    ring = (rc > 8.0) & (rc <= 13.0) & (Y > yc - 8.0)
    pedicle = (np.abs(np.abs(X) - 10.0) < 3.5) & (Y > yv + 8.0) & (Y < yc)
    ax = np.abs(X)
    transverse = (np.abs(Y - (yc + 0.3 * (ax - 8.0))) < 4.0) & (ax > 8.0) & (ax < 32.0)
    phase = np.mod(grid.z - anat.vert_phase, anat.vert_height)
    cortical = np.float32(anat.cortical_hu * 0.85)
    posterior_hu = np.float32(0.5 * (anat.cortical_hu + anat.marrow_hu))
    for k in range(grid.nk):
        ph = phase[k]
        disc = ph < 5.5
        arch = 7.0 < ph < 20.0
        sl = hu[k, sj, si]
        m = np.zeros(sl.shape, dtype=bool)
        if disc:
            sl[body_outer] = DISC
        else:
            sl[body_outer] = cortical
            sl[body_inner] = anat.marrow_hu
            m |= body_outer
        posterior = pedicle | ring
        if arch:
            spinous = (np.abs(X) < 2.5) & (Y > yc + 9.0) & (Y < yc + 34.0 - 0.5 * ph)
            posterior = posterior | spinous | (transverse if ph < 15.0 else False)
        sl[posterior] = posterior_hu  # thin cortex around marrow, averaged
        m |= posterior
        sl[canal] = CSF
        sl[cord] = CSF + 20.0
        mask[k, sj, si] = m
    return mask


def paint_sternum_scapulae(grid: Grid, hu: np.ndarray, anat: Anatomy, body: np.ndarray) -> np.ndarray:
    """The sternum (front, midline) and the two scapulae (flat plates behind the posterior ribs)."""
    bone = np.zeros(grid.shape, dtype=bool)
    y_st = -anat.cav_ant - 7.0
    z_lo, z_hi = 25.0, anat.apex - 35.0
    box = _box2d(grid, -26.0, 26.0, y_st - 8.0, y_st + 8.0)
    if box is not None:
        sj, si = box
        X, Y = grid.x[si][None, :], grid.y[sj][:, None]
        for k in np.flatnonzero((grid.z > z_lo) & (grid.z < z_hi)):
            hw = 24.0 if grid.z[k] > z_hi - 45.0 else 14.0
            outer = (X / hw) ** 2 + ((Y - y_st) / 6.0) ** 2 <= 1.0
            inner = (X / (hw - 1.5)) ** 2 + ((Y - y_st) / 4.5) ** 2 <= 1.0
            sl = hu[k, sj, si]
            sl[outer] = anat.cortical_hu * 0.8
            sl[inner] = anat.marrow_hu
            bone[k, sj, si] = outer
    # scapula: a thin curved plate about 20 mm behind the ribs, triangular (narrows downwards)
    zt = anat.apex - 10.0
    height = 150.0
    ra, rp = anat.cav_a + 28.0, anat.cav_post + 22.0
    box = _box2d(grid, -ra * 1.15, ra * 1.15, 0.0, rp * 1.15)
    if box is not None:
        sj, si = box
        X, Y = grid.x[si][None, :], grid.y[sj][:, None]
        rho = np.sqrt((X / ra) ** 2 + (Y / rp) ** 2)
        ang = np.arctan2(np.abs(X), np.maximum(Y, 1e-3))
        plate = np.abs(rho - 1.0) < 0.025
        for k in np.flatnonzero((grid.z < zt) & (grid.z > zt - height)):
            tz = (zt - grid.z[k]) / height
            lat = (ang > 0.45 + 0.45 * tz) & (ang < 1.3 - 0.25 * tz)
            sc = plate & lat
            if abs(grid.z[k] - (zt - 25.0)) < 4.0:
                sc = sc | ((rho > 0.98) & (rho < 1.12) & (ang > 0.45) & (ang < 1.25))
            sc &= body[k, sj, si]
            hu[k, sj, si][sc] = anat.cortical_hu * 0.75
            bone[k, sj, si] |= sc
    return bone


def paint_table(grid: Grid, hu: np.ndarray, anat: Anatomy) -> None:
    """A curved carbon-fibre table top under the patient's back: two thin shells around foam."""
    X, Y = grid.x[None, :], grid.y[:, None]
    y_top = anat.b_post + 2.0 + 0.0004 * X**2
    depth = Y - y_top
    inside = (np.abs(X) < 230.0) & (depth >= 0.0) & (depth < 28.0)
    shell = inside & ((depth < 2.0) | (depth > 26.0))
    plane = np.where(shell, 250.0, np.where(inside, -900.0, np.nan)).astype(np.float32)
    sel = np.broadcast_to(~np.isnan(plane), grid.shape)
    hu[sel] = np.broadcast_to(plane, grid.shape)[sel]


def paint_skeleton(grid: Grid, hu: np.ndarray, anat: Anatomy, skel: Skeleton, body: np.ndarray) -> np.ndarray:
    """Paint all bones; returns the bone mask."""
    bone = paint_spine(grid, hu, anat)
    bone |= paint_sternum_scapulae(grid, hu, anat, body)
    paint_tubes(grid, hu, skel.cartilage, CARTILAGE)
    for tubes in (skel.ribs, skel.clavicles):
        m = paint_bone_tubes(grid, hu, tubes, anat.cortical_hu, anat.marrow_hu)
        if m is not None:
            bone |= m
    return bone
