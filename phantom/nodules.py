"""Lung nodules: where they go (planned in mm) and how they look (rendered on the CT grid)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from phantom.anatomy import Anatomy
from phantom.grid import Grid, Tubes, overlap_fraction, render_tubes, subgrid
from phantom.model import ChestParams, NoduleKind, NoduleSpec


@dataclass(frozen=True)
class NodulePlan:
    """A nodule's design in mm, independent of the sampling grid."""

    kind: NoduleKind
    center: np.ndarray  # (x, y, z) mm
    radius: float
    hu: float
    ggo_hu: float
    solid_fraction: float
    juxtapleural: bool
    side: str
    lobes: np.ndarray  # (m, 4): offset xyz and radius of extra spheres (lobulated)
    bumps: np.ndarray  # (m, 4): unit direction and amplitude of surface undulations
    spicules: Tubes
    texture: np.ndarray  # (m, 5): wave vector xyz, phase, amplitude
    vessel_attached: bool = False


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def draw_hu(kind: NoduleKind, rng: np.random.Generator) -> tuple[float, float, float]:
    """(solid HU, ground-glass HU, solid core diameter fraction) for a nodule kind."""
    ggo = rng.uniform(-700.0, -420.0)
    if kind == "ground-glass":
        return ggo, ggo, 0.0
    solid = rng.uniform(-20.0, 60.0)
    if kind == "part-solid":
        return solid, ggo, rng.uniform(0.3, 0.65)
    return solid, ggo, 1.0


def design(
    kind: NoduleKind,
    center: np.ndarray,
    radius: float,
    side: str,
    juxtapleural: bool,
    rng: np.random.Generator,
    hu: float | None = None,
) -> NodulePlan:
    solid, ggo, frac = draw_hu(kind, rng)
    if hu is not None:
        solid = float(hu)
        if kind == "ground-glass":
            ggo = solid
    lobes = np.zeros((0, 4))
    if kind == "lobulated":  # a smaller core with 3-5 bulging lobes reaching ~the nominal radius
        m = int(rng.integers(3, 6))
        dirs = _unit(rng.normal(size=(m, 3)))
        rl = radius * rng.uniform(0.42, 0.58, m)
        lobes = np.column_stack([dirs * (radius - rl)[:, None] * rng.uniform(0.9, 1.1, (m, 1)), rl])
    amp = {"solid": 0.07, "part-solid": 0.1, "ground-glass": 0.15, "spiculated": 0.14, "lobulated": 0.08}[kind]
    bumps = np.column_stack([_unit(rng.normal(size=(6, 3))), rng.uniform(-amp, amp, 6)])
    spicules = Tubes.empty()
    if kind == "spiculated":
        m = int(rng.integers(12, 25))
        dirs = _unit(rng.normal(size=(m, 3)) * [1.0, 1.0, 0.6])  # thin slices show in-plane ones best
        length = radius * rng.uniform(0.6, 1.6, m) + 3.0
        thick = rng.uniform(0.6, 1.2, m)
        spicules = Tubes(center + dirs * 0.7 * radius, center + dirs * (radius + length)[:, None], thick, thick * 0.25)
    wave = _unit(rng.normal(size=(6, 3))) * (2 * np.pi / rng.uniform(2.5, 6.0, (6, 1)))
    tex_amp = 35.0 if kind in ("ground-glass", "part-solid") else 8.0
    texture = np.column_stack([wave, rng.uniform(0, 2 * np.pi, 6), np.full(6, tex_amp / np.sqrt(3))])
    return NodulePlan(kind, np.asarray(center, float), float(radius), solid, ggo, frac, juxtapleural, side,
                      lobes, bumps, spicules, texture)


