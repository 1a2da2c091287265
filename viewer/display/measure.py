"""Measurement maths in the plane's mm coordinates: distance, angle, ROI statistics."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


def distance_mm(p0: tuple[float, float], p1: tuple[float, float]) -> float:
    """Length between two scene points (mm)."""
    return float(math.hypot(p1[0] - p0[0], p1[1] - p0[1]))


def angle_deg(a: tuple[float, float], vertex: tuple[float, float], b: tuple[float, float]) -> float:
    """Angle a-vertex-b in degrees (0..180); 0 when an arm has zero length."""
    u = np.subtract(a, vertex)
    v = np.subtract(b, vertex)
    nu, nv = float(np.hypot(*u)), float(np.hypot(*v))
    if nu == 0 or nv == 0:
        return 0.0
    c = float(np.clip(u @ v / (nu * nv), -1.0, 1.0))
    return math.degrees(math.acos(c))


@dataclass(frozen=True)
class RoiStats:
    """Statistics of the pixels whose centres lie inside an ROI, in modality units."""

    mean: float
    sd: float
    minimum: float
    maximum: float
    area_mm2: float
    n_pixels: int

    def text(self, unit: str = "") -> str:
        u = f" {unit}" if unit else ""
        if self.n_pixels == 0:
            return f"area {self.area_mm2:.1f} mm²\n(no pixels)"
        return (f"mean {self.mean:.1f}{u}  SD {self.sd:.1f}\n"
                f"min {self.minimum:.0f}  max {self.maximum:.0f}\narea {self.area_mm2:.1f} mm²")


def _pixel_to_scene(spacing: tuple[float, float] | np.ndarray) -> np.ndarray:
    """2x2 (column, row) step -> scene mm matrix from (sx, sy) or a full (sheared) matrix."""
    m = np.asarray(spacing, dtype=np.float64)
    return np.diag(m) if m.shape == (2,) else m


def roi_mask(shape: tuple[int, int], spacing: tuple[float, float] | np.ndarray, kind: str,
             pos: tuple[float, float], size: tuple[float, float], angle_deg_: float = 0.0) -> np.ndarray:
    """Boolean (rows, cols) mask of pixels whose centre is inside an ROI.

    ``spacing`` is (sx, sy) mm per column and row, or the view's 2x2 scene matrix (sheared grids).
    The ROI is given as pyqtgraph places it in the scene (mm): local frame origin ``pos``, extent
    ``size`` (w, h), rotated by ``angle_deg_`` about ``pos``. ``kind`` is ``"rect"`` or ``"ellipse"``.
    """
    if kind not in ("rect", "ellipse"):
        raise ValueError(f"unknown ROI kind {kind!r}")
    rows, cols = shape
    m = _pixel_to_scene(spacing)
    w, h = size
    t = math.radians(angle_deg_)
    c, s = math.cos(t), math.sin(t)
    mask = np.zeros(shape, dtype=bool)
    # only the pixels under the ROI's bounding box are tested
    corners = np.array([[0, 0], [w, 0], [0, h], [w, h]], dtype=np.float64) @ np.array([[c, s], [-s, c]])
    idx = np.linalg.solve(m, (corners + np.asarray(pos, dtype=np.float64)).T) - 0.5
    c0, r0 = (max(int(np.floor(v)), 0) for v in idx.min(axis=1))
    c1, r1 = (int(np.ceil(v)) + 1 for v in idx.max(axis=1))
    c1, r1 = min(c1, cols), min(r1, rows)
    if c0 >= c1 or r0 >= r1:
        return mask
    cc = np.arange(c0, c1)[np.newaxis, :] + 0.5
    rr = np.arange(r0, r1)[:, np.newaxis] + 0.5
    xs = m[0, 0] * cc + m[0, 1] * rr - pos[0]
    ys = m[1, 0] * cc + m[1, 1] * rr - pos[1]
    u = c * xs + s * ys  # local = Rot(-angle) @ (p - pos)
    v = -s * xs + c * ys
    if kind == "rect":
        inside = (u >= 0) & (u <= w) & (v >= 0) & (v <= h)
    elif w <= 0 or h <= 0:
        return mask
    else:
        inside = ((u - w / 2) / (w / 2)) ** 2 + ((v - h / 2) / (h / 2)) ** 2 <= 1.0
    mask[r0:r1, c0:c1] = inside
    return mask


def roi_stats(image: np.ndarray, spacing: tuple[float, float] | np.ndarray, kind: str, pos: tuple[float, float],
              size: tuple[float, float], angle: float = 0.0) -> RoiStats:
    """Mean, SD, min, max of ``image`` inside the ROI and its geometric area (mm²)."""
    img = np.asarray(image)
    if img.ndim == 3:  # colour: statistics of the luminance
        img = img[..., :3].astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    mask = roi_mask(img.shape, spacing, kind, pos, size, angle)
    w, h = abs(size[0]), abs(size[1])
    area = w * h if kind == "rect" else math.pi * w * h / 4.0
    values = img[mask].astype(np.float64)
    if values.size == 0:
        return RoiStats(math.nan, math.nan, math.nan, math.nan, area, 0)
    return RoiStats(float(values.mean()), float(values.std()), float(values.min()), float(values.max()),
                    area, int(values.size))


def modality_unit(modality: str, dose_units: str = "") -> str:
    """``HU`` for CT, ``Gy`` for an RT dose grid in grays, else empty (arbitrary or relative units)."""
    if modality.upper() == "RTDOSE":
        return "Gy" if dose_units.upper() == "GY" else ""
    return "HU" if modality.upper() == "CT" else ""


MEASUREMENT_KINDS = ("distance", "angle", "ellipse", "rect")


@dataclass
class MeasurementRecord:
    """A measurement as kept per series for the session: where it was drawn and its geometry.

    ``points`` are scene mm points (distance: 2, angle: 3); ROIs use ``pos``, ``size``, ``angle``.
    """

    kind: str
    plane: str
    slice_index: int
    points: list[tuple[float, float]]
    pos: tuple[float, float] = (0.0, 0.0)
    size: tuple[float, float] = (0.0, 0.0)
    angle: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in MEASUREMENT_KINDS:
            raise ValueError(f"unknown measurement kind {self.kind!r}; known: {', '.join(MEASUREMENT_KINDS)}")
