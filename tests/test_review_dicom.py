"""DICOM export: KOS, TID 1500 SR and Parametric Map read back with pydicom and highdicom and
reference exactly the flagged SOP instances."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from collections.abc import Sequence

import highdicom as hd
import numpy as np
import pydicom
import pytest

from tests.support.review_series import MODEL, context_of, make_ct_series
from viewer.review import Region, ReviewStore
from viewer.review.dicom_export import (
    DicomExportError,
    export_dicom,
    flag_uid,
    heatmap_parametric_map,
    key_object_documents,
)


def _referenced_uids(ds: pydicom.Dataset) -> set[str]:
    """Every Referenced SOP Instance UID anywhere in a dataset's content tree."""
    return {str(e.value) for e in ds.iterall() if e.keyword == "ReferencedSOPInstanceUID"}


def _texts(group: Sequence[pydicom.Dataset], code_value: str) -> list[str]:
    """Text values of a measurement group's items with the given concept name code."""
    return [str(item.TextValue) for item in group[0].ContentSequence
            if item.ValueType == "TEXT" and item.ConceptNameCodeSequence[0].CodeValue == code_value]


@pytest.fixture()
def flagged(tmp_path: Path) -> tuple[ReviewStore, list, dict[str, str]]:
    series = make_ct_series(tmp_path / "ct", 4)
    store = ReviewStore(tmp_path / "r.sqlite3")
    ids = {
        "fp": store.add_flag(context_of(series[0], 0), "false_positive", "nodule", reviewer="Smith^Ann",
                             region=Region.make("rectangle", [(1, 2), (10, 12)]), comment="vessel"),
        "ok": store.add_flag(context_of(series[1], 1), "correct", "nodule", reviewer="Smith^Ann",
                             region=Region.make("ellipse", [(10, 20), (30, 26)])),
        "fn": store.add_flag(context_of(series[2], 2), "missed", "nodule", reviewer="jones",
                             region=Region.make("point", [(5, 6)])),
        "unsure": store.add_flag(context_of(series[2], 2), "uncertain", "effusion", reviewer="jones"),
        "gone": store.add_flag(context_of(series[3], 3), "false_positive", "nodule", reviewer="jones"),
    }
    store.delete_flag(ids["gone"])
    return store, series, ids


