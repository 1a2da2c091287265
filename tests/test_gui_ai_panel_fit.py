"""The AI panel in its dock's scroll area (as the window installs it): captions wrap to the dock's width, nothing
scrolls sideways, the scores plot keeps its room on a laptop's dock (offscreen; the Xvfb test covers real screens,
192 DPI included)."""

from __future__ import annotations

import pytest

from viewer.qt.qt import QtWidgets

pytestmark = [pytest.mark.gui]


def _docked(qtbot, width: int, height: int):  # type: ignore[no-untyped-def]
    from viewer.qt.ai_panel import AIPanel

    panel = AIPanel()
    scroll = QtWidgets.QScrollArea()
    scroll.setWidgetResizable(True)
    scroll.setWidget(panel)
    qtbot.addWidget(scroll)
    scroll.resize(width, height)
    scroll.show()
    qtbot.waitExposed(scroll)
    QtWidgets.QApplication.processEvents()
    return panel, scroll


def test_scores_plot_keeps_its_room_in_a_laptop_dock(qtbot) -> None:  # type: ignore[no-untyped-def]
    """At a 1366x768 screen's AI dock size (336 x 691 px) the scores plot lies wholly inside the dock: the model
    card gives way (with its captions wrapping, the panel's preferred height gave the card all its room)."""
    panel, scroll = _docked(qtbot, 336, 691)
    assert not scroll.horizontalScrollBar().isVisible()
    plot = panel.plot
    bottom = plot.mapTo(panel, plot.rect().bottomLeft()).y()
    assert bottom <= scroll.viewport().height(), (bottom, scroll.viewport().height())


def test_captions_wrap_in_a_narrow_dock(qtbot) -> None:  # type: ignore[no-untyped-def]
    from viewer.qt.flow import WrapLabel

    em = QtWidgets.QLabel().fontMetrics().height()
    panel, scroll = _docked(qtbot, 18 * em, 700)  # three quarters of the dock's usual 24 lines
    assert panel.minimumSizeHint().width() <= 18 * em  # no caption sets the panel's width
    assert not scroll.horizontalScrollBar().isVisible()
    caption = next(lbl for lbl in panel.findChildren(WrapLabel) if lbl.text().startswith("Scores along the series"))
    assert caption.wordWrap() and caption.width() <= scroll.viewport().width()
    # the caption alone in a box narrower than its text: it wraps, and asks no more than its lines at that width
    box = QtWidgets.QWidget()
    QtWidgets.QVBoxLayout(box).addWidget(WrapLabel(caption.text()))
    narrow = QtWidgets.QScrollArea()
    narrow.setWidgetResizable(True)
    narrow.setWidget(box)
    qtbot.addWidget(narrow)
    width = caption.fontMetrics().horizontalAdvance(caption.text()) * 2 // 3
    narrow.resize(width, 300)
    narrow.show()
    qtbot.waitExposed(narrow)
    QtWidgets.QApplication.processEvents()
    label = box.findChild(WrapLabel)
    one_line = label.fontMetrics().height()
    assert not narrow.horizontalScrollBar().isVisible() and label.width() < width
    assert label.height() >= 2 * one_line - 2  # two lines
    assert label.minimumSizeHint().height() < 4 * one_line  # never one word per line (a wrapped QLabel's least)
