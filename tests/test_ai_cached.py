"""viewer.ai.cached: whole-series results to and from the results cache (Qt-free)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from inference.cache import CacheEntryError, ResultCache
from viewer.ai import JobScheduler, SeriesResults
from viewer.ai.cached import load_results, store_results

SHAPE = (6, 9, 7)


def _complete(rng: np.random.Generator) -> SeriesResults:
    key = JobScheduler().start("s", "ab" * 32, "gradcam", SHAPE[0])
    res = SeriesResults(key, ["nodule", "mass"], SHAPE, {"nodule": 0.4})
    scores = rng.random((SHAPE[0], 2), dtype=np.float32)
    scores[2, 1] = 0.0
    res.add(range(SHAPE[0]), scores, {"nodule": rng.random(SHAPE, dtype=np.float32),
                                      "mass": rng.random(SHAPE, dtype=np.float32)}, weighted=True)
    return res


def test_viewer_round_trip_is_within_the_codes_rounding(tmp_path: Path) -> None:
    cache = ResultCache(tmp_path)
    res = _complete(np.random.default_rng(0))
    store_results(cache, "s:1", res, {"device": "cpu"})
    back = load_results(cache, "s:1", res.key, res.labels, SHAPE, {"nodule": 0.4})
    assert back is not None and back.complete and back.thresholds["nodule"] == 0.4
    np.testing.assert_array_equal(back.scores, res.scores)
    for col, label in enumerate(res.labels):
        bound = 0.5 / 255 * res.scores[:, col, None, None] + 1e-7  # rounding of the raw map, times the score
        assert (np.abs(back.heatmap(label) - res.heatmap(label)) <= bound).all()
        np.testing.assert_array_equal(back.codes(label), res.codes(label))  # the very codes the viewer held
    assert load_results(cache, "s:2", res.key, res.labels, SHAPE) is None  # another stack: a miss


def test_radscope_infer_entries_open_in_the_viewer(tmp_path: Path) -> None:
    """Format 1 (float32 maps in [0, 1], as radscope infer writes them) comes back weighted by the scores."""
    cache = ResultCache(tmp_path)
    rng = np.random.default_rng(1)
    raw = {"nodule": rng.random(SHAPE, dtype=np.float32), "mass": rng.random(SHAPE, dtype=np.float32)}
    scores = rng.random((SHAPE[0], 2), dtype=np.float32)
    cache.put("s:1", "ab" * 32, "gradcam", ["nodule", "mass"], range(SHAPE[0]), scores, raw, {"device": "cpu"})
    key = JobScheduler().start("s", "ab" * 32, "gradcam", SHAPE[0])
    back = load_results(cache, "s:1", key, ["nodule", "mass"], SHAPE)
    assert back is not None
    error = np.abs(np.asarray(back.heatmap("mass")) - raw["mass"] * scores[:, 1, None, None])
    assert (error <= 0.5 / 255 * scores[:, 1, None, None] + 1e-7).all()  # coded on reading: half a code


def test_entries_that_do_not_fit_the_series_are_errors(tmp_path: Path) -> None:
    cache = ResultCache(tmp_path)
    res = _complete(np.random.default_rng(2))
    store_results(cache, "s:1", res)
    where = str(cache.entry_path("s:1", res.key.model_sha256, res.key.method))
    with pytest.raises(CacheEntryError, match=f"{where}.*heatmap of 'nodule' is \\(6, 9, 7\\), the series is"):
        load_results(cache, "s:1", res.key, res.labels, (6, 9, 8))
    with pytest.raises(CacheEntryError, match="holds 6 slices, the series has 7"):
        load_results(cache, "s:1", res.key, res.labels, (7, 9, 7))
    with pytest.raises(CacheEntryError, match="labels"):
        load_results(cache, "s:1", res.key, ["mass", "nodule"], SHAPE)
    partial = SeriesResults(res.key, res.labels, SHAPE)
    partial.add([0], np.zeros((1, 2)), {})
    with pytest.raises(ValueError, match="only complete runs"):
        store_results(cache, "s:3", partial)


def test_ood_distances_round_trip_and_absent_stay_nan(tmp_path: Path) -> None:
    cache = ResultCache(tmp_path)
    res = _complete(np.random.default_rng(1))
    assert np.isnan(res.ood).all()  # a model without statistics
    store_results(cache, "s:plain", res)
    back = load_results(cache, "s:plain", res.key, res.labels, SHAPE)
    assert back is not None and np.isnan(back.ood).all()
    res.ood[:] = np.linspace(1.0, 30.0, SHAPE[0])
    res.ood[3] = np.nan  # a gap's slice never runs
    store_results(cache, "s:ood", res, ood_sha256=STATS_A)
    back = load_results(cache, "s:ood", res.key, res.labels, SHAPE, ood_sha256=STATS_A)
    assert back is not None
    np.testing.assert_allclose(back.ood, res.ood, atol=1e-6)


STATS_A, STATS_B = "1" * 64, "2" * 64


def test_distances_of_other_ood_statistics_are_never_reused(tmp_path: Path) -> None:
    """The package's OOD statistics changed (recalibrated, new ood.npz): its cached distances are stale, so
    the entry is a miss and the run is redone; so is an entry without distances (written before the
    statistics existed) or without their sha256 (written before it was recorded)."""
    import json

    cache = ResultCache(tmp_path)
    res = _complete(np.random.default_rng(3))
    res.ood[:] = np.linspace(1.0, 30.0, SHAPE[0])
    store_results(cache, "s:1", res, ood_sha256=STATS_A)
    assert load_results(cache, "s:1", res.key, res.labels, SHAPE, ood_sha256=STATS_A) is not None
    assert load_results(cache, "s:1", res.key, res.labels, SHAPE, ood_sha256=STATS_B) is None
    stats_free = load_results(cache, "s:1", res.key, res.labels, SHAPE)  # statistics removed from the package
    assert stats_free is not None and np.isnan(stats_free.ood).all()  # maps reused, no distances shown
    meta_path = cache.entry_path("s:1", res.key.model_sha256, res.key.method).with_suffix(".json")
    meta = json.loads(meta_path.read_text())
    assert meta["ood_sha256"] == STATS_A
    del meta["ood_sha256"]  # an entry of the viewer before the sha256 was recorded
    meta_path.write_text(json.dumps(meta))
    assert load_results(cache, "s:1", res.key, res.labels, SHAPE, ood_sha256=STATS_A) is None
    store_results(cache, "s:2", _complete(np.random.default_rng(4)), ood_sha256=STATS_A)  # ran without distances
    assert load_results(cache, "s:2", res.key, res.labels, SHAPE, ood_sha256=STATS_A) is None
