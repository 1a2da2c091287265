"""DICOM out, valid: every exported object and the demo study pass dciodvfy (dicom3tools) with no
error; each reviewer's SR has its own series; the KOS references images as IMAGE; a Parametric Map
of a real CT without Patient's Birth Date is written; RadScope reads its own SRs back."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pydicom
import pytest

from tests.conftest import pydicom_data_file, pydicom_test_file
from tests.support.dicom3tools import assert_valid
from tests.support.review_series import MODEL, flagged_store, make_ct_series
from viewer.cli import main
from viewer.review import Region, ReviewStore
from viewer.review.dicom_export import DicomExportError, export_dicom, heatmap_parametric_map
from viewer.review.model import Flag
from viewer.review.sr_import import import_sr, read_review_sr
from viewer.review.tables import ImportFileError

# Our private coding scheme (declared in the SR's Coding Scheme Identification Sequence, which
# dciodvfy does not consult) and highdicom's Parametric Map image type are the only warnings.
PRIVATE_SCHEME = "Unrecognized defined term <99RADSCOPE>"
PM_WARNINGS = ("Unrecognized defined term <QUANTITY>",)


def test_exported_kos_and_per_reviewer_srs_pass_dciodvfy(tmp_path: Path) -> None:
    store, _ = flagged_store(tmp_path)
    written = export_dicom(store, tmp_path / "out")
    kinds = sorted((f.kind, f.path.name) for f in written)
    assert kinds == [("KO", "KO_For_Peer_Review.dcm"), ("KO", "KO_Of_Interest.dcm"), ("SR", "SR_Smith_Ann.dcm"),
                     ("SR", "SR_jones.dcm"), ("SR", "SR_kim.dcm")]
    for f in written:
        assert_valid(f.path, "KeyObjectSelectionDocument" if f.kind == "KO" else "Comprehensive3DSR",
                     allowed_warnings=(PRIVATE_SCHEME,))
    docs = {f.path.name: pydicom.dcmread(f.path) for f in written}
    # the KOS references images as IMAGE items (TID 2010), never COMPOSITE
    for name in ("KO_For_Peer_Review.dcm", "KO_Of_Interest.dcm"):
        types = [item.ValueType for item in docs[name].ContentSequence]
        assert "COMPOSITE" not in types and types.count("IMAGE") >= 1, types
    # each reviewer's SR in its own series, with distinct instance numbers; KOS apart from them
    srs = [docs[n] for n in ("SR_Smith_Ann.dcm", "SR_jones.dcm", "SR_kim.dcm")]
    assert len({ds.SeriesInstanceUID for ds in srs}) == 3
    assert len({int(ds.InstanceNumber) for ds in srs}) == 3
    assert docs["KO_Of_Interest.dcm"].SeriesInstanceUID not in {ds.SeriesInstanceUID for ds in srs}
    assert all(ds.SeriesDescription.startswith("RadScope review by ") for ds in srs)
    # deterministic: the same flags give the same UIDs and series numbers
    again = {f.path.name: pydicom.dcmread(f.path) for f in export_dicom(store, tmp_path / "again")}
    for name, ds in docs.items():
        assert (again[name].SOPInstanceUID, again[name].SeriesInstanceUID, again[name].SeriesNumber) == \
            (ds.SOPInstanceUID, ds.SeriesInstanceUID, ds.SeriesNumber)


def test_kos_of_a_multiframe_image_names_the_flagged_frame(tmp_path: Path) -> None:
    from viewer.review.source import context_at

    path = pydicom_test_file("eCT_Supplemental.dcm")  # a real enhanced CT, 2 frames
    with ReviewStore(tmp_path / "r.sqlite3") as store:
        store.add_flag(context_at(path, 0), "false_positive", "nodule", reviewer="ann")
        written = export_dicom(store, tmp_path / "out")
    ko = pydicom.dcmread(next(f.path for f in written if f.kind == "KO"))
    [image] = [i for i in ko.ContentSequence if i.ValueType == "IMAGE"]
    assert [int(v) for v in np.atleast_1d(image.ReferencedSOPSequence[0].ReferencedFrameNumber)] == [2]
    assert_valid(next(f.path for f in written if f.kind == "KO"), "KeyObjectSelectionDocument")


def _without_birth_date(path: Path) -> pydicom.Dataset:
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    del ds.PatientBirthDate  # as many anonymisers leave a CT
    return ds


@pytest.mark.parametrize("source", ["pydicom:CT_small.dcm", "pydicom-data:explicit_VR-UN.dcm"])
def test_parametric_map_of_a_real_ct_without_birth_date(source: str, tmp_path: Path) -> None:
    where, name = source.split(":")
    ds = _without_birth_date(pydicom_test_file(name) if where == "pydicom" else pydicom_data_file(name))
    heat = np.linspace(0, 1, ds.Rows * ds.Columns, dtype=np.float32).reshape(1, ds.Rows, ds.Columns)
    pm = heatmap_parametric_map([ds], heat, label="nodule", model=MODEL, method="gradcam")
    assert "PatientBirthDate" not in ds  # the caller's header is not changed
    path = tmp_path / "pm.dcm"
    pm.save_as(path, enforce_file_format=True)
    back = pydicom.dcmread(path)
    assert back.PatientBirthDate == "" and back.PatientID == ds.PatientID
    np.testing.assert_array_equal(back.pixel_array, heat[0])
    allowed = PM_WARNINGS + ("Patient's Weight", "Retired Person Name form",  # copied from the source as they are
                             "attribute <Laterality>")  # CT_small names no body part: laterality unknown
    assert_valid(path, "ParametricMap", allowed_warnings=allowed)


def test_parametric_map_of_the_synthetic_chest_has_its_anatomy(tmp_path: Path) -> None:
    series = make_ct_series(tmp_path / "ct", 3)  # body part CHEST
    pm = heatmap_parametric_map(series, np.zeros((3, 128, 128), np.float32), label="nodule", model=MODEL)
    pm.save_as(tmp_path / "pm.dcm", enforce_file_format=True)
    assert_valid(tmp_path / "pm.dcm", "ParametricMap", allowed_warnings=PM_WARNINGS + ("Patient's Weight",))
    anatomy = pydicom.dcmread(tmp_path / "pm.dcm").SharedFunctionalGroupsSequence[0].FrameAnatomySequence[0]
    assert anatomy.FrameLaterality == "U" and anatomy.AnatomicRegionSequence[0].CodeMeaning == "Chest"


def test_parametric_map_without_frame_of_reference_is_refused_by_name() -> None:
    ds = pydicom.dcmread(pydicom_data_file("693_UNCR.dcm"), stop_before_pixels=True)  # a real CT without one
    with pytest.raises(DicomExportError, match=f"series {ds.SeriesInstanceUID} has no Frame of Reference UID"):
        heatmap_parametric_map([ds], np.zeros((1, ds.Rows, ds.Columns), np.float32), label="n", model=MODEL)


def _comparable(flags: Sequence[Flag]) -> dict[str, dict]:
    return {f.id: f.to_dict() for f in flags}


def test_sr_import_reads_radscope_srs_back(tmp_path: Path) -> None:
    store, _ = flagged_store(tmp_path)
    original = _comparable(store.flags())
    written = export_dicom(store, tmp_path / "out")
    with ReviewStore(tmp_path / "other.sqlite3") as other:
        outcome, skipped = import_sr(other, tmp_path / "out")  # the folder: KOS skipped, every SR read
        assert skipped == [] and outcome == {"added": 5}
        back = _comparable(other.flags())
        assert back == original  # regions, verdicts, reviewer, label, comment, model, slice, headers, times
        for uid in {f.study_uid for f in other.flags()}:
            assert other.study_header(uid) == store.study_header(uid)
        again, _ = import_sr(other, tmp_path / "out")
        assert again == {"unchanged": 5}  # idempotent by flag id
    sr = next(f.path for f in written if f.path.name == "SR_kim.dcm")
    [flag], _, _ = read_review_sr(sr)
    assert flag.region is not None and flag.region.kind == "polygon" and len(flag.region.points_px) == 4
    assert flag.label == "a very long label " * 5  # longer than a Code Meaning: from the flag record


def test_sr_import_newer_edit_wins_and_bad_files_are_named(tmp_path: Path) -> None:
    store, _ = flagged_store(tmp_path)
    export_dicom(store, tmp_path / "old")
    [jones_fn] = [f for f in store.flags() if f.reviewer == "jones" and f.verdict.value == "false_negative"]
    store.edit_flag(jones_fn.id, verdict="correct", comment="on second look")
    export_dicom(store, tmp_path / "new")
    with ReviewStore(tmp_path / "other.sqlite3") as other:
        import_sr(other, tmp_path / "old" / jones_fn.study_uid / "SR_jones.dcm")
        outcome, _ = import_sr(other, tmp_path / "new" / jones_fn.study_uid / "SR_jones.dcm")
        assert outcome == {"updated": 1, "unchanged": 1}
        assert other.get_flag(jones_fn.id).comment == "on second look"
        assert other.get_flag(jones_fn.id).verdict.value == "correct"
    ct = pydicom_test_file("CT_small.dcm")
    with pytest.raises(ImportFileError, match=f"{ct} is not a structured report"):
        read_review_sr(ct)
    junk = tmp_path / "junk.dcm"
    junk.write_bytes(b"\0" * 128 + b"DICM" + b"\xff" * 40)
    with pytest.raises(ImportFileError, match=f"{junk} is truncated or damaged"):
        read_review_sr(junk)
    whole = (tmp_path / "new" / jones_fn.study_uid / "SR_jones.dcm").read_bytes()
    cut = tmp_path / "cut.dcm"
    cut.write_bytes(whole[: len(whole) * 2 // 3])  # a transfer that stopped part way
    with pytest.raises(ImportFileError, match=f"{cut} is truncated or damaged: element"):
        read_review_sr(cut)


def test_review_import_cli_takes_an_sr_and_a_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store, _ = flagged_store(tmp_path)
    written = export_dicom(store, tmp_path / "out")
    target = str(tmp_path / "cli.sqlite3")
    sr = next(f.path for f in written if f.path.name == "SR_jones.dcm")
    assert main(["review", "import", str(sr), "--store", target]) == 0
    assert capsys.readouterr().out.strip() == "added 2, updated 0, unchanged 0"
    assert main(["review", "import", str(tmp_path / "out"), "--store", target]) == 0
    assert capsys.readouterr().out.strip() == "added 3, updated 0, unchanged 2"  # jones already in
    assert main(["review", "import", str(tmp_path / "ct"), "--store", target]) == 2
    assert "holds no DICOM structured report" in capsys.readouterr().err


def test_demo_study_passes_dciodvfy(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The demo study's writers (CT slices, DX radiograph) at a small size: same code, same headers."""
    from phantom import ChestParams
    from viewer.dicom import synthetic

    small = ChestParams(n_slices=6, matrix=(64, 64), slice_spacing=8.0, n_nodules=0, nodules=synthetic.DEMO_NODULES,
                        vessel_min_radius_mm=1.5, seed=synthetic.DEMO_SEED)
    monkeypatch.setattr(synthetic, "demo_params", lambda: small)
    truth = synthetic.generate_demo_study(tmp_path / "demo")
    ct = sorted((tmp_path / "demo" / "ct").iterdir())
    assert len(ct) == 6
    for path in ct:
        assert_valid(path, "CTImage")
    xr = tmp_path / "demo" / truth["radiograph"]["file"]
    assert pydicom.dcmread(xr, stop_before_pixels=True).Modality == "DX"
    assert_valid(xr, "DXImageForPresentation")


