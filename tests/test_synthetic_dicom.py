"""Synthetic DICOM writers: valid files whose geometry and values read back exactly as the truth says."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

from phantom import ChestParams, NoduleSpec, make_chest_ct
from phantom.model import Phantom
from phantom.radiograph import make_chest_radiograph
from viewer.dicom import synthetic
from viewer.dicom.synthetic import SeriesTruth, write_ct_series, write_enhanced_ct, write_radiograph

NODULES = (NoduleSpec("solid", 16.0, "right", 0.5, hu=40.0), NoduleSpec("lobulated", 14.0, "left", 0.6, hu=20.0))


@pytest.fixture(scope="module")
def ph() -> Phantom:
    """Small, non-square pixels, no noise: nodules stand out clearly for the geometry checks."""
    params = ChestParams(n_slices=36, matrix=(72, 96), pixel_spacing=(4.0, 3.5), slice_spacing=5.0,
                         n_nodules=0, nodules=NODULES, noise=False, vessel_min_radius_mm=1.2, seed=21)
    return make_chest_ct(params)


def _read_sorted(truth: SeriesTruth) -> list[pydicom.Dataset]:
    """Datasets sorted by position along the slice normal (never by name or instance number)."""
    dss = [pydicom.dcmread(p) for p in truth.paths[0].parent.iterdir()]
    iop = np.asarray(dss[0].ImageOrientationPatient, dtype=float)
    normal = np.cross(iop[:3], iop[3:])
    return sorted(dss, key=lambda d: float(np.asarray(d.ImagePositionPatient, dtype=float) @ normal))


def _geometry(dss: list[pydicom.Dataset]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    iop = np.asarray(dss[0].ImageOrientationPatient, dtype=float)
    normal = np.cross(iop[:3], iop[3:])
    p0 = np.asarray(dss[0].ImagePositionPatient, dtype=float)
    p1 = np.asarray(dss[1].ImagePositionPatient, dtype=float)
    row, col = (float(v) for v in dss[0].PixelSpacing)
    spacing = np.array([col, row, float((p1 - p0) @ normal)])
    return p0, spacing, np.column_stack([iop[:3], iop[3:], normal])


def _nodule_hu_at(volume: np.ndarray, kji: np.ndarray) -> float:
    k, j, i = (int(round(v)) for v in kji)
    return float(volume[k, max(j - 1, 0) : j + 2, max(i - 1, 0) : i + 2].mean())


@pytest.mark.parametrize("orientation", ["axial", "coronal", "sagittal", "oblique"])
def test_geometry_and_values_read_back(ph: Phantom, orientation: str, tmp_path: Path) -> None:
    truth = write_ct_series(ph, tmp_path / orientation, orientation=orientation, shuffle_names=True,
                            shuffle_instance_numbers=True, shift=(5.0, -12.0, -300.0))
    assert np.allclose(truth.direction.T @ truth.direction, np.eye(3))
    assert np.allclose(np.cross(truth.direction[:, 0], truth.direction[:, 1]), truth.direction[:, 2])
    dss = _read_sorted(truth)
    assert [Path(d.filename).name for d in dss] == [p.name for p in truth.paths]
    assert [d.SOPInstanceUID for d in dss] == truth.sop_instance_uids
    if orientation != "axial":
        assert [p.name for p in truth.paths] != sorted(p.name for p in truth.paths)
    numbers = [int(d.InstanceNumber) for d in dss]
    assert sorted(numbers) == list(range(1, len(dss) + 1)) and numbers != sorted(numbers)
    origin, spacing, direction = _geometry(dss)
    assert np.allclose(origin, truth.origin, atol=1e-4)
    assert np.allclose(spacing, truth.spacing, atol=1e-4)
    assert np.allclose(direction, truth.direction, atol=1e-6)
    pixels = np.stack([d.pixel_array * float(d.RescaleSlope) + float(d.RescaleIntercept) for d in dss])
    assert np.array_equal(pixels.astype(np.float32), truth.hu)
    assert {d.SOPClassUID for d in dss} == {synthetic.CT_IMAGE_STORAGE}
    assert len({d.FrameOfReferenceUID for d in dss}) == 1
    # The nodules are where the DICOM geometry says the truth's LPS centres are.
    assert len(truth.nodules) == 2
    for nod in truth.nodules:
        ijk = ((np.asarray(nod.center_lps) - origin) @ direction) / spacing
        assert np.all(np.abs(ijk[::-1] - np.asarray(nod.center_index)) < 0.5)
        assert _nodule_hu_at(pixels, ijk[::-1]) > -500.0  # lung around it is below -750
        assert truth.nodule_mask[tuple(int(round(v)) for v in nod.center_index)]


@pytest.mark.parametrize("orientation", ["axial", "coronal", "sagittal", "oblique"])
def test_simpleitk_reads_the_same_volume(ph: Phantom, orientation: str, tmp_path: Path) -> None:
    truth = write_ct_series(ph, tmp_path, orientation=orientation, shuffle_names=True, shuffle_instance_numbers=True)
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(tmp_path)))
    img = reader.Execute()
    assert np.array_equal(sitk.GetArrayFromImage(img).astype(np.float32), truth.hu)
    assert np.allclose(img.GetOrigin(), truth.origin, atol=1e-3)
    assert np.allclose(img.GetSpacing(), truth.spacing, atol=1e-3)
    assert np.allclose(np.reshape(img.GetDirection(), (3, 3)), truth.direction, atol=1e-5)
    for nod in truth.nodules:
        idx = img.TransformPhysicalPointToContinuousIndex(nod.center_lps)
        assert np.all(np.abs(np.asarray(idx)[::-1] - np.asarray(nod.center_index)) < 0.5)


def test_axis_aligned_cuts_copy_the_phantom_exactly(ph: Phantom, tmp_path: Path) -> None:
    axial = write_ct_series(ph, tmp_path / "a")
    assert np.array_equal(axial.hu, np.clip(np.rint(ph.hu), -1024, None))
    assert np.array_equal(axial.nodule_mask, ph.nodule_mask)
    coronal = write_ct_series(ph, tmp_path / "c", orientation="coronal")
    # coronal slice k = phantom row j, image rows run superior -> inferior
    assert np.array_equal(coronal.hu, np.clip(np.rint(ph.hu), -1024, None).transpose(1, 0, 2)[:, ::-1, :])
    sagittal = write_ct_series(ph, tmp_path / "s", orientation="sagittal")
    assert sagittal.shape == (ph.shape[2], ph.shape[0], ph.shape[1])
    assert np.allclose(sagittal.direction[:, 2], [-1.0, 0.0, 0.0])  # slices run towards patient right


@pytest.mark.parametrize("compression", ["rle", "jpeg-ls", "jpeg2000", "deflate", "implicit", "big-endian"])
def test_compression_is_lossless(ph: Phantom, compression: str, tmp_path: Path) -> None:
    plain = write_ct_series(ph, tmp_path / "plain", signed=True)
    packed = write_ct_series(ph, tmp_path / compression, compression=compression, signed=compression != "jpeg2000")
    assert np.array_equal(plain.hu, packed.hu)
    ds = pydicom.dcmread(packed.paths[10])
    assert ds.file_meta.TransferSyntaxUID == synthetic.TRANSFER_SYNTAXES[compression]
    values = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    assert np.array_equal(values.astype(np.float32), plain.hu[10])


def test_rescale_slope_and_respacing(ph: Phantom, tmp_path: Path) -> None:
    truth = write_ct_series(ph, tmp_path, pixel_spacing=(3.0, 3.0), slice_spacing=4.0, rescale_slope=0.5)
    assert np.allclose(truth.spacing, [3.0, 3.0, 4.0])
    ds = pydicom.dcmread(truth.paths[0])
    assert float(ds.RescaleSlope) == 0.5 and ds.PixelSpacing == [3.0, 3.0]
    assert np.all(np.mod(truth.hu * 2.0, 1.0) == 0.0)  # half-HU steps


def test_uids_are_deterministic(ph: Phantom, tmp_path: Path) -> None:
    a = write_ct_series(ph, tmp_path / "a")
    b = write_ct_series(ph, tmp_path / "b")
    c = write_ct_series(ph, tmp_path / "c", seed=99)
    assert a.sop_instance_uids == b.sop_instance_uids and a.series_uid == b.series_uid
    # another cut of the same patient is another series in the same study
    d = write_ct_series(ph, tmp_path / "d", orientation="coronal")
    e = write_ct_series(ph, tmp_path / "e", slice_spacing=4.0)
    assert len({a.series_uid, d.series_uid, e.series_uid}) == 3 and a.study_uid == d.study_uid == e.study_uid
    assert a.frame_of_reference_uid == d.frame_of_reference_uid
    assert len(set(a.sop_instance_uids)) == len(a.sop_instance_uids)
    assert not set(a.sop_instance_uids) & set(c.sop_instance_uids) and a.study_uid != c.study_uid
    for uid in (a.study_uid, a.series_uid, a.frame_of_reference_uid, *a.sop_instance_uids):
        assert pydicom.uid.UID(uid).is_valid


def test_bad_arguments_are_refused(ph: Phantom, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="compression"):
        write_ct_series(ph, tmp_path, compression="zip")
    with pytest.raises(ValueError, match="orientation"):
        write_ct_series(ph, tmp_path, orientation="diagonal")


@pytest.mark.parametrize("shuffle", [False, True])
def test_enhanced_ct(ph: Phantom, shuffle: bool, tmp_path: Path) -> None:
    truth = write_enhanced_ct(ph, tmp_path / "enh.dcm", orientation="coronal", shuffle_frames=shuffle,
                              per_frame_rescale=shuffle)
    ds = pydicom.dcmread(truth.paths[0])
    assert ds.SOPClassUID == synthetic.ENHANCED_CT_IMAGE_STORAGE and int(ds.NumberOfFrames) == truth.shape[0]
    frames = ds.pixel_array
    normal = truth.direction[:, 2]
    per_frame = ds.PerFrameFunctionalGroupsSequence
    shared = ds.SharedFunctionalGroupsSequence[0]
    positions = [float(np.asarray(fg.PlanePositionSequence[0].ImagePositionPatient, dtype=float) @ normal) for fg in per_frame]
    order = np.argsort(positions)
    assert (list(order) != list(range(len(order)))) == shuffle
    assert [truth.frame_numbers[k] - 1 for k in range(truth.shape[0])] == list(order)
    for k, f in enumerate(order):
        fg = per_frame[int(f)]
        pvt = fg.PixelValueTransformationSequence[0] if "PixelValueTransformationSequence" in fg else \
            shared.PixelValueTransformationSequence[0]
        values = frames[f] * float(pvt.RescaleSlope) + float(pvt.RescaleIntercept)
        assert np.array_equal(values.astype(np.float32), truth.hu[k])
    first = np.asarray(per_frame[int(order[0])].PlanePositionSequence[0].ImagePositionPatient, dtype=float)
    assert np.allclose(first, truth.origin, atol=1e-4)


def test_engine_reads_enhanced_and_series_like_the_truth(ph: Phantom, tmp_path: Path) -> None:
    from viewer.dicom import open_volume

    truth = write_enhanced_ct(ph, tmp_path / "enh" / "enh.dcm", orientation="sagittal", shuffle_frames=True,
                              per_frame_rescale=True)
    vol = open_volume(str(tmp_path / "enh"))
    assert np.array_equal(vol.array, truth.hu)
    expected = truth.to_volume()
    assert vol.sop_instance_uids == expected.sop_instance_uids and vol.frame_numbers == expected.frame_numbers
    assert np.allclose(vol.origin, truth.origin, atol=1e-4) and np.allclose(vol.direction, truth.direction, atol=1e-6)
    series = write_ct_series(ph, tmp_path / "ser", orientation="oblique", angles_deg=(10, 25, -5), shuffle_names=True)
    vol = open_volume(str(tmp_path / "ser"))
    assert np.array_equal(vol.array, series.hu) and np.allclose(vol.spacing, series.spacing, atol=1e-4)


@pytest.mark.parametrize(("modality", "photometric"), [("DX", "MONOCHROME2"), ("CR", "MONOCHROME1")])
def test_radiograph_writer(ph: Phantom, modality: str, photometric: str, tmp_path: Path) -> None:
    rg = make_chest_radiograph(ph, seed=4)
    truth = write_radiograph(rg, tmp_path / "xr.dcm", modality=modality, photometric=photometric)  # type: ignore[arg-type]
    ds = pydicom.dcmread(truth.path)
    assert ds.Modality == modality and ds.PhotometricInterpretation == photometric and ds.ViewPosition == "PA"
    assert [float(v) for v in ds.ImagerPixelSpacing] == pytest.approx(list(rg.pixel_spacing))
    assert np.array_equal(ds.pixel_array, truth.pixels)
    shown = ds.pixel_array.astype(float) / 4095.0
    if photometric == "MONOCHROME1":
        shown = 1.0 - shown
    assert np.abs(shown - rg.image).max() <= 0.5 / 4095 + 1e-6
    assert len(truth.nodules) == 2


def test_demo_study_generated_once_and_bundled_copy_preferred(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from viewer import paths

    small = ChestParams(n_slices=16, matrix=(64, 64), slice_spacing=8.0, n_nodules=0, nodules=synthetic.DEMO_NODULES,
                        vessel_min_radius_mm=1.5, seed=synthetic.DEMO_SEED)
    monkeypatch.setattr(synthetic, "demo_params", lambda: small)
    monkeypatch.setattr(paths, "resources_dir", lambda: tmp_path / "resources")
    folder = synthetic.demo_study_dir()
    assert folder == paths.subdir("cache") / synthetic.DEMO_VERSION
    truth = json.loads((folder / "truth.json").read_text())
    assert truth["version"] == synthetic.DEMO_VERSION and len(truth["nodules"]) == 3
    masks = np.load(folder / "truth_masks.npz")
    assert masks["ct_nodule_mask"].shape[0] == 16
    assert all(masks["ct_nodule_mask"][n["slice"]].any() for n in truth["nodules"])
    files = sorted((folder / "ct").iterdir())
    assert len(files) == 16 and (folder / "xr" / "chest_pa.dcm").exists()
    for nod in truth["nodules"]:
        assert 0 <= nod["slice"] < 16
    stamp = (folder / "truth.json").stat().st_mtime_ns
    assert synthetic.demo_study_dir() == folder and (folder / "truth.json").stat().st_mtime_ns == stamp
    # another version or generator revision in the cache is regenerated
    for stale in ({"version": "demo-study-v0"}, {"revision": synthetic.DEMO_REVISION - 1}):
        (folder / "truth.json").write_text(json.dumps({**truth, **stale}))
        synthetic.demo_study_dir()
        fresh = json.loads((folder / "truth.json").read_text())
        assert fresh["version"] == synthetic.DEMO_VERSION and fresh["revision"] == synthetic.DEMO_REVISION
    assert [p.name for p in folder.parent.iterdir()] == [folder.name]  # no temporary folders left
    # a bundled copy wins
    bundled = tmp_path / "resources" / "demo-study"
    (bundled / "ct").mkdir(parents=True)
    (bundled / "truth.json").write_text(json.dumps(truth))
    assert synthetic.demo_study_dir() == bundled


def test_written_values_pass_pydicom_validation(ph: Phantom, tmp_path: Path) -> None:
    """Every element's value is valid for its VR (pydicom raises in RAISE mode otherwise)."""
    from pydicom import config

    ct = write_ct_series(ph, tmp_path / "ct", orientation="oblique")
    enh = write_enhanced_ct(ph, tmp_path / "enh.dcm", per_frame_rescale=True)
    xr = write_radiograph(make_chest_radiograph(ph, seed=1), tmp_path / "xr.dcm", modality="CR",
                          photometric="MONOCHROME1")
    old = config.settings.reading_validation_mode
    config.settings.reading_validation_mode = config.RAISE
    try:
        for path in (ct.paths[0], ct.paths[-1], enh.paths[0], xr.path):
            ds = pydicom.dcmread(path)
            for elem in ds.iterall():
                _ = elem.value  # converting raw values validates them
            assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
            assert ds.file_meta.MediaStorageSOPClassUID == ds.SOPClassUID
            for keyword in ("PatientName", "PatientID", "StudyInstanceUID", "SeriesInstanceUID", "Modality",
                            "Manufacturer", "BodyPartExamined", "StudyDate"):
                assert ds.get(keyword), f"{path.name}: {keyword} missing"
    finally:
        config.settings.reading_validation_mode = old
