"""The viewer holds stored integers (int16) and draws float32 planes; gaps are drawn as missing slices."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from phantom import ChestParams, make_chest_ct
from viewer.dicom.synthetic import SeriesTruth, write_ct_series
from viewer.display.measure import roi_stats
from viewer.qt.main_window import ViewerWindow


@pytest.fixture(scope="module")
def gapped(tmp_path_factory: pytest.TempPathFactory) -> SeriesTruth:
    ph = make_chest_ct(ChestParams(n_slices=24, matrix=(64, 80), pixel_spacing=(4.0, 4.0), slice_spacing=5.0,
                                   n_nodules=1, noise=False, seed=3))
    return write_ct_series(ph, tmp_path_factory.mktemp("gap"), missing=[12, 13])


def _open(window: ViewerWindow, qtbot, path: Path) -> None:  # type: ignore[no-untyped-def]
    window.open_paths([str(path)])
    qtbot.waitUntil(lambda: window.is_idle() and window.model is not None and window.model.fully_loaded,
                    timeout=30_000)


def _hatched_pixels(view) -> int:  # type: ignore[no-untyped-def]
    """Viewport pixels in the missing-slice hatch colour (red, semi-transparent over black)."""
    img = view.viewport().grab().toImage()
    ptr = img.constBits()
    arr = np.frombuffer(ptr, np.uint8, count=img.sizeInBytes()).reshape(img.height(), img.bytesPerLine() // 4, 4)
    b, g, r = arr[..., 0].astype(int), arr[..., 1].astype(int), arr[..., 2].astype(int)
    return int(((r > 120) & (g < 90) & (b < 90)).sum())


def test_stored_integers_in_memory_values_in_hu(window: ViewerWindow, qtbot, gapped: SeriesTruth) -> None:  # type: ignore[no-untyped-def]
    _open(window, qtbot, gapped.paths[0].parent)
    vol = window.model.volume
    assert vol.array.dtype == np.int16 and vol.array.nbytes == np.prod(gapped.shape) * 2
    present = ~gapped.missing  # type: ignore[operator]
    assert np.array_equal(vol.array[present], gapped.hu[present]) and np.array_equal(vol.missing, gapped.missing)
    view = window.views[0]
    view.set_slice(5)
    assert view.image_item.image.dtype == np.float32  # only the drawn plane is float32
    np.testing.assert_array_equal(view.image_item.image, gapped.hu[5])
    sx, sy = view.spacing_xy
    assert f"value {gapped.hu[5, 30, 20]:.6g} HU" in view.probe_text((20 + 0.5) * sx, (30 + 0.5) * sy)
    stats = roi_stats(view.current_image(), view.scene_matrix, "rect", (40.0, 40.0), (80.0, 60.0))
    truth = roi_stats(gapped.hu[5], view.scene_matrix, "rect", (40.0, 40.0), (80.0, 60.0))
    assert stats == truth and stats.n_pixels > 100


def test_missing_slices_are_drawn_hatched(window: ViewerWindow, qtbot, gapped: SeriesTruth) -> None:  # type: ignore[no-untyped-def]
    _open(window, qtbot, gapped.paths[0].parent)
    view = window.views[0]
    view.set_slice(11)
    qtbot.wait(50)
    assert _hatched_pixels(view) < 50  # an acquired slice: no hatch
    view.set_slice(12)
    qtbot.wait(50)
    assert _hatched_pixels(view) > 2000  # the missing one: hatched across the image
    window.set_layout("1x3")
    qtbot.wait(50)
    coronal = window.views[1]
    assert coronal.plane.slice_axis != 0 and _hatched_pixels(coronal) > 50  # two slices' rows, hatched
