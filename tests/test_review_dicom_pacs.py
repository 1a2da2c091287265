"""A PACS (a real Orthanc) shows each reviewer's SR as a series of its own, beside the KOS series."""

from __future__ import annotations

from pathlib import Path

import pydicom

from tests.support.orthanc import Orthanc, orthanc, pacs_net  # noqa: F401  (fixtures)
from tests.support.review_series import flagged_store
from viewer.review.dicom_export import export_dicom


def test_orthanc_lists_one_series_per_reviewer(pacs_net: Orthanc, tmp_path: Path) -> None:
    store, series = flagged_store(tmp_path)
    written = export_dicom(store, tmp_path / "out")
    pacs_net.clear()
    assert pacs_net.upload([f.path for f in written]) == 5
    [study] = pacs_net.rest("GET", "/studies?expand")
    assert study["MainDicomTags"]["StudyInstanceUID"] == series[0].StudyInstanceUID
    found = {s["MainDicomTags"].get("SeriesDescription", ""): s for s in
             (pacs_net.rest("GET", f"/series/{sid}") for sid in study["Series"])}
    reviewers = sorted(d for d in found if d.startswith("RadScope review by "))
    assert reviewers == ["RadScope review by Smith^Ann", "RadScope review by jones", "RadScope review by kim"]
    assert all(len(found[d]["Instances"]) == 1 for d in reviewers)
    kos = [s for d, s in found.items() if d not in reviewers]
    assert len(kos) == 1 and len(kos[0]["Instances"]) == 2  # For Peer Review + Of Interest, one series
    # what the PACS stored is what RadScope wrote (same SOP instances, one per reviewer)
    stored = {pacs_net.rest("GET", f"/instances/{i}")["MainDicomTags"]["SOPInstanceUID"]
              for d in reviewers for i in found[d]["Instances"]}
    assert stored == {str(pydicom.dcmread(f.path).SOPInstanceUID) for f in written if f.kind == "SR"}
