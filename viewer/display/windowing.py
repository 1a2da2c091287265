"""Window/level: the standard CT presets, header windows and an automatic window from the histogram."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from viewer.dicom.volume import SeriesInfo, VoiLut, WindowPreset

CT_PRESETS: tuple[WindowPreset, ...] = (
    WindowPreset("Brain", 40.0, 80.0),
    WindowPreset("Subdural", 75.0, 215.0),
    WindowPreset("Stroke", 40.0, 40.0),
    WindowPreset("Lung", -600.0, 1500.0),
    WindowPreset("Mediastinum", 50.0, 350.0),
    WindowPreset("Abdomen", 40.0, 400.0),
    WindowPreset("Liver", 60.0, 160.0),
    WindowPreset("Bone", 400.0, 1800.0),
)
"""Presets in HU, in the order shown in the menu (keys 1..8)."""

MIN_WIDTH = 1e-3


def levels(center: float, width: float) -> tuple[float, float]:
    """Display range ``(low, high)`` of a window; the width never collapses to zero."""
    half = max(float(width), MIN_WIDTH) / 2.0
    return float(center) - half, float(center) + half


SIGMOID_SPAN = 2.0
"""A sigmoid window is drawn over center +- SIGMOID_SPAN * width (outside it the curve is within 0.04 %
of black or white)."""
LUT_ENTRIES = 256


def display_mapping(
    center: float, width: float, function: str = "LINEAR_EXACT", lut: VoiLut | None = None,
) -> tuple[tuple[float, float], np.ndarray | None]:
    """``((low, high), table)``: how modality values become grey in [0, 1], by PS3.3 C.11.2 as pydicom's
    ``apply_voi_lut`` applies it. Without a table, grey = clip((v - low) / (high - low), 0, 1); with
    one (``n`` float entries), grey = table[clip(floor((v - low) * n / (high - low)), 0, n - 1)], the
    rule pyqtgraph's ImageItem applies with ``levels`` and ``lut``.

    ``LINEAR_EXACT``: low/high = center -+ width/2. ``LINEAR``: DICOM's half-unit offsets, low/high =
    center - 0.5 -+ (width - 1)/2. ``SIGMOID``: 1 / (1 + exp(-4 (v - center) / width)) sampled at
    ``LUT_ENTRIES`` bin centres over center -+ ``SIGMOID_SPAN`` width. ``LUT``: the VOI LUT's own
    entries, one per input value from ``lut.first``.
    """
    if lut is not None:
        data = np.asarray(lut.data, dtype=np.float64) / float((1 << lut.bits) - 1)
        return (float(lut.first), float(lut.first + len(data))), data
    if function == "LINEAR" and width > 1:
        half = (float(width) - 1.0) / 2.0
        return (float(center) - 0.5 - half, float(center) - 0.5 + half), None
    if function == "SIGMOID":
        w = max(float(width), MIN_WIDTH)
        lo, hi = float(center) - SIGMOID_SPAN * w, float(center) + SIGMOID_SPAN * w
        x = lo + (np.arange(LUT_ENTRIES) + 0.5) * (hi - lo) / LUT_ENTRIES
        return (lo, hi), 1.0 / (1.0 + np.exp(-4.0 * (x - float(center)) / w))
    return levels(center, width), None


def preset_mapping(preset: WindowPreset) -> tuple[tuple[float, float], np.ndarray | None]:
    """:func:`display_mapping` of a preset."""
    return display_mapping(preset.center, preset.width, preset.function, preset.lut)


def apply_mapping(image: np.ndarray, mapping: tuple[tuple[float, float], np.ndarray | None]) -> np.ndarray:
    """Grey in [0, 1] (float32) of modality values through a :func:`display_mapping`."""
    (lo, hi), table = mapping
    img = np.asarray(image, dtype=np.float64)
    span = max(hi - lo, MIN_WIDTH)
    if table is None:
        return np.clip((img - lo) / span, 0.0, 1.0).astype(np.float32)
    n = len(table)
    index = np.clip(np.floor((img - lo) * (n / span)), 0, n - 1).astype(np.intp)
    return table[index].astype(np.float32)


def auto_window(image: np.ndarray, low_pct: float = 1.0, high_pct: float = 99.0, central: float = 0.8,
                max_samples: int = 262_144) -> WindowPreset:
    """A window spanning the given percentiles of the finite values of the image's central part
    (``central`` of each side: collimator edges, labels and air around a radiograph stay out of it).

    A regular subsample of at most ``max_samples`` values keeps this fast on large radiographs.
    """
    img = np.asarray(image)
    if img.ndim >= 2 and 0 < central < 1:
        r, c = img.shape[-2:]
        dr, dc = int(r * (1 - central) / 2), int(c * (1 - central) / 2)
        img = img[..., dr: r - dr, dc: c - dc]
    flat = img.reshape(-1)
    if flat.size > max_samples:
        flat = flat[:: int(np.ceil(flat.size / max_samples))]
    flat = flat[np.isfinite(flat)]
    if flat.size == 0:
        return WindowPreset("Auto", 0.0, 1.0)
    lo, hi = np.percentile(flat, [low_pct, high_pct])
    if hi - lo < MIN_WIDTH:
        lo, hi = float(flat.min()), float(flat.max())
    width = max(float(hi - lo), 1.0 if float(hi - lo) == 0 else MIN_WIDTH)
    return WindowPreset("Auto", float(lo + hi) / 2.0, width)


def presets_for(info: SeriesInfo) -> list[WindowPreset]:
    """The header's own windows first, then the CT presets for CT series."""
    found = list(info.windows)
    if info.modality.upper() == "CT":
        found += list(CT_PRESETS)
    return found


