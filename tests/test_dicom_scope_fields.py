"""Header facts the intended-use rules need: typed SeriesInfo fields filled by the DICOM engine."""

from __future__ import annotations

from pathlib import Path

import pydicom
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from tests.conftest import pydicom_test_file
from viewer.dicom import scan


def _write_ct_small(tmp_path: Path, with_region: bool) -> Path:
    ds = pydicom.dcmread(pydicom_test_file("CT_small.dcm"))
    ds.ProtocolName = "HEAD ROUTINE"
    ds.PatientBirthDate = "19700102"
    ds.SliceThickness = "1.25"
    ds.ImageType = ["DERIVED", "SECONDARY", "AXIAL"]
    if with_region:
        item = Dataset()
        item.CodeValue = "69536005"
        item.CodingSchemeDesignator = "SCT"
        item.CodeMeaning = "Head"
        ds.AnatomicRegionSequence = Sequence([item])
    out = tmp_path / "ct.dcm"
    ds.save_as(out)
    return out


def test_series_info_carries_protocol_regions_image_type_thickness(tmp_path: Path) -> None:
    path = _write_ct_small(tmp_path, with_region=True)
    (stack,) = scan([path]).stacks
    info = stack.info
    assert info.protocol_name == "HEAD ROUTINE"
    assert info.patient_birth_date == "19700102"
    assert info.anatomic_regions == (("SCT", "69536005", "Head"),)
    assert info.image_type == ("DERIVED", "SECONDARY", "AXIAL")
    assert info.slice_thickness == 1.25


def test_series_info_without_region_sequence(tmp_path: Path) -> None:
    (stack,) = scan([_write_ct_small(tmp_path, with_region=False)]).stacks
    assert stack.info.anatomic_regions == ()
    assert stack.info.protocol_name == "HEAD ROUTINE"
