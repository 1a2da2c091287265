"""AI in the viewer (pytest-qt, offscreen): worker signals, cancel, panel, overlay alignment."""

from __future__ import annotations

import threading
from pathlib import Path
from collections.abc import Callable

import numpy as np
import pytest

from tests.support.gui_ai import CardStub, FakeSession, ImageBlobSession, Receiver, make_ref, nodule_volume
from viewer.ai import JobScheduler
from viewer.qt.ai_worker import AIWorker, ModelRef
from viewer.qt.qt import QObject, QPointF

pytestmark = [pytest.mark.gui, pytest.mark.qt_log_ignore("propagateSizeHints")]  # offscreen QPA, harmless


@pytest.fixture
def worker(qtbot):  # type: ignore[no-untyped-def]
    made: list[AIWorker] = []

    def make(factory: Callable[[ModelRef], object], batch_size: int = 4) -> tuple[AIWorker, Receiver]:
        w = AIWorker(JobScheduler(batch_size=batch_size), session_factory=factory)
        r = Receiver()
        w.batchReady.connect(r.on_batch)
        w.failed.connect(r.on_failed)
        made.append(w)
        return w, r

    yield make
    for w in made:
        w.stop()


def test_results_arrive_via_signals_on_the_gui_thread(worker, qtbot) -> None:  # type: ignore[no-untyped-def]
    profile = np.linspace(0, 1, 10).astype(np.float32)
    sessions: list[FakeSession] = []

    def factory(ref: ModelRef) -> FakeSession:
        sessions.append(FakeSession(profile, (5, 7)))
        return sessions[-1]

    w, r = worker(factory)
    vol = np.zeros((10, 12, 16), dtype=np.float32)
    key = w.run_series("stack-1", vol, make_ref(), "gradcam", current=4)
    qtbot.waitUntil(lambda: sum(len(x.output.indices) for x in r.results) == 10, timeout=10000)
    assert r.threads == {threading.main_thread().name}
    assert sessions[0].thread.name == "radscope-inference"  # the model lives on the worker thread
    assert r.results[0].output.indices == (4,)  # the visible slice first
    got = sorted(k for x in r.results for k in x.output.indices)
    assert got == list(range(10)) and all(x.key == key for x in r.results)
    for x in r.results:
        np.testing.assert_allclose(x.output.scores[:, 0], profile[list(x.output.indices)])


def test_cancel_stops_the_run(worker, qtbot) -> None:  # type: ignore[no-untyped-def]
    gate = threading.Semaphore(0)
    w, r = worker(lambda ref: FakeSession(np.zeros(40, np.float32), (1, 1), batch=1, gate=gate), batch_size=4)
    w.run_series("s", np.zeros((40, 4, 4), np.float32), make_ref(), "gradcam", current=0)
    gate.release()
    qtbot.waitUntil(lambda: len(r.results) == 1, timeout=10000)
    w.cancel()
    for _ in range(10):
        gate.release()
    qtbot.wait(300)
    assert len(r.results) == 1
    assert w.scheduler.n_pending == 0 and w.scheduler.key is None


def test_new_series_mid_run_drops_the_old_series(worker, qtbot) -> None:  # type: ignore[no-untyped-def]
    gate = threading.Semaphore(0)
    w, r = worker(lambda ref: FakeSession(np.zeros(30, np.float32), (1, 1), batch=1, gate=gate), batch_size=2)
    old = w.run_series("A", np.zeros((30, 4, 4), np.float32), make_ref(), "gradcam")
    gate.release()
    qtbot.waitUntil(lambda: len(r.results) == 1, timeout=10000)
    new = w.run_series("B", np.zeros((3, 5, 5), np.float32), make_ref(), "gradcam")
    for _ in range(10):
        gate.release()
    qtbot.waitUntil(lambda: sum(x.key == new for x in r.results) == 3, timeout=10000)
    stale = [x for x in r.results if x.key == old]
    assert len(stale) == 1  # only the batch delivered before the switch
    assert all(x.output.scores.shape[0] == len(x.output.indices) for x in r.results)