def test_export_writes_kos_and_sr_per_study_that_read_back(flagged, tmp_path: Path) -> None:
    store, series, ids = flagged
    uids = [ds.SOPInstanceUID for ds in series]
    written = export_dicom(store, tmp_path / "out")
    assert sorted(f.path.name for f in written) == ["KO_For_Peer_Review.dcm", "KO_Of_Interest.dcm",
                                                    "SR_Smith_Ann.dcm", "SR_jones.dcm"]
    assert {f.path.parent.name for f in written} == {series[0].StudyInstanceUID}
    files = {f.path.name: f.path for f in written}

    peer = pydicom.dcmread(files["KO_For_Peer_Review.dcm"])
    assert peer.SOPClassUID == "1.2.840.10008.5.1.4.1.1.88.59"
    assert peer.ConceptNameCodeSequence[0].CodeValue == "113008"  # CID 7010 "For Peer Review"
    assert peer.StudyInstanceUID == series[0].StudyInstanceUID and peer.PatientID == "1CT1"
    ko = hd.ko.KeyObjectSelectionDocument.from_dataset(peer)
    refs = {r.ReferencedSOPSequence[0].ReferencedSOPInstanceUID for r in ko.content.get_references()}
    assert refs == {uids[0], uids[2]}  # the deleted flag's image (slice 3) is not referenced
    interest = hd.ko.KeyObjectSelectionDocument.from_dataset(pydicom.dcmread(files["KO_Of_Interest.dcm"]))
    assert {r.ReferencedSOPSequence[0].ReferencedSOPInstanceUID for r in interest.content.get_references()} == {uids[1]}

    ann = hd.sr.srread(files["SR_Smith_Ann.dcm"])
    assert isinstance(ann, hd.sr.Comprehensive3DSR)
    assert _referenced_uids(ann) == {uids[0], uids[1]}
    groups = {g.tracking_uid: g for g in ann.content.get_planar_roi_measurement_groups()}
    fp = groups[flag_uid(ids["fp"])]
    assert fp.reference_type.value == "111030"  # Image Region (SCOORD)
    assert fp.roi.graphic_type.value == "POLYLINE"
    np.testing.assert_allclose(fp.roi.value, [[1.5, 2.5], [10.5, 2.5], [10.5, 12.5], [1.5, 12.5], [1.5, 2.5]])
    assert _referenced_uids(fp.roi) == {uids[0]}
    assert fp.get_qualitative_evaluations()[0].value.meaning == "False positive"
    assert fp.finding_type.meaning == "nodule"
    assert _texts(fp, "111001") == [MODEL.name] and _texts(fp, "111003") == [MODEL.version]
    assert _texts(fp, "111002") == [f"sha256={MODEL.sha256}", "explanation=gradcam", "threshold=0.5"]
    assert _texts(fp, "121106") == ["vessel"]
    ok = groups[flag_uid(ids["ok"])]
    assert ok.roi.graphic_type.value == "ELLIPSE"
    np.testing.assert_allclose(ok.roi.value, [[10.5, 23.5], [30.5, 23.5], [20.5, 20.5], [20.5, 26.5]])

    jones = hd.sr.srread(files["SR_jones.dcm"])
    assert _referenced_uids(jones) == {uids[2]}
    [point] = jones.content.get_planar_roi_measurement_groups()
    assert point.tracking_uid == flag_uid(ids["fn"]) and point.roi.graphic_type.value == "POINT"
    [image_level] = jones.content.get_image_measurement_groups()
    assert image_level.tracking_uid == flag_uid(ids["unsure"])
    assert image_level.finding_type.meaning == "effusion"
    assert image_level.get_qualitative_evaluations()[0].value.meaning == "Uncertain"
    observer = [str(e.value) for e in jones.iterall() if e.keyword == "PersonName"]
    assert observer == ["jones^"]


def test_kos_refuses_mixed_studies(tmp_path: Path) -> None:
    a, b = make_ct_series(tmp_path / "a", 1), make_ct_series(tmp_path / "b", 1)
    with ReviewStore(tmp_path / "r.sqlite3") as store:
        store.add_flag(context_of(a[0], 0), "correct", "x")
        store.add_flag(context_of(b[0], 0), "correct", "x")
        with pytest.raises(DicomExportError, match="per study"):
            key_object_documents(store.flags(), store.study_header(a[0].StudyInstanceUID))
        assert len({f.study_uid for f in export_dicom(store, tmp_path / "out")}) == 2


def test_heatmap_parametric_map_references_source_series(tmp_path: Path) -> None:
    series = make_ct_series(tmp_path / "ct", 3)
    heat = np.random.default_rng(0).random((3, 128, 128), dtype=np.float32)
    pm = heatmap_parametric_map(series, heat, label="nodule", model=MODEL, method="gradcam")
    path = tmp_path / "pm.dcm"
    pm.save_as(path, enforce_file_format=True)
    back = pydicom.dcmread(path)
    assert back.SOPClassUID == "1.2.840.10008.5.1.4.1.1.30"  # Parametric Map Storage
    assert back.StudyInstanceUID == series[0].StudyInstanceUID
    assert back.FrameOfReferenceUID == series[0].FrameOfReferenceUID
    assert back.pixel_array.dtype == np.float32
    refs = back.ReferencedSeriesSequence[0]
    assert refs.SeriesInstanceUID == series[0].SeriesInstanceUID
    assert {r.ReferencedSOPInstanceUID for r in refs.ReferencedInstanceSequence} == {ds.SOPInstanceUID for ds in series}
    # highdicom may reorder frames; each frame must carry the heatmap plane of the slice it lies on
    z_of_slice = [float(ds.ImagePositionPatient[2]) for ds in series]
    for n, frame in enumerate(back.PerFrameFunctionalGroupsSequence):
        z = float(frame.PlanePositionSequence[0].ImagePositionPatient[2])
        k = int(np.argmin(np.abs(np.array(z_of_slice) - z)))
        assert abs(z_of_slice[k] - z) < 1e-3
        np.testing.assert_array_equal(back.pixel_array[n], heat[k])
    again = hd.pm.ParametricMap.from_dataset(back)
    assert again.SeriesInstanceUID == pm.SeriesInstanceUID


