"""viewer.state: the Qt-free evented state (psygnal) the widgets follow; no Qt is imported here."""

from __future__ import annotations

import numpy as np
import pytest

from viewer.dicom.volume import SeriesInfo, Volume
from viewer.display.colormaps import overlay_lut
from viewer.display.measure import MeasurementRecord
from viewer.display.settings import ViewerSettings
from viewer.state import AISettings, OverlayLayer, ReviewContextState, SeriesState, SessionState

SHAPE = (6, 8, 10)


def volume(modality: str = "CT", monochrome1: bool = False) -> Volume:
    arr = np.arange(np.prod(SHAPE), dtype=np.float32).reshape(SHAPE)
    info = SeriesInfo(modality=modality, stack_id="S", series_uid="S", monochrome1=monochrome1)
    return Volume(arr, (0.0, 0.0, 0.0), (0.5, 0.5, 2.0), np.eye(3), [f"1.{k}" for k in range(SHAPE[0])], info=info)


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[object, ...]]] = []

    def on(self, name: str):  # type: ignore[no-untyped-def]
        def record(*args: object) -> None:
            self.calls.append((name, args))
        return record

    def names(self) -> list[str]:
        return [n for n, _ in self.calls]


def test_each_overlay_field_has_its_own_event_and_changed_follows_once() -> None:
    layer = OverlayLayer("AI nodule", np.zeros(SHAPE, np.float32), overlay_lut("hot"), 0.6)
    rec = Recorder()
    for name in ("array", "lut", "opacity", "visible", "contour", "threshold", "data", "changed"):
        getattr(layer.events, name).connect(rec.on(name))
    layer.opacity = 0.3
    assert rec.calls == [("opacity", (0.3,)), ("changed", ())]
    rec.calls.clear()
    layer.opacity = 0.3  # no change, no event
    assert rec.calls == []
    changed = layer.update(visible=False, contour=0.5, threshold=0.5, opacity=0.3)
    assert changed == ["visible", "contour", "threshold"]
    assert rec.names() == ["visible", "contour", "threshold", "changed"]
    rec.calls.clear()
    layer.lut = overlay_lut("hot")  # equal table: nothing
    layer.lut = overlay_lut("jet")
    assert rec.names() == ["lut", "changed"]
    rec.calls.clear()
    layer.array[2] = 1.0
    layer.refresh()
    assert rec.names() == ["data", "changed"]
    with pytest.raises(TypeError, match="colour"):
        layer.update(colour=1)


def test_series_relays_layer_changes_and_forgets_removed_layers() -> None:
    series = SeriesState(volume())
    rec = Recorder()
    series.overlaysChanged.connect(rec.on("overlays"))
    layer = OverlayLayer("AI x", np.zeros(SHAPE, np.float32))
    series.add_overlay(layer)
    layer.opacity = 0.1
    assert len(rec.calls) == 2 and series.overlay("AI x") is layer
    replacement = OverlayLayer("AI x", np.ones(SHAPE, np.float32))
    series.add_overlay(replacement)
    layer.opacity = 0.9  # the replaced layer no longer reaches the series
    assert len(rec.calls) == 3 and series.overlays == [replacement]
    series.remove_overlay("AI x")
    replacement.visible = False
    assert len(rec.calls) == 4 and series.overlays == []
    with pytest.raises(ValueError, match="shape"):
        series.add_overlay(OverlayLayer("bad", np.zeros((1, 2, 3), np.float32)))


def test_slices_arrive_through_the_series_state() -> None:
    vol = volume()
    arr = vol.array.copy()
    vol.array[:] = 0
    loaded = np.zeros(SHAPE[0], bool)
    loaded[3] = True
    series = SeriesState(vol, loaded)
    rec = Recorder()
    series.sliceLoaded.connect(rec.on("slice"))
    assert not series.fully_loaded and series.current_slice() == 3
    series.receive_slices([(0, arr[0]), (5, arr[5])])
    assert rec.calls == [("slice", (0,)), ("slice", (5,))]
    assert np.array_equal(vol.array[5], arr[5]) and series.loaded.tolist() == [1, 0, 0, 1, 0, 1]
    assert series.value_at(np.array([1.0, 2.0, 5.0])) == float(arr[5, 2, 1])
    assert series.value_at(np.array([1.0, 2.0, 4.0])) is None  # not decoded yet


def test_crosshair_window_and_measurements() -> None:
    series = SeriesState(volume(monochrome1=True))
    rec = Recorder()
    series.crosshairChanged.connect(rec.on("cross"))
    series.windowChanged.connect(rec.on("window"))
    series.measurementsChanged.connect(rec.on("meas"))
    assert series.invert  # MONOCHROME1 shows inverted
    series.go_to(np.array([100.0, -5.0, 4.2]))  # clamped inside the volume
    assert np.allclose(series.crosshair_index(), [SHAPE[2] - 1, 0, 4.2]) and series.current_slice() == 4
    series.set_window(40, 0)
    assert series.width == pytest.approx(1e-3)
    record = MeasurementRecord("distance", "acquisition", 4, [(0.0, 0.0), (3.0, 4.0)])
    series.add_measurement(record)
    series.remove_measurement(record)
    assert rec.names() == ["cross", "window", "meas", "meas"] and series.measurements == []


