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


def roi_mask(shape: tuple[int, int], spacing: tuple[float, float], kind: str, pos: tuple[float, float],
             size: tuple[float, float], angle_deg_: float = 0.0) -> np.ndarray:
    """Boolean (rows, cols) mask of pixels whose centre is inside an ROI.

    The ROI is given as pyqtgraph places it in the scene (mm): local frame origin ``pos``, extent
    ``size`` (w, h), rotated by ``angle_deg_`` about ``pos``. ``kind`` is ``"rect"`` or ``"ellipse"``.
    """
    if kind not in ("rect", "ellipse"):
        raise ValueError(f"unknown ROI kind {kind!r}")
    rows, cols = shape
    sx, sy = spacing
    xs = (np.arange(cols) + 0.5) * sx - pos[0]
    ys = (np.arange(rows) + 0.5) * sy - pos[1]
    t = math.radians(angle_deg_)
    c, s = math.cos(t), math.sin(t)
    # local = Rot(-angle) @ (p - pos)
    u = c * xs[np.newaxis, :] + s * ys[:, np.newaxis]
    v = -s * xs[np.newaxis, :] + c * ys[:, np.newaxis]
    w, h = size
    if kind == "rect":
        return (u >= 0) & (u <= w) & (v >= 0) & (v <= h)
    if w <= 0 or h <= 0:
        return np.zeros(shape, dtype=bool)
    return ((u - w / 2) / (w / 2)) ** 2 + ((v - h / 2) / (h / 2)) ** 2 <= 1.0


def roi_stats(image: np.ndarray, spacing: tuple[float, float], kind: str, pos: tuple[float, float],
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


def modality_unit(modality: str) -> str:
    """``HU`` for CT, else empty (arbitrary units)."""
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
