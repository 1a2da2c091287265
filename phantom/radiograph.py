"""DRR-style chest radiographs: the phantom's attenuation projected front to back, as a PA film.

Image formation: HU -> linear attenuation at an effective energy of ~60 keV (bone attenuating
relatively more than at CT energies), Beer-Lambert line integrals along the antero-posterior axis,
scatter (a broad blur of the primary), quantum noise, the log transform and a detector-like tone
curve with the mild edge enhancement of clinical processing. Display: white = attenuating.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from phantom.chest import make_chest_ct
from phantom.model import ChestParams, Nodule, Phantom

MU_WATER_PER_MM = 0.0206  # ~60 keV
BONE_BOOST = 1.45  # bone-to-water attenuation ratio at radiograph vs CT energies, per HU above 0


@dataclass(frozen=True)
class RadiographNodule:
    """A nodule in image coordinates: centre (row, column) in pixels, diameter in mm."""

    row: float
    col: float
    diameter_mm: float
    kind: str
    source: Nodule


@dataclass
class Radiograph:
    """A PA chest radiograph: row 0 is superior, column 0 is the patient's right."""

    image: np.ndarray
    """float32 (rows, cols) in [0, 1]; higher = more attenuation (white on MONOCHROME2)."""
    nodule_mask: np.ndarray
    """bool (rows, cols): where any nodule projects."""
    nodules: list[RadiographNodule]
    pixel_spacing: tuple[float, float]
    """(row, column) mm at the detector."""
    line_integral: np.ndarray
    """float32 (rows, cols): the noise-free sum of mu dx (for tests and training targets)."""

    @property
    def shape(self) -> tuple[int, int]:
        return int(self.image.shape[0]), int(self.image.shape[1])


def attenuation(hu: np.ndarray) -> np.ndarray:
    """Linear attenuation (1/mm) of HU at the radiograph's effective energy."""
    hu = hu.astype(np.float32, copy=False)
    rel = np.where(hu > 0.0, 1.0 + BONE_BOOST * hu / 1000.0, 1.0 + hu / 1000.0)
    return np.float32(MU_WATER_PER_MM) * np.clip(rel, 0.0, None)


def line_integrals(hu: np.ndarray, step_mm: float, body: np.ndarray | None = None, chunk: int = 8) -> np.ndarray:
    """Sum of mu dx along the antero-posterior axis (j): (k, i) float32, a few slices at a time.

    With ``body``, everything outside it (the table) counts as air: it lies behind the detector's view.
    """
    out = np.empty((hu.shape[0], hu.shape[2]), dtype=np.float32)
    for s in range(0, hu.shape[0], chunk):
        mu = attenuation(hu[s : s + chunk])
        if body is not None:
            mu *= body[s : s + chunk]
        out[s : s + chunk] = mu.sum(axis=1, dtype=np.float32) * np.float32(step_mm)
    return out


def projection_params(params: ChestParams, voxel_mm: float = 1.4) -> ChestParams:
    """Phantom settings for a projection: 360 x 360 x 400 mm around the chest, no CT noise, no table."""
    n_xy = int(round(360.0 / voxel_mm))
    dz = max(2.0, voxel_mm)
    return dataclasses.replace(
        params, n_slices=int(round(400.0 / dz)), slice_spacing=dz, slice_thickness=None, matrix=(n_xy, n_xy),
        pixel_spacing=(voxel_mm, voxel_mm), z_center=None, noise=False, table=False,
    )


def make_chest_radiograph(
    source: Phantom | ChestParams,
    seed: int | None = None,
    pixel_spacing: float = 0.7,
    photons_per_pixel: float | None = None,
    scatter_fraction: float | None = None,
    voxel_mm: float = 1.4,
) -> Radiograph:
    """A PA chest radiograph of a phantom (or of a phantom made from ``params`` for projection).

    ``seed`` drives the quantum noise and the detector settings (and, with params, the patient).
    ``voxel_mm``: the projection phantom's voxel size when made from params (coarser is faster).
    """
    if isinstance(source, ChestParams):
        ph = make_chest_ct(projection_params(source, voxel_mm), seed=seed)
        seed = source.seed if seed is None else seed
    else:
        ph = source
        seed = ph.params.seed if seed is None else seed
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0x5852]))
    sz, sy, sx = ph.spacing_zyx
    body = ph.body_mask if ph.params.table and ph.body_mask.shape == ph.hu.shape else None
    line = line_integrals(ph.hu, sy, body)[::-1]  # (z from top, x from patient right)
    out_shape = (max(int(round(line.shape[0] * sz / pixel_spacing)), 1), max(int(round(line.shape[1] * sx / pixel_spacing)), 1))
    zoom = (out_shape[0] / line.shape[0], out_shape[1] / line.shape[1])
    spacing = (sz / zoom[0], sx / zoom[1])  # exact, after rounding the image size
    line = ndimage.zoom(line, zoom, order=1, output=np.float32, grid_mode=True, mode="nearest")
    mask = ndimage.zoom(ph.nodule_mask.any(axis=1)[::-1].astype(np.uint8), zoom, order=0, grid_mode=True,
                        mode="nearest").astype(bool)
    px_area = spacing[0] * spacing[1]
    n0 = photons_per_pixel if photons_per_pixel is not None else rng.uniform(3e4, 1.2e5) * px_area / 0.49
    spr = scatter_fraction if scatter_fraction is not None else rng.uniform(0.3, 0.8)
    primary = np.exp(-line)
    scatter = ndimage.gaussian_filter(primary, sigma=35.0 / spacing[0], mode="nearest") * spr
    counts = rng.poisson(n0 * (primary + scatter)).astype(np.float32)
    log_img = -np.log(np.maximum(counts, 0.5) / np.float32(n0 * (1.0 + spr)))
    # detector processing: unsharp mask, then a tone curve fitted to the body's range
    low = ndimage.gaussian_filter(log_img, sigma=4.0 / spacing[0], mode="nearest")
    proc = log_img + rng.uniform(0.5, 1.0) * (log_img - low)
    body = line > 0.5
    lo, hi = np.percentile(proc[body], [0.5, 98.0]) if body.any() else (proc.min(), proc.max())
    t = np.clip((proc - lo) / max(hi - lo, 1e-6), 0.0, 1.0)
    # sigmoid-like film/detector characteristic: dark lungs, bright mediastinum and bone
    gamma = rng.uniform(1.3, 1.7)
    image = (0.03 + 0.94 * t**gamma).astype(np.float32)
    image[~body] = np.clip(image[~body], None, 0.06)
    nodules = []
    z_top = ph.origin_xyz[2] + (ph.shape[0] - 1) * sz
    for nod in ph.nodules:
        x, _, z = nod.center_mm
        row = (z_top - z) / spacing[0] + (zoom[0] - 1) / 2
        col = (x - ph.origin_xyz[0]) / spacing[1] + (zoom[1] - 1) / 2
        nodules.append(RadiographNodule(row=float(row), col=float(col), diameter_mm=nod.diameter_mm, kind=nod.kind,
                                        source=nod))
    return Radiograph(image=image, nodule_mask=mask, nodules=nodules, pixel_spacing=spacing,
                      line_integral=line)
