"""The viewer runs an axial-only 2D model on axial reformats of coronal, sagittal and oblique acquisitions.

The analytic blob model (`tests/support/blob_model.py`: its Grad-CAM map is the windowed image, so its
peak is the blob's centre) through the real runner, on generated series whose blob centre is known:
the series is run (not refused), the heatmap shown on the acquired grid peaks within one voxel of the
blob, every MPR view draws that peak under the crosshair once the top finding is chosen, the panel words
slices in the model's plane, a review flag records the acquired slice holding the peak, and the run is
cached under its own key and read back from there.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.support.blob_model import blob_package, blob_phantom

pytestmark = [pytest.mark.gui, pytest.mark.qt_log_ignore("propagateSizeHints")]
ANGLES = (25.0, -20.0, 15.0)


@pytest.fixture(scope="module")
def blob_pkg(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # water alone scores sigmoid(-2) = 0.12: at 0.15 the slices through the blob are a finding
    return blob_package(tmp_path_factory.mktemp("pkg") / "blob-detector", thresholds={"blob": 0.15})


@pytest.mark.parametrize("orientation", ["coronal", "sagittal", "oblique"])
def test_axial_model_runs_on_reformats_and_its_heatmap_lands_on_the_blob(  # type: ignore[no-untyped-def]
        qtbot, ai_window, blob_pkg: Path, tmp_path: Path, orientation: str) -> None:
    from inference.package import read_card
    from viewer.ai.reformat_run import ReformatResults
    from viewer.dicom.synthetic import write_ct_series
    from viewer.qt.ai_panel import ModelEntry
    from viewer.qt.qt import QPointF

    ph, centre = blob_phantom()
    write_ct_series(ph, tmp_path / "dcm", orientation=orientation,
                    angles_deg=ANGLES if orientation == "oblique" else None)
    window, ai = ai_window(None, models=[ModelEntry("blob-detector", blob_pkg, card=read_card(blob_pkg))])
    window.set_layout("1x3")
    ai.follow_findings(once=True)  # as `radscope PATH --model NAME`: land on the top finding when done
    with qtbot.waitSignal(ai.finished, timeout=180000):
        window.open_paths([str(tmp_path / "dcm")])
    series, vol = window.model, window.model.volume
    results = ai.results
    assert isinstance(results, ReformatResults) and results.complete and results.plane == "axial"
    status = ai.panel.status_label.text()
    assert "does not reformat" not in status and "not run" not in status
    assert f"runs on {results.shape[0]} axial reformat slices" in status
    assert ai.panel.progress.value() == ai.panel.progress.maximum() == results.shape[0]

    # the heatmap on the acquired grid (what every view draws) peaks on the blob
    overlay = series.overlay(ai.overlay_name("blob"))
    assert overlay is not None and overlay.array is results.heatmap("blob")
    shown = np.asarray(overlay.array)
    assert shown.shape == vol.shape and results.heatmap("blob").codes.dtype == np.uint8
    k, j, i = np.unravel_index(int(np.argmax(shown)), shown.shape)
    truth = vol.lps_to_index(centre)
    assert np.all(np.abs(np.array([i, j, k]) - truth) <= 1.0), (orientation, (i, j, k), truth)

    # the top finding, in the model's plane; the crosshair went to its peak
    top = ai.panel.findings_list.item(0).text()
    assert top.startswith("blob: p=") and "axial reformat slice" in top and "z = " in top, top
    assert "axial reformat slice" in ai.panel.plot.getAxis("bottom").labelText
    assert np.linalg.norm(series.crosshair - centre) <= 2.0, (series.crosshair, centre)
    series.set_crosshair(vol.index_to_lps((0, 0, 0)))
    ai.panel.findings_list.itemClicked.emit(ai.panel.findings_list.item(0))
    assert np.linalg.norm(series.crosshair - centre) <= 2.0
    assert ai.run_state.current_slice == ai.panel.findings[0].peak_slice  # the plots' cursor: the model's slice

    # each MPR view (axial, coronal, sagittal through the crosshair) draws the peak under the crosshair
    for view in window.visible_views():
        item = view.overlay_items[ai.overlay_name("blob")]
        image = item.image
        assert image is not None and image.max() > 0, view.plane_name
        r, c = np.unravel_index(int(np.argmax(image)), image.shape)
        peak = view.vb.mapViewToDevice(item.mapToView(QPointF(c + 0.5, r + 0.5)))
        x, y, _ = view.lps_to_scene(centre)
        want = view.vb.mapViewToDevice(QPointF(x, y))
        px = view.vb.mapViewToDevice(QPointF(view.spacing_xy[0], view.spacing_xy[1])) - view.vb.mapViewToDevice(QPointF(0, 0))
        assert abs(peak.x() - want.x()) <= 1.5 * abs(px.x()) + 0.5, (view.plane_name, peak, want)
        assert abs(peak.y() - want.y()) <= 1.5 * abs(px.y()) + 0.5, (view.plane_name, peak, want)

    # a plot click moves the views onto that axial reformat slice
    chosen = results.shape[0] // 2 - 6
    ai.panel.plot.sliceClicked.emit(chosen)
    assert ai.run_state.current_slice == chosen
    assert series.crosshair[2] == pytest.approx(results.grid.patient_position(chosen), abs=0.05)


def test_flags_cache_and_cursor_of_a_reformatted_run(qtbot, ai_window, blob_pkg: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Sagittal acquisition: a flag made at the finding records the acquired slice holding the blob; the
    run is cached under the reformat's own key (never the acquired run's) and comes back from there."""
    from inference.cache import ResultCache
    from inference.package import read_card
    from viewer import paths
    from viewer.ai.cached import stack_key
    from viewer.ai.reformat_run import ReformatResults, reformat_key
    from viewer.dicom.synthetic import write_ct_series
    from viewer.qt.ai_panel import ModelEntry
    from viewer.qt.review_integration import attach_review
    from viewer.review import ReviewStore

    ph, centre = blob_phantom()
    write_ct_series(ph, tmp_path / "dcm", orientation="sagittal")
    window, ai = ai_window(None, models=[ModelEntry("blob-detector", blob_pkg, card=read_card(blob_pkg))])
    with qtbot.waitSignal(ai.finished, timeout=180000):
        window.open_paths([str(tmp_path / "dcm")])
    vol, first = window.model.volume, ai.results
    ai.go_to_finding(ai.panel.findings[0].peak_slice)
    review = attach_review(window, ai=ai, store=ReviewStore(tmp_path / "review.sqlite3"))
    review.update_context(for_flag=True)
    flag_id = review.panel.add_flag("correct")
    flag = review.store.get_flag(flag_id)
    truth_k = float(vol.lps_to_index(centre)[2])
    assert abs(flag.slice_index - truth_k) <= 1.0 and flag.sop_instance_uids == (vol.sop_instance_uids[flag.slice_index],)
    assert flag.model.name == "blob-detector" and flag.scope_note == ""
    review.store.close()

    assert ai.flush_cache()
    cache = ResultCache(paths.subdir("cache"))
    own = stack_key(window.stack_id, vol.sop_instance_uids)
    sha = ai.model_entry.card.weights.sha256
    assert cache.get(own, sha, ai.method) is None  # nothing under the acquired run's key
    hit = cache.get(reformat_key(own, "axial"), sha, ai.method)
    assert hit is not None and hit.meta["reformat"] == first.grid.describe()
    ai.control.forget_runs()  # as after a restart: only the cache knows the run
    with qtbot.waitSignal(ai.finished, timeout=60000):
        ai.run()
    assert "results from the cache" in ai.panel.status_label.text()
    again = ai.results
    assert isinstance(again, ReformatResults) and again is not first
    np.testing.assert_array_equal(again.heatmap("blob").codes, first.heatmap("blob").codes)
    np.testing.assert_array_equal(again.scores, first.scores)