def test_unloadable_model_is_reported_not_fatal(worker, qtbot) -> None:  # type: ignore[no-untyped-def]
    def factory(ref: ModelRef) -> FakeSession:
        raise ValueError("model.pt2: weights.sha256 does not match")

    w, r = worker(factory)
    w.run_series("s", np.zeros((2, 4, 4), np.float32), make_ref("broken"), "gradcam")
    qtbot.waitUntil(lambda: bool(r.errors), timeout=10000)
    assert "broken" in r.errors[0] and "sha256" in r.errors[0]
    assert w.running  # the thread survives a bad package


# -- panel ------------------------------------------------------------------------------------
@pytest.fixture
def panel(qtbot):  # type: ignore[no-untyped-def]
    from viewer.qt.ai_panel import AIPanel, ModelEntry

    p = AIPanel()
    qtbot.addWidget(p)
    p.set_models([ModelEntry("chest-nodule-demo", Path("/x"), CardStub()),
                  ModelEntry("broken", Path("/y"), error="broken/radscope-model.json: labels missing")])
    return p


def test_panel_shows_card_and_unusable_packages(panel) -> None:  # type: ignore[no-untyped-def]
    text = panel.card_label.text()
    for needle in ("chest-nodule-demo", "1.0.0", "NOT FOR CLINICAL USE", "Teaching", "phantom seeds", "0.931", "MIT"):
        assert needle in text
    assert panel.overlay_settings("nodule").threshold == pytest.approx(0.42)
    assert not panel.model_combo.model().item(1).isEnabled()
    assert not panel.select_model("broken") and panel.select_model("chest-nodule-demo")


def test_each_model_brings_its_own_threshold_for_a_shared_label(panel) -> None:  # type: ignore[no-untyped-def]
    """Two models with the same label name: picking the second applies its card's threshold (it kept the
    first model's 0.42 before), and the display settings the label had stay."""
    from viewer.qt.ai_panel import ModelEntry

    class CxrCard(CardStub):
        name, thresholds = "cxr-nodule-demo", {"nodule": 0.81}

    panel.set_models([ModelEntry("chest-nodule-demo", Path("/x"), CardStub()), ModelEntry("cxr", Path("/z"), CxrCard())])
    assert panel.overlay_settings("nodule").threshold == pytest.approx(0.42)
    panel.opacity_slider.setValue(80)
    assert panel.select_model("cxr")
    assert panel.overlay_settings("nodule").threshold == pytest.approx(0.81)
    assert panel.threshold_spin.value() == pytest.approx(0.81)
    assert panel.overlay_settings("nodule").opacity == pytest.approx(0.8)


def test_panel_scores_findings_and_jumps(panel, qtbot) -> None:  # type: ignore[no-untyped-def]
    from viewer.ai import SeriesResults

    key = JobScheduler().start("s", "sha", "gradcam", 6)
    res = SeriesResults(key, ["nodule"], (6, 2, 2), {"nodule": 0.5})
    res.add([0, 1, 2, 3, 4], np.array([[0.1], [0.8], [0.6], [0.2], [0.9]]), {})
    panel.set_results(res)
    x, y = panel.plot.curve_data("nodule")
    assert list(x[:2]) == [1, 2]  # 1-based image numbers, as the views' "Im k/n"
    np.testing.assert_allclose(y[:5], [0.1, 0.8, 0.6, 0.2, 0.9], atol=1e-6)
    assert np.isnan(y[5])  # not run yet: a gap, not a zero
    # threshold 0.42 (the card's) was applied: two runs above it, strongest first
    assert [f.peak_slice for f in panel.findings] == [4, 1]
    with qtbot.waitSignal(panel.findingRequested) as sig:
        panel.findings_list.itemClicked.emit(panel.findings_list.item(1))
    assert sig.args == [1]
    assert panel.plot.threshold_line.value() == pytest.approx(0.42)
    # a click on the plot at image 4 asks for slice index 3
    panel.resize(360, 800)
    panel.show()

    class Click:
        def scenePos(self):  # noqa: N802 (Qt name)
            return panel.plot.plotItem.vb.mapViewToScene(QPointF(4.2, 0.5))

    with qtbot.waitSignal(panel.sliceRequested) as sig:
        panel.plot._clicked(Click())
    assert sig.args == [3]
    # nothing above threshold: an explicit, inert "no finding" line
    quiet = SeriesResults(key, ["nodule"], (6, 2, 2), {"nodule": 0.5})
    quiet.add([0, 1], np.array([[0.1], [0.2]]), {})
    panel.set_results(quiet)
    assert panel.findings == [] and panel.findings_list.count() == 1
    assert "No finding so far (2/6 slices; nodule p \u2265 0.42)" == panel.findings_list.item(0).text()


