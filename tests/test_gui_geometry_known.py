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
from viewer.display.orientation import (
    ORIENTATION_SOURCE,
    PIXEL_SPACING_SOURCE,
    geometry_sources,
    orientation_known,
    spacing_known,
)
from viewer.qt.main_window import ViewerWindow

pytestmark = [pytest.mark.gui]  # the offscreen plugin's harmless warnings: qt_log_ignore in pyproject



def _open(window: ViewerWindow, qtbot: QtBot, path: Path) -> None:
    window.open_paths([str(path)])
    qtbot.waitUntil(lambda: window.is_idle() and window.model is not None and window.model.fully_loaded,
                    timeout=30_000)


def test_engine_facts_say_what_the_header_gave() -> None:
    us = scan([str(pydicom_test_file("US1_UNCR.dcm"))]).stacks[0]  # no IOP/IPP, no spacing
    ct = scan([str(pydicom_test_file("CT_small.dcm"))]).stacks[0]
    sc = scan([str(pydicom_test_file("SC_rgb.dcm"))]).stacks[0]  # no IOP, PixelSpacing 1\1
    assert geometry_sources(us) == {ORIENTATION_SOURCE: "", PIXEL_SPACING_SOURCE: ""}
    assert geometry_sources(ct) == {ORIENTATION_SOURCE: "ImageOrientationPatient", PIXEL_SPACING_SOURCE: "PixelSpacing"}
    assert geometry_sources(sc) == {ORIENTATION_SOURCE: "", PIXEL_SPACING_SOURCE: "PixelSpacing"}


def test_known_rules() -> None:
    assert orientation_known({}) and not orientation_known({ORIENTATION_SOURCE: ""})
    assert orientation_known({ORIENTATION_SOURCE: "PatientOrientation"})
    assert spacing_known({}, []) and not spacing_known({}, ["no PixelSpacing: pixel spacing assumed 1.0 mm"])
    assert not spacing_known({PIXEL_SPACING_SOURCE: ""}) and spacing_known({PIXEL_SPACING_SOURCE: "ImagerPixelSpacing"})


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
