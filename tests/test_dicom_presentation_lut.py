"""Presentation LUT Shape INVERSE shows low values white, as MONOCHROME1 does (once: a MONOCHROME1 radiograph's
INVERSE, as the DX object requires, is the same inversion said twice)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest

from tests.conftest import pydicom_data_file
from viewer.dicom.loader import open_volume
from viewer.state.series import SeriesState


def _variant(tmp_path: Path, photometric: str, shape: str | None) -> Path:
    ds = pydicom.dcmread(pydicom_data_file("RG3_UNCI.dcm"))  # a real CR leg film, MONOCHROME1, 10-bit
    if photometric == "MONOCHROME2":  # the same film stored the other way up: low now means dark
        ds.PixelData = ((1 << ds.BitsStored) - 1 - ds.pixel_array).astype(np.uint16).tobytes()
    ds.PhotometricInterpretation = photometric
    if shape is not None:
        ds.PresentationLUTShape = shape
    path = tmp_path / f"{photometric}-{shape}.dcm"
    ds.save_as(path)
    return path


@pytest.mark.parametrize(("photometric", "shape", "inverted"), [
    ("MONOCHROME1", None, True), ("MONOCHROME1", "INVERSE", True), ("MONOCHROME2", "INVERSE", True),
    ("MONOCHROME2", "IDENTITY", False), ("MONOCHROME2", None, False),
])
def test_inverse_presentation_lut_is_shown_inverted(tmp_path: Path, photometric: str, shape: str | None,
                                                    inverted: bool) -> None:
    vol = open_volume(_variant(tmp_path, photometric, shape))
    assert vol.info.shown_inverted is inverted and SeriesState(vol).invert is inverted