@pytest.mark.parametrize("modality", ["CR", "DX"])
@pytest.mark.parametrize("photometric", ["MONOCHROME1", "MONOCHROME2"])
def test_radiograph_writer_passes_dciodvfy(modality: str, photometric: str, tmp_path: Path) -> None:
    from phantom import ChestParams, make_chest_ct, make_chest_radiograph
    from viewer.dicom import synthetic

    ph = make_chest_ct(ChestParams(n_slices=6, matrix=(48, 48), slice_spacing=8.0, n_nodules=1,
                                   vessel_min_radius_mm=1.5, seed=3))
    path = tmp_path / "xr.dcm"
    synthetic.write_radiograph(make_chest_radiograph(ph), path, modality=modality, photometric=photometric,  # type: ignore[arg-type]
                               compression="rle")
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    assert ds.LossyImageCompression == "00" and ds.AnatomicRegionSequence[0].CodeMeaning == "Chest"
    assert_valid(path, "CRImage" if modality == "CR" else "DXImageForPresentation")



@pytest.mark.parametrize("options", [
    {},
    {"orientation": "coronal", "shuffle_frames": True, "per_frame_rescale": True, "compression": "rle"},
    {"orientation": "oblique", "angles_deg": (10, 0, 5), "compression": "big-endian"},
])
def test_enhanced_ct_writer_passes_dciodvfy(options: dict, tmp_path: Path) -> None:
    from phantom import ChestParams, make_chest_ct
    from viewer.dicom import synthetic

    ph = make_chest_ct(ChestParams(n_slices=6, matrix=(48, 48), slice_spacing=8.0, n_nodules=1,
                                   vessel_min_radius_mm=1.5, seed=5))
    synthetic.write_enhanced_ct(ph, tmp_path / "enh.dcm", **options)
    ds = pydicom.dcmread(tmp_path / "enh.dcm", stop_before_pixels=True)
    assert ds.SharedFunctionalGroupsSequence[0].CTXRayDetailsSequence[0].KVP == 120
    # KVP stays at the top level too (RadScope's header readers and the summary's kVp split read it there);
    # Window explanations MEDIASTINUM/LUNG are not among the standard's defined terms but say what they are
    assert_valid(tmp_path / "enh.dcm", "EnhancedCTImage",
                 allowed_warnings=("(0x0018,0x0060) DS KVP", "Standard Extended SOP Class", "<MEDIASTINUM>"))


