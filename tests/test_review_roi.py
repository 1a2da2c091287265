"""Reviewers' ROIs as flag regions (viewer.review.roi), without Qt: pixel corners, patient-space points,
rotated ROIs as polygons, and no patient geometry where the header gave none."""

from __future__ import annotations

import numpy as np
import pytest

from viewer.dicom.volume import SeriesInfo, Volume
from viewer.display.measure import MeasurementRecord
from viewer.display.planes import Plane
from viewer.review.roi import is_roi_on_slice, region_from_roi, volume_slice_geometry

SPACING = (0.5, 0.8, 2.0)  # x (column), y (row), z (slice) mm


def volume(info: SeriesInfo | None = None) -> Volume:
    return Volume(np.zeros((6, 50, 60), np.float32), (-10.0, 20.0, 30.0), SPACING, np.eye(3),
                  [f"1.{k}" for k in range(6)], info=info or SeriesInfo(orientation_source="ImageOrientationPatient",
                                                                         pixel_spacing_source="PixelSpacing"))


def scene(vol: Volume, col: float, row: float) -> tuple[float, float]:
    plane = Plane.for_view("acquisition", vol.direction)
    return Plane.plane_to_scene(col, row, plane.scene_matrix(vol.direction, vol.spacing))


def test_an_unrotated_rectangle_keeps_its_kind_and_lands_on_its_voxels_in_patient_space() -> None:
    vol = volume()
    (x0, y0), (x1, y1) = scene(vol, 10, 20), scene(vol, 30, 40)
    roi = MeasurementRecord("rect", "acquisition", 3, [], pos=(x0, y0), size=(x1 - x0, y1 - y0))
    assert is_roi_on_slice(roi, vol, 3) and not is_roi_on_slice(roi, vol, 2)
    geometry = volume_slice_geometry(vol, 3)
    region = region_from_roi(roi, vol, geometry)
    assert region.kind == "rectangle"
    np.testing.assert_allclose(region.points_px, [(10, 20), (30, 40)], atol=1e-9)
    np.testing.assert_allclose(region.points_lps[0], vol.index_to_lps(np.array([10.0, 20.0, 3.0])), atol=1e-9)


def test_a_rotated_ellipse_becomes_the_polygon_it_covers() -> None:
    vol = volume()
    x, y = scene(vol, 20, 25)
    roi = MeasurementRecord("ellipse", "acquisition", 1, [], pos=(x, y), size=(8.0, 4.0), angle=30.0)
    region = region_from_roi(roi, vol)
    assert region.kind == "polygon" and len(region.points_px) == 36 and region.points_lps == ()
    with pytest.raises(ValueError, match="not an ROI on an acquisition slice"):
        region_from_roi(MeasurementRecord("rect", "coronal", 1, [], pos=(x, y), size=(1.0, 1.0)), vol)


def test_no_patient_space_without_header_geometry() -> None:
    assert volume_slice_geometry(volume(SeriesInfo(orientation_source="PatientOrientation")), 0) is None
    assert volume_slice_geometry(volume(SeriesInfo(orientation_source="")), 0) is None
    assert volume_slice_geometry(volume(SeriesInfo(pixel_spacing_source="")), 0) is None
    g = volume_slice_geometry(volume(), 2)
    assert g is not None and g.pixel_spacing == (0.8, 0.5) and g.position[2] == pytest.approx(34.0)