def test_overlay_controls_and_toggle_key(panel, qtbot) -> None:  # type: ignore[no-untyped-def]
    with qtbot.waitSignal(panel.overlayChanged) as sig:
        panel.threshold_spin.setValue(0.3)
    assert sig.args == ["nodule"]
    assert panel.overlay_settings("nodule").threshold == pytest.approx(0.3)
    panel.opacity_slider.setValue(80)
    assert panel.overlay_settings("nodule").opacity == pytest.approx(0.8)
    panel.toggle_action.trigger()
    assert not panel.overlay_settings("nodule").visible
    lut = panel.overlay_settings("nodule").lut()
    assert lut[: int(0.3 * 255) - 1, 3].max() == 0 and lut[int(0.3 * 255) + 2 :, 3].min() == 255
    assert panel.overlay_settings("nodule").contour_level is None  # filled
    panel.contour_check.setChecked(True)
    assert panel.overlay_settings("nodule").contour_level == pytest.approx(0.3)  # the isoline at the threshold


def test_panel_renders_the_state_and_its_edits_change_the_state(panel) -> None:  # type: ignore[no-untyped-def]
    """The picker and the overlay controls show the AISettings, whoever changed them; a user edit goes into it."""
    from viewer.qt.ai_panel import ModelEntry

    class CxrCard(CardStub):
        name, thresholds, labels = "cxr-nodule-demo", {"nodule": 0.81, "effusion": 0.3}, ("nodule", "effusion")

    state = panel.settings
    state.add_model(ModelEntry("cxr", Path("/z"), CxrCard()))
    assert panel.model_combo.currentText() == "cxr" and "cxr-nodule-demo" in panel.card_label.text()
    assert [panel.label_combo.itemText(i) for i in range(panel.label_combo.count())] == ["nodule", "effusion"]
    state.set_overlay("nodule", threshold=0.7, colormap="hot", contour=True)
    assert panel.threshold_spin.value() == pytest.approx(0.7) and panel.cmap_combo.currentText() == "hot"
    assert panel.contour_check.isChecked() and panel.plot.threshold_line.value() == pytest.approx(0.7)
    state.set_overlay("effusion", opacity=0.1)  # not the label the controls show: they stay
    assert panel.opacity_slider.value() == 50
    panel.model_combo.setCurrentIndex(0)  # the user picks: into the state
    assert state.model == "chest-nodule-demo" and state.threshold("nodule") == pytest.approx(0.42)
    panel.visible_check.setChecked(False)
    assert not state.overlay_settings("nodule").visible
    panel.model_combo.setCurrentIndex(1)  # unusable: refused, the picker shows the model in force again
    assert state.model == "chest-nodule-demo" and panel.model_combo.currentIndex() == 0
    panel.run_state.set_methods(["gradcam", "gradcam++"], "gradcam")
    panel.method_combo.setCurrentText("gradcam++")  # the method picker writes the state too
    assert state.method == "gradcam++"
    panel.run_state.set_methods(["gradcam", "gradcam++"], "gradcam++")  # as the controller echoes the pick
    panel.run_state.set_methods(["gradcam", "gradcam++"], "gradcam")  # another method in force is shown
    assert panel.method_combo.currentText() == "gradcam" and panel.method_combo.count() == 2