def plan_nodules(
    params: ChestParams,
    anat: Anatomy,
    plan_grid: Grid,
    lung: np.ndarray,
    z_range: tuple[float, float],
    rng: np.random.Generator,
    vessels: Tubes | None = None,
) -> list[NodulePlan]:
    """Place the requested and the random nodules inside the scanned lungs, not overlapping.

    The slice of a random nodule is uniform over the scanned lung heights (not proportional to lung
    volume), so a slice's position or lung area says little about whether it holds a nodule. A
    share (``params.vessel_attached_fraction``) of the random ones sits on a small vessel, so that
    nodule and vessel cross-sections touch and look alike.
    """
    anchors = np.zeros((0, 3))
    if vessels is not None and len(vessels):
        r = vessels.r0
        sel = (r > 0.8) & (r < 3.0)
        t = rng.uniform(0.0, 1.0, (int(sel.sum()), 1))
        anchors = vessels.p0[sel] + t * (vessels.p1[sel] - vessels.p0[sel])
    X = plan_grid.xyz()[0]
    sides = {"right": lung & (X < 0), "left": lung & (X >= 0)}
    # chessboard distance never exceeds the Euclidean one: "this far inside" stays true
    dist = {s: ndimage.distance_transform_cdt(m, metric="chessboard").astype(np.float32) * plan_grid.sz
            for s, m in sides.items()}
    z = plan_grid.z
    placed: list[NodulePlan] = []
    requests: list[tuple[NoduleSpec | None, NoduleKind]] = [(spec, spec.kind) for spec in params.nodules]
    for _ in range(params.nodule_count(rng)):
        requests.append((None, params.nodule_kinds[int(rng.integers(len(params.nodule_kinds)))]))
    for spec, kind in requests:
        for _attempt in range(60):
            if spec is not None:
                radius, side, jux = spec.diameter_mm / 2, spec.side, spec.juxtapleural
            else:
                lo, hi = params.nodule_diameter_mm
                radius = 0.5 * float(np.exp(rng.uniform(np.log(lo), np.log(hi))))
                side = "right" if rng.random() < 0.55 else "left"
                jux = bool(rng.random() < params.juxtapleural_fraction)
            d = dist[side]
            lo_z, hi_z = z_range[0] + radius, z_range[1] - radius
            rows = np.flatnonzero((z >= lo_z) & (z <= hi_z) & (d.max(axis=(1, 2)) > radius + 2.0))
            if not len(rows):
                break
            if spec is not None:
                k = rows[int(np.clip(round(spec.height * (len(rows) - 1)), 0, len(rows) - 1))]
                k = int(np.clip(k + rng.integers(-1, 2), rows[0], rows[-1]))
            else:
                k = int(rows[rng.integers(len(rows))])
            attached = spec is None and not jux and rng.random() < params.vessel_attached_fraction
            if jux:
                cand = np.argwhere((d[k] > 0) & (d[k] <= plan_grid.sz * 1.01))
            else:
                cand = np.argwhere(d[k] > radius + 1.5)
            if attached:  # on a vessel crossing this slab, deep enough in the lung
                near = anchors[np.abs(anchors[:, 2] - z[k]) < plan_grid.sz]
                jj = np.rint((near[:, 1] - plan_grid.y0) / plan_grid.sy).astype(int)
                ii = np.rint((near[:, 0] - plan_grid.x0) / plan_grid.sx).astype(int)
                inside = (jj >= 0) & (jj < plan_grid.nj) & (ii >= 0) & (ii < plan_grid.ni)
                near, jj, ii = near[inside], jj[inside], ii[inside]
                near = near[d[k][jj, ii] > radius + 1.5]
                if not len(near):
                    continue
                axis_pt = near[rng.integers(len(near))]
                off = rng.normal(size=3)
                center = axis_pt + off / np.linalg.norm(off) * rng.uniform(0.0, 0.6 * radius)
                center[2] = np.clip(center[2], lo_z, hi_z)
            elif not len(cand):
                continue
            else:
                j, i = cand[rng.integers(len(cand))]
                jitter = rng.uniform(-0.5, 0.5, 3) * [plan_grid.sx, plan_grid.sy, plan_grid.sz]
                center = np.array([plan_grid.x[i], plan_grid.y[j], z[k]], dtype=np.float64) + jitter
            if any(np.linalg.norm(center - p.center) < radius + p.radius + 5.0 for p in placed):
                continue
            plan = design(kind, center, radius, side, jux, rng, spec.hu if spec else None)
            placed.append(dataclasses.replace(plan, vessel_attached=attached))
            break
    return placed


def _radius_field(plan: NodulePlan, u: np.ndarray) -> np.ndarray:
    """Direction-dependent radius: a sphere with a few smooth bumps."""
    r = np.full(u.shape[:-1], plan.radius, dtype=np.float32)
    for b in plan.bumps:
        r += plan.radius * b[3] * np.cos(np.pi * (u @ b[:3].astype(np.float32)))
    return r


def _ball(sub: Grid, center: np.ndarray, radius: float, plan: NodulePlan | None) -> np.ndarray:
    X, Y, Z = sub.xyz()
    dx, dy, dz = X - center[0], Y - center[1], Z - center[2]
    d = np.sqrt(dx * dx + dy * dy + dz * dz)
    u = np.stack(np.broadcast_arrays(dx, dy, dz), axis=-1) / np.maximum(d, 1e-6)[..., None]
    e = np.abs(u) @ sub.extent.astype(np.float32)
    e = np.maximum(e, sub.extent.min())
    r = radius if plan is None else _radius_field(plan, u) * (radius / plan.radius)
    return overlap_fraction(d, r, e).astype(np.float32)


def render_nodule(grid: Grid, hu: np.ndarray, mask: np.ndarray, plan: NodulePlan) -> bool:
    """Blend one nodule into ``hu`` and mark it in ``mask``; False if it misses the grid."""
    reach = plan.radius * 1.3 + 2.0
    if len(plan.spicules):
        reach = max(reach, float(np.abs(plan.spicules.p1 - plan.center).max()) + 1.0)
    box = grid.index_box(plan.center - reach - grid.extent.max(), plan.center + reach + grid.extent.max())
    if box is None:
        return False
    sub = subgrid(grid, box)
    core = 0.75 if len(plan.lobes) else 1.0
    body = _ball(sub, plan.center, plan.radius * core, plan)
    for lobe in plan.lobes:
        np.maximum(body, _ball(sub, plan.center + lobe[:3], lobe[3], None), out=body)
    X, Y, Z = sub.xyz()
    tex = np.zeros(body.shape, dtype=np.float32)
    for w in plan.texture:
        tex += w[4] * np.cos(w[0] * (X - plan.center[0]) + w[1] * (Y - plan.center[1]) + w[2] * (Z - plan.center[2]) + w[3])
    view = hu[box]
    outer_hu = plan.ggo_hu if plan.kind in ("ground-glass", "part-solid") else plan.hu
    view += body * (outer_hu + tex - view)
    if plan.kind == "part-solid":
        core = _ball(sub, plan.center, plan.radius * plan.solid_fraction, plan)
        view += core * (plan.hu + 0.25 * tex - view)
    if len(plan.spicules):
        spic = render_tubes(sub, plan.spicules)
        view += spic * (plan.hu - view) * (1.0 - body)
    inside = body >= 0.5
    if not inside.any():  # smaller than a voxel: its most occupied voxel stands for it
        inside = body >= body.max()
    if body.max() <= 0.0:
        return False
    mask[box] |= inside
    return True
