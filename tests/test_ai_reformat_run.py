"""viewer.ai.reformat_run: a plane-bound 2D model's run on reformats, without Qt or torch.

Generated series whose truth is known (a Gaussian blob written coronal, sagittal and oblique): the lazy
reformat input equals the whole-volume reformat `radscope infer` feeds its model; maps streamed batch by
batch in the scheduler's order land on the acquired grid exactly as `ReformatGrid.to_acquired` puts
them; the acquired-grid peak, the crosshair target of a finding and the slice under the crosshair are
where the blob is; results-cache entries are keyed apart from acquired-plane runs and checked against
the grid they were made on.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from inference.cache import CacheEntryError, ResultCache
from tests.support.blob_model import blob_phantom
from viewer.ai import JobScheduler
from viewer.ai.cached import load_results, store_results
from viewer.ai.model_input import ModelInput, model_input
from viewer.ai.reformat import reformat
from viewer.ai.reformat_run import ReformatInput, ReformatResults, grid_for, input_for, new_results, reformat_key
from viewer.ai.results import SeriesResults
from viewer.dicom import load_volume, scan
from viewer.dicom.synthetic import write_ct_series

ANGLES = (25.0, -20.0, 15.0)


@pytest.fixture(scope="module", params=["coronal", "sagittal", "oblique"])
def series(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    ph, centre = blob_phantom()
    out = tmp_path_factory.mktemp(request.param)
    write_ct_series(ph, out, orientation=request.param, angles_deg=ANGLES if request.param == "oblique" else None)
    (stack,) = scan([out]).stacks
    return request.param, load_volume(stack, integers=True), centre


def _blob_maps(grid, centre: np.ndarray, slices: np.ndarray, sigma_mm: float = 5.0) -> np.ndarray:  # type: ignore[no-untyped-def]
    """The analytic map of the blob on reformat slices ``slices``: a Gaussian around its centre (in [0, 1])."""
    n, rows, cols = grid.shape
    jj, ii = np.meshgrid(np.arange(rows, dtype=np.float64), np.arange(cols, dtype=np.float64), indexing="ij")
    out = np.empty((len(slices), rows, cols), dtype=np.float32)
    for row, k in enumerate(slices):
        ijk = np.stack([ii.ravel(), jj.ravel(), np.full(ii.size, float(k))])
        lps = grid.origin[:, None] + grid.direction @ (ijk * grid.spacing[:, None])
        r2 = ((lps - centre[:, None]) ** 2).sum(0)
        out[row] = np.exp(-r2 / (2 * sigma_mm**2)).reshape(rows, cols)
    return out


def _scores(grid, centre: np.ndarray) -> np.ndarray:  # type: ignore[no-untyped-def]
    """A score per reformat slice that peaks on the slice through the blob (as BlobNet's does)."""
    z = grid.slice_positions() - float(centre @ grid.direction[:, 2])
    return (0.2 + 0.7 * np.exp(-(z**2) / 50.0)).astype(np.float32)[:, None]


def _run_streamed(series, batch: int = 8):  # type: ignore[no-untyped-def]
    """A run fed in the scheduler's order (visible slice first, then nearest-first batches)."""
    _, vol, centre = series
    sched = JobScheduler(batch_size=batch)
    grid = grid_for(vol, "axial")
    results = new_results(sched.start("s", "ab" * 32, "gradcam", grid.shape[0], current=grid.shape[0] // 3),
                          ["blob"], vol, "axial")
    assert isinstance(results, ReformatResults)
    scores = _scores(grid, centre)
    while (b := sched.next_batch(timeout=0)) is not None:
        idx = np.asarray(b.indices)
        results.add(idx, scores[idx], {"blob": _blob_maps(grid, centre, idx)}, weighted=True,
                    ood=np.full(idx.size, 3.0))
    assert results.complete
    return results, grid, scores


def test_the_lazy_input_is_the_reformat_radscope_infer_feeds(series) -> None:  # type: ignore[no-untyped-def]
    _, vol, _ = series
    whole = reformat(np.asarray(model_input(vol)), vol.origin, vol.spacing, vol.direction, "axial")
    lazy = input_for(new_results(JobScheduler().start("s", "a", "m", 1), ["blob"], vol, "axial"), model_input(vol))
    assert isinstance(lazy, ReformatInput) and lazy.shape == whole.array.shape
    for k in (0, whole.array.shape[0] // 2, whole.array.shape[0] - 1):
        np.testing.assert_allclose(lazy[k], whole.array[k], atol=1e-3)
    np.testing.assert_allclose(lazy[[1, 3]], whole.array[[1, 3]], atol=1e-3)
    with pytest.raises(IndexError):
        lazy[whole.array.shape[0]]


def test_sampling_axis_by_axis_equals_scipy_point_by_point(series) -> None:  # type: ignore[no-untyped-def]
    """The fast path of acquisitions along the patient axes gives what ``map_coordinates`` gives."""
    from scipy import ndimage

    _, vol, _ = series
    grid = grid_for(vol, "axial")
    src = np.asarray(model_input(vol), dtype=np.float32)
    n, rows, cols = grid.shape
    for k in (0, n // 3, n - 1):
        ref = ndimage.map_coordinates(src, grid.source_index()(k, rows, cols), order=1, cval=-7.0).reshape(rows, cols)
        np.testing.assert_allclose(grid.sample(src, k, -7.0), ref, atol=1e-3)


def test_reformat_slices_are_as_far_apart_as_the_data_resolves(series) -> None:  # type: ignore[no-untyped-def]
    """Pixels at the finest acquired spacing; slices no closer than the acquired resolution along z (the
    phantom's 2 mm), so the model never runs on near-copies of interpolated rows."""
    orientation, vol, _ = series
    grid = grid_for(vol, "axial")
    assert grid.spacing[0] == grid.spacing[1] == pytest.approx(1.5)
    if orientation == "oblique":
        assert 1.5 < grid.spacing[2] < 2.0
    else:
        assert grid.spacing[2] == pytest.approx(2.0)


def test_monochrome1_input_is_inverted_over_the_stored_range(series) -> None:  # type: ignore[no-untyped-def]
    """Inverting then reformatting equals reformatting the inverted volume (the range sums interpolated)."""
    _, vol, _ = series
    sums = np.linspace(900.0, 1100.0, vol.shape[0])
    source = ModelInput(vol.array, invert=True, sums=sums)
    whole = reformat(np.asarray(source), vol.origin, vol.spacing, vol.direction, "axial")
    lazy = ReformatInput(grid_for(vol, "axial"), source)
    for k in (2, whole.array.shape[0] // 2):
        same = np.abs(lazy[k] - whole.array[k]) < 1e-2
        assert same.mean() > 0.95  # only pixels within a voxel of the volume's edge differ (fill vs blend)
        assert float(lazy[k].min()) >= float(whole.array.min()) - 1e-3


def test_streamed_maps_land_on_the_acquired_grid_as_to_acquired_puts_them(series) -> None:  # type: ignore[no-untyped-def]
    results, grid, scores = _run_streamed(series)
    weighted = np.asarray(results.reformat_heatmap("blob"))  # what the reformat grid holds (codes x score)
    expected = grid.to_acquired(weighted)
    shown = np.asarray(results.heatmap("blob"))
    assert shown.shape == grid.source_shape
    assert np.abs(shown - expected).max() <= 0.5 / 255 + 1e-6  # only the acquired grid's own rounding
    exact = grid.to_acquired(_blob_maps(grid, series[2], np.arange(grid.shape[0])) * scores[:, :, None])
    assert np.abs(shown - exact).max() <= 1.5 / 255
    assert results.heatmap("blob").codes.dtype == np.uint8 and results.codes("blob").dtype == np.uint8


def test_peak_finding_and_crosshair_are_on_the_blob(series) -> None:  # type: ignore[no-untyped-def]
    orientation, vol, centre = series
    results, grid, _ = _run_streamed(series)
    shown = np.asarray(results.heatmap("blob"))
    k, j, i = np.unravel_index(int(np.argmax(shown)), shown.shape)
    truth = vol.lps_to_index(centre)
    assert np.all(np.abs(np.array([i, j, k]) - truth) <= 1.0), (orientation, (i, j, k), truth)
    (finding,) = results.findings()
    assert abs(grid.slice_positions()[finding.peak_slice] - centre[2]) <= grid.spacing[2]
    target = results.crosshair_to(vol, vol.index_to_lps((0, 0, 0)), finding.peak_slice, centre_on_peak=True)
    assert np.linalg.norm(target - centre) <= float(np.linalg.norm(grid.spacing)), (target, centre)
    assert results.slice_under(vol, target) == finding.peak_slice
    # a plot click: onto that reformat slice, the crosshair's place in the plane kept
    elsewhere = vol.index_to_lps((2.0, 3.0, 4.0))
    moved = results.crosshair_to(vol, elsewhere, 5)
    assert results.slice_under(vol, moved) == 5
    np.testing.assert_allclose(moved[:2], elsewhere[:2], atol=1e-6)  # axial: x and y stay
    # a slice whose part under the crosshair lies outside a tilted volume: a point of it inside the volume
    for k in (grid.shape[0] // 4, 3 * grid.shape[0] // 4):
        far = results.crosshair_to(vol, vol.index_to_lps((-40.0, -40.0, 0.0)), k)
        assert results.slice_under(vol, far) == k
        inside = vol.lps_to_index(far)
        assert np.all(inside >= -0.5) and np.all(inside <= np.array(vol.shape[::-1]) - 0.5), (k, inside)
    assert results.slice_text(finding.peak_slice) == (f"axial reformat slice {finding.peak_slice + 1}, "
                                                      f"z = {grid.patient_position(finding.peak_slice):.1f} mm")
    assert results.slice_noun == "axial reformat slices" and "axial reformat" in results.axis_text


def test_cache_entries_are_keyed_apart_and_checked_against_their_grid(series, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _, vol, _ = series
    results, grid, _ = _run_streamed(series)
    cache = ResultCache(tmp_path)
    stack = reformat_key("s:1", "axial")
    assert stack == results.run_id("s:1") and stack != "s:1"
    assert SeriesResults(results.key, ["blob"], vol.shape).run_id("s:1") == "s:1"
    store_results(cache, stack, results, ood_sha256="1" * 64)
    assert load_results(cache, "s:1", results.key, ["blob"], vol.shape) is None  # the acquired run: a miss
    back = load_results(cache, stack, results.key, ["blob"], vol.shape, grid=grid, ood_sha256="1" * 64)
    assert isinstance(back, ReformatResults) and back.complete
    np.testing.assert_array_equal(back.codes("blob"), results.codes("blob"))
    np.testing.assert_array_equal(back.heatmap("blob").codes, results.heatmap("blob").codes)
    np.testing.assert_allclose(back.ood, results.ood)
    other = grid_for(vol, "axial")
    other.origin = other.origin + 0.5  # same shape, moved: not the grid the entry was computed on
    with pytest.raises(CacheEntryError, match="another axial reformat grid"):
        load_results(cache, stack, results.key, ["blob"], vol.shape, grid=other, ood_sha256="1" * 64)


def test_radscope_infer_entries_of_a_reformatted_run_open_in_the_viewer(series, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """`radscope infer` caches the reformat grid's float maps under the same key: the viewer reads them."""
    _, vol, centre = series
    grid = grid_for(vol, "axial")
    maps = _blob_maps(grid, centre, np.arange(grid.shape[0]))
    scores = _scores(grid, centre)
    cache = ResultCache(tmp_path)
    cache.put(reformat_key("s:1", "axial"), "ab" * 32, "gradcam", ["blob"], range(grid.shape[0]), scores,
              {"blob": maps}, {"device": "cpu", "reformat": grid.describe()})
    key = JobScheduler().start("s", "ab" * 32, "gradcam", grid.shape[0])
    back = load_results(cache, reformat_key("s:1", "axial"), key, ["blob"], vol.shape, grid=grid)
    assert isinstance(back, ReformatResults)
    exact = grid.to_acquired(maps * scores[:, :, None])
    assert np.abs(np.asarray(back.heatmap("blob")) - exact).max() <= 1.5 / 255
