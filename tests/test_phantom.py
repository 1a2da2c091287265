"""The chest phantom: anatomy in the right HU ranges and places, nodules where the truth says."""

from __future__ import annotations

import numpy as np
import pytest

from phantom import ChestParams, NoduleSpec, make_chest_ct
from phantom.model import Phantom

SMALL = dict(n_slices=40, matrix=(128, 128), slice_spacing=7.0, vessel_min_radius_mm=1.0)


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
    ph = make_chest_ct(ChestParams(**SMALL, n_nodules=0, nodules=(spec,), noise=False, seed=5))
    assert len(ph.nodules) == 1
    nod = ph.nodules[0]
    assert nod.side == "left" and nod.kind == "solid" and nod.hu == 30.0 and nod.center_mm[0] > 0
    k, j, i = (int(round(v)) for v in nod.center_voxel)
    assert abs(ph.hu[k, j, i] - 30.0) < 25.0
