"""Plausibility of header geometry: what a hostile or broken file may write into the attributes that place
pixels in the patient (orientation, position, spacings), and the reason each is refused.

Refused geometry never reaches the stack builder, so no NaN, infinity or 1e300 can flow into sorting,
volume geometry, resampling or ``info --json``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

MAX_POSITION_MM = 1e5
"""A coordinate beyond +-100 m is not a position in a patient."""
MAX_SPACING_MM = 1e3
"""A pixel spacing, slice thickness or slice step beyond 1 m is garbage."""
MAX_MODALITY_VALUE = 1e30
"""Rescaled values beyond this are garbage (float32 ends at 3.4e38, and windowing squares differences)."""
UNIT_TOL = 1e-2
"""Direction cosines may deviate this much from unit length (they are renormalised)."""
PERPENDICULAR_TOL = 1e-2
"""|cos| of the angle between the row and column directions allowed (about 0.6 degrees)."""


def show(raw: Any, limit: int = 60) -> str:
    """A raw header value as the user would read it in a message (backslash-separated, shortened)."""
    if isinstance(raw, (list, tuple)) or type(raw).__name__ == "MultiValue":
        text = "\\".join(str(v) for v in raw)
    else:
        text = str(raw)
    return text if len(text) <= limit else text[:limit] + "..."


def orientation_problem(o: np.ndarray) -> str | None:
    """Why six (finite) direction cosines cannot orient an image, or None when they can (plain floats: this
    runs once per file of every scan)."""
    r0, r1, r2, c0, c1, c2 = (float(v) for v in o)
    nr, nc = math.sqrt(r0 * r0 + r1 * r1 + r2 * r2), math.sqrt(c0 * c0 + c1 * c1 + c2 * c2)
    if nr < 1e-6 or nc < 1e-6:
        return "the row or column direction is a zero vector"
    if abs(nr - 1.0) > UNIT_TOL or abs(nc - 1.0) > UNIT_TOL:
        return f"direction cosines are not unit vectors (lengths {nr:.4g} and {nc:.4g})"
    cos = (r0 * c0 + r1 * c1 + r2 * c2) / (nr * nc)
    if abs(cos) > 1.0 - 1e-6:
        return "the row and column directions are parallel"
    if abs(cos) > PERPENDICULAR_TOL:
        angle = math.degrees(math.acos(max(-1.0, min(1.0, cos))))
        return f"the row and column directions are not perpendicular ({angle:.2f} degrees apart)"
    return None


def position_problem(p: np.ndarray) -> str | None:
    """Why three (finite) coordinates are not a patient position, or None."""
    if max(abs(float(v)) for v in p) > MAX_POSITION_MM:
        return f"a coordinate lies beyond {MAX_POSITION_MM / 1000:g} m"
    return None


def spacing_ok(values: np.ndarray) -> bool:
    """Every value is a finite, positive spacing up to :data:`MAX_SPACING_MM`."""
    return all(0.0 < float(v) <= MAX_SPACING_MM for v in values)  # NaN fails both comparisons
