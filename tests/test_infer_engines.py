"""`radscope infer --engine local|ray`: the same files from both engines, reruns that redo nothing, a bad
series and a killed worker handled (issue 16). Ray runs as a private local instance started by the engine."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from phantom import make_chest_ct
from phantom.model import ChestParams
from tests.hostile._dicom import corrupt_j2k
from tests.support.packages import LUNG_INPUT, write_tiny_package
from inference.cache import stack_key
from inference.package import read_card
from viewer.batch.engines import FAULT_ENV, RayEngine, RunOptions
from viewer.batch.series import SeriesJob, SeriesOutcome
from viewer.cli import main
from viewer.dicom import scan
from viewer.dicom.synthetic import write_ct_series, write_enhanced_ct

pytest.importorskip("ray")
pytestmark = pytest.mark.slow

@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict[str, str]]:
    """Four CT series (axial, coronal, sagittal, one enhanced multi-frame) plus an undecodable one, and a
    tiny CT model package; returns (archive, package, {name: series uid})."""
    root = tmp_path_factory.mktemp("archive")
    phantom = make_chest_ct(ChestParams(n_slices=10, matrix=(48, 48), slice_spacing=6.0), seed=5)
    uids = {}
    for name in ("axial", "coronal", "sagittal"):
        uids[name] = write_ct_series(phantom, root / "data" / name, orientation=name).series_uid
    uids["enhanced"] = write_enhanced_ct(phantom, root / "data" / "enhanced" / "frames.dcm").series_uid
    (root / "data" / "bad").mkdir()
    corrupt_j2k(root / "data" / "bad" / "bad.dcm")
    (uids["bad"],) = [s.info.series_uid for s in scan([root / "data" / "bad"]).stacks]
    # MR too: the undecodable series is MR and must reach the decoder
    package = write_tiny_package(root / "ct-tiny", labels=["nodule", "vessel"],
                                 input={**LUNG_INPUT, "modalities": ["CT", "MR"]})
    return root / "data", package, uids


def _infer(data: Path, package: Path, out: Path, *extra: str) -> int:
    return main(["infer", str(data), "--model", str(package), "--device", "cpu", "--out", str(out), *extra])


def _outputs(out: Path, uid: str) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    doc = json.loads((out / uid / "scores.json").read_text())
    scores = np.array([[s["scores"][lab] for lab in doc["labels"]] for s in doc["slices"]])
    maps = {p.name: sitk.GetArrayFromImage(sitk.ReadImage(str(p))) for p in sorted((out / uid).glob("heatmap_*"))}
    return scores, maps


def test_ray_writes_what_local_writes_and_reruns_redo_nothing(
        archive: tuple[Path, Path, dict[str, str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    data, package, uids = archive
    local, distributed = tmp_path / "local", tmp_path / "ray"
    assert _infer(data, package, local, "--no-cache") == 0
    local_err = capsys.readouterr().err
    assert "4 done" in local_err and "1 failed" in local_err
    # the coronal series' worker is killed the first time it starts it: retried once on a new worker
    marker = tmp_path / "killed"
    monkeypatch.setenv(FAULT_ENV, f"{uids['coronal']}:{marker}")
    assert _infer(data, package, distributed, "--no-cache", "--engine", "ray", "--workers", "2") == 0
    err = capsys.readouterr().err
    assert marker.exists(), "the fault was never injected"
    assert "died while running" in err and "4 done" in err and "1 failed" in err, err
    for name in ("axial", "coronal", "sagittal", "enhanced"):
        want_scores, want_maps = _outputs(local, uids[name])
        got_scores, got_maps = _outputs(distributed, uids[name])
        np.testing.assert_allclose(got_scores, want_scores, atol=1e-5)
        assert got_maps.keys() == want_maps.keys() == {"heatmap_nodule.nii.gz", "heatmap_vessel.nii.gz"}
        for key, want in want_maps.items():
            np.testing.assert_allclose(got_maps[key], want, atol=1e-4)
    for out in (local, distributed):
        errors = json.loads((out / "errors.json").read_text())["errors"]
        assert [e["series_uid"] for e in errors] == [uids["bad"]]
        assert "JPEG 2000" in errors[0]["reason"] or "decode" in errors[0]["reason"].lower(), errors[0]
        assert not (out / uids["bad"] / "scores.json").exists()
    # a rerun over the same archive redoes nothing that is done (the failed series is tried again)
    stamps = {p: p.stat().st_mtime_ns for p in distributed.rglob("*.nii.gz")}
    monkeypatch.delenv(FAULT_ENV)
    assert _infer(data, package, distributed, "--engine", "ray", "--workers", "2") == 0
    err = capsys.readouterr().err
    assert "4 skipped" in err and "0 done" in err and "1 failed" in err, err
    assert stamps == {p: p.stat().st_mtime_ns for p in distributed.rglob("*.nii.gz")}


def test_a_series_whose_worker_always_dies_is_reported_and_the_rest_go_on(
        archive: tuple[Path, Path, dict[str, str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    data, package, uids = archive
    monkeypatch.setenv(FAULT_ENV, f"{uids['axial']}:")  # no marker: its worker dies every time
    out = tmp_path / "out"
    assert _infer(data, package, out, "--no-cache", "--engine", "ray", "--workers", "1") == 0
    err = capsys.readouterr().err
    assert "3 done" in err and "2 failed" in err, err
    errors = {e["series_uid"]: e for e in json.loads((out / "errors.json").read_text())["errors"]}
    assert set(errors) == {uids["axial"], uids["bad"]}
    assert errors[uids["axial"]]["attempts"] == 2 and "worker died" in errors[uids["axial"]]["reason"]
    for name in ("coronal", "sagittal", "enhanced"):
        assert (out / uids[name] / "scores.json").is_file()


def test_a_model_no_worker_can_load_stops_an_asked_for_run_else_fails_its_series(
        archive: tuple[Path, Path, dict[str, str]], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data, package, uids = archive
    broken = tmp_path / "broken"
    broken.mkdir()
    for p in package.iterdir():
        (broken / p.name).write_bytes(p.read_bytes())
    weights = next(p for p in broken.iterdir() if p.suffix == ".pt2")
    weights.write_bytes(weights.read_bytes()[:-100] + b"\0" * 100)  # the card's sha256 no longer matches
    # asked for by --model: nothing else can run
    assert _infer(data, broken, tmp_path / "out", "--engine", "ray", "--workers", "1") == 2
    err = capsys.readouterr().err
    assert "sha256" in err, err
    # chosen per series (no --model): that package's series fail with the reason, as in the local engine
    card = read_card(broken)
    stacks = [s for s in scan([data / "axial", data / "sagittal"]).stacks]
    jobs = [SeriesJob(stack=replace(s, keep_alive=None), folder=s.info.series_uid, model_key="k",
                      stack_key=stack_key(s.stack_id, s.sop_instance_uids)) for s in stacks]
    outcomes: list[SeriesOutcome] = []
    with RayEngine(RunOptions(device="cpu", model_errors_fatal=False), lambda _m: None, workers=1) as engine:
        engine.run(jobs, {"k": card}, tmp_path / "out2", outcomes.append)
    assert sorted(o.series_uid for o in outcomes) == sorted([uids["axial"], uids["sagittal"]])
    assert all(o.status == "failed" and "model cannot be loaded" in o.reason and "sha256" in o.reason
               for o in outcomes), outcomes
