"""The review panel's "Error by group" plot shows a planted high-error subgroup, marked, with its interval."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from tests.support.review_flags import planted_flags
from tests.support.review_series import context_of, make_ct_series
from viewer.qt.qt import Qt, QtWidgets
from viewer.review import ReviewStore, StudyHeader
from viewer.review.summary import summarize


@pytest.fixture()
def panel(qtbot, tmp_path: Path):  # type: ignore[no-untyped-def]
    from viewer.qt.review_panel import ReviewPanel

    series = make_ct_series(tmp_path / "ct", 1)
    store = ReviewStore(tmp_path / "r.sqlite3")
    store.merge_flags([(f, StudyHeader()) for f in planted_flags(400, planted_share=0.2)])
    window = QtWidgets.QMainWindow()
    p = ReviewPanel(store, context_of(series[0], 0), window)
    window.setCentralWidget(QtWidgets.QWidget())
    window.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, p)
    window.resize(1200, 900)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    yield p
    store.close()


def test_plot_marks_the_planted_subgroup(panel, qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    plot = panel.error_plot
    panel.tabs.setCurrentWidget(plot)  # the page fills when shown
    assert plot.rows, "the plot is empty"
    assert {k for k, v in plot.marked().items() if v == "higher"} == {"Manufacturer: CANON", "Scanner: CANON model 1",
                                                                        "Scanner: CANON model 2"}
    assert not any(k.startswith(("Sex:", "Age band:", "kVp:")) for k in plot.marked())  # random splits
    canon = next(r for r in plot.rows if r.split == "manufacturer" and r.group == "CANON")
    y = plot.row_y[("manufacturer", "CANON")]
    # the dot sits at CANON's rate on CANON's row, red and larger; its bar spans the Wilson interval
    points = plot.scatter.points()
    [dot] = [pt for pt in points if pt.pos().y() == y]
    assert dot.pos().x() == pytest.approx(100 * canon.rate)
    assert dot.brush().color().getRgb()[:3] == (235, 80, 70) and dot.size() == 13
    opts = plot.bars.opts
    k = int(np.flatnonzero(np.asarray(opts["y"]) == y)[0])
    assert opts["x"][k] - opts["left"][k] == pytest.approx(100 * canon.low)
    assert opts["x"][k] + opts["right"][k] == pytest.approx(100 * canon.high)
    ticks = dict(plot.plot.getAxis("left")._tickLevels[0])
    assert ticks[y].startswith("CANON  (n=") and "MANUFACTURER" in ticks.values()
    assert any(t.toPlainText() == "higher p<0.001" for t in plot.texts)
    assert plot.overall.value() == pytest.approx(100 * summarize(panel.store.flags()).overall.error_rate)
    shot = Path(os.environ.get("RADSCOPE_SHOT_DIR", tmp_path)) / "review-error-plot.png"
    panel.window().grab().save(str(shot))
    assert shot.stat().st_size > 10_000


def test_plot_with_no_flags_says_so(qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from viewer.qt.review_summary_plot import ErrorRatePlot

    plot = ErrorRatePlot()
    qtbot.addWidget(plot)
    plot.set_summary(summarize([]))
    assert plot.rows == [] and not plot.scroll_area.isVisibleTo(plot) and plot.empty.isVisibleTo(plot)
