"""Generated series with known truth: sorting, geometry in physical space, grouping, warnings."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import numpy as np
import pytest

from tests.test_dicom_factory import AXIAL, CORONAL, SAGITTAL, write_enhanced, write_series
from viewer.dicom import LoadCancelled, Volume, load_volume, open_volume, scan

OBLIQUE = tuple(
    np.concatenate([
        np.array([np.cos(0.4), np.sin(0.4), 0.0]),
        np.array([-np.sin(0.4) * np.cos(0.3), np.cos(0.4) * np.cos(0.3), -np.sin(0.3)]),
    ]).round(8)
)


def _check_physical(vol: Volume, truth) -> None:  # type: ignore[no-untyped-def]
    """Every slice's first voxel at its IPP; voxel (i, j) offsets along the row/column cosines."""
    assert np.array_equal(vol.array, truth.values.astype(np.float32))
    for k in range(vol.shape[0]):
        assert np.allclose(vol.index_to_lps((0, 0, k)), truth.positions[k], atol=1e-4)
    i, j, k = 3, 5, vol.shape[0] - 1
    expected = truth.positions[k] + i * truth.pixel_spacing[1] * truth.orientation[:3] + j * truth.pixel_spacing[0] * truth.orientation[3:]
    assert np.allclose(vol.index_to_lps((i, j, k)), expected, atol=1e-4)
    assert np.allclose(vol.lps_to_index(expected), (i, j, k), atol=1e-6)
    assert vol.sop_instance_uids == truth.sop_uids


@pytest.mark.parametrize("orientation", [AXIAL, SAGITTAL, CORONAL, OBLIQUE], ids=["axial", "sagittal", "coronal", "oblique"])
def test_shuffled_series_sorted_along_normal_with_true_geometry(tmp_path: Path, orientation) -> None:  # type: ignore[no-untyped-def]
    truth = write_series(tmp_path, n=7, orientation=orientation, pixel_spacing=(0.6, 1.3), step=1.75, slope=2.0, intercept=-1000)
    result = scan([tmp_path])
    assert result.errors == []
    [stack] = result.stacks
    assert stack.n_slices == 7 and (stack.rows, stack.columns) == (12, 10)
    assert stack.spacing_zyx == pytest.approx((1.75, 0.6, 1.3))
    assert stack.warnings == []
    vol = load_volume(stack)
    _check_physical(vol, truth)
    assert vol.info.series_uid == truth.series_uid and vol.info.modality == "CT"
    assert [w.name for w in vol.info.windows] == ["SOFT", "LUNG"]


def test_negative_step_series_still_increases_along_normal(tmp_path: Path) -> None:
    truth = write_series(tmp_path, n=5, step=-3.0)
    vol = open_volume(tmp_path)
    _check_physical(vol, truth)
    assert vol.spacing[2] == pytest.approx(3.0)
    assert np.allclose(vol.direction, np.eye(3))


def test_bright_voxel_lands_at_its_lps_point(tmp_path: Path) -> None:
    truth = write_series(tmp_path, n=6, orientation=OBLIQUE, pixel_spacing=(0.5, 0.8), step=2.0)
    vol = open_volume(tmp_path)
    k, j, i = 4, 7, 2
    point = truth.positions[k] + i * 0.8 * truth.orientation[:3] + j * 0.5 * truth.orientation[3:]
    vol.array[k, j, i] = 5000
    idx = np.rint(vol.lps_to_index(point)).astype(int)
    assert vol.array[idx[2], idx[1], idx[0]] == 5000


def test_gap_and_duplicates_warn(tmp_path: Path) -> None:
    write_series(tmp_path / "gap", n=6, offsets=[0, 2, 4, 6, 12, 14])
    [stack] = scan([tmp_path / "gap"]).stacks
    assert any("gap" in w for w in stack.warnings)
    write_series(tmp_path / "dup", n=6, offsets=[0, 2, 2, 4, 6, 8])
    [stack] = scan([tmp_path / "dup"]).stacks
    assert stack.n_slices == 5
    assert any("duplicate" in w for w in stack.warnings)
    write_series(tmp_path / "uneven", n=5, offsets=[0, 2, 4.3, 6, 8])
    [stack] = scan([tmp_path / "uneven"]).stacks
    assert any("variable slice spacing" in w and "resampled" in w for w in stack.warnings)


def test_gantry_tilt_keeps_every_slice_at_its_position(tmp_path: Path) -> None:
    truth = write_series(tmp_path, n=5, step=2.0, tilt_shift=(0.0, 0.35, 0.0))
    [stack] = scan([tmp_path]).stacks
    assert any("tilt" in w for w in stack.warnings)
    vol = load_volume(stack)
    for k in range(5):
        assert np.allclose(vol.slice_position(k), truth.positions[k], atol=1e-4)


