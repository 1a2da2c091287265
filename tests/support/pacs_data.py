"""Known studies loaded once into the test Orthanc: two synthetic CTs of known geometry (one oblique and
shifted) and pydicom's MR_small.dcm (session fixture `studies`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pydicom
import pytest

from phantom import ChestParams, make_chest_ct
from tests.conftest import pydicom_test_file
from tests.support.orthanc import Orthanc, orthanc  # noqa: F401  (fixture)
from viewer.dicom import synthetic


@dataclass
class Studies:
    axial: Path
    axial_study: str
    axial_series: str
    oblique: Path
    oblique_study: str
    oblique_series: str
    mr_study: str
    root: Path


@pytest.fixture(scope="session")
def studies(orthanc: Orthanc, tmp_path_factory: pytest.TempPathFactory) -> Studies:
    """Two synthetic CTs of known geometry (one oblique, shifted) and pydicom's MR, loaded into Orthanc once."""
    root = tmp_path_factory.mktemp("pacs_src")
    ph = make_chest_ct(ChestParams(n_slices=24, matrix=(64, 64), n_nodules=0), seed=3)
    a = synthetic.write_ct_series(ph, root / "axial", patient={
        "name": "DOE^JANE", "id": "P-DOE", "study_date": "20240105", "accession": "ACC-DOE"}, seed=11)
    b = synthetic.write_ct_series(ph, root / "oblique", orientation="oblique", angles_deg=(12, -7, 20),
                                  shift=(4.5, -3.0, 11.0), patient={
                                      "name": "SMITH^JOHN", "id": "P-SMITH", "study_date": "20250310",
                                      "accession": "ACC-SMITH", "study_description": "CHEST OBLIQUE"}, seed=12)
    mr = pydicom_test_file("MR_small.dcm")
    with orthanc.inside():
        orthanc.upload(sorted((root / "axial").iterdir()) + sorted((root / "oblique").iterdir()) + [mr])
    ds = pydicom.dcmread(mr, stop_before_pixels=True)
    return Studies(root / "axial", a.study_uid, a.series_uid, root / "oblique", b.study_uid, b.series_uid,
                   str(ds.StudyInstanceUID), root)


