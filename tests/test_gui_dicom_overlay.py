"""The file's own DICOM overlay planes (60xx) drawn over the image in the real window, and Shift+O hiding them."""

from __future__ import annotations

from tests.conftest import pydicom_data_file
from tests.support.gui_open import open_and_wait
from viewer.qt.main_window import ViewerWindow
from viewer.state.series import DICOM_OVERLAY


def test_dicom_overlay_is_drawn_and_toggles(window: ViewerWindow, qtbot) -> None:  # type: ignore[no-untyped-def]
    open_and_wait(window, qtbot, pydicom_data_file("MR-SIEMENS-DICOM-WithOverlays.dcm"))  # the marked liver lesion
    view = window.views[0]
    item = view.overlay_items[DICOM_OVERLAY]
    assert item.isVisible() and item.image is not None and (item.image > 0.5).sum() == 323
    assert window.dicom_overlay_action.isChecked()
    window.dicom_overlay_action.trigger()  # Shift+O
    assert not item.isVisible() and not window.dicom_overlay_action.isChecked()
    window.dicom_overlay_action.trigger()
    assert item.isVisible()
