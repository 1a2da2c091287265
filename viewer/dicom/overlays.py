"""DICOM Overlay Planes (groups 6000-601E): graphics or ROI bitmaps stored beside the image (e.g. a lesion
marked on the scanner), placed on the image's own pixel grid by their Overlay Origin.

Only the separate Overlay Data (60xx,3000) form is read (overlays embedded in unused pixel bits were retired
from the standard). Each plane is checked before it is placed; a plane that cannot be used is skipped with a
note naming the file, the group and the reason, and the image shows without it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

OVERLAY_GROUPS = tuple(range(0x6000, 0x6020, 2))
"""The repeating groups of the Overlay Plane module."""


def has_overlay_data(tags: Iterable[Any]) -> bool:
    """Does a dataset with these tags (ints or pydicom tags) hold Overlay Data in any overlay group?"""
    return any((int(t) >> 16) in OVERLAY_GROUPS and int(t) & 0xFFFF == 0x3000 for t in tags)


def _value(ds: Any, group: int, element: int, default: Any = None) -> Any:
    elem = ds.get((group, element))
    return default if elem is None or elem.value in (None, "", b"") else elem.value


def overlay_planes(ds: Any, rows: int, columns: int, frame: int | None, where: str,
                   notes: list[str]) -> np.ndarray | None:
    """bool (rows, columns): every overlay plane of ``ds`` that applies to ``frame`` (1-based, None for a
    single-frame image) united on the image grid; None when none applies. Unusable planes are skipped with a
    note in ``notes``."""
    out: np.ndarray | None = None
    for group in OVERLAY_GROUPS:
        if (group, 0x3000) not in ds:
            continue
        name = f"{where}: overlay {group:04X}"
        try:
            o_rows, o_cols = int(_value(ds, group, 0x0010, 0)), int(_value(ds, group, 0x0011, 0))
            origin = _value(ds, group, 0x0050, [1, 1])
            r0, c0 = int(origin[0]) - 1, int(origin[1]) - 1
            n_frames = int(_value(ds, group, 0x0015, 1))
            first = int(_value(ds, group, 0x0051, 1))
            bits = int(_value(ds, group, 0x0100, 1))
            data = ds[(group, 0x3000)].value
        except Exception as exc:  # pydicom's value conversion (wrong length, bad text), int() of NaN/inf...
            notes.append(f"{name} ignored: unreadable attributes ({type(exc).__name__}: {str(exc)[:200]})")
            continue
        if o_rows <= 0 or o_cols <= 0 or n_frames <= 0 or bits != 1:
            notes.append(f"{name} ignored: {o_rows} x {o_cols} x {n_frames} frame(s) of {bits} bit(s) is not a "
                         "1-bit overlay")
            continue
        f = (frame or 1) - first
        if not 0 <= f < n_frames:
            continue  # this overlay covers other frames
        need = (o_rows * o_cols * n_frames + 7) // 8
        if not isinstance(data, (bytes, bytearray)) or len(data) < need:
            notes.append(f"{name} ignored: Overlay Data holds {len(data) if isinstance(data, (bytes, bytearray)) else 0}"
                         f" bytes, {need} needed for {o_rows} x {o_cols} x {n_frames}")
            continue
        start, size = f * o_rows * o_cols, o_rows * o_cols  # this frame's bits only (not every frame's, per frame)
        chunk = np.frombuffer(data, dtype=np.uint8, count=(start + size + 7) // 8 - start // 8, offset=start // 8)
        plane = np.unpackbits(chunk, bitorder="little")[start % 8:start % 8 + size].reshape(o_rows, o_cols).astype(bool)
        rs, cs = max(r0, 0), max(c0, 0)
        re, ce = min(r0 + o_rows, rows), min(c0 + o_cols, columns)
        if re <= rs or ce <= cs:
            notes.append(f"{name} ignored: origin {r0 + 1}, {c0 + 1} puts it outside the {rows} x {columns} image")
            continue
        if out is None:
            out = np.zeros((rows, columns), dtype=bool)
        out[rs:re, cs:ce] |= plane[rs - r0:re - r0, cs - c0:ce - c0]
    return out


def overlay_volume(shape: tuple[int, int, int], source_files: Sequence[str], frame_numbers: Sequence[int | None],
                   skip: np.ndarray, notes: list[str]) -> np.ndarray | None:
    """uint8 (k, rows, columns), 1 where an overlay plane of slice k's file marks the pixel; None when no
    slice has one. ``skip`` (k,) bool: slices with no image of their own (missing, interpolated), left blank.
    Each file is read once, without its pixel data."""
    import pydicom

    n, rows, columns = shape
    out: np.ndarray | None = None
    datasets: dict[str, Any] = {}
    for k in range(n):
        if skip[k] or k >= len(source_files) or not source_files[k]:
            continue
        path = source_files[k]
        if path not in datasets:
            try:
                datasets[path] = pydicom.dcmread(path, stop_before_pixels=True)
            except Exception as exc:  # a file that read before: say so and go on without its overlays
                notes.append(f"{path}: overlays not read ({type(exc).__name__}: {exc})")
                datasets[path] = None
        ds = datasets[path]
        if ds is None:
            continue
        frame = frame_numbers[k] if k < len(frame_numbers) else None
        plane = overlay_planes(ds, rows, columns, frame, path, notes)
        if plane is not None:
            if out is None:
                out = np.zeros(shape, dtype=np.uint8)
            out[k] = plane
    return out