@pytest.mark.parametrize("options", [{"orientation": "sagittal", "signed": True}, {"compression": "jpeg-ls"}])
def test_ct_writer_variants_pass_dciodvfy(options: dict, tmp_path: Path) -> None:
    from phantom import ChestParams, make_chest_ct
    from viewer.dicom import synthetic

    ph = make_chest_ct(ChestParams(n_slices=6, matrix=(48, 48), slice_spacing=8.0, n_nodules=1,
                                   vessel_min_radius_mm=1.5, seed=5))
    truth = synthetic.write_ct_series(ph, tmp_path / "ct", **options)
    for path in truth.paths[:2]:
        # a cut other than axial says REFORMATTED (CT's defined terms for value 3 are AXIAL and LOCALIZER)
        assert_valid(path, "CTImage", allowed_warnings=("<REFORMATTED> for value 3",))


def test_sr_import_keeps_the_frame_of_a_multiframe_flag(tmp_path: Path) -> None:
    from viewer.review.source import context_at

    path = pydicom_test_file("eCT_Supplemental.dcm")  # a real enhanced CT: slice 0 is frame 2
    with ReviewStore(tmp_path / "r.sqlite3") as store:
        store.add_flag(context_at(path, 0), "false_positive", "nodule", reviewer="ann",
                       region=Region.make("ellipse", [(100, 120), (140, 150)]))
        store.add_flag(context_at(path, 1), "uncertain", "nodule", reviewer="ann")
        original = _comparable(store.flags())
        export_dicom(store, tmp_path / "out")
    with ReviewStore(tmp_path / "back.sqlite3") as back:
        import_sr(back, tmp_path / "out")
        assert _comparable(back.flags()) == original
        assert sorted(f.frame_number for f in back.flags()) == [1, 2]
