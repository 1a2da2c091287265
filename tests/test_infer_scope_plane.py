"""`radscope infer`: intended-use skips and --force, OOD fields, score-weighted heatmaps, axial reformats."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from tests.support.blob_model import blob_package, blob_phantom
from viewer.cli import main
from viewer.dicom.synthetic import write_ct_series


@pytest.fixture(scope="module")
def blob_pkg(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return blob_package(tmp_path_factory.mktemp("pkg") / "blob-detector")


def _argmax_index(path: Path) -> tuple[np.ndarray, sitk.Image]:
    img = sitk.ReadImage(str(path))
    arr = sitk.GetArrayFromImage(img)
    k, j, i = np.unravel_index(int(np.argmax(arr)), arr.shape)
    return np.array([i, j, k], dtype=np.float64), img


@pytest.mark.parametrize("orientation", ["axial", "coronal", "sagittal", "oblique"])
def test_heatmap_peak_lands_on_the_blob_in_every_acquisition(tmp_path: Path, blob_pkg: Path, orientation: str,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    ph, centre = blob_phantom()
    write_ct_series(ph, tmp_path / "dcm", orientation=orientation,
                    angles_deg=(25.0, -20.0, 15.0) if orientation == "oblique" else None)
    out = tmp_path / "out"
    assert main(["infer", str(tmp_path / "dcm"), "--model", str(blob_pkg), "--no-cache", "--device", "cpu",
                 "--out", str(out)]) == 0
    err = capsys.readouterr().err
    (folder,) = out.iterdir()
    doc = json.loads((folder / "scores.json").read_text())
    assert doc["in_scope"] is True and doc["heatmap_scale"] == "series"
    if orientation == "axial":
        assert doc["reformat"] is None and doc["plane"] == "axial"
    else:
        assert doc["reformat"]["plane"] == "axial" and f"{doc['plane']} acquisition" in err
        assert doc["plane"] == ("oblique" if orientation == "oblique" else orientation)
        # the model saw axial slices: its best one is the axial plane through the blob (z along the normal)
        best = max(doc["reformat"]["slices"], key=lambda s: s["scores"]["blob"])
        assert abs(best["position_mm"] - centre[2]) <= doc["reformat"]["spacing_mm"][2]
    peak, img = _argmax_index(folder / "heatmap_blob.nii.gz")
    truth = np.array(img.TransformPhysicalPointToContinuousIndex(tuple(centre)))
    assert np.all(np.abs(peak - truth) <= 1.0), (orientation, peak, truth)
    assert "map x slice score" in img.GetMetaData("descrip")


def test_per_slice_scale_is_an_option_and_says_so(tmp_path: Path, blob_pkg: Path) -> None:
    """Each slice scaled on its own puts the 3D argmax on the first slice with any signal, not the blob."""
    ph, centre = blob_phantom()
    write_ct_series(ph, tmp_path / "dcm")
    out = tmp_path / "out"
    assert main(["infer", str(tmp_path / "dcm"), "--model", str(blob_pkg), "--no-cache", "--device", "cpu",
                 "--heatmap-scale", "slice", "--out", str(out)]) == 0
    (folder,) = out.iterdir()
    peak, img = _argmax_index(folder / "heatmap_blob.nii.gz")
    truth = np.array(img.TransformPhysicalPointToContinuousIndex(tuple(centre)))
    assert abs(peak[2] - truth[2]) > 5 and "own max" in img.GetMetaData("descrip")
    assert json.loads((folder / "scores.json").read_text())["heatmap_scale"] == "slice"


def test_out_of_scope_series_is_skipped_with_the_reason_and_forced_runs_say_in_scope_false(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ph, _ = blob_phantom()
    truth = write_ct_series(ph, tmp_path / "dcm", patient={"age": "007Y"})
    pkg = blob_package(tmp_path / "pkg", scope={"modalities": ["CT"], "patient_age_years": [18, 120],
                                                "body_parts": ["ABDOMEN"]})
    out = tmp_path / "out"
    assert main(["infer", str(tmp_path / "dcm"), "--model", str(pkg), "--device", "cpu", "--out", str(out)]) == 3
    err = capsys.readouterr().err
    assert (f"{truth.series_uid}: outside blob-detector's intended use: Body part CHEST; this model is for ABDOMEN; "
            "Patient age 7 years; this model is for 18-120 years") in err.splitlines()
    assert not (out / truth.series_uid).exists()
    assert main(["infer", str(tmp_path / "dcm"), "--model", str(pkg), "--device", "cpu", "--force",
                 "--out", str(out)]) == 0
    doc = json.loads((out / truth.series_uid / "scores.json").read_text())
    assert doc["in_scope"] is False and doc["scope_reasons"][0] == "Body part CHEST; this model is for ABDOMEN"
    assert doc["ood_threshold"] is None and doc["slices"][0]["ood"] is None  # this package has no OOD statistics


def test_real_head_ct_is_out_of_distribution_for_the_bundled_ct_model(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The issue's case: a real head CT without BodyPartExamined passes the header rules; the OOD check
    catches it, nothing is written; --force writes it with in_scope false and the per-slice flag."""
    from tests.conftest import pydicom_data_file
    from viewer.dicom import scan

    path = pydicom_data_file("693_UNCR.dcm")
    (stack,) = scan([path]).stacks
    out = tmp_path / "out"
    assert main(["infer", str(path), "--model", "chest-nodule-demo", "--device", "cpu", "--no-cache",
                 "--out", str(out)]) == 3
    err = capsys.readouterr().err
    assert (f"{stack.stack_id}: outside chest-nodule-demo's intended use: images unlike the training data: "
            "1 of 1 slices") in err.splitlines()
    assert not (out / stack.info.series_uid).exists()
    assert main(["infer", str(path), "--model", "chest-nodule-demo", "--device", "cpu", "--force",
                 "--out", str(out)]) == 0
    doc = json.loads((out / stack.info.series_uid / "scores.json").read_text())
    assert doc["in_scope"] is False and doc["scope_reasons"] == ["images unlike the training data: 1 of 1 slices"]
    assert doc["slices"][0]["ood_flag"] is True and doc["slices"][0]["ood"] > doc["ood_threshold"]
    assert any("body part" in n for n in doc["scope_notes"])
