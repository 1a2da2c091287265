"""The layer inspector dock on a real model through the real inference worker (pytest-qt, offscreen)."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from inference.architectures import DemoCNN
from inference.loading import load_model
from inference.package import write_card
from inference.preprocess import Preprocessor
from inference.probes.maps import activations
from viewer.dicom.volume import SeriesInfo, Volume

pytestmark = [pytest.mark.gui, pytest.mark.qt_log_ignore("propagateSizeHints", "does not support raise")]

FIELDS = {"name": "layer-probe-test", "version": "0.1", "dims": 2, "labels": ["finding"], "output": "sigmoid",
          "input": {"size": [32, 32], "channels": 1, "window": {"center": 0, "width": 400}, "modalities": ["CT"]},
          "explain": {"target_layer": "features.3"}}


@pytest.fixture()
def package(tmp_path: Path):  # type: ignore[no-untyped-def]
    torch.manual_seed(0)
    torch.save(DemoCNN(1, 1, widths=(8, 16, 32, 48)).eval().state_dict(), tmp_path / "w.pt")
    return write_card(tmp_path, FIELDS, "w.pt", "state_dict", architecture="demo-cnn-small"), tmp_path


def _volume() -> Volume:
    rng = np.random.default_rng(0)
    arr = rng.normal(-150, 40, size=(6, 45, 70)).astype(np.float32)
    arr[4, 10:22, 45:60] = 180.0  # a bright patch on one slice, off centre
    return Volume(arr, np.zeros(3), np.array([0.7, 0.9, 2.0]), np.eye(3), [f"1.2.{k}" for k in range(6)],
                  info=SeriesInfo(series_uid="1.2", stack_id="1.2", modality="CT"))


@pytest.fixture()
def inspector(qtbot, package):  # type: ignore[no-untyped-def]
    from viewer.qt.ai_integration import attach_ai
    from viewer.qt.ai_panel import ModelEntry
    from viewer.qt.layers import attach_layers
    from viewer.qt.main_window import ViewerWindow

    window = ViewerWindow()
    window.resize(1300, 850)
    card, folder = package
    ai = attach_ai(window, models=[ModelEntry(card.name, folder, card=card)])
    layers = attach_layers(window, ai)
    layers.open()
    window.show()
    vol = _volume()
    with qtbot.waitSignal(ai.finished, timeout=60000):
        window.show_volume(vol)
    window.model.set_crosshair(vol.index_to_lps((20, 20, 4)))
    assert layers.wait_done(60)
    yield window, ai, layers, vol
    ai.shutdown()
    window.close()


def _tree_items(layers):  # type: ignore[no-untyped-def]
    from viewer.qt.qt import QtWidgets

    it, out = QtWidgets.QTreeWidgetItemIterator(layers.tree), []
    while it.value() is not None:
        out.append(it.value())
        it += 1
    return out


def _path(item) -> str:  # type: ignore[no-untyped-def]
    from viewer.qt.qt import Qt

    return str(item.data(0, Qt.ItemDataRole.UserRole))


def _shown_peak_matches(view, name: str, vol: Volume, k: int, native: np.ndarray) -> None:  # type: ignore[no-untyped-def]
    shown = view.overlay_items[name].image
    r, c = np.unravel_index(np.argmax(shown), shown.shape)
    j, i = np.unravel_index(np.argmax(native), native.shape)
    x, y, _ = view.lps_to_scene(vol.index_to_lps((i, j, k)))
    assert (r, c) == (round(y / view.spacing_xy[1] - 0.5), round(x / view.spacing_xy[0] - 0.5))


@pytest.mark.slow  # real torch worker on a busy 2-core machine: ~10 s
def test_panel_populates_paints_aligned_overlays_and_runs_off_the_gui_thread(qtbot, inspector, package) -> None:  # type: ignore[no-untyped-def]
    from viewer.qt.layers import GRID_CHANNELS, LAYER_OVERLAY

    window, ai, layers, vol = inspector
    model = load_model(package[0])
    # the tree: every module, the card's target layer selected, its most active channel on the shown slice
    paths = {_path(it) for it in _tree_items(layers)}
    assert {"features", "features.0.0", "features.3", "classifier"} <= paths
    assert layers.layer == "features.3" and layers.slice_index == 4
    expected = activations(model, "features.3", vol.array[4:5])[0].numpy()
    np.testing.assert_allclose(layers.maps, expected, rtol=1e-4, atol=1e-5)
    assert layers.channel == int(np.argmax(expected.mean(axis=(1, 2))))
    assert layers.grid.count() == min(GRID_CHANNELS, expected.shape[0])
    # re-sorting the grid; the statistics tab's dead-channel count
    layers.sort_combo.setCurrentIndex(1)  # max activation
    assert layers.grid.item(0).data(256) == int(np.argmax(expected.max(axis=(1, 2))))
    assert layers.channel == int(np.argmax(expected.mean(axis=(1, 2))))  # the selection stays
    dead = int((expected.max(axis=(1, 2)) <= 1e-6).sum())
    assert f"{dead} dead" in layers.stats_label.text()
    # work ran on the inference worker, never on the GUI thread
    assert layers.threads and set(layers.threads) == {"radscope-inference"}
    assert threading.current_thread().name not in layers.threads

    # clicking another channel paints its map over the image, on the native grid, aligned like the heatmap
    view = window.visible_views()[0]
    ch = int(np.argmax(expected.max(axis=(1, 2)) - expected.mean(axis=(1, 2))))  # the most peaked map
    assert ch != layers.channel
    item = next(layers.grid.item(i) for i in range(layers.grid.count()) if layers.grid.item(i).data(256) == ch)
    layers.grid.clearSelection()
    item.setSelected(True)  # as a click does
    assert layers.channel == ch
    native = Preprocessor.to_native(torch.from_numpy(expected[ch][None]), (45, 70))[0].numpy()
    overlay = next(o for o in window.model.overlays if o.name == LAYER_OVERLAY)
    lo, hi = expected[ch].min(), expected[ch].max()
    np.testing.assert_allclose(overlay.array[4], (native - lo) / (hi - lo), atol=0.5 / 255 + 1e-6)  # uint8 codes
    assert not overlay.array[:4].any() and not overlay.array[5:].any()
    _shown_peak_matches(view, LAYER_OVERLAY, vol, 4, native)

    # behind another tab the channel map stays; closing the panel takes it off the image
    window.tabifyDockWidget(layers.dock, ai.dock)
    ai.dock.show()
    ai.dock.raise_()
    qtbot.wait(50)
    assert window.model.overlay(LAYER_OVERLAY) is not None
    layers.open()
    layers.dock.close()
    qtbot.waitUntil(lambda: window.model.overlay(LAYER_OVERLAY) is None, timeout=5000)
    assert LAYER_OVERLAY not in view.overlay_items
    layers.open()
    layers.set_channel(ch)
    qtbot.waitUntil(lambda: window.model.overlay(LAYER_OVERLAY) is not None, timeout=20_000)

    # search by name hides what does not match
    layers.search.setText("classifier")
    assert {_path(it) for it in _tree_items(layers) if not it.isHidden()} == {"", "classifier"}
    layers.search.setText("")

    # examples: the bright patch's slice first, one click away
    patch = expected[:, 1:4, 5:8].max(axis=(1, 2)) - np.delete(expected, np.s_[1:4], axis=1).max(axis=(1, 2))
    layers.set_channel(int(np.argmax(patch)))  # the channel that fires most on the bright patch
    layers.request_examples()
    assert layers.wait_done(60)
    assert layers.examples[0].slice_index == 4 and layers.examples == layers.results.examples  # (state)
    window.model.set_crosshair(vol.index_to_lps((0, 0, 0)))
    layers.ex_table.cellClicked.emit(0, 1)
    ijk = window.model.crosshair_index()
    assert round(ijk[2]) == 4 and abs(ijk[1] - layers.examples[0].row) < 1 and abs(ijk[0] - layers.examples[0].col) < 1


@pytest.mark.slow  # feature visualisation + sanity check on the worker: ~10 s
def test_featurevis_sanity_and_cam_tabs(qtbot, inspector, package, radscope_home: Path) -> None:  # type: ignore[no-untyped-def]
    from inference.probes import layer_gradcam
    from viewer.qt.layers import LAYER_OVERLAY

    window, ai, layers, vol = inspector
    layers.viewer_window.model.set_crosshair(vol.index_to_lps((20, 20, 4)))
    layers.request_featurevis()
    assert layers.wait_done(120)
    vis = layers.featurevis
    assert vis is not None and vis.layer == "features.3" and vis.channel == layers.channel
    assert vis.activation > float(layers.maps[vis.channel].max())
    assert list((radscope_home / "cache" / "featurevis").glob("*.npz"))
    layers.request_featurevis()  # second time: from the cache
    assert layers.wait_done(30) and "(cached)" in layers.fv_tile.caption.text()

    layers.request_sanity()
    assert layers.wait_done(120)
    res = layers.sanity
    assert res.original.shape == res.randomised.shape == (45, 70)
    assert layers.sanity_table.rowCount() == len(res.steps) > 0
    assert "Spearman" in layers.sanity_random.caption.text()

    layers.request_cam()
    assert layers.wait_done(60)
    overlay = next(o for o in window.model.overlays if o.name == LAYER_OVERLAY)
    expected = layer_gradcam(load_model(package[0]), "features.3", vol.array[4:5])[0]
    assert expected.max() > 0.5
    np.testing.assert_allclose(overlay.array[4], expected, atol=0.5 / 255 + 1e-6)  # uint8 codes
    assert not overlay.array[3].any()

    # a pending probe can be cancelled from the panel
    layers.request_sanity()
    layers.cancel()
    assert not layers.busy and layers.status.text() == "cancelled"


def test_probes_run_with_one_cpu_thread_and_restore_the_workers_setting() -> None:
    from types import SimpleNamespace

    from viewer.qt.layers.probes import one_cpu_thread

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        probe = one_cpu_thread(lambda _m, _c, _p: torch.get_num_threads())
        assert probe(SimpleNamespace(device=torch.device("cpu")), None, lambda d, t: None) == 1
        assert torch.get_num_threads() == 2

        def failing(_m, _c, _p):  # type: ignore[no-untyped-def]
            raise RuntimeError("boom")

        with pytest.raises(RuntimeError):
            one_cpu_thread(failing)(SimpleNamespace(device=torch.device("cpu")), None, lambda d, t: None)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_header_says_the_layers_are_being_read_until_they_come(qtbot, package) -> None:  # type: ignore[no-untyped-def]
    """Between opening a series and the model's layer tree (queued behind the model's load and the series' own
    slices) the header says so, not 'open a series with a model' (seen on Xvfb with the demo open)."""
    from viewer.qt.ai_integration import attach_ai
    from viewer.qt.ai_panel import ModelEntry
    from viewer.qt.layers import attach_layers
    from viewer.qt.main_window import ViewerWindow

    window = ViewerWindow()
    card, folder = package
    ai = attach_ai(window, models=[ModelEntry(card.name, folder, card=card)])
    layers = attach_layers(window, ai)
    layers.open()
    window.show()
    try:
        assert layers.header.text() == "Layer inspector: open a series with a model"
        window.show_volume(_volume())
        layers.refresh()
        assert layers.header.text().startswith(f"Layer inspector: reading the layers of {card.name}…")
        assert layers.wait_done(60) and "sha256" in layers.header.text()
    finally:
        ai.shutdown()
        window.close()