class GatedReformatSession:
    """Stands in for the model: each batch of four waits for the test's gate; records what it was fed."""

    device = "cpu"
    methods = ("gradcam",)

    def __init__(self, gate) -> None:  # type: ignore[no-untyped-def]
        self.gate, self.fed_shapes = gate, []

    def run(self, volume, indices, method, cancel, notify):  # type: ignore[no-untyped-def]
        from viewer.ai.batches import BatchOutput

        self.fed_shapes.append(tuple(volume.shape))
        for start in range(0, len(indices), 4):
            self.gate.acquire(timeout=10)
            if cancel.is_set():
                return
            idx = tuple(indices[start:start + 4])
            maps = np.stack([np.asarray(volume[k], dtype=np.float32) / 1000.0 for k in idx]).clip(0, 1)
            yield BatchOutput(idx, np.full((len(idx), 1), 0.6, np.float32), {"blob": maps})


def test_a_reformatted_run_streams_with_progress_and_can_be_cancelled(  # type: ignore[no-untyped-def]
        qtbot, ai_window, blob_pkg: Path, tmp_path: Path) -> None:
    import threading

    from inference.package import read_card
    from viewer.dicom.synthetic import write_ct_series
    from viewer.qt.ai_panel import ModelEntry

    ph, _ = blob_phantom()
    write_ct_series(ph, tmp_path / "dcm", orientation="sagittal")
    gate = threading.Semaphore(0)
    session = GatedReformatSession(gate)
    window, ai = ai_window(lambda ref: session,
                           models=[ModelEntry("blob-detector", blob_pkg, card=read_card(blob_pkg))])
    window.open_paths([str(tmp_path / "dcm")])
    qtbot.waitUntil(lambda: window.model is not None and window.model.fully_loaded and ai.results is not None,
                    timeout=60000)
    results = ai.results
    n = results.shape[0]
    for _ in range(3):
        gate.release()
    qtbot.waitUntil(lambda: results.n_done >= 9, timeout=20000)
    assert session.fed_shapes[0] == tuple(results.grid.shape)  # the model is fed the reformat, not the acquisition
    assert ai.busy and ai.panel.cancel_button.isEnabled() and ai.panel.progress.maximum() == n
    qtbot.waitUntil(lambda: ai.panel.eta_label.text().startswith("ETA"), timeout=5000)
    assert np.asarray(results.heatmap("blob")).max() > 0  # the first batches already show on the acquired grid
    ai.panel.cancel_button.click()
    for _ in range(40):
        gate.release()
    qtbot.wait(300)
    assert not ai.busy and results.n_done < n and ai.panel.eta_label.text() == "cancelled"


