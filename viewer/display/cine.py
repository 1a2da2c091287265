"""Cine playback speed: a loop plays at the rate it was acquired at."""

from __future__ import annotations

from viewer.dicom.volume import SeriesInfo

MAX_FPS = 60


def cine_fps(info: SeriesInfo) -> int | None:
    """Frames per second of a cine loop from its header (Frame Time, Cine Rate), 1..60; None when not given."""
    if info.frame_time_ms is None or info.frame_time_ms <= 0:
        return None
    return max(1, min(MAX_FPS, round(1000.0 / info.frame_time_ms)))
