"""The AI settings the AI panel renders and edits (installed models with their errors, the chosen model,
per-label overlay settings with one event per field, saved preferences), tested without Qt."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from viewer.state.ai import AISettings
from viewer.state.ai_models import ModelEntry, OverlaySettings


def entry(name: str, labels: dict[str, float], modalities: tuple[str, ...] = ("CT",)) -> ModelEntry:
    card = SimpleNamespace(name=name, labels=list(labels), thresholds=dict(labels),
                           input=SimpleNamespace(modalities=modalities))
    return ModelEntry(name, Path(f"/models/{name}"), card=card)


BROKEN = ModelEntry("broken", Path("/models/broken"), error="broken/radscope-model.json: labels missing")


class Recorder:
    def __init__(self, settings: AISettings) -> None:
        self.calls: list[tuple[str, tuple[object, ...]]] = []
        for name in ("modelsChanged", "modelChanged", "labelsChanged", "thresholdChanged", "statusChanged"):
            getattr(settings, name).connect(self.on(name))
        for name in ("colormap", "opacity", "threshold", "contour", "visible", "changed"):
            getattr(settings.overlay, name).connect(self.on("overlay." + name))

    def on(self, name: str):  # type: ignore[no-untyped-def]
        def record(*args: object) -> None:
            self.calls.append((name, args))
        return record

    def take(self) -> list[tuple[str, tuple[object, ...]]]:
        out, self.calls = self.calls, []
        return out


def test_models_list_their_errors_and_the_first_usable_one_is_chosen() -> None:
    s = AISettings()
    rec = Recorder(s)
    s.set_models([BROKEN, entry("chest", {"nodule": 0.42})])
    assert s.entry is not None and s.model == "chest" and s.labels == ["nodule"]
    assert s.threshold("nodule") == pytest.approx(0.42) and s.usable_names() == ["chest"]
    assert s.card is s.entry.card  # the review stamps flags with the card in force
    names = [n for n, _ in rec.take()]
    assert names[:4] == ["modelsChanged", "modelChanged", "labelsChanged", "overlay.colormap"]
    assert not s.select("broken") and not s.select("missing") and s.model == "chest"
    with pytest.raises(ValueError, match="labels missing"):
        s.choose(BROKEN)
    assert rec.take() == []  # refusing changed nothing
    s.set_models([])
    assert s.entry is None and s.model == "" and s.labels == [] and s.thresholds == {}


def test_each_overlay_field_is_its_own_event_and_changed_follows_once() -> None:
    s = AISettings()
    s.set_models([entry("chest", {"nodule": 0.42})])
    rec = Recorder(s)
    assert s.set_overlay("nodule", opacity=0.8, threshold=0.3, visible=True) == ["opacity", "threshold"]
    assert rec.take() == [("overlay.opacity", ("nodule", 0.8)), ("overlay.threshold", ("nodule", 0.3)),
                          ("thresholdChanged", ("nodule", 0.3)), ("overlay.changed", ("nodule",))]
    assert s.set_overlay("nodule", opacity=0.8) == [] and rec.take() == []
    s.set_overlay("nodule", threshold=1.7, opacity=-1)  # clipped to probabilities
    assert s.overlay_settings("nodule").threshold == 1.0 and s.overlay_settings("nodule").opacity == 0.0
    with pytest.raises(ValueError, match="colour map"):
        s.set_overlay("nodule", colormap="no-such-map")
    with pytest.raises(TypeError, match="alpha"):
        s.set_overlay("nodule", alpha=1)
    s.set_overlay("nodule", threshold=0.3, contour=True)
    assert s.overlay_settings("nodule").contour_level == pytest.approx(0.3)
    assert s.overlay_settings("nodule").layer_fields()["contour"] == pytest.approx(0.3)


def test_a_new_model_brings_its_thresholds_keeps_display_settings_and_clears_the_status() -> None:
    s = AISettings()
    s.set_models([entry("chest", {"nodule": 0.42}), entry("cxr", {"nodule": 0.81, "opacity": 0.6})])
    s.set_overlay("nodule", opacity=0.8, threshold=0.2, colormap="hot")
    s.set_status("chest: results from the cache (computed before with gradcam)")
    rec = Recorder(s)
    assert s.select("cxr")
    calls = rec.take()
    assert calls[0] == ("statusChanged", ("",)) and calls[1] == ("modelChanged", ("cxr",))
    assert ("labelsChanged", (["nodule", "opacity"],)) in calls
    assert ("thresholdChanged", ("nodule", 0.81)) in calls and ("overlay.opacity", ("nodule", 0.8)) not in calls
    nodule = s.overlay_settings("nodule")
    assert (nodule.threshold, nodule.opacity, nodule.colormap) == (pytest.approx(0.81), 0.8, "hot")
    assert s.threshold("opacity") == pytest.approx(0.6)
    assert s.select("cxr") and rec.take() == []  # the same model again: nothing happens


def test_preferences_apply_now_and_to_later_models_and_follow_the_last_edit() -> None:
    s = AISettings()
    s.set_models([entry("chest", {"nodule": 0.42}), entry("mr", {"lesion": 0.5}, ("MR",))])
    s.set_preferences({"contour": True, "opacity": 0.7, "colormap": "no-such-map", "other": 1})
    assert s.preferences == {"contour": True, "opacity": 0.7, "colormap": "no-such-map"}
    nodule = s.overlay_settings("nodule")
    assert nodule.contour and nodule.opacity == pytest.approx(0.7) and nodule.colormap == "jet"  # bad map ignored
    s.set_overlay("nodule", contour=False)
    assert s.preferences == {"colormap": "jet", "opacity": 0.7, "contour": False}
    s.set_overlay("nodule", threshold=0.9)  # not a preference
    assert s.preferences == {"colormap": "jet", "opacity": 0.7, "contour": False}
    assert s.select("mr")
    lesion = s.overlay_settings("lesion")
    assert not lesion.contour and lesion.opacity == pytest.approx(0.7) and lesion.threshold == pytest.approx(0.5)


def test_a_package_named_by_path_is_listed_once_and_chosen() -> None:
    s = AISettings()
    s.set_models([entry("chest", {"nodule": 0.42})])
    mine = entry("mine", {"nodule": 0.3})
    s.add_model(mine)
    s.add_model(mine)
    assert [e.name for e in s.models] == ["chest", "mine"] and s.entry == mine
    assert s.threshold("nodule") == pytest.approx(0.3)


def test_offered_for_reads_the_cards_modalities() -> None:
    ct = entry("chest", {"nodule": 0.42})
    anything = entry("any", {"nodule": 0.5}, ())
    assert ct.offered_for("CT") and not ct.offered_for("MR") and ct.offered_for("")
    assert anything.offered_for("MR") and not BROKEN.offered_for("CT")


def test_overlay_settings_lut_is_transparent_below_the_threshold() -> None:
    lut = OverlaySettings(threshold=0.3).lut()
    assert lut[: int(0.3 * 255) - 1, 3].max() == 0 and lut[int(0.3 * 255) + 2:, 3].min() == 255
    assert np.array_equal(OverlaySettings(colormap="hot").changed(threshold=0.3).lut()[:, :3],
                          OverlaySettings(colormap="hot", threshold=0.3).lut()[:, :3])
