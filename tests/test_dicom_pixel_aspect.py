"""Non-square pixels without a pixel spacing (Pixel Aspect Ratio only) keep their true proportions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest

from tests.conftest import pydicom_data_file
from viewer.dicom.loader import open_volume
from viewer.display.orientation import spacing_known


@pytest.mark.parametrize("name", ["color-pl.dcm", "color-px.dcm"])
def test_aspect_ratio_4_3_ultrasound_is_shown_4_high_by_3_wide(name: str) -> None:
    vol = open_volume(pydicom_data_file(name))  # 256 x 120 RGB echo, PixelAspectRatio 4\3, no spacing
    assert vol.array.shape[1:3] == (120, 256)
    x, y, _ = vol.spacing
    assert y / x == pytest.approx(4 / 3)  # rows 4/3 as far apart as columns: the sector is not squashed
    assert vol.info.pixel_aspect_ratio == pytest.approx(4 / 3)
    assert not spacing_known(vol.info, vol.warnings)  # proportions known, millimetres still not
    assert any("PixelAspectRatio" in w and "assumed" in w for w in vol.warnings)


@pytest.mark.parametrize("value", ["1\\1", "0\\3", "-4\\3", "1\\1000", "4"])
def test_square_or_implausible_aspect_ratio_is_ignored(tmp_path: Path, value: str) -> None:
    ds = pydicom.dcmread(pydicom_data_file("color-px.dcm"))
    ds.PixelAspectRatio = value
    path = tmp_path / "echo.dcm"
    ds.save_as(path)
    vol = open_volume(path)
    assert np.allclose(vol.spacing[:2], 1.0) and vol.info.pixel_aspect_ratio is None


def test_a_pixel_spacing_decides_over_the_aspect_ratio(tmp_path: Path) -> None:
    ds = pydicom.dcmread(pydicom_data_file("color-px.dcm"))
    ds.PixelSpacing = [0.5, 0.25]
    path = tmp_path / "echo.dcm"
    ds.save_as(path)
    vol = open_volume(path)
    assert np.allclose(vol.spacing[:2], [0.25, 0.5]) and spacing_known(vol.info, vol.warnings)


def test_zero_pixel_spacing_is_worded_as_such() -> None:
    vol = open_volume(pydicom_data_file("RG1_UNCR.dcm"))  # PixelSpacing 0.000\0.000: present, but no spacing
    assert not spacing_known(vol.info, vol.warnings)
    assert any("absent or 0" in w and "assumed 1.0 mm" in w for w in vol.warnings), vol.warnings
