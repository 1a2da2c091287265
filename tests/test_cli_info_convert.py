"""`radscope info` and `radscope convert` as DESIGN.md specifies them (JSON keys, exit codes, geometry)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from tests.conftest import pydicom_test_file
from tests.test_dicom_factory import CORONAL, SAGITTAL, write_series
from viewer.cli import main

SERIES_KEYS = {"study_uid", "series_uid", "modality", "description", "n_slices", "rows", "columns", "spacing_mm", "warnings"}


def _info_json(capsys: pytest.CaptureFixture[str], *paths: Path) -> tuple[int, dict]:  # type: ignore[type-arg]
    code = main(["info", *map(str, paths), "--json"])
    return code, json.loads(capsys.readouterr().out)


def test_info_json_lists_stacks_and_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_series(tmp_path / "a", n=5, series_uid="1.2.826.0.1.1", study_uid="1.2.826.0.1", pixel_spacing=(0.5, 0.75), step=2.0)
    write_series(tmp_path / "a" / "loc", n=1, orientation=CORONAL, series_uid="1.2.826.0.1.1", study_uid="1.2.826.0.1",
                 image_type="ORIGINAL\\PRIMARY\\LOCALIZER")
    (tmp_path / "bad.dcm").write_bytes(Path(pydicom_test_file("MR_truncated.dcm")).read_bytes())
    (tmp_path / "readme.txt").write_text("hello")
    code, doc = _info_json(capsys, tmp_path)
    assert code == 0
    assert set(doc) == {"series", "errors"}
    main_stack, loc = doc["series"]
    assert SERIES_KEYS <= set(main_stack)
    assert main_stack["series_uid"] == loc["series_uid"] == "1.2.826.0.1.1"
    assert main_stack["study_uid"] == "1.2.826.0.1" and main_stack["modality"] == "CT"
    assert (main_stack["n_slices"], main_stack["rows"], main_stack["columns"]) == (5, 12, 10)
    assert main_stack["spacing_mm"] == pytest.approx([2.0, 0.5, 0.75])
    assert loc["n_slices"] == 1 and loc["stack_id"] == "1.2.826.0.1.1.2"
    assert doc["errors"] == [{"path": str(tmp_path / "bad.dcm"), "error": doc["errors"][0]["error"]}]
    assert "truncated" in doc["errors"][0]["error"]


def test_info_exit_code_when_nothing_readable(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "x.txt").write_text("no dicom here")
    code, doc = _info_json(capsys, tmp_path)
    assert code == 1 and doc == {"series": [], "errors": []}
    code, doc = _info_json(capsys, tmp_path / "missing")
    assert code == 1 and doc["errors"][0]["path"] == str(tmp_path / "missing")


def test_info_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_series(tmp_path, n=3, offsets=[0, 1, 5])
    assert main(["info", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "CT" in out and "12 x 10" in out and "gap" in out


@pytest.mark.parametrize("suffix", [".nii.gz", ".nrrd", ".mha"])
def test_convert_geometry_read_back_by_simpleitk(tmp_path: Path, suffix: str, capsys: pytest.CaptureFixture[str]) -> None:
    truth = write_series(tmp_path / "in", n=6, orientation=SAGITTAL, pixel_spacing=(0.6, 0.8), step=1.5, slope=1.0, intercept=-1024)
    out = tmp_path / f"vol{suffix}"
    assert main(["convert", str(tmp_path / "in"), str(out)]) == 0
    img = sitk.ReadImage(str(out))
    arr = sitk.GetArrayFromImage(img)
    assert np.array_equal(arr, truth.values)
    assert np.allclose(img.GetSpacing(), (0.8, 0.6, 1.5))
    assert np.allclose(img.GetOrigin(), truth.positions[0], atol=1e-4)
    k, j, i = 4, 3, 7
    expected = truth.positions[k] + i * 0.8 * truth.orientation[:3] + j * 0.6 * truth.orientation[3:]
    assert np.allclose(img.TransformIndexToPhysicalPoint((i, j, k)), expected, atol=1e-3)
    assert arr[k, j, i] == truth.values[k, j, i]


def test_convert_npz_and_series_choice(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = write_series(tmp_path / "in" / "a", n=4, series_uid="1.2.826.0.9.1", slope=0.5, intercept=0.25)
    b = write_series(tmp_path / "in" / "b", n=7, series_uid="1.2.826.0.9.2", seed=3)
    out = tmp_path / "a.npz"
    assert main(["convert", str(tmp_path / "in"), str(out), "--series", "1.2.826.0.9.1"]) == 0
    data = np.load(out)
    assert data["volume"].dtype == np.float32 and np.array_equal(data["volume"], a.values)
    assert np.allclose(data["origin"], a.positions[0]) and np.allclose(data["spacing"], (0.9, 0.7, 2.5))
    assert np.allclose(data["direction"], np.eye(3))
    assert main(["convert", str(tmp_path / "in"), str(tmp_path / "b.npz")]) == 0  # largest by default
    data = np.load(tmp_path / "b.npz")
    assert data["volume"].dtype == np.int16 and np.array_equal(data["volume"], b.values)
    assert main(["convert", str(tmp_path / "in"), str(tmp_path / "c.npz"), "--series", "9.9.9"]) == 1
    assert main(["convert", str(tmp_path / "in"), str(tmp_path / "c.png")]) == 2


def test_convert_tilted_series_keeps_positions(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    truth = write_series(tmp_path / "in", n=5, step=2.0, tilt_shift=(0.0, 0.5, 0.0))
    out = tmp_path / "t.mha"
    assert main(["convert", str(tmp_path / "in"), str(out)]) == 0
    img = sitk.ReadImage(str(out))
    for k in range(5):
        assert np.allclose(img.TransformIndexToPhysicalPoint((0, 0, k)), truth.positions[k], atol=1e-3)


def test_convert_tilted_series_to_nifti_is_resampled_in_place(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    truth = write_series(tmp_path / "in", n=5, rows=16, cols=12, step=2.0, tilt_shift=(0.0, 0.5, 0.0))
    out = tmp_path / "t.nii.gz"
    assert main(["convert", str(tmp_path / "in"), str(out)]) == 0
    img = sitk.ReadImage(str(out))
    assert np.allclose(np.array(img.GetDirection()).reshape(3, 3), np.eye(3), atol=1e-6)
    arr = sitk.GetArrayFromImage(img)
    for k, j, i in [(0, 5, 4), (2, 8, 6), (4, 10, 3)]:
        point = truth.positions[k] + np.array([i * 0.9, j * 0.7, 0.0])
        idx = np.array(img.TransformPhysicalPointToContinuousIndex(tuple(point)))
        assert abs(idx[0] - i) < 1e-6 and abs(idx[2] - k) < 1e-6  # columns and slices stay on the grid
        ii, jj, kk = np.floor(idx + 1e-6).astype(int)
        # at most one row away, linearly interpolated: within the pattern's row step (7) plus its noise (10)
        assert abs(float(arr[kk, jj, ii]) - float(truth.values[k, j, i])) <= 7 + 10
