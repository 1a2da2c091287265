"""Acquired gaps in a run on reformats: never read as data, marked where they are used, refused when too wide.

A sagittal series of the blob phantom (`tests/support/blob_model.py`) with slices left out whose truth is
known (`write_ct_series(missing=...)`): the reformat interpolates across one missing slice between its
acquired neighbours (not the blank the volume holds there), marks exactly the pixels interpolated across
it, a finding whose peak lies within one acquired slice of it says so, `radscope infer` writes the marks into scores.json, and two
consecutive missing slices put the series outside intended use (`--force` runs it, marked).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.support.blob_model import blob_package, blob_phantom
from viewer.ai import JobScheduler
from viewer.ai.model_input import model_input
from viewer.ai.reformat import MAX_BRIDGED_SLICES, reformat
from viewer.ai.reformat_run import ReformatInput, ReformatResults, grid_for, new_results
from viewer.ai.scope import scope_of_stack
from viewer.cli import main
from viewer.dicom import load_volume, scan
from viewer.dicom.synthetic import write_ct_series
from viewer.state.ai import finding_text

BLOB_K = 25
"""The acquired (sagittal) slice through the blob's centre in the written series."""


def _load(out: Path, orientation: str = "sagittal", missing: tuple[int, ...] = ()):  # type: ignore[no-untyped-def]
    ph, centre = blob_phantom()
    write_ct_series(ph, out, orientation=orientation, missing=missing,
                    angles_deg=(25.0, -20.0, 15.0) if orientation == "oblique" else None)
    (stack,) = scan([out]).stacks
    return stack, load_volume(stack, integers=True), centre


