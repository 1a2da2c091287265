"""The two bundled demo models: what data each sees, its input pipeline, seeds and training settings.

Seeds are disjoint per split (train / validation / held-out test); every phantom is fully
determined by its seed (`phantom` draws anatomy, nodules and noise from independent streams).
``quick`` recipes shrink everything to run end to end in seconds (tests, smoke checks).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from scipy import ndimage

from inference.training.dataset import Sample
from inference.training.pipeline import Recipe
from inference.training.train import TrainConfig
from phantom import ChestParams, make_chest_ct
from phantom.radiograph import make_chest_radiograph, projection_params

CT_SLICE_SPACINGS_MM = (2.5, 3.0, 5.0)
NOT_CHEST = r"\b(head|brain|skull|sinus|orbit|neck|spine|knee|ankle|foot|hand|wrist|elbow|shoulder|hip)\b"
"""Descriptions that name another body part (the chest models' exclusion regex)."""
CHEST_CODES = ["SCT:51185008", "SCT:816094009", "SCT:39607008", "SCT:416550000", "SCT:416775004"]
"""AnatomicRegionSequence: thorax (51185008 and its successor 816094009), lung, chest and abdomen, chest abdomen and pelvis."""
CT_SCOPE = {
    "modalities": ["CT"],
    "body_parts": ["CHEST", "THORAX", "LUNG", "CHESTABDOMEN", "CHESTABDPELVIS", "WHOLEBODY"],
    "anatomic_regions": CHEST_CODES,
    "series_description": {"exclude": NOT_CHEST},
    "study_description": {"exclude": NOT_CHEST},
    "protocol_name": {"exclude": NOT_CHEST},
    "planes": ["axial"], "plane_tolerance_deg": 20, "reformat": True,
    "slice_thickness_mm": [0.5, 6.0],
    "pixel_spacing_mm": [0.4, 2.0],
    "patient_age_years": [18, 120],
    "image_type": {"exclude": ["LOCALIZER", "DERIVED"]},
}
CXR_SCOPE = {
    "modalities": ["CR", "DX"],
    "body_parts": ["CHEST", "THORAX", "LUNG"],
    "anatomic_regions": CHEST_CODES[:3],
    "series_description": {"exclude": NOT_CHEST + r"|\blat(eral)?\b"},
    "study_description": {"exclude": NOT_CHEST},
    "protocol_name": {"exclude": NOT_CHEST + r"|\blat(eral)?\b"},
    "patient_age_years": [18, 120],
    "image_type": {"exclude": ["LOCALIZER"]},
}


def ct_params(seed: int, matrix: int = 256, n_slices: int = 40) -> ChestParams:
    """Scan parameters for one CT phantom: field of view and slice spacing vary with the seed."""
    rng = np.random.default_rng([seed, 7001])
    fov = float(rng.uniform(320.0, 410.0))
    return ChestParams(
        n_slices=n_slices,
        matrix=(matrix, matrix),
        pixel_spacing=(fov / matrix, fov / matrix),
        slice_spacing=float(rng.choice(CT_SLICE_SPACINGS_MM)),
        n_nodules=(0, 5),
        seed=seed,
    )


def _ct_slices(params: ChestParams) -> Sample:
    """All axial slices of one chest CT phantom (HU) with its nodule masks."""
    ph = make_chest_ct(params)
    return Sample(ph.hu, ph.nodule_mask, (ph.spacing_zyx[1], ph.spacing_zyx[2]))


def ct_sample(seed: int) -> Sample:
    return _ct_slices(ct_params(seed))


def ct_sample_quick(seed: int) -> Sample:
    return _ct_slices(replace(ct_params(seed, matrix=64, n_slices=10), n_nodules=(2, 3)))


CHEST_CT = Recipe(
    name="chest-nodule-demo",
    version="1.1.0",
    description=("Per-slice lung nodule present/absent classifier for chest CT (axial slices, HU), with a "
                 "Grad-CAM heatmap from its last conv block."),
    modalities=("CT",),
    window=(-600.0, 1500.0),
    size=(256, 256),
    make=ct_sample,
    generator=("phantom.make_chest_ct: synthetic chest CT phantoms, 40 axial slices of 256x256, field of "
               "view 320-410 mm, slice spacing 2.5/3/5 mm, 0-5 nodules of 4-25 mm (solid, part-solid, "
               "ground-glass, spiculated, lobulated; some juxtapleural), vessels, airways, ribs, "
               "correlated noise 8-30 HU"),
    train_seeds=range(100_000, 100_180),
    val_seeds=range(200_000, 200_025),
    test_seeds=range(300_000, 300_040),
    min_area_mm2=50.0,
    dilate_mm=10.0,
    train=TrainConfig(epochs=30, steps_per_epoch=50, batch_size=32, lr=3e-3, crop=128, full_image_fraction=0.15,
                      seed=1),
    widths=(16, 24, 48, 64),
    scope=CT_SCOPE,
)


def quick(recipe: Recipe, make) -> Recipe:
    """A seconds-long version of ``recipe``: a few 64-pixel phantoms, one epoch."""
    return replace(recipe, size=(64, 64), make=make, widths=(8, 8, 16, 16),
                   train_seeds=range(recipe.train_seeds.start, recipe.train_seeds.start + 2),
                   val_seeds=range(recipe.val_seeds.start, recipe.val_seeds.start + 1),
                   test_seeds=range(recipe.test_seeds.start, recipe.test_seeds.start + 1),
                   train=replace(recipe.train, epochs=1, steps_per_epoch=2, batch_size=8),
                   version=recipe.version + "+quick")


CXR_STORED_MAX = 4095.0
"""Radiographs are stored as 12-bit values (``viewer.dicom.synthetic.write_radiograph``), no rescale."""
CXR_VIEWS = 2
"""Radiographs of each patient with its nodules, and as many of the same patient without them (the same
anatomy: the phantom draws anatomy and nodules from independent streams), each with its own quantum noise,
scatter and tone curve: the only consistent difference the model can learn is the nodule. All in
MONOCHROME2 polarity (white = attenuating): RadScope inverts MONOCHROME1 pixels over the stored range
(12-bit: ``4095 - v``) before any model sees them, so the model never sees the other polarity."""
CXR_VOXEL_MM = 1.8
"""Voxel size of the projected phantoms (the demo study projects at 1.4 mm; coarser is faster)."""
CXR_PIXEL_MM = 0.7
"""Detector pixel size of the training radiographs: that of the demo study's radiograph."""
CXR_HEIGHT_MM = (280.0, 400.0)
"""Each patient's radiographs keep a random band of this height (mm) of the 400 mm projection: real
films (and the demo study's, projected from its 300 mm CT) frame the chest more or less tightly, and the
model input is resized to a square whatever the film's aspect."""
CXR_NODULE_KINDS = ("solid", "part-solid", "spiculated", "lobulated")
"""Pure ground-glass nodules are left out of the radiograph model's data: they barely attenuate more
than lung, so a radiograph does not show them and they would only teach the model label noise."""


def radiograph_pixels(image: np.ndarray, monochrome1: bool = False) -> np.ndarray:
    """Pixel values as the DICOM engine delivers a written radiograph (12-bit; inverted when stored as
    MONOCHROME1). The model is trained on, and fed, the MONOCHROME2 values (``monochrome1=False``)."""
    stored = np.rint(np.clip(image, 0.0, 1.0) * CXR_STORED_MAX)
    return (CXR_STORED_MAX - stored if monochrome1 else stored).astype(np.float32)


def cxr_params(seed: int, voxel_mm: float = CXR_VOXEL_MM) -> ChestParams:
    """A whole-chest phantom for projection (no CT noise, no table) with 1-3 nodules of 8-30 mm."""
    return projection_params(ChestParams(seed=seed, n_nodules=(1, 3), nodule_diameter_mm=(8.0, 30.0),
                                         nodule_kinds=CXR_NODULE_KINDS), voxel_mm)


def cxr_sample(seed: int, views: int = CXR_VIEWS, voxel_mm: float = CXR_VOXEL_MM) -> Sample:
    """``views`` PA radiographs of one patient with its nodules, then ``views`` of the same patient
    without them, with the nodules' projected masks, all cropped to one band of rows (`CXR_HEIGHT_MM`)."""
    params = cxr_params(seed, voxel_mm)
    images, masks = [], []
    for state, p in enumerate((params, replace(params, n_nodules=0))):
        ph = make_chest_ct(p)
        for v in range(views):
            rad = make_chest_radiograph(ph, seed=seed * 16 + 2 * v + state, pixel_spacing=CXR_PIXEL_MM)
            images.append(radiograph_pixels(rad.image))
            masks.append(rad.nodule_mask)
    return _row_band(np.stack(images), np.stack(masks), rad.pixel_spacing, np.random.default_rng([seed, 7003]))


def _row_band(images: np.ndarray, masks: np.ndarray, spacing_rc: tuple[float, float],
              rng: np.random.Generator) -> Sample:
    """A random band of `CXR_HEIGHT_MM` rows, stretched back to the full row count (taller pixels), so
    that every training radiograph keeps one native shape."""
    rows = images.shape[1]
    keep = min(rows, int(round(rng.uniform(*CXR_HEIGHT_MM) / spacing_rc[0])))
    top = int(rng.integers(0, rows - keep + 1))
    zoom = (1.0, rows / keep, 1.0)
    band = slice(top, top + keep)
    stretched = ndimage.zoom(images[:, band], zoom, order=1, grid_mode=True, mode="nearest")
    mask = ndimage.zoom(masks[:, band].astype(np.uint8), zoom, order=0, grid_mode=True, mode="nearest") > 0
    return Sample(np.rint(stretched).astype(np.float32), mask, (spacing_rc[0] * keep / rows, spacing_rc[1]))


def cxr_sample_quick(seed: int) -> Sample:
    """One coarse radiograph of a patient with nodules and one of the same patient without."""
    params = replace(cxr_params(seed, voxel_mm=8.0), n_nodules=(1, 2))
    rads = [make_chest_radiograph(make_chest_ct(p), seed=seed, pixel_spacing=8 * CXR_PIXEL_MM)
            for p in (params, replace(params, n_nodules=0))]
    return Sample(np.stack([radiograph_pixels(r.image) for r in rads]),
                  np.stack([r.nodule_mask for r in rads]), tuple(rads[0].pixel_spacing))


CHEST_XRAY = Recipe(
    name="cxr-nodule-demo",
    version="1.1.0",
    description=("Lung nodule present/absent classifier for PA chest radiographs (CR/DX), with a Grad-CAM "
                 "heatmap from its last conv block. Expects MONOCHROME2 polarity (white = attenuating); RadScope "
                 "inverts MONOCHROME1 pixels over the stored range before the model."),
    modalities=("CR", "DX"),
    window=(CXR_STORED_MAX / 2.0, CXR_STORED_MAX),
    stored_bits=12,  # films of other bit depths are scaled onto the 12-bit values it was trained on
    size=(256, 256),
    make=cxr_sample,
    generator=(f"phantom.make_chest_ct on a {CXR_VOXEL_MM} mm whole-chest grid (no CT noise, no table), projected by "
               f"phantom.make_chest_radiograph at {CXR_PIXEL_MM} mm: every patient has 1-3 nodules of 8-30 mm "
               f"({', '.join(CXR_NODULE_KINDS)}; no pure ground-glass) and is projected {CXR_VIEWS} times with them "
               f"and {CXR_VIEWS} times without them (same anatomy), each radiograph with its own quantum noise, "
               f"scatter and tone curve, framed to one random {CXR_HEIGHT_MM[0]:g}-{CXR_HEIGHT_MM[1]:g} mm band "
               "of rows per patient, as MONOCHROME2 12-bit 0-4095 values (as viewer.dicom.synthetic writes them)"),
    train_seeds=range(400_000, 400_200),
    val_seeds=range(500_000, 500_025),
    test_seeds=range(600_000, 600_040),
    min_area_mm2=30.0,
    dilate_mm=10.0,
    train=TrainConfig(epochs=30, steps_per_epoch=50, batch_size=32, lr=3e-3, crop=128, full_image_fraction=0.04,
                      matched_negative_crops=True, map_weight=3.0, gamma_jitter=0.3, seed=2),
    widths=(16, 24, 48, 64),
    scope=CXR_SCOPE,
    ood_quantile=0.99,  # 100 validation images: at 97% one held-out set of 160 passed 93.8%
)


RECIPES = {r.name: r for r in (CHEST_CT, CHEST_XRAY)}
QUICK = {CHEST_CT.name: quick(CHEST_CT, ct_sample_quick), CHEST_XRAY.name: quick(CHEST_XRAY, cxr_sample_quick)}
