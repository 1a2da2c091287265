"""The series list re-listed with freshly scanned stacks (a growing PACS retrieval, a rescan): a Stack's
generated __eq__ compares numpy fields, so comparing lists of them raised ValueError inside Qt's event loop."""

from __future__ import annotations

from pathlib import Path

import pytest

from phantom import ChestParams, make_chest_ct
from viewer.dicom import scan
from viewer.dicom.synthetic import write_ct_series
from viewer.qt.series_browser import SeriesBrowser

pytestmark = [pytest.mark.gui, pytest.mark.qt_log_ignore("propagateSizeHints")]


def test_relisting_rescanned_stacks(qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    ph = make_chest_ct(ChestParams(n_slices=4, matrix=(32, 32), n_nodules=0), seed=1)
    for i in range(2):
        write_ct_series(ph, tmp_path / f"s{i}", seed=i)
    first, again = scan([tmp_path]).stacks, scan([tmp_path]).stacks
    assert len(first) == 2 and first[0] is not again[0]
    browser = SeriesBrowser()
    qtbot.addWidget(browser)
    browser.set_stacks(first)
    browser.set_stacks(again)  # raised "truth value of an array ... is ambiguous"
    items = [browser.topLevelItem(i) for i in range(browser.topLevelItemCount())]
    assert sum(it.childCount() for it in items) == 2
