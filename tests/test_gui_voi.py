"""The viewer draws a header VOI LUT table and sigmoid window as pydicom's apply_voi_lut computes them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
from pydicom.pixels import apply_voi_lut

from tests.conftest import pydicom_test_file
from viewer.qt.main_window import ViewerWindow
from viewer.qt.qt import QtGui


def _open(window: ViewerWindow, qtbot, path: Path) -> None:  # type: ignore[no-untyped-def]
    window.open_paths([str(path)])
    qtbot.waitUntil(lambda: window.is_idle() and window.model is not None and window.model.fully_loaded,
                    timeout=30_000)


def _shown_grey(window: ViewerWindow) -> np.ndarray:
    """The grey pyqtgraph renders for each pixel (its own QImage of the item, (rows, cols))."""
    item = window.views[0].image_item
    item.render()
    qimage = item.qimage
    ptr = qimage.constBits()
    arr = np.frombuffer(ptr, dtype=np.uint8, count=qimage.sizeInBytes()).reshape(qimage.height(), qimage.bytesPerLine())
    width = qimage.width()
    if qimage.depth() == 8:
        grey = arr[:, :width]
        if qimage.format() == QtGui.QImage.Format.Format_Indexed8:  # indices into the item's colour table
            grey = (np.asarray(qimage.colorTable(), dtype=np.uint32) & 0xFF)[grey]
    else:
        grey = arr[:, : width * 4].reshape(qimage.height(), width, 4)[..., 0]
    # pyqtgraph's image axes are (x, y): the QImage is the transpose of the (rows, cols) data it was given
    return grey.astype(np.float64).T if item.axisOrder == "col-major" else grey.astype(np.float64)


def test_voi_lut_table_is_drawn(window: ViewerWindow, qtbot) -> None:  # type: ignore[no-untyped-def]
    path = pydicom_test_file("vlut_04.dcm")
    _open(window, qtbot, path)
    assert window.model.voi_function == "LUT" and window.model.voi_lut is not None
    ds = pydicom.dcmread(path)
    expected = apply_voi_lut(ds.pixel_array, ds).astype(np.float64) / 65535 * 255
    assert np.abs(_shown_grey(window) - expected).max() <= 0.5 + 1e-9
    window.model.set_window(100.0, 50.0)  # a dragged window replaces the table by a linear one
    assert window.model.voi_function == "LINEAR_EXACT" and window.views[0].image_item.lut is None


def test_sigmoid_window_is_drawn(window: ViewerWindow, qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    ds = pydicom.dcmread(pydicom_test_file("CT_small.dcm"))
    ds.WindowCenter, ds.WindowWidth, ds.VOILUTFunction = 60.0, 350.0, "SIGMOID"
    ds.save_as(tmp_path / "ct.dcm")
    _open(window, qtbot, tmp_path / "ct.dcm")
    assert window.model.voi_function == "SIGMOID"
    hu = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    expected = 255 / (1 + np.exp(-4 * (hu - 60.0) / 350.0))
    assert np.abs(_shown_grey(window) - expected).max() <= 2.5  # a 256-entry table, rounded to 8 bits
