"""``make_chest_ct``: a synthetic chest CT with nodules and their ground truth."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from phantom.anatomy import AIR, BLOOD, Anatomy
from phantom.bones import Skeleton, build_skeleton, paint_skeleton, paint_table
from phantom.grid import Grid, Tubes, overlap_fraction, paint_tubes
from phantom.model import ChestParams, Nodule, Phantom
from phantom.noise import add_ct_blur_and_noise, smooth_field
from phantom.nodules import NodulePlan, plan_nodules, render_nodule
from phantom.trees import Tree, grow_tree, spread_targets

PLAN_SPACING_MM = 3.0
IMAGE_CENTRE_Y_MM = 12.0  # the body sits a little anterior of the image centre (table below)
HU_MIN, HU_MAX = -1024.0, 3071.0


@dataclass
class Patient:
    """Everything about one synthetic patient that does not depend on the sampling grid."""

    anatomy: Anatomy
    vessels: dict[str, Tubes]
    trees: list[Tree]
    skeleton: Skeleton
    plan_grid: Grid
    plan_lung: np.ndarray


def _streams(seed: int) -> dict[str, np.random.Generator]:
    """Independent random streams, so that e.g. the nodule count never changes the anatomy."""
    names = ("anatomy", "trees", "skeleton", "scan", "nodules", "texture", "noise")
    seqs = np.random.SeedSequence(seed).spawn(len(names))
    return {n: np.random.default_rng(s) for n, s in zip(names, seqs)}


def make_patient(seed: int, vessel_min_radius_mm: float = 0.5) -> Patient:
    """Draw a patient's anatomy, vessel and airway trees and skeleton (planned on a 3 mm grid)."""
    rng = _streams(seed)
    anat = Anatomy.draw(rng["anatomy"])
    vessels = anat.great_vessels()
    s = PLAN_SPACING_MM
    x0 = -(anat.a + 6.0)
    y0 = -(anat.b_ant + 6.0)
    z0 = anat.z_bottom - 12.0
    plan = Grid(
        x0=x0, y0=y0, z0=z0, sx=s, sy=s, sz=s,
        ni=int((2 * anat.a + 12.0) / s) + 1,
        nj=int((anat.b_ant + anat.b_post + 12.0) / s) + 1,
        nk=int((anat.apex + 12.0 - z0) / s) + 1,
    )
    lung = anat.regions(plan, vessels)["lung"]
    kji = np.argwhere(lung)
    pts = np.column_stack([plan.x[kji[:, 2]], plan.y[kji[:, 1]], plan.z[kji[:, 0]]]).astype(np.float64)
    trees = []
    for side, on_side in (("right", pts[:, 0] < 0), ("left", pts[:, 0] >= 0)):
        for kind, root, n_roots in (("artery", anat.hila[side], 20), ("vein", anat.atria[side], 12)):
            targets = spread_targets(pts[on_side], n_roots, rng["trees"])
            radii = rng["trees"].uniform(2.4, 3.6, n_roots) * (1.0 if kind == "artery" else 0.95)
            trees.append(grow_tree(root, targets, radii, lung, plan, rng["trees"], r_min=vessel_min_radius_mm,
                                   with_airways=(kind == "artery")))
    skel = build_skeleton(anat, rng["skeleton"])
    return Patient(anat, vessels, trees, skel, plan, lung)


def scan_grid(params: ChestParams, anat: Anatomy, rng: np.random.Generator) -> Grid:
    rows, cols = params.matrix
    sy, sx = params.spacing_rc
    sz = params.slice_spacing
    zc = params.z_center if params.z_center is not None else anat.lung_center_z + rng.uniform(-10.0, 10.0)
    return Grid(
        x0=-(cols - 1) / 2 * sx,
        y0=IMAGE_CENTRE_Y_MM - (rows - 1) / 2 * sy,
        z0=zc - (params.n_slices - 1) / 2 * sz,
        sx=sx, sy=sy, sz=sz, ni=cols, nj=rows, nk=params.n_slices,
        thickness=params.thickness,
    )