def initial_window(info: SeriesInfo, image: np.ndarray) -> WindowPreset:
    """The window a series opens with. CT: the header's first window, else soft tissue. Everything else
    (X-ray, MR, US...): the histogram's auto window, because header windows of radiographs are often the
    full detector range (the header's windows stay available as presets). A header VOI LUT table or
    sigmoid window is a deliberate rendering (mammography, CR): any series that has one opens with it."""
    if info.windows and (info.windows[0].lut is not None or info.windows[0].function == "SIGMOID"):
        return info.windows[0]
    if info.modality.upper() == "CT":
        return info.windows[0] if info.windows else WindowPreset("Abdomen", 40.0, 400.0)
    return auto_window(image)


def drag_window(center: float, width: float, dx: float, dy: float, sensitivity: float) -> tuple[float, float]:
    """New (center, width) after a right-drag of (dx, dy) pixels: right widens, down raises the level.

    ``sensitivity`` is modality units per pixel (scale it with the current width so it feels the same on
    HU and on 16-bit radiographs).
    """
    return center + dy * sensitivity, max(width + dx * sensitivity, MIN_WIDTH)


def to_uint8(image: np.ndarray, low: float, high: float, invert: bool = False,
             table: np.ndarray | None = None) -> np.ndarray:
    """Map modality values to 0..255 grey with a linear window, or a :func:`display_mapping` table over
    ``(low, high)`` (used for thumbnails and exports)."""
    if table is not None:
        out = np.rint(apply_mapping(image, ((low, high), table)) * 255.0).astype(np.uint8)
    else:
        scale = 255.0 / max(high - low, MIN_WIDTH)
        out = np.clip((np.asarray(image, dtype=np.float32) - low) * scale, 0, 255).astype(np.uint8)
    return 255 - out if invert else out


def window_text(center: float, width: float) -> str:
    """``W 400 L 40`` with sensible rounding for HU or fractional units."""
    def fmt(v: float) -> str:
        return f"{v:.0f}" if abs(v) >= 10 or float(v).is_integer() else f"{v:.3g}"
    return f"W {fmt(width)} L {fmt(center)}"


def preset_by_name(presets: Sequence[WindowPreset], name: str) -> WindowPreset:
    """The preset called ``name`` (case-insensitive); KeyError lists the known names."""
    for p in presets:
        if p.name.lower() == name.lower():
            return p
    raise KeyError(f"unknown window preset {name!r}; known: {', '.join(p.name for p in presets)}")
