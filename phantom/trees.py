"""Branching pulmonary vessel and airway trees grown inside the lungs from the hila."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from phantom.grid import Grid, Tubes

MURRAY_EXPONENT = 2.6


@dataclass
class Tree:
    """A vessel tree's segments plus, for arteries, the accompanying bronchi."""

    vessels: Tubes
    airways: Tubes
    branch_points: np.ndarray
    """(n, 3) mm: where a segment splits (hard negatives for a nodule detector)."""


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-9)


def _perpendicular(d: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random unit vector perpendicular to each row of d (n, 3)."""
    r = rng.normal(size=d.shape)
    r -= (r * d).sum(-1, keepdims=True) * d
    return _unit(r)


def grow_tree(
    roots: np.ndarray,
    directions: np.ndarray,
    radii: np.ndarray,
    lung: np.ndarray,
    grid: Grid,
    rng: np.random.Generator,
    r_min: float,
    with_airways: bool,
    root_length: float = 18.0,
) -> Tree:
    """Grow trees breadth-first from ``roots`` (n, 3) along ``directions`` with start ``radii``.

    Each segment runs ``5..9`` radii; it is steered among random candidate directions to stay in
    ``lung`` (a bool mask on ``grid``), then splits asymmetrically (Murray's law) into two children
    at different angles in a plane that turns from one generation to the next. The first segment
    (hilum to lung) is not steered. Branches that cannot stay in the lung stop.
    """
    p = np.asarray(roots, dtype=np.float64)
    d = _unit(np.asarray(directions, dtype=np.float64))
    r = np.asarray(radii, dtype=np.float64)
    normal = _perpendicular(d, rng)
    offset = _perpendicular(d, rng)  # side on which the bronchus runs
    segs_p0, segs_p1, segs_r0, segs_r1, branch = [], [], [], [], []
    air_p0, air_p1, air_r0, air_r1 = [], [], [], []
    generation = 0
    n_candidates = 8
    while len(p) and generation < 40:
        n = len(p)
        length = np.maximum(r * rng.uniform(4.0, 7.5, n), 2.5)
        if generation == 0:
            length = np.full(n, root_length) * rng.uniform(0.8, 1.2, n)
            choice = np.ones(n, dtype=bool)
            dirs = d
        else:
            # candidates: the current direction, then perturbations of growing angle
            spread = np.linspace(0.0, 1.2, n_candidates)[None, :, None]
            pert = _unit(rng.normal(size=(n, n_candidates, 3)))
            cand = _unit(d[:, None, :] + spread * pert)
            ends = p[:, None, :] + cand * length[:, None, None]
            mids = p[:, None, :] + cand * (0.5 * length)[:, None, None]
            ahead = p[:, None, :] + cand * (1.8 * length)[:, None, None]
            ok = grid.lookup(lung, ends) & grid.lookup(lung, mids)
            score = ok * 2.0 + grid.lookup(lung, ahead) * ok
            best = np.argmax(score - 0.01 * np.arange(n_candidates)[None, :], axis=1)
            choice = ok[np.arange(n), best]
            dirs = cand[np.arange(n), best]
        p, dirs, r, length, normal, offset = (a[choice] for a in (p, dirs, r, length, normal, offset))
        if not len(p):
            break
        end = p + dirs * length[:, None]
        taper = r * 0.96
        segs_p0.append(p), segs_p1.append(end), segs_r0.append(r), segs_r1.append(taper)
        # keep the normal and bronchus offset perpendicular to the new direction
        normal = _unit(normal - (normal * dirs).sum(-1, keepdims=True) * dirs)
        offset = _unit(offset - (offset * dirs).sum(-1, keepdims=True) * dirs)
        if with_airways:
            big = r >= 1.0
            rb = 0.8 * r[big]
            shift = offset[big] * (r[big] + rb + 0.4)[:, None]
            air_p0.append(p[big] + shift), air_p1.append(end[big] + shift)
            air_r0.append(rb), air_r1.append(rb * 0.93)
        # split (Murray: r^k = r1^k + r2^k); stop when even the larger child is too thin
        frac = rng.uniform(0.08, 0.5, len(p))
        r_small = taper * frac ** (1.0 / MURRAY_EXPONENT)
        r_big = taper * (1.0 - frac) ** (1.0 / MURRAY_EXPONENT)
        alive = r_big >= r_min
        if not alive.any():
            break
        branch.append(end[alive])
        # rotate the branching plane ~90 degrees about the axis for the next generation
        side = np.cross(dirs, normal)
        ang_b = np.radians(rng.uniform(10.0, 30.0, len(p)))[:, None]
        ang_s = np.radians(rng.uniform(35.0, 70.0, len(p)))[:, None]
        d_big = _unit(np.cos(ang_b) * dirs + np.sin(ang_b) * normal)
        d_small = _unit(np.cos(ang_s) * dirs - np.sin(ang_s) * normal)
        keep_small = alive & (r_small >= r_min)
        p = np.concatenate([end[alive], end[keep_small]])
        d = np.concatenate([d_big[alive], d_small[keep_small]])
        r = np.concatenate([r_big[alive], r_small[keep_small]])
        normal = np.concatenate([side[alive], side[keep_small]])
        offset = np.concatenate([offset[alive], offset[keep_small]])
        generation += 1

    def cat(parts: list[np.ndarray], width: int) -> np.ndarray:
        return np.concatenate(parts) if parts else np.zeros((0, width) if width else 0)

    vessels = Tubes(cat(segs_p0, 3), cat(segs_p1, 3), cat(segs_r0, 0), cat(segs_r1, 0))
    airways = Tubes(cat(air_p0, 3), cat(air_p1, 3), cat(air_r0, 0), cat(air_r1, 0))
    return Tree(vessels=vessels, airways=airways, branch_points=cat(branch, 3))


def root_directions(side: str, kind: str, rng: np.random.Generator) -> np.ndarray:
    """Lobar root directions (unit vectors) for one lung: up, lateral, down, front and back."""
    s = -1.0 if side == "right" else 1.0
    base = [
        [0.35 * s, 0.1, 1.0],  # apical
        [0.5 * s, -0.5, 0.9],  # anterior apical
        [0.8 * s, -0.6, 0.5],  # anterior upper
        [0.7 * s, 0.6, 0.6],  # posterior upper
        [1.0 * s, -0.5, -0.3],  # middle / lingula
        [0.8 * s, -0.9, -0.2],  # medial middle
        [0.6 * s, -0.3, -1.0],  # anterior basal
        [0.6 * s, 0.8, -0.8],  # posterior basal
        [0.9 * s, 0.3, -0.5],  # lateral basal
        [0.2 * s, 0.9, -0.6],  # superior segment of the lower lobe
    ]
    if kind == "vein":
        base = [[v[0], v[1], v[2] - 0.4] for v in base[1:]]
    dirs = np.asarray(base, dtype=np.float64) + rng.normal(scale=0.15, size=(len(base), 3))
    return _unit(dirs)
