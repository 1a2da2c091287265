"""Overlay layers: a heat map on a series' own grid, drawn with an RGBA lookup table.

Every field has its own event (``layer.events.opacity`` ...), so a widget redraws only what changed;
``events.changed`` follows any of them once (one per :meth:`OverlayLayer.update`), for subscribers that
redraw the whole layer.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from psygnal import Signal, SignalGroup

from viewer.display.coded import CodedVolume
from viewer.display.colormaps import overlay_lut

FIELDS = ("array", "lut", "opacity", "visible", "contour", "threshold")


class OverlayEvents(SignalGroup):
    """One event per field (emitted with the new value), ``data`` for values updated in place, ``changed``
    after any of them."""

    array = Signal(object)
    lut = Signal(object)
    opacity = Signal(float)
    visible = Signal(bool)
    contour = Signal(object)
    threshold = Signal(object)
    data = Signal()
    changed = Signal()


class OverlayLayer:
    """A heat map on the volume's grid: (k, j, i) values in [0, 1], a float32 array or a
    :class:`~viewer.display.coded.CodedVolume` (uint8 codes, decoded per drawn plane).

    ``contour``: draw only the isoline at this level (a constant-width line in the LUT's colour) instead
    of the filled map; None = filled. ``threshold``: the decision threshold the values are read against
    (the AI label's), None when the layer has none.
    """

    def __init__(self, name: str, array: np.ndarray | CodedVolume, lut: np.ndarray | None = None, opacity: float = 0.6,
                 visible: bool = True, contour: float | None = None, threshold: float | None = None) -> None:
        self.events = OverlayEvents()
        self.name = name
        self._array = _normalise("array", array)
        self._lut = overlay_lut() if lut is None else np.asarray(lut)
        self._opacity = float(opacity)
        self._visible = bool(visible)
        self._contour = None if contour is None else float(contour)
        self._threshold = None if threshold is None else float(threshold)

    def __repr__(self) -> str:
        return (f"OverlayLayer({self.name!r}, shape={self._array.shape}, opacity={self._opacity:g}, "
                f"visible={self._visible}, contour={self._contour}, threshold={self._threshold})")

    # -- fields ----------------------------------------------------------------------------------
    @property
    def array(self) -> np.ndarray | CodedVolume:
        return self._array

    @array.setter
    def array(self, value: np.ndarray | CodedVolume) -> None:
        self.update(array=value)

    @property
    def lut(self) -> np.ndarray:
        return self._lut

    @lut.setter
    def lut(self, value: np.ndarray) -> None:
        self.update(lut=value)

    @property
    def opacity(self) -> float:
        return self._opacity

    @opacity.setter
    def opacity(self, value: float) -> None:
        self.update(opacity=value)

    @property
    def visible(self) -> bool:
        return self._visible

    @visible.setter
    def visible(self, value: bool) -> None:
        self.update(visible=value)

    @property
    def contour(self) -> float | None:
        return self._contour

    @contour.setter
    def contour(self, value: float | None) -> None:
        self.update(contour=value)

    @property
    def threshold(self) -> float | None:
        return self._threshold

    @threshold.setter
    def threshold(self, value: float | None) -> None:
        self.update(threshold=value)

    # -- changes ---------------------------------------------------------------------------------
    def update(self, **fields: Any) -> list[str]:
        """Set several fields; each one that changed emits its event, then ``changed`` once. Returns the
        names of the fields that changed."""
        unknown = set(fields) - set(FIELDS)
        if unknown:
            raise TypeError(f"OverlayLayer has no field(s) {', '.join(sorted(unknown))}")
        changed: list[str] = []
        for name, value in fields.items():
            value = _normalise(name, value)
            old = getattr(self, "_" + name)
            same = old is value if isinstance(value, (np.ndarray, CodedVolume)) else old == value
            if isinstance(value, np.ndarray) and name == "lut" and isinstance(old, np.ndarray):
                same = old.shape == value.shape and bool(np.array_equal(old, value))
            if not same:
                setattr(self, "_" + name, value)
                changed.append(name)
        for name in changed:
            getattr(self.events, name).emit(getattr(self, "_" + name))
        if changed:
            self.events.changed.emit()
        return changed

    def refresh(self) -> None:
        """The array's values were changed in place (e.g. an AI batch landed): tell the subscribers."""
        self.events.data.emit()
        self.events.changed.emit()


def _normalise(name: str, value: Any) -> Any:
    if name == "array":
        return value if isinstance(value, CodedVolume) else np.asarray(value, dtype=np.float32)
    if name == "lut":
        return np.asarray(value)
    if name == "opacity":
        return float(value)
    if name == "visible":
        return bool(value)
    return None if value is None else float(value)
