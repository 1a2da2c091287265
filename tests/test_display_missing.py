"""Which screen rows/columns of each view show missing or interpolated slices."""

from __future__ import annotations

import numpy as np
import pytest

from viewer.dicom.volume import Volume
from viewer.display.missing import Band, bands, series_notice, slice_label
from viewer.display.planes import Plane


def _volume(direction: np.ndarray) -> Volume:
    missing = np.zeros(8, dtype=bool)
    missing[[2, 5, 6]] = True
    return Volume(np.zeros((8, 4, 5), np.int16), np.zeros(3), np.array([0.7, 0.9, 1.5]), direction, [""] * 8,
                  missing=missing)


@pytest.mark.parametrize("flip", [False, True])
def test_missing_slices_are_bands_where_the_view_draws_them(flip: bool) -> None:
    direction = np.diag([1.0, 1.0, -1.0 if flip else 1.0])  # k runs head-to-feet when flipped
    vol = _volume(direction)
    acq = Plane.for_view("acquisition", direction)
    assert bands(vol, acq, 2) == [Band("all", 0, 0, "missing")] and bands(vol, acq, 3) == []
    coronal = Plane.for_view("coronal", direction)
    assert coronal.row_axis == 0  # slices are screen rows, feet down
    got = bands(vol, coronal, 1)
    # screen row r shows slice k where plane.image puts it: check against the plane's own mapping
    rows = np.zeros(8, dtype=bool)
    for b in got:
        rows[b.start:b.stop] = True
    shown_k = coronal.image(np.broadcast_to(np.arange(8)[:, None, None], vol.shape), 1)[:, 0]
    assert list(rows) == [bool(vol.missing[k]) for k in shown_k]
    assert slice_label(vol, 2) == "missing slice: not acquired (blank)" and slice_label(vol, 3) is None
    assert series_notice(vol) == "gap: 3 missing slices (hatched)"


def test_interpolated_slices_of_a_resampled_series() -> None:
    interp = np.array([False, True, True, False, False])
    vol = Volume(np.zeros((5, 3, 4), np.float32), np.zeros(3), np.array([0.7, 0.9, 1.0]), np.eye(3), [""] * 5,
                 interpolated=interp)
    assert bands(vol, Plane.for_view("acquisition", np.eye(3)), 1) == [Band("all", 0, 0, "interpolated")]
    sagittal = Plane.for_view("sagittal", np.eye(3))
    assert [b.kind for b in bands(vol, sagittal, 0)] == ["interpolated"]
    assert slice_label(vol, 2) == "interpolated slice (variable spacing resampled)"
    assert series_notice(vol) == "variable spacing: resampled to 1 mm"
