"""MPR only for series placed in the patient: frames without positions (a cine loop, a secondary capture,
a multi-frame MR without its functional groups) stay in one view with no slice position in mm, and the user's
MPR choice is kept."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import pydicom_data_file, pydicom_test_file
from tests.support.blob_model import blob_phantom
from tests.support.gui_open import open_and_wait
from viewer.dicom.loader import open_volume
from viewer.dicom.synthetic import write_ct_series
from viewer.display.annotations import corner_text
from viewer.display.orientation import mpr_refusal
from viewer.qt.main_window import ViewerWindow

NO_POSITIONS = [pydicom_data_file("emri_small.dcm"), pydicom_data_file("SC_rgb_2frame.dcm"),
                pydicom_test_file("examples_ybr_color.dcm")]


@pytest.mark.parametrize("path", NO_POSITIONS, ids=lambda p: p.name)
def test_frames_without_positions_are_refused_mpr(path: Path) -> None:
    vol = open_volume(path)
    assert vol.shape[0] > 1
    assert "patient" in mpr_refusal(vol.info, vol.shape[0])


def test_single_slice_and_placed_series(tmp_path: Path) -> None:
    ct = open_volume(pydicom_test_file("CT_small.dcm"))
    assert "more than one slice" in mpr_refusal(ct.info, ct.shape[0])
    write_ct_series(blob_phantom()[0], tmp_path / "sag", orientation="sagittal")
    sag = open_volume(tmp_path / "sag")
    assert mpr_refusal(sag.info, sag.shape[0]) == ""


def test_mpr_choice_waits_for_a_placed_series(window: ViewerWindow, qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    write_ct_series(blob_phantom()[0], tmp_path / "sag", orientation="sagittal")
    open_and_wait(window, qtbot, tmp_path / "sag")
    window.set_layout("1x3")
    assert window.layout_name == "1x3" and window.settings.layout == "1x3"
    open_and_wait(window, qtbot, pydicom_data_file("emri_small.dcm"))  # 10 frames, no positions: one view
    assert window.layout_name == "1x1" and not window.views[1].isVisible()
    window.set_layout("1x3")  # asked again: refused with the reason, the saved choice untouched
    assert window.layout_name == "1x1" and "placed in the patient" in window.statusBar().currentMessage()
    assert window.settings.layout == "1x3"
    window.set_single_plane("sagittal")  # another plane in the one view shown: as acquired, with the reason
    assert window.views[0].plane_name == "acquisition" and "placed in the patient" in window.statusBar().currentMessage()
    window.set_single_plane("acquisition")
    open_and_wait(window, qtbot, tmp_path / "sag")  # a placed series again: MPR as the user chose
    assert window.layout_name == "1x3" and window.views[2].isVisible()


@pytest.mark.parametrize("path", NO_POSITIONS, ids=lambda p: p.name)
def test_frames_without_positions_show_no_slice_position(window: ViewerWindow, qtbot, path: Path) -> None:  # type: ignore[no-untyped-def]
    # the stand-in 1 mm frame step is no position in the patient: "Pos 5.0 mm" on frame 6 of a cine read as one
    open_and_wait(window, qtbot, path)
    view = window.views[0]
    view.set_slice(1)
    text = corner_text(window.model.volume.info, view.view_state())
    assert text["bottom_left"] == [f"Im 2/{window.model.volume.shape[0]}"]


def test_placed_series_shows_its_slice_position(window: ViewerWindow, qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    write_ct_series(blob_phantom()[0], tmp_path / "ax", orientation="axial")
    open_and_wait(window, qtbot, tmp_path / "ax")
    view = window.views[0]
    text = corner_text(window.model.volume.info, view.view_state())
    assert len(text["bottom_left"]) == 2 and text["bottom_left"][1].startswith("Pos ")

