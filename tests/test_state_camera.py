"""Per-view camera state (viewer.state.camera), without Qt: fitted or the user's range, one event per change."""

from __future__ import annotations

import math

import pytest

from viewer.state.camera import CameraRange, CameraState
from viewer.state.session import SessionState


def test_camera_holds_the_users_range_and_says_each_change_once() -> None:
    camera = CameraState()
    seen: list[CameraRange | None] = []
    camera.rangeChanged.connect(seen.append)
    assert camera.fitted and camera.range is None
    camera.fit()  # already fitted: nothing to say
    assert seen == []
    zoom = CameraRange("coronal", (10.0, -20.0, 35.5), 120.0, 80.0)
    camera.zoom_to(zoom)
    assert not camera.fitted and camera.range == zoom and seen == [zoom]
    camera.zoom_to(CameraRange("coronal", (10.0, -20.0, 35.5 + 1e-5), 120.0, 80.0))  # a view's echo of it
    assert seen == [zoom]
    pan = CameraRange("coronal", (12.0, -20.0, 35.5), 120.0, 80.0)
    camera.zoom_to(pan)
    assert seen == [zoom, pan] and camera.range == pan
    camera.fit()
    assert camera.fitted and seen == [zoom, pan, None]


def test_another_plane_is_another_range() -> None:
    a = CameraRange("axial", (0.0, 0.0, 0.0), 10.0, 10.0)
    assert not a.close_to(CameraRange("sagittal", (0.0, 0.0, 0.0), 10.0, 10.0))
    assert not a.close_to(None) and a.close_to(a)


@pytest.mark.parametrize(("centre", "w", "h"), [((0.0, math.nan, 0.0), 1.0, 1.0), ((0.0, 0.0, 0.0), 0.0, 1.0),
                                               ((0.0, 0.0, 0.0), 1.0, -2.0), ((0.0, 0.0, 0.0), math.inf, 1.0)])
def test_a_range_that_shows_nothing_is_refused(centre: tuple[float, float, float], w: float, h: float) -> None:
    with pytest.raises(ValueError, match="camera"):
        CameraRange("axial", centre, w, h)


def test_the_session_keeps_one_camera_per_view() -> None:
    session = SessionState()
    first = session.camera(0)
    third = session.camera(2)
    assert session.camera(0) is first and session.camera(2) is third and len(session.cameras) == 3
    assert first is not third and session.camera(1) not in (first, third)