def _nodule_truth(plan: NodulePlan, grid: Grid, anat: Anatomy) -> Nodule:
    c = plan.center
    kji = ((c[2] - grid.z0) / grid.sz, (c[1] - grid.y0) / grid.sy, (c[0] - grid.x0) / grid.sx)
    return Nodule(
        kind=plan.kind,
        center_mm=(float(c[0]), float(c[1]), float(c[2])),
        center_voxel=tuple(float(v) for v in kji),  # type: ignore[arg-type]
        diameter_mm=2.0 * plan.radius,
        hu=plan.hu,
        contrast_hu=float(plan.hu - anat.parenchyma_hu(c[1])),
        juxtapleural=plan.juxtapleural,
        side=plan.side,  # type: ignore[arg-type]
        solid_fraction=plan.solid_fraction,
        vessel_attached=plan.vessel_attached,
    )


def slice_profile(hu: np.ndarray, thickness_in_slices: float) -> None:
    """In place: soften the large masks' steps between slices (the slab each slice integrates).

    A 3-tap [w, 1 - 2w, w] filter along k, w = 1/8 per slice thickness (at most 0.3): a boundary
    between two slice centres then shows as a partial value in both, as in a real reconstruction.
    Tubes, nodules and bones are painted afterwards with their own exact slab overlap.
    """
    if hu.shape[0] < 3:
        return
    w = np.float32(min(0.3, 0.125 * thickness_in_slices))
    prev = hu[0].copy()  # the original of slice k - 1
    for k in range(1, hu.shape[0] - 1):
        cur = hu[k].copy()
        hu[k] *= 1 - 2 * w
        hu[k] += w * prev
        hu[k] += w * hu[k + 1]
        prev = cur


def paint_parenchyma(grid: Grid, hu: np.ndarray, lung: np.ndarray, anat: Anatomy, rng: np.random.Generator) -> None:
    """Lung density: the supine gravity gradient plus a smooth ~12 mm texture (within the lungs' box)."""
    if not lung.any():
        return
    ks, js, is_ = (np.flatnonzero(lung.any(axis=axes)) for axes in ((1, 2), (0, 2), (0, 1)))
    box = (slice(ks[0], ks[-1] + 1), slice(js[0], js[-1] + 1), slice(is_[0], is_[-1] + 1))
    texture = smooth_field(grid.x[box[2]], grid.y[box[1]], grid.z[box[0]], 12.0, rng)
    texture *= np.float32(12.0)
    texture += anat.parenchyma_hu(grid.y[box[1]]).astype(np.float32)[None, :, None]
    paint_fissures(grid, box, texture, anat)
    m = lung[box]
    hu[box][m] = texture[m]


FISSURE_MM = 0.6
FISSURE_HU = 0.0


def paint_fissures(grid: Grid, box: tuple[slice, slice, slice], hu_box: np.ndarray, anat: Anatomy) -> None:
    """Blend the interlobar fissures (0.6 mm pleural sheets, partial-volumed) into the lung box.

    Only the (slice, row) lines that the thin sheet can touch are computed.
    """
    x, y, z = (c.astype(np.float64) for c in (grid.x[box[2]], grid.y[box[1]], grid.z[box[0]]))
    ext = grid.extent
    major_right = None
    for side, n, offset, minor in anat.fissures():
        on_side = (x < 0) if side == "right" else (x >= 0)
        ax = n[0] * np.abs(x)
        e = float(abs(n[0]) * ext[0] + abs(n[1]) * ext[1] + abs(n[2]) * ext[2])
        d_kj = (n[1] * y)[None, :] + (n[2] * z - offset)[:, None]
        reach = 0.5 * (e + FISSURE_MM) + np.abs(ax).max()
        kk, jj = np.nonzero(np.abs(d_kj) < reach)
        if not len(kk):
            continue
        dist = d_kj[kk, jj][:, None] + ax[None, :]
        frac = overlap_fraction(np.abs(dist), FISSURE_MM / 2, e).astype(np.float32) * on_side[None, :]
        if minor and major_right is not None:
            n_m, off_m = major_right
            in_front = (n_m[0] * np.abs(x))[None, :] + (n_m[1] * y[jj] + n_m[2] * z[kk] - off_m)[:, None] > 0
            frac *= in_front
        if side == "right" and not minor:
            major_right = (n, offset)
        rows = hu_box[kk, jj, :]
        rows += frac * (np.float32(FISSURE_HU) - rows)
        hu_box[kk, jj, :] = rows


