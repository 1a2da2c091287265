"""Slices at their true places: gaps kept as missing slices, variable pitch resampled, sparse stacks refused;
`convert` writes the same geometry. Generated series whose truth is known."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

from phantom import ChestParams, make_chest_ct
from phantom.model import Phantom
from tests.test_dicom_factory import write_series
from viewer.cli import main
from viewer.dicom import DicomFileError, load_volume, scan
from viewer.dicom.grid import fit_grid
from viewer.dicom.synthetic import write_ct_series
from viewer.dicom.volume import Volume


@pytest.fixture(scope="module")
def ph() -> Phantom:
    params = ChestParams(n_slices=30, matrix=(48, 64), pixel_spacing=(4.0, 3.5), slice_spacing=1.5,
                         n_nodules=1, noise=False, seed=5)
    return make_chest_ct(params)


def _header_centres(paths: list[Path]) -> dict[str, np.ndarray]:
    """SOP Instance UID -> LPS of the image centre, from each file's own header."""
    out = {}
    for p in paths:
        ds = pydicom.dcmread(p, stop_before_pixels=True)
        iop = np.asarray(ds.ImageOrientationPatient, dtype=float)
        ipp = np.asarray(ds.ImagePositionPatient, dtype=float)
        row_mm, col_mm = (float(v) for v in ds.PixelSpacing)
        centre = ipp + iop[:3] * col_mm * (ds.Columns - 1) / 2 + iop[3:] * row_mm * (ds.Rows - 1) / 2
        out[str(ds.SOPInstanceUID)] = centre
    return out


def _check_centres(vol: Volume, paths: list[Path], tol: float = 0.01) -> None:
    centres = _header_centres(paths)
    k_of = {uid: k for k, uid in enumerate(vol.sop_instance_uids) if uid}
    assert set(k_of) == set(centres)
    _, rows, cols = vol.shape
    for uid, centre in centres.items():
        got = vol.index_to_lps(((cols - 1) / 2, (rows - 1) / 2, k_of[uid]))
        assert np.linalg.norm(got - centre) <= tol, (uid, got, centre)


@pytest.mark.parametrize("orientation", ["axial", "oblique"])
def test_missing_slices_keep_every_slice_at_its_place(ph: Phantom, tmp_path: Path, orientation: str) -> None:
    truth = write_ct_series(ph, tmp_path, orientation=orientation, missing=[4, 11, 12], shuffle_names=True)
    assert truth.missing is not None
    [stack] = scan([tmp_path]).stacks
    assert stack.n_slices == truth.shape[0] and len(stack.slices) == truth.shape[0] - 3
    assert stack.spacing[2] == pytest.approx(truth.spacing[2], abs=1e-6)  # the true step, not extent / (n - 1)
    assert any("3 missing slice(s) at 4, 11-12" in w for w in stack.warnings), stack.warnings
    vol = load_volume(stack)
    assert np.array_equal(vol.missing, truth.missing)
    assert vol.sop_instance_uids == truth.sop_instance_uids
    assert np.allclose(vol.origin, truth.origin, atol=1e-4) and np.allclose(vol.direction, truth.direction, atol=1e-6)
    _check_centres(vol, truth.paths)
    present = ~truth.missing
    assert np.array_equal(vol.array[present], truth.hu[present])
    assert np.all(vol.array[truth.missing] == vol.array[present].min())
    with pytest.raises(ValueError, match="not acquired"):
        stack.read_header(4)
    assert stack.read_header(5).SOPInstanceUID == truth.sop_instance_uids[5]


def test_missing_first_slice_requested_first_and_all_reported(ph: Phantom, tmp_path: Path) -> None:
    truth = write_ct_series(ph, tmp_path, missing=[2])
    [stack] = scan([tmp_path]).stacks
    seen: list[int] = []
    vol = load_volume(stack, first=2, on_slice=lambda k, _a: seen.append(k), integers=True)
    assert seen[0] in (1, 3) and sorted(seen) == list(range(truth.shape[0])) and seen[-1] == 2
    assert vol.array.dtype == np.int16 and vol.missing[2]


