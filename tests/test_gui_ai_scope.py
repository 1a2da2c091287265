"""Intended use in the viewer, with the bundled CT model (real weights and OOD statistics): a real head CT
is not auto-run (most slices unlike the training data), a series whose header is outside the rules is
not run and the panel says why, a run by hand needs a confirmation and puts a banner on every view."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest

from tests.conftest import pydicom_data_file

pytestmark = [pytest.mark.gui, pytest.mark.qt_log_ignore("propagateSizeHints")]
BUNDLED = Path(__file__).resolve().parents[1] / "resources" / "models" / "chest-nodule-demo"


def _ct_model():  # type: ignore[no-untyped-def]
    from inference.package import read_card
    from viewer.qt.ai_panel import ModelEntry

    return [ModelEntry("chest-nodule-demo", BUNDLED, card=read_card(BUNDLED))]


def test_head_ct_is_not_auto_run_and_a_forced_run_carries_the_banner(qtbot, ai_window, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from viewer.dicom import load_volume, scan

    (stack,) = scan([pydicom_data_file("693_UNCR.dcm")]).stacks  # a real head CT; no BodyPartExamined
    vol = load_volume(stack)
    window, ai = ai_window(None, models=_ct_model())
    asked: list[str] = []
    ai.scope.confirm = lambda text: asked.append(text) or False  # the user says no first
    window.show_volume(vol)
    qtbot.waitUntil(lambda: "not run" in ai.panel.status_label.text(), timeout=60000)
    status = ai.panel.status_label.text()
    assert "images unlike the training data: 1 of 1 slices checked" in status and "Press Run" in status
    assert ai.results is None and not [o for o in ai.series.overlays if o.name.startswith("AI ")]
    ai.panel.run_button.click()
    assert asked and "outside chest-nodule-demo's intended use" in asked[0]
    assert ai.results is None and ai.series.banner == ""  # declined: nothing ran
    ai.scope.confirm = lambda text: True
    with qtbot.waitSignal(ai.finished, timeout=60000):
        ai.panel.run_button.click()
    assert ai.series.banner.startswith("outside intended use: images unlike the training data")
    assert [o for o in ai.series.overlays if o.name.startswith("AI ")]
    assert np.isfinite(ai.results.ood).all() and ai.panel.ood_plot.isVisible()
    # the banner is drawn: a red strip across the top of the view, over the image
    view = window.views[0]
    view.viewport().repaint()
    image = view.viewport().grab().toImage()
    top = image.pixelColor(image.width() // 2, 3)
    assert top.red() > 140 and top.green() < 60 and top.blue() < 60, top.name()
    # a flag made on these results records the banner's words (store, exports, SR: test_review_scope_note)
    from viewer.qt.review_integration import attach_review
    from viewer.review import ReviewStore

    review = attach_review(window, ai=ai, store=ReviewStore(tmp_path / "review.sqlite3"))
    review.update_context(for_flag=True)
    assert review.panel.context is not None and review.panel.context.scope_note == ai.series.banner
    flag_id = review.panel.add_flag("false_positive")
    assert flag_id and review.store.get_flag(flag_id).scope_note == ai.series.banner
    review.store.close()


def test_header_outside_the_rules_is_not_run_and_says_why(qtbot, ai_window, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from viewer.dicom import load_volume, scan

    ds = pydicom.dcmread(pydicom_data_file("693_UNCR.dcm"))
    ds.BodyPartExamined = "HEAD"
    ds.save_as(tmp_path / "head.dcm")
    (stack,) = scan([tmp_path / "head.dcm"]).stacks
    window, ai = ai_window(None, models=_ct_model())
    window.show_volume(load_volume(stack))
    qtbot.waitUntil(lambda: "not run" in ai.panel.status_label.text(), timeout=30000)
    assert "Body part HEAD; this model is for CHEST" in ai.panel.status_label.text()
    assert ai.results is None and not ai.busy
