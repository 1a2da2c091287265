"""The layer inspector's Qt-free rules (viewer.display.channels) and the AI controller's jump to a heatmap
peak (viewer.ai.SeriesResults.peak_on_slice): checked without Qt."""

from __future__ import annotations

import numpy as np
import pytest

from viewer.ai import RunKey, SeriesResults
from viewer.display.channels import channel_order, resize_to_native


def test_resize_to_native_is_the_preprocessors_inverse_map() -> None:
    torch = pytest.importorskip("torch")
    from inference.preprocess import Preprocessor

    m = np.random.default_rng(3).random((7, 9)).astype(np.float32)
    ours = resize_to_native(m, (45, 70))
    theirs = Preprocessor.to_native(torch.from_numpy(m[None]), (45, 70))[0].numpy()
    np.testing.assert_allclose(ours, theirs, atol=1e-5)
    assert resize_to_native(np.ones((3, 3), np.float32), (5, 4)).shape == (5, 4)


def test_channel_order_ranks_by_the_chosen_statistic() -> None:
    maps = np.zeros((4, 2, 2), np.float32)
    maps[0] = 0.5  # highest mean
    maps[1, 0, 0] = 3.0  # highest max and spread
    maps[2] = [[0.2, 0.3], [0.2, 0.3]]
    assert channel_order(maps, "mean").tolist()[:2] == [1, 0]  # 0.75 > 0.5
    assert channel_order(maps, "max")[0] == 1 and channel_order(maps, "std")[0] == 1
    assert channel_order(np.zeros((3, 1, 1)), "mean").tolist() == [0, 1, 2]  # ties keep the channel order
    with pytest.raises(ValueError, match="mean, max, std"):
        channel_order(maps, "median")


def test_peak_on_slice_follows_the_label_scoring_highest_there() -> None:
    res = SeriesResults(RunKey("S", "a" * 64, "gradcam", 0), ["nodule", "mass"], (3, 6, 8))
    nodule = np.zeros((1, 6, 8), np.float32)
    nodule[0, 1, 2] = 1.0
    mass = np.zeros((1, 6, 8), np.float32)
    mass[0, 4, 6] = 1.0
    res.add((1,), np.array([[0.2, 0.9]], np.float32), {"nodule": nodule, "mass": mass}, weighted=True)
    assert res.peak_on_slice(1) == (4, 6)  # the mass scores higher on slice 1
    res.add((2,), np.array([[0.8, 0.1]], np.float32), {"nodule": nodule, "mass": mass}, weighted=True)
    assert res.peak_on_slice(2) == (1, 2)
    assert res.peak_on_slice(0) is None  # nothing ran there: the crosshair stays put