@pytest.mark.parametrize("suffix", [".nii.gz", ".mha", ".nrrd"])
def test_convert_writes_the_gapped_geometry(ph: Phantom, tmp_path: Path, suffix: str) -> None:
    truth = write_ct_series(ph, tmp_path / "in", orientation="oblique", missing=[7])
    out = tmp_path / f"out{suffix}"
    assert main(["convert", str(tmp_path / "in"), str(out)]) == 0
    img = sitk.ReadImage(str(out))
    assert img.GetSize() == truth.shape[::-1]
    assert np.allclose(img.GetSpacing(), truth.spacing, atol=1e-5)
    assert np.allclose(img.GetOrigin(), truth.origin, atol=1e-3)
    assert np.allclose(np.reshape(img.GetDirection(), (3, 3)), truth.direction, atol=1e-5)
    arr = sitk.GetArrayFromImage(img)
    assert arr.dtype == np.int16
    present = ~truth.missing  # type: ignore[operator]
    assert np.array_equal(arr[present], truth.hu[present])
    for uid, centre in _header_centres(truth.paths).items():
        k = truth.sop_instance_uids.index(uid)
        idx = img.TransformPhysicalPointToContinuousIndex(tuple(float(v) for v in centre))
        assert np.allclose(idx, ((truth.shape[2] - 1) / 2, (truth.shape[1] - 1) / 2, k), atol=0.01 / 1.5)


def test_gap_with_gantry_tilt(tmp_path: Path) -> None:
    truth = write_series(tmp_path, n=7, step=2.0, tilt_shift=(0.0, 0.3, 0.0))
    truth.files[3].unlink()
    [stack] = scan([tmp_path]).stacks
    assert any("tilt" in w for w in stack.warnings) and any("1 missing slice(s) at 3" in w for w in stack.warnings)
    vol = load_volume(stack)
    assert vol.shape[0] == 7 and list(np.nonzero(vol.missing)[0]) == [3]
    for k in (0, 1, 2, 4, 5, 6):
        assert np.linalg.norm(vol.slice_position(k) - truth.positions[k]) <= 0.01
        assert np.array_equal(vol.array[k], truth.values[k])


def test_variable_pitch_is_resampled_linearly(tmp_path: Path) -> None:
    offsets = np.array([0, 1, 2, 3.5, 5, 7, 9, 11])
    truth = write_series(tmp_path, n=len(offsets), offsets=offsets, step=1.0)
    [stack] = scan([tmp_path]).stacks
    assert any("resampled (linear along the slice direction) onto a uniform 1.000 mm grid of 12 slices" in w
               for w in stack.warnings), stack.warnings
    vol = load_volume(stack)
    assert vol.shape[0] == 12 and vol.spacing[2] == pytest.approx(1.0)
    assert np.allclose(vol.slice_position(0), truth.positions[0], atol=1e-6)
    assert np.allclose(vol.slice_position(11), truth.positions[-1], atol=1e-6)
    values = truth.values.astype(np.float64)
    for g in range(12):
        hi = int(np.searchsorted(offsets, g, side="left"))
        if offsets[min(hi, 7)] == g:
            assert np.array_equal(vol.array[g], truth.values[hi]) and vol.sop_instance_uids[g] == truth.sop_uids[hi]
            assert not vol.interpolated[g]
            continue
        w = (g - offsets[hi - 1]) / (offsets[hi] - offsets[hi - 1])
        assert np.allclose(vol.array[g], (1 - w) * values[hi - 1] + w * values[hi], atol=1e-3)
        assert vol.interpolated[g] and vol.sop_instance_uids[g] == ""
    assert not vol.missing.any()


def test_too_sparse_stack_is_refused_with_the_reason(tmp_path: Path) -> None:
    write_series(tmp_path, n=4, offsets=[0, 1, 2, 100], step=1.0)
    result = scan([tmp_path])
    [stack] = result.stacks
    assert any("too sparse" in w for w in stack.warnings)
    with pytest.raises(DicomFileError, match="too sparse for one volume: 4 slices spread over 101 positions"):
        load_volume(stack)
    assert main(["convert", str(tmp_path), str(tmp_path / "out.mha")]) == 1
    assert not (tmp_path / "out.mha").exists()


def test_header_rounding_jitter_stays_on_the_grid() -> None:
    rng = np.random.default_rng(3)
    k = np.array([0, 1, 2, 3, 5, 6, 7, 8, 9])
    d = k * 0.625 + rng.uniform(-0.004, 0.004, len(k))
    positions = np.column_stack([np.full(len(k), 10.0), np.full(len(k), -5.0), d])
    fit = fit_grid(positions, np.array([0.0, 0.0, 1.0]))
    assert fit.grid.resample is None and fit.grid.n == 10 and list(np.nonzero(fit.grid.missing)[0]) == [4]
    assert np.linalg.norm(fit.step) == pytest.approx(0.625, abs=0.002)


# -- writers and integers ---------------------------------------------------------------------------------
def _volume(array: np.ndarray) -> Volume:
    d = np.array([[0.0, 0.6, 0.8], [1.0, 0.0, 0.0], [0.0, 0.8, -0.6]])  # oblique, columns i, j, k
    return Volume(array=array, origin=np.array([-12.5, 30.25, 7.0]), spacing=np.array([0.7, 0.9, 1.25]),
                  direction=d, sop_instance_uids=[""] * array.shape[0])