def test_mixed_folder_two_series_localizer_and_junk(tmp_path: Path) -> None:
    a = write_series(tmp_path / "a", n=8, series_uid="1.2.3.100", study_uid="1.2.3")
    b = write_series(tmp_path / "b", n=4, orientation=SAGITTAL, series_uid="1.2.3.200", study_uid="1.2.3", seed=2)
    write_series(tmp_path / "a" / "loc", n=1, orientation=CORONAL, series_uid="1.2.3.100", study_uid="1.2.3",
                 image_type="ORIGINAL\\PRIMARY\\LOCALIZER", seed=9)
    (tmp_path / "notes.txt").write_text("not dicom")
    (tmp_path / "a" / "junk.dcm").write_bytes(b"\x00" * 10)
    result = scan([tmp_path])
    assert result.errors == []
    ids = [s.stack_id for s in result.stacks]
    assert ids == ["1.2.3.100", "1.2.3.100.2", "1.2.3.200"]
    assert [s.n_slices for s in result.stacks] == [8, 1, 4]
    assert result.find("1.2.3.100").n_slices == 8  # type: ignore[union-attr]
    vol = open_volume([tmp_path], series_uid="1.2.3.200")
    assert np.array_equal(vol.array, b.values)
    assert np.array_equal(open_volume([tmp_path]).array, a.values)


def test_enhanced_multiframe_shuffled_frames_per_frame_rescale(tmp_path: Path) -> None:
    truth = write_enhanced(tmp_path / "enh.dcm", n=6)
    [stack] = scan([tmp_path]).stacks
    vol = load_volume(stack)
    assert np.allclose(vol.array, truth.values)
    for k in range(6):
        assert np.allclose(vol.slice_position(k), truth.positions[k], atol=1e-5)
    assert sorted(f for f in vol.frame_numbers if f) == list(range(1, 7))
    assert vol.spacing_zyx == pytest.approx((3.0, 1.1, 0.8))


def test_first_slice_callback_comes_first_then_all(tmp_path: Path) -> None:
    write_series(tmp_path, n=9)
    [stack] = scan([tmp_path]).stacks
    seen: list[int] = []
    lock = threading.Lock()

    def on_slice(k: int, arr: np.ndarray) -> None:
        with lock:
            seen.append(k)
        assert arr.shape == (12, 10)

    vol = load_volume(stack, on_slice=on_slice, first=4, workers=3)
    assert seen[0] == 4 and sorted(seen) == list(range(9))
    assert vol.shape == (9, 12, 10)


def test_cancel_stops_loading(tmp_path: Path) -> None:
    write_series(tmp_path, n=5)
    [stack] = scan([tmp_path]).stacks
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(LoadCancelled):
        load_volume(stack, cancel=cancel)


def test_zip_archive(tmp_path: Path, radscope_home: Path) -> None:
    import gc

    truth = write_series(tmp_path / "s", n=5)
    shutil.make_archive(str(tmp_path / "series"), "zip", tmp_path / "s")
    shutil.rmtree(tmp_path / "s")
    result = scan([tmp_path])  # a folder holding the archive
    [stack] = result.stacks
    assert all(Path(f).is_relative_to(radscope_home / "cache") for f in stack.files)
    assert np.array_equal(load_volume(stack).array, truth.values)
    assert stack.read_header(0).SOPInstanceUID == truth.sop_uids[0]
    del result, stack
    gc.collect()
    assert list((radscope_home / "cache" / "zip").iterdir()) == []  # the extracted copy goes with the stacks


def test_to_sitk_roundtrip(tmp_path: Path) -> None:
    truth = write_series(tmp_path, n=4, orientation=OBLIQUE, pixel_spacing=(0.6, 0.9))
    vol = open_volume(tmp_path)
    img = vol.to_sitk()
    back = Volume.from_sitk(img, vol.sop_instance_uids)
    assert np.array_equal(back.array, vol.array)
    assert np.allclose(back.affine, vol.affine)
    point = img.TransformIndexToPhysicalPoint((2, 3, 1))
    assert np.allclose(point, vol.index_to_lps((2, 3, 1)))
    assert np.allclose(point, truth.positions[1] + 2 * 0.9 * truth.orientation[:3] + 3 * 0.6 * truth.orientation[3:])


