"""Output names made from file content (tests/hostile/outputs.py): nothing lands outside the output folder,
whatever the UIDs, labels or reviewer names say; the content is still recorded truthfully."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.hostile import Case, case_ids, cases
from tests.hostile.models import FIELDS, good_pt2, write_package
from tests.hostile.outputs import HOSTILE_UIDS, write_series
from viewer.cli import main
from viewer.paths import MAX_COMPONENT, UnsafePathError, inside, safe_component, unique_components

OUTPUT_CASES = cases("outputs")
NASTY = [*HOSTILE_UIDS.values(), "", "a/b", "a\\b", "-rf", ".hidden", "con.txt", "é", "x" * 5000, "a\x00"]


def _files(root: Path) -> set[Path]:
    return {Path(d) / f for d, _, names in os.walk(root) for f in names}


@pytest.mark.parametrize("text", NASTY)
def test_safe_component_is_one_plain_name(text: str, tmp_path: Path) -> None:
    name = safe_component(text)
    assert name and "/" not in name and "\\" not in name and "\x00" not in name
    assert not name.startswith((".", "-")) and len(name) <= MAX_COMPONENT
    assert name == safe_component(text)  # stable
    path = inside(tmp_path, name)
    path.write_text("x")  # the file system accepts it, inside the folder
    assert path.parent == tmp_path.resolve()


def test_distinct_texts_keep_distinct_names() -> None:
    names = unique_components(["a b", "a_b", "A_B", "a/b", "ok"])
    assert len({n.lower() for n in names.values()}) == 5 and names["ok"] == "ok"
    assert safe_component("../../evil", tag_changes=True) != safe_component("_.._evil", tag_changes=True)
    assert safe_component("1.2.840.10008.5.1.4", tag_changes=True) == "1.2.840.10008.5.1.4"  # real UIDs as they are


def test_inside_refuses_what_climbs_out(tmp_path: Path) -> None:
    for bad in ("..", "../x", "/etc/passwd", "a/../../b"):
        with pytest.raises(UnsafePathError):
            inside(tmp_path / "out", bad)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "link").symlink_to(tmp_path)
    with pytest.raises(UnsafePathError):
        inside(tmp_path / "out", "link", "x")


@pytest.fixture
def installed(radscope_home: Path) -> Path:
    labels = ["../../label", "/abs", "a b", "a_b", "\x00"]
    return write_package(radscope_home / "models" / "labels", good_pt2(), labels=labels,
                         input={**FIELDS["input"]}, name="nasty-labels")


def _good_labels_package(home: Path) -> None:
    # good_pt2 has two outputs: the nasty-label card above needs five, so this one is what infer runs
    write_package(home / "models" / "two", good_pt2(), name="two", labels=["../../up", "a/b"])


@pytest.mark.parametrize("hostile", OUTPUT_CASES, ids=case_ids)
def test_infer_writes_inside_out_whatever_the_uid(hostile: Case, tmp_path: Path, radscope_home: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    _good_labels_package(radscope_home)
    work = tmp_path / "work"
    series = hostile.build(work)
    out = work / "deep" / "out"
    before = _files(tmp_path)
    code = main(["infer", str(series), "--out", str(out), "--device", "cpu", "--model", "two"])
    assert code == 0, capsys.readouterr().err
    new = _files(tmp_path) - before
    outside = {p for p in new if not p.resolve().is_relative_to(out.resolve())}
    assert not outside, outside
    written = list(out.glob("*/scores.json"))
    assert written
    uid = str(hostile.extra["uid"])
    if uid.strip():  # (a blank UID is no series UID: each file is its own stack)
        (scores,) = written
        assert json.loads(scores.read_text())["series_uid"] == uid  # recorded as the file says it
    for scores in written:
        assert sorted(p.name for p in scores.parent.glob("heatmap_*")) == sorted(
            f"heatmap_{n}.nii.gz" for n in unique_components(["../../up", "a/b"]).values())
    assert not any(radscope_home.parent.glob("evil*")) and not Path("/abs/path").exists()


def test_review_and_heatmap_exports_stay_inside(tmp_path: Path, radscope_home: Path) -> None:
    import pydicom

    from viewer.review import ReviewStore
    from viewer.review.dicom_export import export_dicom
    from viewer.review.heatmap_export import export_heatmaps
    from viewer.review.source import context_from_dataset

    uid = HOSTILE_UIDS["climbs"]
    series = write_series(tmp_path / "dcm", uid)
    _good_labels_package(radscope_home)
    infer_out = tmp_path / "a" / "infer"
    assert main(["infer", str(series), "--out", str(infer_out), "--device", "cpu", "--model", "two"]) == 0
    store = ReviewStore(tmp_path / "r.sqlite3")
    ds = pydicom.dcmread(series / "s1.dcm")
    for reviewer in ("../../../rev", "/abs/rev", "a\x00b"):
        store.add_flag(context_from_dataset(ds, 1), "false_positive", "../../label", reviewer=reviewer)
    out = tmp_path / "a" / "b" / "export"
    before = _files(tmp_path)
    written = export_dicom(store, out) + export_heatmaps(infer_out, series, out)
    store.close()
    new = _files(tmp_path) - before
    assert {f.path.resolve() for f in written} <= {p.resolve() for p in new}
    assert all(p.resolve().is_relative_to(out.resolve()) for p in new), new
    assert {f.kind for f in written} == {"KO", "SR", "PM"}
    assert len([f for f in written if f.kind == "SR"]) == 3


# -- results cache ---------------------------------------------------------------------------------------

CACHE_CASES = cases("caches")


@pytest.mark.parametrize("hostile", CACHE_CASES, ids=case_ids)
def test_corrupt_cache_entries_are_named_errors_without_allocating(hostile: Case, tmp_path: Path) -> None:
    import tracemalloc

    from inference.cache import CacheEntryError, ResultCache
    from tests.hostile.caches import KEY, SHAPE

    damaged = hostile.build(tmp_path / "cache")
    cache = ResultCache(tmp_path / "cache")
    tracemalloc.start()
    try:
        with pytest.raises(CacheEntryError) as info:
            cache.load(*KEY, expect=SHAPE)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert damaged.name in str(info.value) and str(hostile.extra["reason"]) in str(info.value), str(info.value)
    assert peak < 16 * 2**20, f"{peak / 2**20:.0f} MiB allocated reading a corrupt entry"
    assert cache.get(*KEY, expect=SHAPE) is None  # a miss for callers that only want a hit


def test_nan_scores_are_never_cached(tmp_path: Path) -> None:
    import numpy as np

    from inference.cache import ResultCache

    cache = ResultCache(tmp_path)
    with pytest.raises(ValueError, match="NaN"):
        cache.put("s", "ab" * 32, "none", ["a"], [0], np.array([[np.nan]], dtype=np.float32), {})
    assert not list(tmp_path.iterdir())


def test_infer_reports_a_corrupt_entry_and_recomputes(tmp_path: Path, radscope_home: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    from tests.hostile._dicom import good_series

    _good_labels_package(radscope_home)
    good_series(tmp_path / "dcm", n=3)
    args = ["infer", str(tmp_path / "dcm"), "--device", "cpu", "--model", "two"]
    assert main([*args, "--out", str(tmp_path / "o1")]) == 0
    first = json.loads(next((tmp_path / "o1").glob("*/scores.json")).read_text())
    (entry,) = (radscope_home / "cache").glob("*.npz")
    entry.write_bytes(b"PK\x03\x04 not really a zip")
    capsys.readouterr()
    assert main([*args, "--out", str(tmp_path / "o2")]) == 0
    err = capsys.readouterr().err
    assert f"ignoring a corrupt results-cache entry: {entry}" in err and "recomputing" in err, err
    second = json.loads(next((tmp_path / "o2").glob("*/scores.json")).read_text())
    assert second["cached"] is False and second["slices"] == first["slices"]
    assert main([*args, "--out", str(tmp_path / "o3")]) == 0  # the entry was rewritten: a hit now
    assert "results from the cache" in capsys.readouterr().err


def test_a_model_giving_nan_writes_no_scores(tmp_path: Path, radscope_home: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    import torch
    from torch import nn

    from inference.package import save_package
    from tests.hostile._dicom import good_series

    class NaNNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.features = nn.Conv2d(1, 2, 3, padding=1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            f = self.features(x).mean((2, 3))
            return torch.where(x.flatten(1)[:, :1] > -1e30, f * float("nan"), f)  # NaN for real inputs

    save_package(NaNNet().eval(), {**FIELDS, "name": "nan"}, radscope_home / "models" / "nan",
                 torch.zeros(2, 1, 32, 32))
    good_series(tmp_path / "dcm", n=3)
    code = main(["infer", str(tmp_path / "dcm"), "--device", "cpu", "--model", "nan", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code != 0 and "NaN or infinite scores for 3 of 3 slices" in err and "Traceback" not in err, err
    assert not list((tmp_path / "o").glob("*/scores.json"))
    assert "NaN" in (tmp_path / "o" / "errors.json").read_text()
    assert not list((radscope_home / "cache").glob("*.npz"))