def test_layer_inspector_probes_the_reformat_slice_the_model_reads(  # type: ignore[no-untyped-def]
        qtbot, ai_window, blob_pkg: Path, tmp_path: Path) -> None:
    """Sagittal acquisition, axial model: the inspector's activations and layer Grad-CAM are of the axial
    reformat slice through the crosshair (the run's own model input for that slice), worded so, and drawn
    over the acquired rows that slice lies on (the blob's)."""
    from inference.loading import load_model
    from inference.package import read_card
    from inference.probes.maps import activations
    from viewer.dicom.synthetic import write_ct_series
    from viewer.qt.ai_panel import ModelEntry
    from viewer.qt.layers import LAYER_OVERLAY, attach_layers

    ph, centre = blob_phantom()
    write_ct_series(ph, tmp_path / "dcm", orientation="sagittal")
    window, ai = ai_window(None, models=[ModelEntry("blob-detector", blob_pkg, card=read_card(blob_pkg))])
    layers = attach_layers(window, ai)
    layers.open()
    with qtbot.waitSignal(ai.finished, timeout=180000):
        window.open_paths([str(tmp_path / "dcm")])
    series, vol, results = window.model, window.model.volume, ai.results
    series.set_crosshair(centre)
    qtbot.waitUntil(lambda: layers.shown_target is not None and layers.shown_target.plane == "axial", timeout=60000)
    assert layers.wait_done(60)
    k = results.slice_under(vol, centre)
    target = layers.shown_target
    assert target.view is ai.run_input and target.k == k and layers.layer == "features"
    image = np.asarray(ai.run_input[k], dtype=np.float32)
    np.testing.assert_array_equal(target.image(), image)
    expected = activations(load_model(blob_pkg), "features", image[None])[0].numpy()
    np.testing.assert_allclose(layers.maps, expected, rtol=1e-4, atol=1e-5)
    said = f"axial reformat slice {k + 1}, z = {results.grid.patient_position(k):.1f} mm"
    assert said in layers.act_caption.text() and said in layers.stats_label.text()
    # the channel over the views: on the acquired rows of that axial slice, brightest at the blob
    shown = np.asarray(series.overlay(LAYER_OVERLAY).array)
    kk, jj, ii = np.unravel_index(int(np.argmax(shown)), shown.shape)
    assert np.all(np.abs(np.array([ii, jj, kk]) - vol.lps_to_index(centre)) <= 1.5), ((ii, jj, kk), vol.lps_to_index(centre))
    assert (shown > 0).any(axis=(0, 2)).sum() <= 3  # one axial slab of the sagittal volume, not a sagittal slice

    layers.request_cam()
    assert layers.wait_done(60)
    assert said in layers.cam_tile.caption.text()
    shown = np.asarray(series.overlay(LAYER_OVERLAY).array)
    kk, jj, ii = np.unravel_index(int(np.argmax(shown)), shown.shape)
    assert np.all(np.abs(np.array([ii, jj, kk]) - vol.lps_to_index(centre)) <= 1.5)


def test_a_finding_on_a_missing_slice_says_so_in_the_panel(  # type: ignore[no-untyped-def]
        qtbot, ai_window, blob_pkg: Path, tmp_path: Path) -> None:
    """Sagittal acquisition with the slice through the blob never acquired: the run goes ahead (one missing
    slice is interpolated across), and the top finding says its peak rests on that missing image."""
    from inference.package import read_card
    from viewer.dicom.synthetic import write_ct_series
    from viewer.qt.ai_panel import ModelEntry

    ph, centre = blob_phantom()
    write_ct_series(ph, tmp_path / "dcm", orientation="sagittal", missing=(25,))
    window, ai = ai_window(None, models=[ModelEntry("blob-detector", blob_pkg, card=read_card(blob_pkg))])
    with qtbot.waitSignal(ai.finished, timeout=180000):
        window.open_paths([str(tmp_path / "dcm")])
    assert list(np.flatnonzero(window.model.volume.missing)) == [25]
    top = ai.panel.findings_list.item(0).text()
    assert top.startswith("blob: p=") and top.endswith("; peak at missing Im 26 (not acquired, interpolated)"), top
    item = ai.panel.findings_list.item(0)
    assert item.toolTip() == top and item.foreground().color().getRgb()[:3] == (255, 160, 80)
    assert "outside intended use" not in ai.panel.status_label.text()
