"""A cine loop plays at the rate it was acquired at: the 30 frame/s echo loops (Frame Time 33.3 ms) played at
the spin box's 10 frames/s, three times too slow."""

from __future__ import annotations

from pathlib import Path

import pydicom
import pytest

from tests.conftest import pydicom_data_file, pydicom_test_file
from tests.support.gui_open import open_and_wait
from viewer.dicom.loader import open_volume
from viewer.display.cine import cine_fps
from viewer.qt.main_window import ViewerWindow


@pytest.mark.parametrize("path", [pydicom_test_file("examples_ybr_color.dcm"),
                                  pydicom_data_file("color3d_jpeg_baseline.dcm")], ids=lambda p: p.name)
def test_echo_loops_play_at_30_frames_per_second(path: Path) -> None:
    vol = open_volume(path)
    assert vol.info.frame_time_ms == pytest.approx(33.333) and cine_fps(vol.info) == 30


@pytest.mark.parametrize(("fields", "fps"), [({"CineRate": 25}, 25), ({"RecommendedDisplayFrameRate": 12}, 12),
                                             ({"FrameTime": "0"}, None), ({"FrameTime": "1e9"}, None),
                                             ({"FrameTime": "8"}, 60), ({}, None)])
def test_rate_from_cine_rate_or_none(tmp_path: Path, fields: dict[str, object], fps: int | None) -> None:
    ds = pydicom.dcmread(pydicom_data_file("emri_small.dcm"))  # 10 frames, no timing
    for keyword, value in fields.items():
        setattr(ds, keyword, value)
    ds.save_as(tmp_path / "loop.dcm")
    assert cine_fps(open_volume(tmp_path / "loop.dcm").info) == fps


def test_window_takes_the_loops_rate(window: ViewerWindow, qtbot) -> None:  # type: ignore[no-untyped-def]
    window.fps.setValue(7)
    open_and_wait(window, qtbot, pydicom_data_file("emri_small.dcm"))  # no timing: the user's rate stays
    assert window.fps.value() == 7
    open_and_wait(window, qtbot, pydicom_test_file("examples_ybr_color.dcm"))
    assert window.fps.value() == 30
