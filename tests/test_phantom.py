"""The chest phantom: anatomy in the right HU ranges and places, nodules where the truth says."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from phantom import ChestParams, NoduleSpec, make_chest_ct
from phantom.model import Phantom

SMALL = dict(n_slices=40, matrix=(128, 128), slice_spacing=7.0, vessel_min_radius_mm=1.0, contrast_hu=0.0)


@pytest.fixture(scope="module")
def ph() -> Phantom:
    return make_chest_ct(ChestParams(**SMALL, n_nodules=3, nodule_diameter_mm=(8.0, 16.0), seed=3))


@pytest.fixture(scope="module")
def clean() -> Phantom:
    return make_chest_ct(ChestParams(**SMALL, n_nodules=3, nodule_diameter_mm=(8.0, 16.0), noise=False, seed=3))


@pytest.fixture(scope="module")
def thin() -> Phantom:
    """Thin slices, so a nodule's centre voxel is free of partial volume with its surroundings."""
    params = ChestParams(n_slices=60, matrix=(128, 128), slice_spacing=2.0, vessel_min_radius_mm=1.0,
                         n_nodules=4, nodule_diameter_mm=(9.0, 16.0), noise=False, seed=8)
    return make_chest_ct(params)


def test_shapes_and_types(ph: Phantom) -> None:
    assert ph.hu.shape == (40, 128, 128) and ph.hu.dtype == np.float32
    assert ph.nodule_mask.shape == ph.hu.shape and ph.nodule_mask.dtype == bool
    assert ph.spacing_zyx == (7.0, 360.0 / 128, 360.0 / 128)
    assert -1024.0 <= ph.hu.min() and ph.hu.max() <= 3071.0


def test_tissues_in_expected_hu_ranges(clean: Phantom) -> None:
    hu = clean.hu
    assert np.all(hu[~clean.body_mask & (hu < -500)] <= -899.0)  # air outside (table excluded)
    assert hu[0, 0, 0] == -1000.0
    lung = clean.lung_mask & ~clean.labels["vessels"] & ~clean.labels["airways"] & ~clean.nodule_mask
    assert -900.0 < np.median(hu[lung]) < -780.0
    assert 30.0 < np.median(hu[clean.labels["heart"]]) < 50.0
    bone = hu[clean.labels["bone"]]
    assert np.percentile(bone, 90) > 600.0 and np.median(bone) > 150.0


def test_noise_is_present_and_correlated(ph: Phantom, clean: Phantom) -> None:
    diff = (ph.hu - clean.hu)[clean.body_mask & (clean.hu > -200) & (clean.hu < 100)]
    assert 5.0 < diff.std() < 80.0
    # ramp-filtered noise: neighbouring pixels anti-/correlated, not independent
    n = (ph.hu - clean.hu)[20]
    r = np.corrcoef(n[:, :-1].ravel(), n[:, 1:].ravel())[0, 1]
    assert abs(r) > 0.05


def test_nodules_where_the_truth_says(thin: Phantom) -> None:
    clean = thin
    assert len(clean.nodules) == 4
    for nod in clean.nodules:
        k, j, i = (int(round(v)) for v in nod.center_voxel)
        assert clean.nodule_mask[k, j, i]
        x, y, z = clean.voxel_to_mm(nod.center_voxel)
        assert np.allclose((x, y, z), nod.center_mm)
        assert -750.0 <= nod.hu <= 80.0
        assert nod.contrast_hu > 150.0
        if nod.kind in ("solid", "spiculated", "lobulated"):
            assert abs(clean.hu[k, j, i] - nod.hu) < 60.0
        elif nod.kind == "ground-glass":
            assert abs(clean.hu[k, j, i] - nod.hu) < 90.0
    # nothing marked that no nodule explains
    from scipy import ndimage

    labels, n = ndimage.label(clean.nodule_mask)
    assert n == len(clean.nodules)


def test_deterministic_from_seed() -> None:
    p = ChestParams(**SMALL, n_nodules=2, seed=11)
    a, b = make_chest_ct(p), make_chest_ct(p)
    assert np.array_equal(a.hu, b.hu) and a.nodules == b.nodules
    c = make_chest_ct(p, seed=12)
    assert not np.array_equal(a.hu, c.hu)


