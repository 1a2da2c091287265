"""RT dose grids read in dose: stored values times Dose Grid Scaling (rtdose.dcm showed 1,254,000 for a relative
dose of 1.254), the unit from Dose Units."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest

from tests.conftest import pydicom_test_file
from viewer.dicom.loader import open_volume
from viewer.display.measure import modality_unit


@pytest.mark.parametrize("name", ["rtdose.dcm", "rtdose_expb.dcm", "rtdose_rle.dcm", "rtdose_1frame.dcm"])
def test_dose_grid_scaling_gives_dose(name: str) -> None:
    path = pydicom_test_file(name)
    ds = pydicom.dcmread(path)
    vol = open_volume(path)
    truth = ds.pixel_array.astype(np.float64) * float(ds.DoseGridScaling)
    assert float(vol.array.max()) == pytest.approx(float(truth.max()), rel=1e-6) and 1.0 < vol.array.max() < 2.0
    assert sorted(np.round(vol.array.ravel(), 6)) == pytest.approx(sorted(np.round(truth.ravel(), 6)), abs=1e-6)
    assert vol.info.dose_units == "RELATIVE" and modality_unit(vol.info.modality, vol.info.dose_units) == ""


def test_dose_in_grays_is_labelled_gy(tmp_path: Path) -> None:
    ds = pydicom.dcmread(pydicom_test_file("rtdose.dcm"))
    ds.DoseUnits = "GY"
    ds.save_as(tmp_path / "dose.dcm")
    vol = open_volume(tmp_path / "dose.dcm")
    assert vol.info.dose_units == "GY" and modality_unit(vol.info.modality, vol.info.dose_units) == "Gy"
    assert modality_unit("CT") == "HU" and modality_unit("MR") == ""


@pytest.mark.parametrize("value", ["0", "-1e-6", "1e300"])  # 1e300: beyond any plausible value
def test_unusable_dose_grid_scaling_keeps_stored_values_and_says_so(tmp_path: Path, value: str) -> None:
    ds = pydicom.dcmread(pydicom_test_file("rtdose.dcm"))
    ds.DoseGridScaling = value
    ds.save_as(tmp_path / "dose.dcm")
    vol = open_volume(tmp_path / "dose.dcm")
    assert float(vol.array.max()) == pytest.approx(float(ds.pixel_array.max()))
    assert any("DoseGridScaling" in w and "ignored" in w for w in vol.warnings)


def test_dose_grid_scaling_is_only_for_dose(tmp_path: Path) -> None:
    ds = pydicom.dcmread(pydicom_test_file("CT_small.dcm"))
    ds.DoseGridScaling = "0.5"  # meaningless on a CT: ignored
    ds.save_as(tmp_path / "ct.dcm")
    ref = open_volume(pydicom_test_file("CT_small.dcm"))
    np.testing.assert_array_equal(open_volume(tmp_path / "ct.dcm").array, ref.array)