def test_session_keeps_measurements_per_series_and_says_when_the_current_one_changes() -> None:
    session = SessionState(ViewerSettings())
    rec = Recorder()
    session.currentChanged.connect(rec.on("current"))
    session.seriesChanged.connect(rec.on("series"))
    session.seriesShown.connect(rec.on("shown"))
    session.choose("A")
    a = session.new_series(volume())
    a.add_measurement(MeasurementRecord("distance", "acquisition", 1, [(0.0, 0.0), (1.0, 0.0)]))
    session.announce_shown("A")
    session.choose("B")
    assert session.series is None
    session.announce_shown("A")  # stale: B is current now
    b = session.new_series(volume())
    assert b.measurements == []
    session.choose("A")
    again = session.new_series(volume())
    assert len(again.measurements) == 1 and again.measurements is session.measurements_for("A")
    assert rec.names() == ["current", "series", "shown", "series", "current", "series", "series", "current",
                           "series"]


def test_ai_settings_thresholds_come_from_the_model_and_changes_are_events() -> None:
    ai = AISettings()
    rec = Recorder()
    ai.thresholdChanged.connect(rec.on("thr"))
    ai.modelChanged.connect(rec.on("model"))
    ai.statusChanged.connect(rec.on("status"))
    ai.set_model("chest-nodule-demo", {"nodule": 0.33})
    ai.set_threshold("nodule", 0.33)  # unchanged
    ai.set_threshold("nodule", 0.5)
    ai.set_model("cxr", {"opacity": 0.81})
    assert ai.threshold("nodule") is None and ai.threshold("opacity") == pytest.approx(0.81)
    ai.set_status("results from the cache")
    ai.set_status("results from the cache")
    assert rec.calls == [("model", ("chest-nodule-demo",)), ("thr", ("nodule", 0.33)), ("thr", ("nodule", 0.5)),
                         ("model", ("cxr",)), ("thr", ("opacity", 0.81)), ("status", ("results from the cache",))]


def test_review_context_says_why_a_step_cannot_be_taken() -> None:
    ctx = ReviewContextState("  Dr. Who ")
    assert ctx.reviewer == "  Dr. Who "
    ctx.set_reviewer(" Dr. Who ")
    assert ctx.reviewer == "Dr. Who"
    assert ctx.step_message(1) == "The worklist is empty"
    ctx.set_study("1.2.3", 2, 3)
    assert ctx.is_last and ctx.step_message(1) == "This is the last study on the worklist (3 of 3)"
    assert ctx.step_message(-1) is None
    ctx.set_study("1.2.1", 0, 3)
    assert ctx.is_first and "first study" in (ctx.step_message(-1) or "")


def test_problems_are_reported_into_the_session_and_cleared_by_a_new_open() -> None:
    session = SessionState()
    rec = Recorder()
    session.problemsAdded.connect(rec.on("added"))
    session.problemsCleared.connect(rec.on("cleared"))
    session.clear_problems()  # nothing to clear: no event
    session.add_problems([])  # nothing to add: no event
    session.add_problems([("/data/a.dcm", "no pixel data")])
    session.add_problems([("chest-nodule-demo", "AI: inference failed")], show=False)
    assert session.problems == [("/data/a.dcm", "no pixel data"), ("chest-nodule-demo", "AI: inference failed")]
    session.clear_problems()
    assert session.problems == []
    assert rec.calls == [("added", ([("/data/a.dcm", "no pixel data")], True)),
                         ("added", ([("chest-nodule-demo", "AI: inference failed")], False)), ("cleared", ())]


def test_thumbnails_belong_to_the_listed_stack_object() -> None:
    from types import SimpleNamespace

    session = SessionState()
    rec = Recorder()
    session.thumbnailChanged.connect(rec.on("thumb"))
    a, b = SimpleNamespace(stack_id="A"), SimpleNamespace(stack_id="B")
    session.set_thumbnail("A", np.zeros((2, 2), np.uint8))  # not listed yet: dropped
    session.set_stacks([a, b])
    img = np.ones((2, 2), np.uint8)
    session.set_thumbnail("A", img)
    session.set_thumbnail("B", img)
    session.set_stacks([a, SimpleNamespace(stack_id="B")])  # B re-scanned (a grown series): its thumbnail goes
    assert list(session.thumbnails) == ["A"] and session.thumbnails["A"] is img
    assert rec.names() == ["thumb", "thumb"]
