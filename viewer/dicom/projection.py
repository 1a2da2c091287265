"""Geometry facts the engine states for each stack: where its orientation and pixel spacing came from, and
the display direction of a projection image (a radiograph has Patient Orientation, not Image Orientation)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

_PO_VECTORS = {"L": (1.0, 0.0, 0.0), "R": (-1.0, 0.0, 0.0), "P": (0.0, 1.0, 0.0), "A": (0.0, -1.0, 0.0),
               "H": (0.0, 0.0, 1.0), "F": (0.0, 0.0, -1.0)}


def direction_from_patient_orientation(values: object) -> np.ndarray | None:
    """A display direction matrix for a projection image from Patient Orientation (0020,0020).

    ``values`` is the two strings naming where the row (i) and column (j) directions point, e.g.
    ``["L", "F"]`` for a PA chest film (row to the patient's left, column to the feet); oblique values such
    as ``"LA"`` combine. Returns a 3x3 matrix with columns i, j, k (k = i x j), or None when absent/invalid.
    """
    try:
        row, col = (str(v).strip().upper() for v in values)  # type: ignore[attr-defined]
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


def geometry_facts(first_has_orientation: bool, pixel_spacing_given: bool, spacing_source: str,
                   n_slices: int, patient_orientation: Sequence[str]) -> dict[str, object]:
    """The SeriesInfo fields ``orientation_source``, ``pixel_spacing_source`` and ``display_direction`` of a
    stack, from its first slice's header facts."""
    display = None
    if first_has_orientation:
        source = "ImageOrientationPatient"
    else:
        found = direction_from_patient_orientation(patient_orientation) if n_slices == 1 else None
        source = "PatientOrientation" if found is not None else ""
        if found is not None:
            display = tuple(tuple(float(v) for v in row) for row in found)
    return {
        "orientation_source": source,
        "pixel_spacing_source": (spacing_source or "PixelSpacing") if pixel_spacing_given else "",
        "display_direction": display,
    }
