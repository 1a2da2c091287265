"""Orientation letters (R/L, A/P, S/I) for screen directions given as LPS unit vectors."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from viewer.dicom.projection import direction_from_patient_orientation  # noqa: F401 (re-exported)
from viewer.dicom.volume import SeriesInfo

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


def orientation_known(info: SeriesInfo) -> bool:
    """May orientation letters be drawn? Not when the series has no patient orientation at all (ultrasound,
    secondary capture: ``orientation_source`` ""); a volume built elsewhere (None) is taken at its word."""
    return info.orientation_source != ""


def has_patient_geometry(info: SeriesInfo) -> bool:
    """Does the image lie in patient space (position and orientation from the header)? A projection image
    oriented by Patient Orientation only has letters, not positions."""
    return info.orientation_source not in ("", "PatientOrientation")


def mpr_refusal(info: SeriesInfo, n_slices: int) -> str:
    """Why axial/coronal/sagittal reformats (the MPR layout, another plane in one view) of a series would
    mislead ("" when they are fine): a single slice has nothing to reformat; frames without patient positions
    (a cine loop, a secondary capture, a multi-frame object without its functional groups) are a stack in
    stored order, not a volume."""
    if n_slices < 2:
        return "Reformats (MPR, other planes) need more than one slice"
    if not has_patient_geometry(info):
        return ("Reformats (MPR, other planes) need slices placed in the patient (this series has no image "
                "position and orientation)")
    return ""


def spacing_known(info: SeriesInfo, warnings: Sequence[str] = ()) -> bool:
    """May a mm scale bar be drawn? Not when the pixel spacing was assumed (``pixel_spacing_source`` ""); when
    the source is not said, the engine's warnings tell."""
    if info.pixel_spacing_source is not None:
        return bool(info.pixel_spacing_source)
    return not any("spacing" in w and "assumed" in w for w in warnings)


def display_direction(info: SeriesInfo, direction: np.ndarray) -> np.ndarray:
    """The direction to display with: a projection image's from its Patient Orientation, else ``direction``."""
    return direction if info.display_direction is None else np.asarray(info.display_direction, dtype=np.float64)