# -- controller + views: overlay alignment in screen space, series switch -----------------------
@pytest.mark.parametrize("plane", ["axial", "coronal", "sagittal"])
def test_overlay_peak_is_on_the_nodule_in_screen_space(qtbot, make_controller, plane: str) -> None:  # type: ignore[no-untyped-def]
    from viewer.qt.qt import QPointF
    from viewer.qt.series_model import SeriesModel
    from viewer.qt.slice_view import SliceView

    vol = nodule_volume((37, 13, 15))
    nodule_lps = vol.index_to_lps((37, 13, 15))
    series = SeriesModel(vol)
    view = SliceView(plane)
    qtbot.addWidget(view, before_close_func=lambda v: v.set_model(None))  # deleted on the GUI thread, not by gc
    view.resize(400, 360)
    view.show()
    view.set_model(series)
    ctl = make_controller(qtbot, ImageBlobSession)
    with qtbot.waitSignal(ctl.finished, timeout=20000):
        ctl.set_series(series, vol.info.stack_id)
    # choosing the top finding puts the crosshair on the heatmap's peak: every MPR plane shows the nodule
    ctl.panel.findingRequested.emit(ctl.panel.findings[0].peak_slice)
    np.testing.assert_allclose(series.crosshair_index(), (37, 13, 15), atol=0.5)  # (i, j, k) of the nodule
    series.set_crosshair(nodule_lps)
    item = view.overlay_items[ctl.overlay_name("nodule")]
    shown = item.image
    assert shown is not None and shown.max() > 0.5  # probability units: peak slice scored high
    r, c = np.unravel_index(np.argmax(shown), shown.shape)
    peak = view.vb.mapViewToDevice(item.mapToView(QPointF(c + 0.5, r + 0.5)))
    x, y, _ = view.lps_to_scene(nodule_lps)
    truth = view.vb.mapViewToDevice(QPointF(x, y))
    px = view.vb.mapViewToDevice(QPointF(view.spacing_xy[0], view.spacing_xy[1])) - view.vb.mapViewToDevice(QPointF(0, 0))
    assert abs(peak.x() - truth.x()) <= 0.5 * abs(px.x()) + 0.5
    assert abs(peak.y() - truth.y()) <= 0.5 * abs(px.y()) + 0.5


class OverlaySpy(QObject):
    """Records, at every overlay repaint of a series, where the shown AI overlay peaks."""

    def __init__(self, series, name: str) -> None:  # type: ignore[no-untyped-def]
        super().__init__()
        self.series, self.name, self.peaks = series, name, []
        series.overlaysChanged.connect(self.on_changed)

    def on_changed(self) -> None:
        for ov in self.series.overlays:
            if ov.name == self.name and ov.array.max() > 0:
                self.peaks.append(np.unravel_index(np.argmax(ov.array), ov.array.shape))


def test_switching_series_mid_run_never_shows_the_old_heatmaps(qtbot, make_controller) -> None:  # type: ignore[no-untyped-def]
    from viewer.qt.series_model import SeriesModel

    gate = threading.Semaphore(0)
    ctl = make_controller(qtbot, lambda ref: ImageBlobSession(ref, gate))
    a = SeriesModel(nodule_volume((10, 30, 5)))
    b = SeriesModel(nodule_volume((45, 8, 18)))
    spy = OverlaySpy(b, ctl.overlay_name("nodule"))
    ctl.set_series(a, "A")
    gate.release()
    qtbot.waitUntil(lambda: ctl.results is not None and ctl.results.n_done == 1, timeout=10000)
    ctl.set_series(b, "B")
    for _ in range(200):
        gate.release()
    # not busy: the last batch's signal was handled on the GUI thread too (the worker may store every
    # slice before the GUI thread has handled any of its batch signals)
    qtbot.waitUntil(lambda: ctl.results.complete and not ctl.busy, timeout=20000)
    assert ctl.results.key.stack_id == "B"
    assert spy.peaks and all(abs(int(i) - 45) <= 1 and abs(int(j) - 8) <= 1 for _, j, i in spy.peaks)
    assert ctl.most_suspicious_slice() == 18


def test_cancel_from_the_panel(qtbot, make_controller) -> None:  # type: ignore[no-untyped-def]
    from viewer.qt.series_model import SeriesModel

    gate = threading.Semaphore(0)
    ctl = make_controller(qtbot, lambda ref: ImageBlobSession(ref, gate))
    ctl.set_series(SeriesModel(nodule_volume((10, 30, 5))), "A")
    gate.release()
    qtbot.waitUntil(lambda: ctl.results.n_done == 1, timeout=10000)
    assert ctl.busy and ctl.panel.cancel_button.isEnabled()
    ctl.panel.cancel_button.click()
    for _ in range(30):
        gate.release()
    qtbot.wait(300)
    assert not ctl.busy and ctl.results.n_done == 1
    assert ctl.panel.eta_label.text() == "cancelled"


