"""Siemens MR mosaics: one stored image holding a grid of slices ("tiles").

The number of tiles and the slice normal come from the Siemens CSA image header (private element
(0029,1010), SV10 or the older CSA1 layout). Geometry follows the convention dcm2niix and nibabel
use: the stored Image Position (Patient) is that of the whole mosaic as if it were one image centred
on the slices, so the first tile's position is that corner shifted by half the size difference;
tile ``n`` lies ``n * spacing`` further along the CSA slice normal, where spacing is Spacing Between
Slices (else Slice Thickness).
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass

import numpy as np

CSA_IMAGE_HEADER = 0x00291010


class CsaError(ValueError):
    """A CSA header that cannot be parsed."""


def read_csa(data: bytes) -> dict[str, list[str]]:
    """The tags of a CSA header as ``name -> list of item strings``."""
    size = len(data)
    if data[:4] == b"SV10":
        csa2, pos = True, 8
    else:
        csa2, pos = False, 0
    if size < pos + 8:
        raise CsaError("CSA header too short")
    n_tags, _ = struct.unpack_from("<2I", data, pos)
    pos += 8
    if not 0 < n_tags <= 512:
        raise CsaError(f"implausible CSA tag count {n_tags}")
    tags: dict[str, list[str]] = {}
    first_n_items = 0
    for tag_no in range(n_tags):
        if pos + 84 > size:
            raise CsaError("CSA header truncated")
        name_raw, _vm, _vr, _syngodt, n_items, _ = struct.unpack_from("<64si4s3i", data, pos)
        pos += 84
        name = name_raw.split(b"\x00", 1)[0].decode("latin-1")
        if not 0 <= n_items < 1000:
            raise CsaError(f"implausible item count {n_items} for {name}")
        if tag_no == 1:
            first_n_items = n_items
        items: list[str] = []
        for _ in range(n_items):
            if pos + 16 > size:
                raise CsaError("CSA header truncated")
            x0, x1, _x2, _x3 = struct.unpack_from("<4i", data, pos)
            pos += 16
            length = x1 if csa2 else x0 - first_n_items
            if length < 0 or pos + length > size:
                if csa2:
                    raise CsaError(f"CSA item of {name} runs past the header")
                break
            items.append(data[pos:pos + length].split(b"\x00", 1)[0].decode("latin-1").strip())
            pos += length + (-length % 4)
        tags[name] = items
    return tags


def _first_float(tags: dict[str, list[str]], name: str) -> float | None:
    for item in tags.get(name, []):
        try:
            return float(item)
        except ValueError:
            continue
    return None


@dataclass(frozen=True)
class Mosaic:
    """How one stored mosaic splits into tiles, and where tile 0 and its neighbours lie."""

    n_tiles: int
    grid: int
    tile_rows: int
    tile_cols: int
    normal: np.ndarray
    """Unit slice normal (LPS) along which tile n follows tile n - 1."""

    def tile_window(self, n: int) -> tuple[int, int]:
        """(first row, first column) of tile ``n`` in the stored image."""
        return (n // self.grid) * self.tile_rows, (n % self.grid) * self.tile_cols

    def tile_positions(self, ipp: np.ndarray, orientation: np.ndarray, pixel_spacing: tuple[float, float],
                       step: float) -> list[np.ndarray]:
        """Image Position (Patient) of every tile, from the mosaic's stored position."""
        rows, cols, grid = self.tile_rows, self.tile_cols, self.grid
        shift = (orientation[:3] * pixel_spacing[1] * (cols * grid - cols) / 2
                 + orientation[3:] * pixel_spacing[0] * (rows * grid - rows) / 2)
        first = ipp + shift
        return [first + self.normal * step * n for n in range(self.n_tiles)]


def mosaic_layout(csa: bytes, rows: int, cols: int, orientation: np.ndarray) -> Mosaic:
    """The tile layout of a ``rows`` x ``cols`` mosaic; CsaError when the header does not describe one."""
    tags = read_csa(csa)
    n = _first_float(tags, "NumberOfImagesInMosaic")
    if n is None or n < 1 or n != int(n):
        raise CsaError("no NumberOfImagesInMosaic in the CSA header")
    n_tiles = int(n)
    grid = math.ceil(math.sqrt(n_tiles))
    if rows % grid or cols % grid:
        raise CsaError(f"{rows}x{cols} mosaic does not split into a {grid}x{grid} grid")
    vec = [_first_float({"v": [x]}, "v") for x in tags.get("SliceNormalVector", [])[:3]]
    normal = np.cross(orientation[:3], orientation[3:])
    if len(vec) == 3 and all(v is not None for v in vec):
        candidate = np.array(vec, dtype=np.float64)
        length = float(np.linalg.norm(candidate))
        if length > 1e-6:
            normal = candidate / length
    return Mosaic(n_tiles, grid, rows // grid, cols // grid, normal / np.linalg.norm(normal))