def make_chest_ct(params: ChestParams, seed: int | None = None) -> Phantom:
    """Generate a chest CT phantom (HU, float32 (k, j, i)) with its nodules' ground truth.

    ``seed`` overrides ``params.seed``. The same seed gives the same patient (anatomy, vessels,
    bones) on any matrix or spacing; nodules and noise come from their own random streams.
    """
    seed = params.seed if seed is None else int(seed)
    rng = _streams(seed)
    patient = make_patient(seed, params.vessel_min_radius_mm)
    anat = patient.anatomy
    grid = scan_grid(params, anat, rng["scan"])
    reg = anat.regions(grid, patient.vessels)
    if params.contrast_hu is not None:
        blood = BLOOD + float(params.contrast_hu)
    else:
        blood = BLOOD + (float(rng["scan"].uniform(100.0, 260.0)) if rng["scan"].random() < 0.4 else 0.0)
    hu = anat.paint_soft_tissue(grid, reg, patient.vessels, blood)

    lung = reg["lung"]
    paint_parenchyma(grid, hu, lung, anat, rng["texture"])
    slice_profile(hu, params.thickness / params.slice_spacing)

    vessel_mask = np.zeros(grid.shape, dtype=bool)
    airway_mask = np.zeros(grid.shape, dtype=bool)
    vessels = Tubes.empty()
    airways = Tubes.empty()
    for tree in patient.trees:
        vessels = vessels.concat(tree.vessels)
        airways = airways.concat(tree.airways)
    paint_tubes(grid, hu, vessels, blood, vessel_mask)
    paint_tubes(grid, hu, airways, 0.0, airway_mask)
    paint_tubes(grid, hu, airways.scaled(0.72), AIR)

    z_range = (grid.z0 - grid.sz / 2, grid.z0 + (grid.nk - 0.5) * grid.sz)
    plans = plan_nodules(params, anat, patient.plan_grid, patient.plan_lung, z_range, rng["nodules"], vessels)
    nodule_mask = np.zeros(grid.shape, dtype=bool)
    nodules = []
    for plan in plans:
        if render_nodule(grid, hu, nodule_mask, plan):
            nodules.append(_nodule_truth(plan, grid, anat))

    bone = paint_skeleton(grid, hu, anat, patient.skeleton, reg["body"])
    if params.table:
        paint_table(grid, hu, anat)

    sigma = float(params.noise_hu) if params.noise_hu is not None else float(rng["noise"].uniform(8.0, 30.0))
    psf = float(rng["noise"].uniform(0.3, 0.75))  # smooth to sharp reconstruction kernels
    sharpness = float(rng["noise"].uniform(0.6, 1.0))
    if params.noise:
        add_ct_blur_and_noise(hu, (grid.sy, grid.sx), sigma, reg["body"], rng["noise"], psf_mm=psf,
                              cutoff_scale=sharpness)
    np.clip(hu, HU_MIN, HU_MAX, out=hu)

    landmarks = {
        "branch_points": np.concatenate([t.branch_points for t in patient.trees]),
        "rib_ends": patient.skeleton.rib_ends,
    }
    return Phantom(
        hu=hu,
        nodule_mask=nodule_mask,
        nodules=nodules,
        spacing_zyx=(grid.sz, grid.sy, grid.sx),
        origin_xyz=(grid.x0, grid.y0, grid.z0),
        params=params,
        lung_mask=lung,
        body_mask=np.ascontiguousarray(reg["body"]),
        labels={"bone": bone, "vessels": vessel_mask, "airways": airway_mask, "heart": np.ascontiguousarray(reg["heart"])},
        landmarks=landmarks,
        noise_hu=sigma if params.noise else 0.0,
        blood_hu=blood,
        psf_mm=psf if params.noise else 0.0,
    )
