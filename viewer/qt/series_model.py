"""Compatibility names: the series state lives in :mod:`viewer.state` (Qt-free, psygnal events)."""

from viewer.state.layers import OverlayLayer as Overlay
from viewer.state.series import SeriesState as SeriesModel

__all__ = ["Overlay", "SeriesModel"]
