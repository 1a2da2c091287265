"""1-bit images (a binary liver segmentation, BitsAllocated 1) open as the viewer loads them: stored
integers kept as integers (the viewer's load) failed with "data type '<u0' not understood"."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

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


def test_frames_packed_across_byte_boundaries_open(tmp_path: Path) -> None:
    """3 frames of 5 x 5 bits are 75 bits: 10 bytes, each frame starting mid-byte (not 3 x 4 padded bytes)."""
    truth = (np.arange(3 * 5 * 5) % 3 == 0).astype(np.uint8)
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.7"  # secondary capture
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.Modality = generate_uid(), generate_uid(), "OT"
    ds.Rows = ds.Columns = 5
    ds.NumberOfFrames, ds.SamplesPerPixel, ds.PhotometricInterpretation = 3, 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 1, 1, 0, 0
    ds.PixelData = np.packbits(truth, bitorder="little").tobytes()
    ds.save_as(tmp_path / "bits.dcm", enforce_file_format=True)
    result = scan([str(tmp_path / "bits.dcm")])
    assert not result.errors and len(result.stacks) == 1  # was refused: "shorter (10 bytes) than ... (12 bytes)"
    vol = load_volume(result.stacks[0], integers=True)
    np.testing.assert_array_equal(vol.array, truth.reshape(3, 5, 5))
