"""Orientation letters and the mm scale bar appear only for geometry the header really gives: no letters on
an image without Image Orientation (Patient) or Patient Orientation (ultrasound, secondary capture), no scale
bar where the pixel spacing was assumed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pytestqt.qtbot import QtBot

from tests.conftest import pydicom_data_file, pydicom_test_file
from viewer.dicom import scan
from viewer.dicom.volume import SeriesInfo
from viewer.display.orientation import has_patient_geometry, orientation_known, spacing_known
from viewer.qt.main_window import ViewerWindow

pytestmark = [pytest.mark.gui]  # the offscreen plugin's harmless warnings: qt_log_ignore in pyproject



def _open(window: ViewerWindow, qtbot: QtBot, path: Path) -> None:
    window.open_paths([str(path)])
    qtbot.waitUntil(lambda: window.is_idle() and window.model is not None and window.model.fully_loaded,
                    timeout=30_000)


def _facts(info: SeriesInfo) -> tuple[str | None, str | None]:
    return info.orientation_source, info.pixel_spacing_source


def test_engine_facts_say_what_the_header_gave() -> None:
    """Typed SeriesInfo fields the engine sets (nothing written into ``extra`` for others to match)."""
    us = scan([str(pydicom_test_file("US1_UNCR.dcm"))]).stacks[0]  # no IOP/IPP, no spacing
    ct = scan([str(pydicom_test_file("CT_small.dcm"))]).stacks[0]
    sc = scan([str(pydicom_test_file("SC_rgb.dcm"))]).stacks[0]  # no IOP, PixelSpacing 1\1
    rg = scan([str(pydicom_data_file("RG1_UNCR.dcm"))]).stacks[0]  # no IOP, Patient Orientation L\F
    assert _facts(us.info) == ("", "")
    assert _facts(ct.info) == ("ImageOrientationPatient", "PixelSpacing")
    assert _facts(sc.info) == ("", "PixelSpacing")
    assert rg.info.orientation_source == "PatientOrientation" and rg.info.patient_orientation == ("L", "F")
    np.testing.assert_allclose(np.asarray(rg.info.display_direction)[:, :2], [[1, 0], [0, 0], [0, -1]])
    assert rg.info.display_direction is not None and ct.info.display_direction is None
    assert "orientation_source" not in ct.info.extra and "pixel_spacing_source" not in ct.info.extra


def test_known_rules() -> None:
    assert orientation_known(SeriesInfo()) and not orientation_known(SeriesInfo(orientation_source=""))
    assert orientation_known(SeriesInfo(orientation_source="PatientOrientation"))
    assert not has_patient_geometry(SeriesInfo(orientation_source="PatientOrientation"))
    assert has_patient_geometry(SeriesInfo()) and not has_patient_geometry(SeriesInfo(orientation_source=""))
    assert spacing_known(SeriesInfo(), []) and not spacing_known(SeriesInfo(), ["no PixelSpacing: pixel spacing assumed 1.0 mm"])
    assert not spacing_known(SeriesInfo(pixel_spacing_source=""))
    assert spacing_known(SeriesInfo(pixel_spacing_source="ImagerPixelSpacing"))


def test_ultrasound_without_orientation_shows_no_letters_and_no_scale_bar(window: ViewerWindow, qtbot: QtBot) -> None:
    _open(window, qtbot, pydicom_test_file("US1_UNCR.dcm"))
    view = window.views[0]
    assert view.orientation_letters() == {}
    assert view.spacing_unknown
    assert np.allclose(window.model.volume.direction, np.eye(3))  # what the engine made up, not drawn


def test_secondary_capture_with_spacing_keeps_its_scale_but_no_letters(window: ViewerWindow, qtbot: QtBot) -> None:
    _open(window, qtbot, pydicom_test_file("SC_rgb.dcm"))
    view = window.views[0]
    assert view.orientation_letters() == {} and not view.spacing_unknown


def test_ct_and_radiograph_keep_their_letters(window: ViewerWindow, qtbot: QtBot) -> None:
    _open(window, qtbot, pydicom_test_file("CT_small.dcm"))
    assert set(window.views[0].orientation_letters().values()) >= {"R", "L", "A", "P"}
    assert not window.views[0].spacing_unknown
    _open(window, qtbot, pydicom_data_file("RG1_UNCR.dcm"))  # no IOP, but Patient Orientation L\F
    assert window.views[0].orientation_letters() == {"left": "R", "right": "L", "top": "S", "bottom": "I"}
    assert window.views[0].spacing_unknown  # PixelSpacing 0\0
