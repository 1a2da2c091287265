"""`radscope infer` and `radscope models` as DESIGN.md specifies them."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from inference.architectures import DemoCNN
from inference.package import save_package
from inference.runner import Runner
from tests.test_dicom_factory import write_series
from viewer.cli import main

FIELDS = {"name": "mr-tiny", "version": "0.3", "dims": 2, "labels": ["blob", "edge case"], "output": "sigmoid",
          "input": {"size": [32, 32], "channels": 1, "window": {"center": -900, "width": 600},
                    "modalities": ["MR"]},
          "explain": {"target_layer": "features"}}


@pytest.fixture(scope="module")
def built_package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    out = tmp_path_factory.mktemp("pkg") / "mr-tiny"
    save_package(DemoCNN(1, 2, widths=(4, 8)), FIELDS, out, torch.zeros(2, 1, 32, 32))
    return out


@pytest.fixture
def installed(built_package: Path, radscope_home: Path) -> Path:
    """The package copied into RADSCOPE_HOME/models (the user folder)."""
    dest = radscope_home / "models" / "mr-tiny"
    shutil.copytree(built_package, dest)
    return dest


def _read(path: Path) -> sitk.Image:
    return sitk.ReadImage(str(path))


def test_infer_writes_scores_and_heatmaps_on_the_convert_geometry(
        tmp_path: Path, installed: Path, capsys: pytest.CaptureFixture[str]) -> None:
    truth = write_series(tmp_path / "dcm", n=4, rows=24, cols=30, modality="MR", pixel_spacing=(0.6, 1.1),
                         tilt_shift=(0.0, 0.8, 0.0))
    out = tmp_path / "out"
    assert main(["infer", str(tmp_path / "dcm"), "--out", str(out), "--device", "cpu"]) == 0
    err = capsys.readouterr().err
    assert "radscope infer: model mr-tiny 0.3 on cpu" in err and "slices 4/4" in err
    folder = out / truth.series_uid
    doc = json.loads((folder / "scores.json").read_text())
    assert {"model", "method", "device", "labels", "slices", "timing_s"} <= set(doc)
    assert doc["model"]["name"] == "mr-tiny" and doc["model"]["version"] == "0.3"
    assert doc["model"]["sha256"] == json.loads((installed / "radscope-model.json").read_text())["weights"]["sha256"]
    assert doc["method"] == "gradcam" and doc["device"] == "cpu" and doc["labels"] == ["blob", "edge case"]
    assert [s["index"] for s in doc["slices"]] == [0, 1, 2, 3]
    assert [s["sop_instance_uid"] for s in doc["slices"]] == truth.sop_uids
    # the scores are the model's on the volume's modality values, slice by slice in normal order
    runner = Runner(installed, device="cpu")
    (res,) = list(runner.run(truth.values.astype(np.float32), method=None))
    got = np.array([[s["scores"][lab] for lab in ("blob", "edge case")] for s in doc["slices"]])
    np.testing.assert_allclose(got, res.scores, atol=1e-5)
    # heatmaps: float32 in [0, 1], one per label, on exactly the geometry `convert` writes
    assert main(["convert", str(tmp_path / "dcm"), str(tmp_path / "vol.nii.gz")]) == 0
    ref = _read(tmp_path / "vol.nii.gz")
    for name in ("blob", "edge_case"):
        img = _read(folder / f"heatmap_{name}.nii.gz")
        assert img.GetPixelID() == sitk.sitkFloat32
        assert img.GetSize() == ref.GetSize()
        np.testing.assert_allclose(img.GetOrigin(), ref.GetOrigin(), atol=1e-4)
        np.testing.assert_allclose(img.GetSpacing(), ref.GetSpacing(), atol=1e-6)
        np.testing.assert_allclose(img.GetDirection(), ref.GetDirection(), atol=1e-6)
        arr = sitk.GetArrayFromImage(img)
        assert arr.min() >= 0.0 and arr.max() <= 1.0 and arr.max() > 0.0
    # a rerun into the same folder redoes nothing; into another folder the cache answers, identical files
    first = sitk.GetArrayFromImage(_read(folder / "heatmap_blob.nii.gz"))
    mtime = (folder / "scores.json").stat().st_mtime_ns
    assert main(["infer", str(tmp_path / "dcm"), "--out", str(out), "--device", "cpu"]) == 0
    err = capsys.readouterr().err
    assert "already done" in err and "1 skipped" in err and "results from the cache" not in err
    assert (folder / "scores.json").stat().st_mtime_ns == mtime
    other = tmp_path / "out2" / truth.series_uid
    assert main(["infer", str(tmp_path / "dcm"), "--out", str(tmp_path / "out2"), "--device", "cpu"]) == 0
    assert "results from the cache" in capsys.readouterr().err
    np.testing.assert_array_equal(sitk.GetArrayFromImage(_read(other / "heatmap_blob.nii.gz")), first)
    assert json.loads((other / "scores.json").read_text())["slices"] == doc["slices"]


def test_infer_untilted_heatmap_matches_the_volume_grid(tmp_path: Path, built_package: Path) -> None:
    truth = write_series(tmp_path / "dcm", n=3, rows=20, cols=16, modality="MR")
    out = tmp_path / "out"
    assert main(["infer", str(tmp_path / "dcm"), "--model", str(built_package), "--explain", "hirescam",
                 "--batch-size", "2", "--no-cache", "--out", str(out)]) == 0
    heat = sitk.GetArrayFromImage(_read(out / truth.series_uid / "heatmap_blob.nii.gz"))
    assert heat.shape == (3, 20, 16)
    assert json.loads((out / truth.series_uid / "scores.json").read_text())["method"] == "hirescam"


def test_infer_errors_are_clear(tmp_path: Path, built_package: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_series(tmp_path / "dcm", n=2, modality="MR")
    out = str(tmp_path / "out")
    assert main(["infer", str(tmp_path / "dcm"), "--model", "no-such-model", "--out", out]) == 2
    assert "no-such-model: no such model package" in capsys.readouterr().err
    broken = tmp_path / "broken"
    shutil.copytree(built_package, broken)
    (broken / "model.pt2").write_bytes(b"tampered")
    assert main(["infer", str(tmp_path / "dcm"), "--model", str(broken), "--out", out]) == 2
    assert "broken/radscope-model.json: weights.sha256 does not match model.pt2" in capsys.readouterr().err
    assert main(["infer", str(tmp_path / "dcm"), "--model", str(built_package), "--explain", "magic", "--out", out]) == 2
    assert "--explain magic is not available" in capsys.readouterr().err
    assert main(["infer", str(tmp_path / "dcm"), "--model", str(built_package), "--series", "1.2.3", "--out", out]) == 1
    assert "no series 1.2.3 found" in capsys.readouterr().err
    assert main(["infer", str(tmp_path / "dcm"), "--out", out]) == 2  # nothing installed for MR
    assert "no installed model is offered for modality MR" in capsys.readouterr().err


def test_models_lists_installed_and_bad_packages(installed: Path, radscope_home: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    bad = radscope_home / "models" / "bad"
    bad.mkdir()
    (bad / "radscope-model.json").write_text("{}")
    assert main(["models", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    mine = [m for m in doc["models"] if m["origin"] == "user"]
    assert [m["name"] for m in mine] == ["mr-tiny"] and mine[0]["modalities"] == ["MR"]
    assert doc["errors"] == [{"path": str(bad), "error": "bad/radscope-model.json: format is missing"}]
    assert main(["models"]) == 0
    text = capsys.readouterr().out
    assert "mr-tiny 0.3  [user]" in text and "BAD " in text


def test_infer_gives_monochrome1_and_monochrome2_radiographs_the_same_result(tmp_path: Path) -> None:
    """The bundled radiograph model on one image written both ways: identical scores and heatmaps."""
    from phantom.radiograph import Radiograph
    from viewer.dicom.synthetic import write_radiograph

    yy, xx = np.mgrid[0:96, 0:80]
    image = (0.2 + 0.5 * np.exp(-((yy - 40) ** 2 + (xx - 50) ** 2) / 200.0) + 0.002 * xx).astype(np.float32)
    rad = Radiograph(image=image, nodule_mask=np.zeros(image.shape, bool), nodules=[], pixel_spacing=(3.0, 3.0),
                     line_integral=image)
    docs, heat = {}, {}
    for photometric in ("MONOCHROME1", "MONOCHROME2"):
        truth = write_radiograph(rad, tmp_path / photometric / "xr.dcm", photometric=photometric, bits=12)
        out = tmp_path / f"out-{photometric}"
        assert main(["infer", str(truth.path), "--out", str(out), "--device", "cpu", "--no-cache",
                     "--force"]) == 0  # a drawn blob, not a chest film: out of distribution
        (folder,) = out.iterdir()
        docs[photometric] = json.loads((folder / "scores.json").read_text())
        heat[photometric] = sitk.GetArrayFromImage(_read(folder / "heatmap_nodule.nii.gz"))
    assert docs["MONOCHROME1"]["monochrome1_inverted"] and not docs["MONOCHROME2"]["monochrome1_inverted"]
    assert docs["MONOCHROME1"]["model"]["name"] == "cxr-nodule-demo"
    assert docs["MONOCHROME1"]["slices"][0]["scores"] == docs["MONOCHROME2"]["slices"][0]["scores"]
    np.testing.assert_array_equal(heat["MONOCHROME1"], heat["MONOCHROME2"])