@pytest.mark.parametrize("suffix", [".mha", ".nrrd", ".nii", ".nii.gz"])
@pytest.mark.parametrize("kind", ["int16", "uint16", "float32", "rgb"])
@pytest.mark.parametrize("compress", [False, True])
@pytest.mark.parametrize("handed", ["left", "right"])
def test_streamed_writers_read_back_by_simpleitk(tmp_path: Path, suffix: str, kind: str, compress: bool,
                                                 handed: str) -> None:
    from viewer.dicom.writers import write_volume

    rng = np.random.default_rng(1)
    if kind == "rgb":
        arr = rng.integers(0, 255, (4, 5, 6, 3)).astype(np.uint8)
    elif kind == "float32":
        arr = rng.normal(0, 100, (4, 5, 6)).astype(np.float32)
    else:
        arr = rng.integers(np.iinfo(kind).min, np.iinfo(kind).max, (4, 5, 6)).astype(kind)
    if kind != "rgb":
        arr[0, :2] = 0  # some air: compressible
    vol = _volume(arr)
    if handed == "right":  # a proper rotation (the other is a reflection): both must survive NIfTI's quaternion
        vol.direction[:, 2] *= -1
    path = write_volume(vol, tmp_path / f"v{suffix}", compress=compress)
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary file left beside it
    packed = suffix == ".nii.gz" or (compress and suffix != ".nii")
    with open(path, "rb") as f:
        head = f.read(400)
    assert (head[:2] == b"\x1f\x8b" or b"CompressedData = True" in head or b"encoding: gzip" in head) == packed
    img = sitk.ReadImage(str(path))
    back = sitk.GetArrayFromImage(img)
    assert back.dtype == arr.dtype and np.array_equal(back, arr)
    assert np.allclose(img.GetOrigin(), vol.origin, atol=1e-4) and np.allclose(img.GetSpacing(), vol.spacing)
    assert np.allclose(np.reshape(img.GetDirection(), (3, 3)), vol.direction, atol=1e-6)


@pytest.mark.parametrize("suffix", [".mha", ".nrrd"])
def test_compress_flag_opts_in(ph: Phantom, tmp_path: Path, suffix: str) -> None:
    truth = write_ct_series(ph, tmp_path / "in")
    plain, packed = tmp_path / f"plain{suffix}", tmp_path / f"packed{suffix}"
    assert main(["convert", str(tmp_path / "in"), str(plain)]) == 0
    assert main(["convert", str(tmp_path / "in"), str(packed), "--compress"]) == 0
    assert plain.stat().st_size > truth.hu.size * 2 and packed.stat().st_size < plain.stat().st_size / 2
    assert np.array_equal(sitk.GetArrayFromImage(sitk.ReadImage(str(packed))), truth.hu.astype(np.int16))
    assert np.array_equal(sitk.GetArrayFromImage(sitk.ReadImage(str(plain))), truth.hu.astype(np.int16))


def test_integers_stay_integers_and_overflow_falls_back_to_float(ph: Phantom, tmp_path: Path) -> None:
    truth = write_ct_series(ph, tmp_path / "ct")  # uint16, BitsStored 16, intercept -1024: int16 unless > 31743 HU
    vol = load_volume(scan([tmp_path / "ct"]).stacks[0], integers=True)
    assert vol.array.dtype == np.int16 and np.array_equal(vol.array, truth.hu)
    write_series(tmp_path / "big", n=3, intercept=40000.0)  # values near 40000: no 16-bit integer type holds them
    stack = scan([tmp_path / "big"]).stacks[0]
    vol = load_volume(stack, integers=True)
    assert vol.array.dtype == np.float32 and np.array_equal(vol.array, load_volume(stack).array)
    assert float(vol.array.min()) > 32767
    write_series(tmp_path / "frac", n=3, slope=0.5, intercept=-1024.0)
    assert load_volume(scan([tmp_path / "frac"]).stacks[0], integers=True).array.dtype == np.float32


def test_infer_on_a_gapped_series_marks_the_missing_slices(ph: Phantom, tmp_path: Path) -> None:
    import json

    truth = write_ct_series(ph, tmp_path / "in", missing=[9])
    out = tmp_path / "out"
    assert main(["infer", str(tmp_path / "in"), "--out", str(out), "--model", "chest-nodule-demo", "--force",
                 "--explain", "none"]) == 0
    [scores] = list(out.rglob("scores.json"))
    slices = json.loads(scores.read_text())["slices"]
    assert len(slices) == truth.shape[0]
    assert [s["index"] for s in slices if s["missing"]] == [9] and slices[9]["sop_instance_uid"] == ""