def test_requested_nodule_is_placed() -> None:
    spec = NoduleSpec(kind="solid", diameter_mm=14.0, side="left", height=0.5, hu=30.0)
    params = ChestParams(n_slices=60, matrix=(128, 128), slice_spacing=2.5, vessel_min_radius_mm=1.0, n_nodules=0,
                         nodules=(spec,), noise=False, seed=5)
    ph = make_chest_ct(params)
    assert len(ph.nodules) == 1
    nod = ph.nodules[0]
    assert nod.side == "left" and nod.kind == "solid" and nod.hu == 30.0 and nod.center_mm[0] > 0
    k, j, i = (int(round(v)) for v in nod.center_voxel)
    assert abs(ph.hu[k, j, i] - 30.0) < 25.0


def _auc(score: np.ndarray, label: np.ndarray) -> float:
    """Area under the ROC curve of ``score`` for a boolean ``label`` (Mann-Whitney, ties halved)."""
    pos, neg = score[label], score[~label]
    greater = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return float(greater / (len(pos) * len(neg)))


def test_nodule_slices_not_given_away_by_global_cues() -> None:
    """Across patients, a slice's mean HU or height says (almost) nothing about a nodule in it."""
    means, heights, labels = [], [], []
    for seed in range(14):
        ph = make_chest_ct(ChestParams(n_slices=24, matrix=(48, 48), slice_spacing=10.0, vessel_min_radius_mm=2.0,
                                       n_nodules=(1, 4), nodule_diameter_mm=(6.0, 20.0), seed=1000 + seed))
        lung_slices = np.flatnonzero(ph.lung_mask.sum(axis=(1, 2)) > 0.02 * ph.hu[0].size)
        has = ph.slices_with_nodules()
        means.append(ph.hu[lung_slices].mean(axis=(1, 2)))
        heights.append((lung_slices - lung_slices[0]) / max(lung_slices[-1] - lung_slices[0], 1))
        labels.append(has[lung_slices])
    label = np.concatenate(labels)
    assert 20 < label.sum() < len(label) - 20
    assert 0.3 < _auc(np.concatenate(means), label) < 0.7
    assert 0.3 < _auc(np.concatenate(heights), label) < 0.7


