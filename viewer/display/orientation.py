"""Orientation letters (R/L, A/P, S/I) for screen directions given as LPS unit vectors."""

from __future__ import annotations

from typing import Any
from collections.abc import Mapping, Sequence

import numpy as np

# LPS: +x towards the patient's Left, +y Posterior, +z Superior.
_POS = ("L", "P", "S")
_NEG = ("R", "A", "I")


def direction_letters(vector: np.ndarray, min_fraction: float = 0.25) -> str:
    """Letters naming the patient direction of an LPS vector, strongest component first.

    A pure axis gives one letter ("L"); an oblique one gives two or three ("LA"): every component whose
    magnitude is at least ``min_fraction`` of the vector's length counts (the DICOM display convention).
    """
    v = np.asarray(vector, dtype=np.float64).reshape(3)
    norm = float(np.linalg.norm(v))
    if norm == 0:
        return ""
    v = v / norm
    order = np.argsort(-np.abs(v), kind="stable")
    return "".join((_POS if v[a] > 0 else _NEG)[a] for a in order if abs(v[a]) >= min_fraction)


def edge_letters(right: np.ndarray, down: np.ndarray) -> dict[str, str]:
    """Letters for the four screen edges given the LPS directions of screen-right and screen-down."""
    right = np.asarray(right, dtype=np.float64)
    down = np.asarray(down, dtype=np.float64)
    return {
        "left": direction_letters(-right),
        "right": direction_letters(right),
        "top": direction_letters(-down),
        "bottom": direction_letters(down),
    }


_PO_VECTORS = {"L": (1.0, 0.0, 0.0), "R": (-1.0, 0.0, 0.0), "P": (0.0, 1.0, 0.0), "A": (0.0, -1.0, 0.0),
               "H": (0.0, 0.0, 1.0), "F": (0.0, 0.0, -1.0)}


def direction_from_patient_orientation(values: object) -> np.ndarray | None:
    """A display direction matrix for a projection image from Patient Orientation (0020,0020).

    ``values`` is the two strings naming where the row (i) and column (j) directions point, e.g.
    ``["L", "F"]`` for a PA chest film (row to the patient's left, column to the feet); oblique values such
    as ``"LA"`` combine. Returns a 3x3 matrix with columns i, j, k (k = i x j), or None when absent/invalid.
    """
    try:
        row, col = (str(v).strip().upper() for v in values)  # type: ignore[union-attr]
    except (TypeError, ValueError):
        return None
    vecs = []
    for text in (row, col):
        if not text or any(c not in _PO_VECTORS for c in text):
            return None
        v = np.sum([_PO_VECTORS[c] for c in text], axis=0)
        vecs.append(v / np.linalg.norm(v))
    normal = np.cross(vecs[0], vecs[1])
    if np.linalg.norm(normal) < 1e-6:
        return None
    return np.column_stack([vecs[0], vecs[1], normal / np.linalg.norm(normal)])


ORIENTATION_SOURCE = "orientation_source"
"""``SeriesInfo.extra`` key: where the display direction comes from: ``"ImageOrientationPatient"`` (with Image
Position (Patient)), ``"PatientOrientation"`` (a projection image) or ``""`` (unknown: no letters are drawn)."""
PIXEL_SPACING_SOURCE = "pixel_spacing_source"
"""``SeriesInfo.extra`` key: the attribute the pixel spacing came from, ``""`` when it was assumed (1 mm)."""


def geometry_sources(stack: Any) -> dict[str, str]:
    """What the engine read for a :class:`viewer.dicom.Stack`'s geometry (its first slice's header facts):
    ``{ORIENTATION_SOURCE: ..., PIXEL_SPACING_SOURCE: ...}``; an empty value means made up by the engine."""
    first = stack.slices[0]
    known = first.position is not None and first.orientation is not None
    return {
        ORIENTATION_SOURCE: "ImageOrientationPatient" if known else "",
        PIXEL_SPACING_SOURCE: (first.spacing_source or "PixelSpacing") if first.pixel_spacing is not None else "",
    }


def orientation_known(extra: Mapping[str, Any]) -> bool:
    """May orientation letters be drawn? Not when the series has no patient orientation at all (ultrasound,
    secondary capture); a volume built elsewhere (tests, tools) without the key is taken at its word."""
    return bool(extra.get(ORIENTATION_SOURCE, "ImageOrientationPatient"))


def spacing_known(extra: Mapping[str, Any], warnings: Sequence[str] = ()) -> bool:
    """May a mm scale bar be drawn? Not when the pixel spacing was assumed (no usable spacing in the header)."""
    if PIXEL_SPACING_SOURCE in extra:
        return bool(extra[PIXEL_SPACING_SOURCE])
    return not any("spacing" in w and "assumed" in w for w in warnings)
