"""Orientation letters (R/L, A/P, S/I) for screen directions given as LPS unit vectors."""

from __future__ import annotations

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