@pytest.fixture(scope="module")
def blob_pkg(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return blob_package(tmp_path_factory.mktemp("pkg") / "blob-detector", thresholds={"blob": 0.15})


@pytest.mark.parametrize("orientation", ["sagittal", "oblique"])
def test_a_missing_slice_is_interpolated_across_not_read_as_blank(tmp_path: Path, orientation: str) -> None:
    _, vol, centre = _load(tmp_path / "gap", orientation, missing=(BLOB_K,))
    blank = np.asarray(vol.array[BLOB_K])
    assert list(np.flatnonzero(vol.missing)) == [BLOB_K] and blank.max() == blank.min() == np.min(vol.array)
    grid = grid_for(vol, "axial")
    lazy = ReformatInput(grid, model_input(vol))
    # truth: the acquired neighbours' linear interpolation written into the gap, reformatted without gaps
    patched = np.asarray(vol.array, dtype=np.float32).copy()
    patched[BLOB_K] = (patched[BLOB_K - 1] + patched[BLOB_K + 1]) / 2
    whole = reformat(patched, vol.origin, vol.spacing, vol.direction, "axial", fill=float(np.min(vol.array)))
    k = int(round(float(grid.lps_to_index(centre)[2])))
    for kk in (k, k + 3, grid.shape[0] // 4):
        np.testing.assert_allclose(lazy[kk], whole.array[kk], atol=2e-3)
    if orientation == "oblique":
        return
    # the blob is there (about its neighbours' 95 % at 1.5 mm), where the blank slice would have cut it
    i, j, _ = grid.lps_to_index(centre)
    assert float(lazy[k][int(round(j)), int(round(i))]) > 0.8 * float(np.asarray(vol.array).max())


def test_exactly_the_pixels_resting_on_the_gap_are_marked(tmp_path: Path) -> None:
    _, vol, centre = _load(tmp_path / "gap", missing=(BLOB_K,))
    grid = grid_for(vol, "axial")
    assert grid.describe()["missing_slices"] == [BLOB_K]
    k = int(round(float(grid.lps_to_index(centre)[2])))
    on_gap, inside = grid.gap_mask(k)
    # truth from positions: a pixel rests on the gap when it lies strictly between acquired slices 24 and 26
    normal = vol.direction[:, 2]
    below, above = (float(vol.index_to_lps((0.0, 0.0, float(s))) @ normal) for s in (BLOB_K - 1, BLOB_K + 1))
    rows, cols = grid.shape[1:]
    jj, ii = np.meshgrid(np.arange(rows, dtype=float), np.arange(cols, dtype=float), indexing="ij")
    lps = grid.origin[:, None] + grid.direction @ (np.stack([ii.ravel(), jj.ravel(), np.full(ii.size, float(k))])
                                                   * grid.spacing[:, None])
    t = (lps.T @ normal).reshape(rows, cols)
    lo, hi = min(below, above), max(below, above)
    truth = (t > lo + 1e-3) & (t < hi - 1e-3) & inside
    np.testing.assert_array_equal(on_gap, truth)
    assert 0 < on_gap.sum() < inside.sum()
    assert grid.gap_fraction(k) == pytest.approx(truth.sum() / inside.sum())
    # a point within one acquired slice of the gap rests on it (interpolated across it, or right beside it)
    i, j, _ = grid.lps_to_index(centre)
    assert grid.bridged_at((i, j, k)) == [BLOB_K]
    ci, cj, _ = vol.lps_to_index(centre)
    for step, want in ((0.5, [BLOB_K]), (1.0, [BLOB_K]), (1.5, []), (2.0, [])):
        beside = grid.lps_to_index(vol.index_to_lps((ci, cj, BLOB_K + step)))
        assert grid.bridged_at(beside) == want, step
    # a series without gaps: nothing marked, the grid described as before
    _, full, _ = _load(tmp_path / "full")
    assert "missing_slices" not in grid_for(full, "axial").describe() and not grid_for(full, "axial").gap_mask(k)[0].any()


def _findings(vol, centre):  # type: ignore[no-untyped-def]
    """A run whose maps are the blob (a Gaussian around its centre) on every reformat slice."""
    key = JobScheduler().start("s", "ab" * 32, "gradcam", 1)
    results = new_results(key, ["blob"], vol, "axial", {"blob": 0.5})
    assert isinstance(results, ReformatResults)
    grid = results.grid
    n, rows, cols = grid.shape
    jj, ii = np.meshgrid(np.arange(rows, dtype=float), np.arange(cols, dtype=float), indexing="ij")
    maps = np.empty(grid.shape, np.float32)
    for k in range(n):
        lps = grid.origin[:, None] + grid.direction @ (np.stack([ii.ravel(), jj.ravel(), np.full(ii.size, float(k))])
                                                       * grid.spacing[:, None])
        maps[k] = np.exp(-((lps - centre[:, None]) ** 2).sum(0) / 50.0).reshape(rows, cols)
    z = grid.slice_positions() - centre[2]
    scores = (0.2 + 0.7 * np.exp(-(z**2) / 50.0)).astype(np.float32)[:, None]
    results.add(np.arange(n), scores, {"blob": maps}, weighted=True)
    return results, results.findings()


def test_a_finding_whose_peak_rests_on_a_gap_says_so(tmp_path: Path) -> None:
    _, vol, centre = _load(tmp_path / "at-blob", missing=(BLOB_K,))
    results, (finding,) = _findings(vol, centre)
    text = finding_text(finding, results)
    assert text.endswith(f"; peak at missing Im {BLOB_K + 1} (not acquired, interpolated)"), text
    assert "axial reformat slice" in text
    _, vol, centre = _load(tmp_path / "far", missing=(50,))  # the same run with a gap far from the blob
    results, (finding,) = _findings(vol, centre)
    assert "missing" not in finding_text(finding, results) and results.grid.gap_fraction(finding.peak_slice) > 0


def test_gaps_wider_than_one_slice_are_outside_intended_use(tmp_path: Path, blob_pkg: Path) -> None:
    from inference.package import read_card

    card = read_card(blob_pkg)
    assert MAX_BRIDGED_SLICES == 1
    stack, vol, _ = _load(tmp_path / "one", missing=(BLOB_K,))
    for source in (stack, vol):
        decision = scope_of_stack(card, source)
        assert decision.in_scope and decision.reformat_to == "axial"
        assert any(f"(Im {BLOB_K + 1}) are interpolated across" in note for note in decision.notes), decision.notes
    stack, vol, _ = _load(tmp_path / "two", missing=(BLOB_K, BLOB_K + 1))
    for source in (stack, vol):
        decision = scope_of_stack(card, source)
        assert not decision.in_scope
        assert decision.reason_text == (f"acquired gap: images {BLOB_K + 1}-{BLOB_K + 2} missing (2 slices, 4.5 mm "
                                        "between acquired images); a axial reformat interpolates across at most 1 "
                                        "missing slice")
    _, axial, _ = _load(tmp_path / "axial", "axial", missing=(20, 21))
    assert scope_of_stack(card, axial).in_scope  # acquired axial: no reformat, the gap's slices simply never run


def test_radscope_infer_writes_the_marks_and_skips_a_wide_gap(tmp_path: Path, blob_pkg: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    ph, centre = blob_phantom()
    write_ct_series(ph, tmp_path / "one", orientation="sagittal", missing=(BLOB_K,))
    out = tmp_path / "out"
    assert main(["infer", str(tmp_path / "one"), "--model", str(blob_pkg), "--no-cache", "--device", "cpu",
                 "--out", str(out)]) == 0
    (folder,) = out.iterdir()
    doc = json.loads((folder / "scores.json").read_text())
    assert doc["in_scope"] is True and doc["slices"][BLOB_K]["missing"] is True
    slices = doc["reformat"]["slices"]
    best = max(slices, key=lambda s: s["scores"]["blob"])
    assert abs(best["position_mm"] - centre[2]) <= doc["reformat"]["spacing_mm"][2]
    assert best["gap_slices_at_peak"] == [BLOB_K] and 0 < best["gap_fraction"] < 0.1
    assert all(s["gap_fraction"] > 0 for s in slices)  # a sagittal gap cuts every axial slice along a line

    write_ct_series(ph, tmp_path / "two", orientation="sagittal", missing=(BLOB_K, BLOB_K + 1))
    wide = tmp_path / "wide"
    capsys.readouterr()
    main(["infer", str(tmp_path / "two"), "--model", str(blob_pkg), "--no-cache", "--device", "cpu",
          "--out", str(wide)])
    assert "outside blob-detector's intended use: acquired gap: images 26-27 missing" in capsys.readouterr().err
    assert not list(wide.glob("*/scores.json"))
    assert main(["infer", str(tmp_path / "two"), "--model", str(blob_pkg), "--no-cache", "--device", "cpu",
                 "--out", str(wide), "--force"]) == 0
    (folder,) = wide.iterdir()
    doc = json.loads((folder / "scores.json").read_text())
    assert doc["in_scope"] is False and doc["scope_reasons"][0].startswith("acquired gap: images 26-27")
    best = max(doc["reformat"]["slices"], key=lambda s: s["scores"]["blob"])
    assert BLOB_K in best["gap_slices_at_peak"] and set(best["gap_slices_at_peak"]) <= {BLOB_K, BLOB_K + 1}
