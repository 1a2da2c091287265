"""`radscope infer` heatmaps -> Parametric Maps on the source series (geometry checked)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

from tests.support.review_series import MODEL, make_ct_series
from viewer.cli import main
from viewer.dicom import scan
from viewer.review.dicom_export import DicomExportError
from viewer.review.heatmap_export import export_heatmaps


def _write_infer_output(tmp_path: Path, series: list, heat: np.ndarray, *, flip: bool = False) -> Path:
    """What `radscope infer` writes: scores.json and heatmap_<label>.nii.gz on the stack's geometry."""
    stack = scan([str(tmp_path / "ct")]).stacks[0]
    folder = tmp_path / "infer" / series[0].SeriesInstanceUID
    folder.mkdir(parents=True)
    (folder / "scores.json").write_text(json.dumps({"model": {"name": MODEL.name, "version": MODEL.version,
                                                              "sha256": MODEL.sha256}, "method": "gradcam"}))
    img = sitk.GetImageFromArray(heat[::-1] if flip else heat)
    origin = np.asarray(stack.origin, dtype=float)
    if flip:  # a file written in the opposite slice order starts at the last slice
        origin = origin + np.asarray(stack.direction)[:, 2] * stack.spacing[2] * (len(series) - 1)
    img.SetOrigin(tuple(origin))
    img.SetSpacing(tuple(float(v) for v in stack.spacing))
    img.SetDirection(tuple(float(v) for v in np.asarray(stack.direction).reshape(-1)))
    sitk.WriteImage(img, str(folder / "heatmap_nodule.nii.gz"))
    return tmp_path / "infer"


def test_heatmap_export_references_each_source_slice(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    series = make_ct_series(tmp_path / "ct", 3)
    heat = np.stack([np.full((128, 128), k / 4, np.float32) for k in range(3)])
    infer = _write_infer_output(tmp_path, series, heat)
    code = main(["review", "export", "--format", "dicom", "--out", str(tmp_path / "out"),
                 "--heatmaps", str(infer), "--source", str(tmp_path / "ct")])
    out = capsys.readouterr().out
    assert code == 0
    [line] = [ln for ln in out.splitlines() if ln.startswith("PM")]
    pm = pydicom.dcmread(line.split(maxsplit=1)[1])
    assert pm.ManufacturerModelName == f"{MODEL.name} {MODEL.version}"
    z_to_k = {round(float(ds.ImagePositionPatient[2]), 3): k for k, ds in enumerate(series)}
    for n, frame in enumerate(pm.PerFrameFunctionalGroupsSequence):
        k = z_to_k[round(float(frame.PlanePositionSequence[0].ImagePositionPatient[2]), 3)]
        assert frame.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID == series[k].SOPInstanceUID
        assert np.all(pm.pixel_array[n] == np.float32(k / 4))


def test_heatmap_export_of_a_gapped_series_maps_the_acquired_slices(tmp_path: Path) -> None:
    series = make_ct_series(tmp_path / "ct", 4)
    [gone] = [p for p in (tmp_path / "ct").iterdir() if pydicom.dcmread(p).SOPInstanceUID == series[1].SOPInstanceUID]
    gone.unlink()  # slice 1 missing: the volume keeps 4 slices, 1 of them blank
    heat = np.stack([np.full((128, 128), k / 4, np.float32) for k in range(4)])
    [path] = [f.path for f in export_heatmaps(_write_infer_output(tmp_path, series, heat), tmp_path / "ct",
                                              tmp_path / "out")]
    pm = pydicom.dcmread(path)
    refs = [f.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID
            for f in pm.PerFrameFunctionalGroupsSequence]
    by_uid = {ds.SOPInstanceUID: k for k, ds in enumerate(series)}
    assert sorted(by_uid[u] for u in refs) == [0, 2, 3]
    for n, uid in enumerate(refs):
        assert np.all(pm.pixel_array[n] == np.float32(by_uid[uid] / 4))


def test_heatmap_in_the_wrong_slice_order_is_refused(tmp_path: Path) -> None:
    series = make_ct_series(tmp_path / "ct", 3)
    infer = _write_infer_output(tmp_path, series, np.zeros((3, 128, 128), np.float32), flip=True)
    with pytest.raises(DicomExportError, match="is not the first slice of series"):
        export_heatmaps(infer, tmp_path / "ct", tmp_path / "out")
    with pytest.raises(DicomExportError, match="holds no <series_uid>/scores.json"):
        export_heatmaps(tmp_path / "ct", tmp_path / "ct", tmp_path / "out")


def test_heatmap_export_of_a_ct_without_birth_date_passes_dciodvfy(tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """The reviewer's path: `review export --heatmaps` on a real CT (CT_small's slices) that an
    anonymiser left without Patient's Birth Date used to crash in highdicom."""
    from tests.support.dicom3tools import assert_valid

    series = make_ct_series(tmp_path / "ct", 3)
    for path in (tmp_path / "ct").iterdir():
        ds = pydicom.dcmread(path)
        del ds.PatientBirthDate
        ds.save_as(path, enforce_file_format=True)
    infer = _write_infer_output(tmp_path, series, np.linspace(0, 1, 3 * 128 * 128, dtype=np.float32).reshape(3, 128, 128))
    assert main(["review", "export", "--format", "dicom", "--out", str(tmp_path / "out"),
                 "--heatmaps", str(infer), "--source", str(tmp_path / "ct")]) == 0
    [line] = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("PM")]
    path = line.split(maxsplit=1)[1]
    assert pydicom.dcmread(path).PatientBirthDate == ""
    assert_valid(path, "ParametricMap", allowed_warnings=("Unrecognized defined term <QUANTITY>", "Patient's Weight"))