def test_hard_negatives_exist(clean: Phantom) -> None:
    """Vessel cross-sections and branch points look like small nodules; rib ends sit by the pleura."""
    from scipy import ndimage

    assert len(clean.landmarks["branch_points"]) > 100 and len(clean.landmarks["rib_ends"]) == 24
    no_nodule = np.flatnonzero(~clean.slices_with_nodules() & (clean.lung_mask.sum(axis=(1, 2)) > 500))
    k = int(no_nodule[len(no_nodule) // 2])
    blobs, n = ndimage.label(clean.lung_mask[k] & (clean.hu[k] > -500))
    assert n >= 10  # bright, compact vessel profiles in a slice without any nodule
    assert clean.labels["vessels"].sum() > 300


def test_radiograph_looks_like_a_pa_film() -> None:
    from scipy import ndimage

    from phantom.radiograph import make_chest_radiograph

    spec = NoduleSpec(kind="solid", diameter_mm=24.0, side="right", height=0.5, hu=40.0)
    params = ChestParams(**{**SMALL, "vessel_min_radius_mm": 1.5}, n_nodules=0, nodules=(spec,), seed=9)
    rg = make_chest_radiograph(params, voxel_mm=2.8)
    img = rg.image
    rows, cols = img.shape
    assert img.dtype == np.float32 and 0.0 <= img.min() and img.max() <= 1.0
    assert rg.pixel_spacing == pytest.approx((0.7, 0.7), rel=0.02)
    mid = img[rows // 3 : 2 * rows // 3]
    profile = mid.mean(axis=0)
    centre = cols // 2
    # spine and mediastinum: the brightest band is central; the lungs either side are darker
    assert abs(int(np.argmax(profile)) - centre) < cols * 0.1
    lung_r, lung_l = profile[int(cols * 0.25)], profile[int(cols * 0.75)]
    assert profile[centre] > lung_r + 0.2 and profile[centre] > lung_l + 0.2
    # PA view: the patient's right (the requested right-sided nodule) is on the image's left
    (nod,) = rg.nodules
    assert nod.col < centre and rg.nodule_mask[int(round(nod.row)), int(round(nod.col))]
    assert nod.source.side == "right"
    # the nodule adds attenuation exactly where it projects (same patient without it as reference)
    bare = make_chest_radiograph(ChestParams(**{**SMALL, "vessel_min_radius_mm": 1.5}, n_nodules=0, seed=9), voxel_mm=2.8)
    extra = rg.line_integral - bare.line_integral
    r, c = int(round(nod.row)), int(round(nod.col))
    assert extra[r, c] > 0.25  # ~ 24 mm x (mu_nodule - mu_lung)
    far = ~ndimage.binary_dilation(rg.nodule_mask, iterations=12)
    assert np.abs(extra[far]).max() < 1e-4
    # the heart lies mostly on the patient's left (image right) of the midline
    heart = rg.line_integral[int(rows * 0.55) : int(rows * 0.7)]
    assert heart[:, centre + 20 : centre + 60].mean() > heart[:, centre - 60 : centre - 20].mean()


def test_contrast_enhancement_brightens_blood_only() -> None:
    plain = make_chest_ct(ChestParams(**{**SMALL, "contrast_hu": 0.0}, n_nodules=0, noise=False, seed=4))
    enhanced = make_chest_ct(ChestParams(**{**SMALL, "contrast_hu": 200.0}, n_nodules=0, noise=False, seed=4))
    heart = plain.labels["heart"]
    assert plain.blood_hu == 40.0 and enhanced.blood_hu == 240.0
    assert 220.0 < np.median(enhanced.hu[heart]) < 260.0 and 30.0 < np.median(plain.hu[heart]) < 50.0
    bone = plain.labels["bone"]
    assert np.mean(plain.hu[bone] == enhanced.hu[bone]) > 0.95  # only partial-volume edges by vessels move
    tiny = dict(n_slices=4, matrix=(32, 32), slice_spacing=20.0, vessel_min_radius_mm=3.0, n_nodules=0, noise=False)
    drawn = {make_chest_ct(ChestParams(**tiny, contrast_hu=None, seed=s)).blood_hu for s in range(6)}
    assert 40.0 in drawn and any(b > 100.0 for b in drawn)


def test_vessel_attached_nodules_touch_a_vessel() -> None:
    from phantom.chest import make_patient

    params = ChestParams(n_slices=60, matrix=(128, 128), slice_spacing=2.5, vessel_min_radius_mm=0.8, n_nodules=3,
                         nodule_diameter_mm=(5.0, 10.0), juxtapleural_fraction=0.0, vessel_attached_fraction=1.0,
                         noise=False, contrast_hu=0.0, seed=31)
    ph = make_chest_ct(params)
    assert len(ph.nodules) == 3 and all(n.vessel_attached for n in ph.nodules)
    patient = make_patient(params.seed, params.vessel_min_radius_mm)
    for nod in ph.nodules:
        centre = np.asarray(nod.center_mm)[None]
        gap = min(float(t.vessels.distance(centre)[0]) for t in patient.trees)
        assert gap < 0.3 * nod.diameter_mm  # a vessel surface within the nodule
    free = make_chest_ct(ChestParams(**{**params.__dict__, "vessel_attached_fraction": 0.0}))
    assert not any(n.vessel_attached for n in free.nodules)


@settings(max_examples=8, deadline=None)
@given(
    n_slices=st.integers(1, 12),
    rows=st.integers(16, 48),
    cols=st.integers(16, 48),
    pixel=st.floats(1.0, 12.0),
    spacing=st.floats(0.5, 15.0),
    n_nodules=st.integers(0, 4),
    noise=st.booleans(),
    seed=st.integers(0, 2**31 - 1),
)
def test_any_reasonable_params_give_a_consistent_phantom(
    n_slices: int, rows: int, cols: int, pixel: float, spacing: float, n_nodules: int, noise: bool, seed: int
) -> None:
    params = ChestParams(n_slices=n_slices, matrix=(rows, cols), pixel_spacing=(pixel, pixel), slice_spacing=spacing,
                         n_nodules=n_nodules, noise=noise, vessel_min_radius_mm=2.5, seed=seed)
    ph = make_chest_ct(params)
    assert ph.hu.shape == (n_slices, rows, cols) and np.isfinite(ph.hu).all()
    assert -1024.0 <= ph.hu.min() and ph.hu.max() <= 3071.0
    assert ph.nodule_mask.any() == bool(ph.nodules)
    for nod in ph.nodules:
        assert -0.5 <= nod.center_voxel[0] <= n_slices - 0.5
        assert params.nodule_diameter_mm[0] <= nod.diameter_mm <= params.nodule_diameter_mm[1]


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"n_nodules": (3, 1)}, "n_nodules"),
        ({"n_nodules": -1}, "n_nodules"),
        ({"nodule_kinds": ("round",)}, "nodule_kinds"),
        ({"nodule_diameter_mm": (10.0, 5.0)}, "nodule_diameter_mm"),
        ({"juxtapleural_fraction": 1.5}, "juxtapleural_fraction"),
        ({"matrix": (8, 8)}, "matrix"),
        ({"slice_spacing": 0.0}, "spacings"),
    ],
)
def test_bad_params_are_refused_clearly(bad: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ChestParams(**bad)