def test_heatmap_shape_mismatch_is_explained(tmp_path: Path) -> None:
    series = make_ct_series(tmp_path / "ct", 2)
    with pytest.raises(DicomExportError, match="does not match 2 source images"):
        heatmap_parametric_map(series, np.zeros((3, 128, 128)), label="n", model=MODEL)
    with pytest.raises(DicomExportError, match="NaN"):
        heatmap_parametric_map(series, np.full((2, 128, 128), np.nan), label="n", model=MODEL)


def test_flag_without_sop_class_is_named(tmp_path: Path) -> None:
    series = make_ct_series(tmp_path / "ct", 1)
    with ReviewStore(tmp_path / "r.sqlite3") as store:
        fid = store.add_flag(replace(context_of(series[0], 0), sop_class_uid=""), "correct", "x")
        with pytest.raises(DicomExportError, match=f"flag {fid} has no SOP Class UID"):
            export_dicom(store, tmp_path / "out")


def test_reexport_keeps_uids_until_a_flag_changes(flagged, tmp_path: Path) -> None:
    store, _, ids = flagged

    def uids(out: Path) -> dict[str, str]:
        return {f.path.name: pydicom.dcmread(f.path).SOPInstanceUID for f in export_dicom(store, out)}

    first, again = uids(tmp_path / "one"), uids(tmp_path / "two")
    assert first == again and len(set(first.values())) == 4
    store.edit_flag(ids["fn"], comment="now larger")
    changed = uids(tmp_path / "three")
    assert changed["SR_jones.dcm"] != first["SR_jones.dcm"]
    assert changed["KO_For_Peer_Review.dcm"] != first["KO_For_Peer_Review.dcm"]
    assert changed["SR_Smith_Ann.dcm"] == first["SR_Smith_Ann.dcm"]
    assert changed["KO_Of_Interest.dcm"] == first["KO_Of_Interest.dcm"]


def test_multiframe_flag_references_its_frame(tmp_path: Path) -> None:
    from tests.conftest import pydicom_test_file
    from viewer.review.source import context_at

    path = pydicom_test_file("eCT_Supplemental.dcm")  # enhanced CT, 2 frames, normal along -z
    ctx = context_at(path, 0)
    assert ctx.frame_number == 2 and ctx.geometry is not None and ctx.geometry.position[2] == pytest.approx(-149.0)
    with ReviewStore(tmp_path / "r.sqlite3") as store:
        store.add_flag(ctx, "false_positive", "nodule", region=Region.make("point", [(3, 4)]), reviewer="ann")
        written = export_dicom(store, tmp_path / "out")
    sr = pydicom.dcmread(next(f.path for f in written if f.kind == "SR"))
    frames = [e.value for e in sr.iterall() if e.keyword == "ReferencedFrameNumber"]
    assert [int(v) for v in frames] == [2]
    assert _referenced_uids(sr) == {pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID}


def test_non_ascii_names_and_comments_survive(tmp_path: Path) -> None:
    series = make_ct_series(tmp_path / "ct", 1)
    with ReviewStore(tmp_path / "r.sqlite3") as store:
        store.add_flag(context_of(series[0], 0), "uncertain", "nodule", reviewer="Müller^Jürgen",
                       comment="Gefäß? 血管")
        [sr_file] = [f.path for f in export_dicom(store, tmp_path / "out") if f.kind == "SR"]
    sr = pydicom.dcmread(sr_file)
    assert sr.SpecificCharacterSet == "ISO_IR 192"
    assert [str(e.value) for e in sr.iterall() if e.keyword == "PersonName"] == ["Müller^Jürgen"]
    assert "Gefäß? 血管" in {str(e.value) for e in sr.iterall() if e.keyword == "TextValue"}
    assert hd.sr.srread(sr_file).content.get_image_measurement_groups()
