"""1-bit images (a binary liver segmentation, BitsAllocated 1) open as the viewer loads them: stored
integers kept as integers (the viewer's load) failed with "data type '<u0' not understood"."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest

from tests.conftest import pydicom_data_file
from viewer.dicom import load_volume, scan


@pytest.mark.parametrize("name", ["liver.dcm", "liver_expb.dcm"])
def test_binary_segmentation_loads_as_stored_integers(name: str) -> None:
    path = pydicom_data_file(name)
    result = scan([str(path)])
    assert not result.errors and len(result.stacks) == 1
    vol = load_volume(result.stacks[0], integers=True)  # as the viewer's load job asks
    truth = pydicom.dcmread(path).pixel_array  # 3 frames of 512 x 512, values 0/1
    assert vol.array.dtype.kind == "i" and vol.shape == truth.shape
    np.testing.assert_array_equal(vol.array, truth)
    assert 0 < int(vol.array.sum()) < vol.array.size
