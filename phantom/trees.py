"""Branching pulmonary vessel and airway trees grown inside the lungs from the hila."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from phantom.grid import Grid, Tubes

MURRAY_EXPONENT = 3.0


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


def spread_targets(points: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` of ``points`` (m, 3) spread evenly (farthest-point sampling from a random start)."""
    if len(points) > 4000:
        points = points[rng.choice(len(points), 4000, replace=False)]
    chosen = [int(rng.integers(len(points)))]
    dist = ((points - points[chosen[0]]) ** 2).sum(axis=1)
    for _ in range(n - 1):
        chosen.append(int(np.argmax(dist)))
        dist = np.minimum(dist, ((points - points[chosen[-1]]) ** 2).sum(axis=1))
    return points[chosen]


def grow_tree(
    root: np.ndarray,
    targets: np.ndarray,
    radii: np.ndarray,
    lung: np.ndarray,
    grid: Grid,
    rng: np.random.Generator,
    r_min: float,
    with_airways: bool,
) -> Tree:
    """Grow one tree from ``root`` (3,) with a trunk towards each of ``targets`` (n, 3).

    Each trunk first runs straight to the lung (not steered), then every segment runs 4-7.5 radii,
    steered among random candidate directions to stay in ``lung`` (a bool mask on ``grid``), and
    splits asymmetrically (Murray's law) into two children at different angles in a plane that
    turns from one generation to the next. The larger child keeps being pulled towards its trunk's
    target, so the branches reach every part of the lung; branches that cannot stay in it stop.
    """
    targets = np.asarray(targets, dtype=np.float64)
    n0 = len(targets)
    to_target = targets - root[None]
    dist = np.linalg.norm(to_target, axis=1)
    d = _unit(to_target)
    # first segment: from the hilum until just inside the lung along the line to the target
    steps = np.linspace(0.0, 1.0, 40)[None, :, None]
    line = root[None, None, :] + steps * to_target[:, None, :]
    inside = grid.lookup(lung, line)
    first_in = np.where(inside.any(axis=1), inside.argmax(axis=1), 10)
    root_len = np.maximum(dist * steps[0, :, 0][first_in] + 4.0, 8.0)
    # a segmental trunk runs most of the way to its target when that stretch stays in the lung
    frac = steps[0, :, 0]
    stretch = (frac[None, :] >= frac[first_in][:, None] + 0.05) & (frac[None, :] <= 0.55)
    clear = np.all(inside | ~stretch, axis=1) & (frac[first_in] < 0.45)
    root_len = np.where(clear, np.maximum(root_len, 0.55 * dist), root_len)
    p = np.repeat(root[None].astype(np.float64), n0, axis=0)
    r = np.asarray(radii, dtype=np.float64)
    goal = targets.copy()
    pull = np.full(n0, 0.6)
    normal = _perpendicular(d, rng)
    offset = _perpendicular(d, rng)  # side on which the bronchus runs
    segs_p0, segs_p1, segs_r0, segs_r1, branch = [], [], [], [], []
    air_p0, air_p1, air_r0, air_r1 = [], [], [], []
    n_candidates = 8
    for generation in range(60):
        if not len(p):
            break
        n = len(p)
        if generation == 0:
            length = root_len
            choice = np.ones(n, dtype=bool)
            dirs = d
        else:
            length = np.maximum(r * rng.uniform(4.0, 7.5, n), 2.5)
            spread = np.linspace(0.0, 1.2, n_candidates)[None, :, None]
            cand = _unit(d[:, None, :] + spread * _unit(rng.normal(size=(n, n_candidates, 3))))
            ends = p[:, None, :] + cand * length[:, None, None]
            mids = p[:, None, :] + cand * (0.5 * length)[:, None, None]
            ahead = p[:, None, :] + cand * (1.8 * length)[:, None, None]
            ok = grid.lookup(lung, ends) & grid.lookup(lung, mids)
            score = ok * (2.0 + grid.lookup(lung, ahead)) - 0.01 * np.arange(n_candidates)[None, :]
            best = np.argmax(score, axis=1)
            choice = ok[np.arange(n), best]
            dirs = cand[np.arange(n), best]
        p, dirs, r, length, normal, offset, goal, pull = (
            a[choice] for a in (p, dirs, r, length, normal, offset, goal, pull)
        )
        if not len(p):
            break
        end = p + dirs * length[:, None]
        taper = r * (0.85 if generation == 0 else 0.96)
        segs_p0.append(p), segs_p1.append(end), segs_r0.append(r), segs_r1.append(taper)
        normal = _unit(normal - (normal * dirs).sum(-1, keepdims=True) * dirs)
        offset = _unit(offset - (offset * dirs).sum(-1, keepdims=True) * dirs)
        if with_airways and generation > 0:  # bronchi run beside the arteries, inside the lung only
            rb = 0.8 * r
            shift = offset * (r + rb + 0.4)[:, None]
            a0, a1 = p + shift, end + shift
            inside = grid.lookup(lung, a0) & grid.lookup(lung, 0.5 * (a0 + a1)) & grid.lookup(lung, a1)
            big = (r >= 1.0) & inside
            air_p0.append(a0[big]), air_p1.append(a1[big])
            air_r0.append(rb[big]), air_r1.append(rb[big] * 0.93)
        # split (Murray: r^k = r1^k + r2^k); stop when even the larger child is too thin
        frac = rng.uniform(0.08, 0.5, len(p))
        r_small = taper * frac ** (1.0 / MURRAY_EXPONENT)
        r_big = taper * (1.0 - frac) ** (1.0 / MURRAY_EXPONENT)
        alive = r_big >= r_min
        if not alive.any():
            break
        branch.append(end[alive])
        side = np.cross(dirs, normal)
        ang_b = np.radians(rng.uniform(10.0, 30.0, len(p)))[:, None]
        ang_s = np.radians(rng.uniform(35.0, 70.0, len(p)))[:, None]
        d_big = _unit(np.cos(ang_b) * dirs + np.sin(ang_b) * normal)
        towards = goal - end
        far = np.linalg.norm(towards, axis=1) > 15.0
        d_big = _unit(d_big + (pull * far)[:, None] * _unit(towards))
        d_small = _unit(np.cos(ang_s) * dirs - np.sin(ang_s) * normal)
        keep_small = alive & (r_small >= r_min)
        p = np.concatenate([end[alive], end[keep_small]])
        d = np.concatenate([d_big[alive], d_small[keep_small]])
        r = np.concatenate([r_big[alive], r_small[keep_small]])
        normal = np.concatenate([side[alive], side[keep_small]])
        offset = np.concatenate([offset[alive], offset[keep_small]])
        goal = np.concatenate([goal[alive], end[keep_small] + 100.0 * d_small[keep_small]])
        pull = np.concatenate([pull[alive] * 0.9, np.zeros(int(keep_small.sum()))])

    def cat(parts: list[np.ndarray], width: int) -> np.ndarray:
        return np.concatenate(parts) if parts else np.zeros((0, width) if width else 0)

    vessels = Tubes(cat(segs_p0, 3), cat(segs_p1, 3), cat(segs_r0, 0), cat(segs_r1, 0))
    airways = Tubes(cat(air_p0, 3), cat(air_p1, 3), cat(air_r0, 0), cat(air_r1, 0))
    return Tree(vessels=vessels, airways=airways, branch_points=cat(branch, 3))