def test_interleaved_echoes_split_into_stacks(tmp_path: Path) -> None:
    e1 = write_series(tmp_path, n=5, series_uid="1.2.826.0.7.1", study_uid="1.2.826.0.7", extra={"EchoNumbers": 1}, prefix="e1")
    e2 = write_series(tmp_path, n=5, series_uid="1.2.826.0.7.1", study_uid="1.2.826.0.7", extra={"EchoNumbers": 2},
                      prefix="e2", seed=11)
    result = scan([tmp_path])
    assert [s.n_slices for s in result.stacks] == [5, 5]
    assert [s.stack_id for s in result.stacks] == ["1.2.826.0.7.1", "1.2.826.0.7.1.2"]
    loaded = sorted((load_volume(s).array for s in result.stacks), key=lambda a: float(a[0, 0, 0] - e1.values[0, 0, 0]) != 0)
    assert np.array_equal(loaded[0], e1.values) and np.array_equal(loaded[1], e2.values)
    assert all(not s.warnings for s in result.stacks)


def test_orientation_jitter_does_not_split(tmp_path: Path) -> None:
    jitter = (1.0, 0.0004, 0.0, -0.0004, 1.0, 0.0)
    write_series(tmp_path, n=4, series_uid="1.2.826.0.8.1", study_uid="1.2.826.0.8", prefix="a", orientation=(0.9999999, 0.0004999, 0, -0.0004999, 0.9999999, 0))
    write_series(tmp_path, n=4, series_uid="1.2.826.0.8.1", study_uid="1.2.826.0.8", prefix="b", orientation=jitter, origin=(-40.0, -30.0, 20.0))
    [stack] = scan([tmp_path]).stacks
    assert stack.n_slices == 8


def test_dicomdir_written_by_pydicom_loads_the_series(tmp_path: Path) -> None:
    import pydicom
    from pydicom.fileset import FileSet

    truth = write_series(tmp_path / "src", n=4)
    fs = FileSet()
    for f in truth.files:
        fs.add(pydicom.dcmread(f))
    fs.write(tmp_path / "media")
    vol = open_volume([tmp_path / "media" / "DICOMDIR"])
    assert np.array_equal(vol.array, truth.values)
    assert np.allclose(vol.origin, truth.positions[0])


def test_a_slice_that_fails_to_decode_does_not_stop_the_series(tmp_path: Path) -> None:
    truth = write_series(tmp_path, n=6)
    [stack] = scan([tmp_path]).stacks
    broken = truth.files[2]
    broken.write_bytes(broken.read_bytes()[:-100])  # damaged after the scan
    vol = load_volume(stack, workers=2)
    good = [k for k in range(6) if k != 2]
    assert np.array_equal(vol.array[good], truth.values[good])
    assert np.all(vol.array[2] == truth.values[good].min())
    assert any(str(broken) in w and "truncated" in w for w in vol.warnings)
    assert [e.path for e in vol.info.extra["slice_errors"]] == [str(broken)]


def test_scan_reports_progress_and_can_be_cancelled(tmp_path: Path) -> None:
    write_series(tmp_path, n=70)
    calls: list[tuple[int, int]] = []
    result = scan([tmp_path], progress=lambda done, total: calls.append((done, total)))
    assert calls == [(0, 70), (64, 70), (70, 70)] and result.stacks[0].n_slices == 70
    cancel = threading.Event()
    cancel.set()
    assert scan([tmp_path], cancel=cancel).stacks == []


def test_mosaic_is_flagged(tmp_path: Path) -> None:
    write_series(tmp_path, n=2, image_type="ORIGINAL\\PRIMARY\\M\\ND\\MOSAIC", modality="MR")
    [stack] = scan([tmp_path]).stacks
    assert any("mosaic" in w for w in stack.warnings)


def test_ultrasound_spacing_from_region_calibration(tmp_path: Path) -> None:
    import pydicom
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence as DicomSequence

    truth = write_series(tmp_path, n=1, modality="US", shuffle=False)
    ds = pydicom.dcmread(truth.files[0])
    for keyword in ("PixelSpacing", "ImagePositionPatient", "ImageOrientationPatient"):
        delattr(ds, keyword)
    region = Dataset()
    region.PhysicalUnitsXDirection = region.PhysicalUnitsYDirection = 3  # cm
    region.PhysicalDeltaX, region.PhysicalDeltaY = 0.025, 0.02
    ds.SequenceOfUltrasoundRegions = DicomSequence([region])
    ds.save_as(truth.files[0])
    [stack] = scan([tmp_path]).stacks
    assert stack.spacing_zyx[1:] == pytest.approx((0.2, 0.25))
    assert any("ultrasound region" in w for w in stack.warnings)
