"""Turning `radscope infer` results into a ranked review worklist (issue 16): near-threshold scores, images
unlike the training data and diffuse heatmaps come first, each with its reason."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from phantom import make_chest_ct
from phantom.model import ChestParams
from tests.support.packages import LUNG_INPUT, write_tiny_package
from viewer.batch.series import write_heatmap
from viewer.batch.worklist import diffuseness, near_threshold, rank_folder
from viewer.cli import main
from viewer.dicom import Volume
from viewer.dicom.synthetic import write_ct_series
from viewer.review import ReviewStore

SHAPE = (10, 32, 32)


def _series(out: Path, name: str, *, top: float, heat: str, ood: int = 0, threshold: float = 0.5) -> str:
    """An infer output folder whose truth is known: slice 4 scores ``top``, the rest 0.01; its heatmap at
    slice 4 is a 3x3 blob (``focal``) or covers the whole image (``diffuse``); ``ood`` slices flagged."""
    study = f"1.2.3.{len(name)}.{ord(name[0])}"
    folder = out / f"{study}.9"
    folder.mkdir(parents=True)
    vol = Volume(array=np.zeros(SHAPE, np.float32), origin=np.zeros(3), spacing=np.array([0.7, 0.7, 2.0]),
                 direction=np.eye(3), sop_instance_uids=[f"{study}.9.{k}" for k in range(SHAPE[0])])
    maps = np.zeros(SHAPE, np.float32)
    if heat == "focal":
        maps[4, 14:17, 14:17] = top
    else:
        maps[4] = top * np.linspace(0.6, 1.0, SHAPE[2])[None, :]
    write_heatmap(vol, maps, folder / "heatmap_nodule.nii.gz")
    slices = [{"index": k, "sop_instance_uid": vol.sop_instance_uids[k],
               "scores": {"nodule": top if k == 4 else 0.01}, "ood": 0.0, "ood_flag": k < ood}
              for k in range(SHAPE[0])]
    doc = {"model": {"name": "m", "version": "1", "sha256": "0" * 64}, "method": "gradcam", "labels": ["nodule"],
           "thresholds": {"nodule": threshold}, "study_uid": study, "series_uid": f"{study}.9", "modality": "CT",
           "description": name, "source": f"/archive/{name}", "slices": slices}
    (folder / "scores.json").write_text(json.dumps(doc))
    return study


def test_the_series_most_likely_wrong_rank_first_with_their_reasons(tmp_path: Path) -> None:
    out = tmp_path / "out"
    studies = {
        "diffuse": _series(out, "diffuse", top=0.95, heat="diffuse"),
        "unsure": _series(out, "unsure", top=0.52, heat="focal"),
        "foreign": _series(out, "foreign", top=0.05, heat="focal", ood=8),
        "confident": _series(out, "confident", top=0.99, heat="focal"),
    }
    (out / "broken").mkdir()
    (out / "broken" / "scores.json").write_text('{"slices": [')
    ranking = rank_folder(out)
    order = [s.study_uid for s in ranking.series]
    assert order == [studies[k] for k in ("diffuse", "unsure", "foreign", "confident")]
    by = {s.study_uid: s for s in ranking.series}
    assert by[studies["diffuse"]].diffuse == pytest.approx(1.0)
    assert "diffuse heatmap" in by[studies["diffuse"]].reason
    assert by[studies["unsure"]].near == pytest.approx(1 - 0.02 / 0.5)
    assert "top score 0.52 near its threshold 0.50" in by[studies["unsure"]].reason
    assert by[studies["foreign"]].ood_share == pytest.approx(0.8)
    assert "8 of 10 slices unlike the training data" in by[studies["foreign"]].reason
    assert by[studies["confident"]].priority < 0.1 and by[studies["confident"]].reason == "nothing unusual"
    assert [str(p) for p, _ in ranking.errors] == [str(out / "broken")]
    assert "unreadable" in ranking.errors[0][1]


def test_rank_rules() -> None:
    assert near_threshold(0.5, 0.5) == 1.0 and near_threshold(1.0, 0.5) == 0.0 and near_threshold(0.0, 0.5) == 0.0
    assert near_threshold(0.9, 0.8) == pytest.approx(0.5) and near_threshold(0.4, 0.8) == pytest.approx(0.5)
    img = np.zeros((10, 10), np.float32)
    assert diffuseness(img) == 0.0
    img[0, :5] = 1.0
    assert diffuseness(img) == pytest.approx(0.05)


def test_review_worklist_add_from_puts_studies_in_rank_order(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                                             ) -> None:
    out = tmp_path / "out"
    low = _series(out, "confident", top=0.99, heat="focal")
    high = _series(out, "unsure", top=0.52, heat="focal")
    store = tmp_path / "review.sqlite3"
    with ReviewStore(store) as s:  # a study put on the worklist by hand before: unranked, after the ranked ones
        s.add_study("1.2.3.99", description="by hand")
    assert main(["review", "worklist", "--store", str(store), "--add-from", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [ln.split()[5] for ln in lines] == [high, low, "1.2.3.99"], lines
    assert "priority 1.00: nodule top score 0.52 near its threshold 0.50" in lines[0]  # 0.96 near + 0.04 focal
    with ReviewStore(store) as s:
        entries = s.worklist()
        assert [e.study_uid for e in entries] == [high, low, "1.2.3.99"]
        assert entries[0].source_path == "/archive/unsure" and entries[0].description == "CT unsure"
        assert entries[2].priority is None
        assert s.neighbour(None) == high and s.neighbour(high) == low and s.neighbour(low) == "1.2.3.99"


@pytest.mark.slow
def test_infer_worklist_ranks_a_real_run(tmp_path: Path, radscope_home: Path, capsys: pytest.CaptureFixture[str]
                                         ) -> None:
    phantom = make_chest_ct(ChestParams(n_slices=6, matrix=(40, 40), slice_spacing=6.0), seed=2)
    uids = [write_ct_series(phantom, tmp_path / "data" / f"s{i}", seed=i).study_uid for i in range(2)]
    package = write_tiny_package(tmp_path / "pkg", seed=1, labels=["nodule"], input=LUNG_INPUT)
    out = tmp_path / "out"
    assert main(["infer", str(tmp_path / "data"), "--model", str(package), "--device", "cpu", "--out", str(out),
                 "--worklist"]) == 0
    assert "worklist: 2 studies ranked" in capsys.readouterr().err
    with ReviewStore() as s:
        entries = s.worklist()
    assert sorted(e.study_uid for e in entries) == sorted(uids)
    assert all(e.priority is not None for e in entries)
    assert [e.priority for e in entries] == sorted((e.priority for e in entries), reverse=True)
    assert all(e.source_path == str((tmp_path / "data").resolve()) for e in entries)