# -- the main window ------------------------------------------------------------------------------
def test_window_runs_the_model_and_shows_overlays_on_every_mpr_view(qtbot, ai_window) -> None:  # type: ignore[no-untyped-def]
    window, ai = ai_window(ImageBlobSession)
    window.set_layout("1x3")
    vol = nodule_volume((37, 13, 15))
    ai.follow_findings()  # the demo's behaviour: land on the most suspicious slice when done
    with qtbot.waitSignal(ai.finished, timeout=20000):
        window.show_volume(vol)
    assert window.model.crosshair_index() == pytest.approx([37, 13, 15])
    assert ai.show_most_suspicious() == 15
    for view in window.visible_views():
        shown = view.overlay_items[ai.overlay_name("nodule")].image
        r, c = np.unravel_index(np.argmax(shown), shown.shape)
        x, y, _ = view.lps_to_scene(vol.index_to_lps((37, 13, 15)))
        col, row = x / view.spacing_xy[0] - 0.5, y / view.spacing_xy[1] - 0.5
        assert (r, c) == (round(row), round(col)), view.plane_name
    # findings list -> jump
    assert ai.panel.findings and ai.panel.findings[0].peak_slice == 15
    window.model.set_crosshair(vol.index_to_lps((0, 0, 2)))
    assert ai.control.current == 2  # the scheduler follows the visible slice
    ai.panel.findings_list.itemClicked.emit(ai.panel.findings_list.item(0))
    assert round(window.model.crosshair_index()[2]) == 15
    # the overlay key hides it on every view
    ai.panel.toggle_action.trigger()
    assert not any(v.overlay_items[ai.overlay_name("nodule")].isVisible() for v in window.visible_views())


class OOMSession(ImageBlobSession):
    """Reports what the runner reports on a GPU out-of-memory fallback, then goes on."""

    def run(self, volume, indices, method, cancel, notify):  # type: ignore[no-untyped-def]
        notify("GPU out of memory even at batch size 1: continuing on the CPU")
        yield from super().run(volume, indices, method, cancel, notify)


def test_out_of_memory_fallback_is_reported_and_the_run_completes(qtbot, ai_window) -> None:  # type: ignore[no-untyped-def]
    window, ai = ai_window(OOMSession)
    with qtbot.waitSignal(ai.finished, timeout=20000):
        window.show_volume(nodule_volume((37, 13, 15)))
    reasons = [reason for _, reason in window.errors_panel.errors()]
    assert len(reasons) == 1 and "continuing on the CPU" in reasons[0]  # once, not once per batch
    assert "continuing on the CPU" in ai.panel.status_label.text()
    assert ai.results.complete


def test_bad_package_goes_to_the_errors_panel(qtbot, ai_window) -> None:  # type: ignore[no-untyped-def]
    def factory(ref: ModelRef) -> ImageBlobSession:
        raise RuntimeError("blob/model.pt2: weights.sha256 does not match")

    window, ai = ai_window(factory)
    window.show_volume(nodule_volume((37, 13, 15)))
    qtbot.waitUntil(lambda: bool(window.errors_panel.errors()), timeout=10000)
    source, reason = window.errors_panel.errors()[0]
    assert source == "blob" and "sha256" in reason
    assert window.session.problems == [(source, reason)] and window.errors_dock.isVisible()  # reported into the state
    assert not ai.busy


# -- model discovery and --model ------------------------------------------------------------------
def write_card(folder: Path, name: str, **overrides: object) -> Path:
    """A package folder with a valid card (weights bytes are never loaded here)."""
    import hashlib
    import json

    folder.mkdir(parents=True)
    weights = b"not really a model"
    (folder / "model.pt2").write_bytes(weights)
    card = {"format": "radscope-model/1", "name": name, "version": "0.1.0", "dims": 2, "labels": ["nodule"],
            "output": "sigmoid", "input": {"size": [64, 64], "channels": 1, "window": {"center": -600, "width": 1500},
                                           "modalities": ["CT"]},
            "weights": {"file": "model.pt2", "format": "torch.export", "sha256": hashlib.sha256(weights).hexdigest()},
            "explain": {"target_layer": "features"}, "intended_use": "demo, not for clinical use"}
    card.update(overrides)
    (folder / "radscope-model.json").write_text(json.dumps(card))
    return folder


