"""Each view's camera: fitted to the image, or the range the user zoomed or panned to (Qt-free, psygnal).

A range is kept in patient space: the LPS point at the view's centre and the shown width and height in mm
along the view's screen axes. It means the same on another volume of the series (a PACS retrieval that grew,
with slices before the first one: the scene's origin moved, the anatomy in the middle of the view did not).
The view writes the user's zooms and pans here and follows the camera's events; whoever keeps or restores a
view (the PACS stream's snapshot) reads and writes the camera, never the view's widgets.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from psygnal import Signal


@dataclass(frozen=True)
class CameraRange:
    """What a zoomed or panned view shows: its ``plane`` (view plane name), the LPS point at its centre and
    the shown width and height in mm."""

    plane: str
    center_lps: tuple[float, float, float]
    width_mm: float
    height_mm: float

    def __post_init__(self) -> None:
        if not (all(math.isfinite(v) for v in self.center_lps) and len(self.center_lps) == 3):
            raise ValueError(f"camera centre must be three finite LPS coordinates, got {self.center_lps!r}")
        if not (math.isfinite(self.width_mm) and math.isfinite(self.height_mm)
                and self.width_mm > 0 and self.height_mm > 0):
            raise ValueError(f"camera range must be positive and finite, got {self.width_mm} x {self.height_mm} mm")

    def close_to(self, other: CameraRange | None, tol_mm: float = 1e-3) -> bool:
        """The same range within ``tol_mm`` (a view's echo of what it was told)."""
        return (other is not None and other.plane == self.plane
                and all(abs(a - b) <= tol_mm for a, b in zip(self.center_lps, other.center_lps))
                and abs(self.width_mm - other.width_mm) <= tol_mm and abs(self.height_mm - other.height_mm) <= tol_mm)


class CameraState:
    """One view's camera. Events (psygnal): ``rangeChanged(range)`` with the new :class:`CameraRange`, or
    None when the view fits its image again."""

    rangeChanged = Signal(object)

    def __init__(self) -> None:
        self.range: CameraRange | None = None
        """The user's range; None: the view fits the whole image (and keeps fitting it when resized)."""

    @property
    def fitted(self) -> bool:
        return self.range is None

    def fit(self) -> None:
        """Fit the whole image (the F key, a new series or plane)."""
        if self.range is not None:
            self.range = None
            self.rangeChanged.emit(None)

    def zoom_to(self, rng: CameraRange) -> None:
        """Show ``rng`` (a user's zoom or pan, or a kept view put back); no event when it is already shown."""
        if rng.close_to(self.range):
            return
        self.range = rng
        self.rangeChanged.emit(rng)