def test_installed_models_lists_good_and_bad_packages(tmp_path: Path) -> None:
    from viewer.qt.ai_integration import installed_models

    write_card(tmp_path / "bundled" / "a", "alpha")
    write_card(tmp_path / "user" / "b", "beta", labels=[])
    (tmp_path / "user" / "notes.txt").write_text("not a package")
    entries = installed_models([(tmp_path / "bundled", True), (tmp_path / "user", False), (tmp_path / "none", False)])
    assert [(e.name, e.bundled, e.error is None) for e in entries] == [("alpha", True, True), ("b", False, False)]
    assert "labels" in entries[1].error and "radscope-model.json" in entries[1].error


def test_use_model_by_path_and_unknown_name(qtbot, make_controller, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    ctl = make_controller(qtbot, ImageBlobSession)
    notes: list[str] = []
    ctl.notify.connect(notes.append)  # test-side recorder on the GUI thread: emitted synchronously
    pkg = write_card(tmp_path / "mine", "my-model")
    assert ctl.use_model(str(pkg))
    assert ctl.model_entry.name == "my-model" and ctl.panel.current_entry().path == pkg
    assert not ctl.use_model("no-such-model")
    assert "no-such-model" in notes[-1] and "blob" in notes[-1] and "my-model" in notes[-1]


# -- the real inference runner on the worker thread --------------------------------------------
@pytest.mark.slow  # torch import + export of a tiny model: ~8 s on a busy 2-core machine
def test_real_runner_session_matches_the_runner(qtbot, ai_window, tiny_package: Path) -> None:  # type: ignore[no-untyped-def]
    """A real torch.export package through RunnerSession: the worker's results (Grad-CAM, which
    needs grad mode on *its* thread) equal the runner's own, weighted into probability units."""
    from inference.package import read_card
    from inference.runner import Runner
    from viewer.dicom.volume import SeriesInfo, Volume
    from viewer.qt.ai_panel import ModelEntry

    card = read_card(tiny_package)
    arr = np.random.default_rng(0).normal(40, 300, size=(7, 45, 70)).astype(np.float32)
    vol = Volume(arr, np.zeros(3), np.array([0.7, 0.9, 2.0]), np.eye(3), [f"1.2.{k}" for k in range(7)],
                 info=SeriesInfo(series_uid="1.2", stack_id="1.2", modality="CT"))
    window, ai = ai_window(None, models=[ModelEntry("tiny", tiny_package, card=card)])
    with qtbot.waitSignal(ai.finished, timeout=60000):
        window.show_volume(vol)
    expected = list(Runner(tiny_package, device="cpu").run(arr, method="gradcam"))
    scores = np.concatenate([r.scores for r in expected])
    np.testing.assert_allclose(ai.results.scores, scores, atol=1e-5)
    maps = np.concatenate([r.heatmaps["b"] for r in expected])
    # held as uint8 codes of the map times the score: half a code off at most
    np.testing.assert_allclose(ai.results.heatmap("b"), maps * scores[:, 1, None, None], atol=0.5 / 255 + 1e-5)
    assert ai.device_name == "cpu" and ai.panel.device_label.text() == "Device: CPU"
    assert "gradcam++" in [ai.panel.method_combo.itemText(i) for i in range(ai.panel.method_combo.count())]


def test_revisiting_a_series_reuses_its_results(qtbot, make_controller) -> None:  # type: ignore[no-untyped-def]
    from viewer.qt.series_model import SeriesModel

    ran: list[int] = []

    class Counting(ImageBlobSession):
        def run(self, volume, indices, method, cancel, notify):  # type: ignore[no-untyped-def]
            ran.extend(indices)
            yield from super().run(volume, indices, method, cancel, notify)

    ctl = make_controller(qtbot, Counting)
    vol_a, vol_b = nodule_volume((10, 30, 5)), nodule_volume((45, 8, 18))
    with qtbot.waitSignal(ctl.finished, timeout=20000):
        ctl.set_series(SeriesModel(vol_a), "A")
    heat_a = ctl.results.heatmap("nodule").copy()
    with qtbot.waitSignal(ctl.finished, timeout=20000):
        ctl.set_series(SeriesModel(vol_b), "B")
    assert len(ran) == 2 * vol_a.shape[0]
    again = SeriesModel(vol_a)  # the window makes a new model when a series is shown again
    with qtbot.waitSignal(ctl.finished, timeout=5000):
        ctl.set_series(again, "A")
    assert len(ran) == 2 * vol_a.shape[0]  # nothing ran again
    assert not ctl.busy and ctl.results.key.stack_id == "A"
    (overlay,) = [o for o in again.overlays if o.name == ctl.overlay_name("nodule")]
    np.testing.assert_array_equal(overlay.array, heat_a)


def test_while_loading_only_the_visible_slice_runs(qtbot, make_controller) -> None:  # type: ignore[no-untyped-def]
    from viewer.qt.series_model import SeriesModel

    vol = nodule_volume((37, 13, 15))
    loaded = np.zeros(vol.shape[0], dtype=bool)
    loaded[15] = True  # the viewer decodes the slice it shows first
    series = SeriesModel(vol, loaded)
    series.set_crosshair(vol.index_to_lps((37, 13, 15)))
    ctl = make_controller(qtbot, ImageBlobSession)
    ctl.set_series(series, "S")
    qtbot.waitUntil(lambda: ctl.results.n_done == 1, timeout=10000)
    qtbot.wait(200)
    assert ctl.results.n_done == 1 and ctl.results.done[15]  # the decoder threads keep the CPU
    with qtbot.waitSignal(ctl.finished, timeout=20000):
        series.finish_loading(vol)
    assert ctl.results.complete


def test_saved_contour_preference_draws_isolines_on_every_view(qtbot, ai_window, radscope_home: Path) -> None:  # type: ignore[no-untyped-def]
    """``viewer-settings.json`` "ai_overlay" (what the panel saves) turns contour mode on at start-up."""
    import json

    (radscope_home / "viewer-settings.json").write_text(json.dumps({"ai_overlay": {"contour": True, "opacity": 0.7}}))
    window, ai = ai_window(ImageBlobSession)
    window.set_layout("1x3")
    vol = nodule_volume((37, 13, 15))
    with qtbot.waitSignal(ai.finished, timeout=20000):
        window.show_volume(vol)
    ai.show_most_suspicious()
    s = ai.panel.overlay_settings("nodule")
    assert s.contour and s.opacity == pytest.approx(0.7) and s.threshold == pytest.approx(0.42)  # the card's
    assert ai.panel.contour_check.isChecked()
    name = ai.overlay_name("nodule")
    for view in window.visible_views():
        line = view.isoline_items[name]
        assert line.isVisible() and line.n_points > 0 and not view.overlay_items[name].isVisible(), view.plane_name
    ai.panel.contour_check.setChecked(False)  # the user's change is saved
    saved = json.loads((radscope_home / "viewer-settings.json").read_text())["ai_overlay"]
    assert saved == {"colormap": "jet", "opacity": 0.7, "contour": False}
    assert all(view.overlay_items[name].isVisible() and not view.isoline_items[name].isVisible()
               for view in window.visible_views())


def test_runner_session_runs_the_visible_slice_on_one_thread(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A single-slice job (the visible slice) runs with one torch thread (a second one only waits at barriers,
    badly so on a busy machine); a batch keeps the runner's threads; the setting is restored either way."""
    import torch

    from inference.architectures import DemoCNN
    from inference.package import save_package
    from inference.runner import Runner
    from viewer.qt.ai_worker import RunnerSession

    fields = {"name": "tiny", "version": "0.1", "dims": 2, "labels": ["a"], "output": "sigmoid",
              "input": {"size": [32, 32], "channels": 1, "window": {"center": 40, "width": 400}},
              "explain": {"target_layer": "features"}}
    save_package(DemoCNN(1, 1, widths=(4, 8)), fields, tmp_path / "tiny", torch.zeros(2, 1, 32, 32))
    session = RunnerSession(ModelRef(path=tmp_path / "tiny", name="tiny", sha256="0" * 64, labels=("a",)))
    threads_before = torch.get_num_threads()
    seen: list[int] = []
    real_run = Runner.run

    def spy(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        for res in real_run(self, *args, **kwargs):
            seen.append(torch.get_num_threads())
            yield res

    monkeypatch.setattr(Runner, "run", spy)
    vol = np.zeros((4, 40, 40), np.float32)
    assert len(list(session.run(vol, [2], "gradcam", threading.Event(), lambda m: None))) == 1
    assert seen == [1] and torch.get_num_threads() == threads_before
    seen.clear()
    list(session.run(vol, [0, 1, 2, 3], "gradcam", threading.Event(), lambda m: None))
    assert seen and set(seen) == {threads_before}


def test_status_lines_belong_to_the_series_and_model_they_were_said_about(qtbot, make_controller) -> None:  # type: ignore[no-untyped-def]
    """'not offered for MR' is gone under the next CT's results, 'n/n done' is not shown on an MR."""
    from dataclasses import replace

    from viewer.qt.series_model import SeriesModel

    ctl = make_controller(qtbot, ImageBlobSession)
    assert ctl.state.model == "blob" and ctl.state.threshold("nodule") == pytest.approx(0.42)
    ct = nodule_volume((10, 30, 5))
    ctl.set_series(SeriesModel(ct), "CT")
    qtbot.waitUntil(lambda: not ctl.busy and ctl.results is not None and ctl.results.complete, timeout=20_000)
    assert ctl.panel.eta_label.text() == "done" and ctl.panel.progress.value() == ct.shape[0]
    mr = nodule_volume((12, 30, 5))
    mr.info = replace(mr.info, modality="MR", stack_id="MR", series_uid="MR")
    ctl.set_series(SeriesModel(mr), "MR")
    assert "not offered for MR" in ctl.panel.status_label.text()
    assert ctl.panel.eta_label.text() == "" and ctl.panel.progress.text() == "" and ctl.results is None
    ctl.set_series(SeriesModel(nodule_volume((14, 30, 5))), "CT2")
    assert ctl.panel.status_label.text() == ""
    qtbot.waitUntil(lambda: not ctl.busy and ctl.results is not None and ctl.results.complete, timeout=20_000)
    ctl.panel.threshold_spin.setValue(0.6)  # the panel's threshold reaches the state (the review reads it there)
    assert ctl.state.threshold("nodule") == pytest.approx(0.6)
    assert ctl.series.overlay("AI nodule").threshold == pytest.approx(0.6)


def test_follow_findings_once_jumps_to_the_top_finding_after_the_first_run_only(qtbot, make_controller) -> None:  # type: ignore[no-untyped-def]
    """``radscope PATH --model NAME``: once the run ends the views move to the top finding, crosshair on its peak;
    a later run (the user moved on) does not pull them back."""
    from viewer.qt.series_model import SeriesModel

    ctl = make_controller(qtbot, ImageBlobSession)
    centre = (45, 8, 18)  # (i, j, k) of the bright sphere
    series = SeriesModel(nodule_volume(centre))
    ctl.follow_findings(once=True)
    with qtbot.waitSignal(ctl.finished, timeout=20_000):
        ctl.set_series(series, "A")
    ijk = series.crosshair_index()
    assert round(ijk[2]) == centre[2] and abs(ijk[0] - centre[0]) <= 1 and abs(ijk[1] - centre[1]) <= 1
    series.go_to(np.array([0.0, 0.0, 2.0]))
    with qtbot.waitSignal(ctl.finished, timeout=20_000):
        ctl.run()
    assert round(series.crosshair_index()[2]) == 2  # not pulled back by the second run


def test_overlay_preferences_are_saved_on_edits_only(qtbot, ai_window, radscope_home: Path) -> None:  # type: ignore[no-untyped-def]
    """A new model's thresholds change the overlay settings but are no preference: nothing is written until the
    user changes a colour map, opacity or contour mode."""
    import json

    window, ai = ai_window(ImageBlobSession)
    settings_file = radscope_home / "viewer-settings.json"
    before = settings_file.read_text() if settings_file.exists() else ""
    ai.state.set_model("other-model", {"nodule": 0.2})
    assert (settings_file.read_text() if settings_file.exists() else "") == before
    ai.panel.opacity_slider.setValue(90)
    saved = json.loads(settings_file.read_text())["ai_overlay"]
    assert saved == {"colormap": "jet", "opacity": 0.9, "contour": False}
