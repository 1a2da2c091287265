"""Streaming writers for grey volumes: MetaImage (.mha), NRRD and NIfTI-1 (.nii / .nii.gz).

Each writes its header, then the voxels slice by slice straight from the volume's array (compressed on
the fly when asked: zlib for .mha, gzip for .nrrd and .nii.gz), so writing never holds a second copy of
the volume (SimpleITK's ``GetImageFromArray`` copies it, and compression buffers another). Geometry is
what SimpleITK writes and reads back: LPS for MetaImage/NRRD; NIfTI stores RAS (x and y negated) with a
consistent qform and sform (scanner coordinates) from an orthonormal direction.
"""

from __future__ import annotations

import gzip
import math
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import numpy as np

COMPRESS_LEVEL = 1
"""zlib level: 1 is several times faster than the default 6 and barely larger on CT (mostly air)."""

_MET_TYPES = {"int16": "MET_SHORT", "uint16": "MET_USHORT", "float32": "MET_FLOAT", "uint8": "MET_UCHAR",
              "int8": "MET_CHAR", "int32": "MET_INT", "float64": "MET_DOUBLE"}
_NRRD_TYPES = {"int16": "short", "uint16": "unsigned short", "float32": "float", "uint8": "unsigned char",
               "int8": "signed char", "int32": "int", "float64": "double"}
_NIFTI_TYPES = {"uint8": (2, 8), "int16": (4, 16), "int32": (8, 32), "float32": (16, 32), "float64": (64, 64),
                "int8": (256, 8), "uint16": (512, 16)}


def _num(v: float) -> str:
    f = float(v)
    return str(int(f)) if f.is_integer() and abs(f) < 1e15 else repr(f)


def _slices(array: np.ndarray, dtype: np.dtype) -> Iterator[bytes | memoryview]:
    out = dtype.newbyteorder("<")
    for part in array:
        data = part if part.dtype == out else part.astype(out)
        yield np.ascontiguousarray(data).data


def write_mha(path: Path, array: np.ndarray, dtype: np.dtype, origin: np.ndarray, spacing: np.ndarray,
              direction: np.ndarray, compress: bool) -> None:
    """MetaImage with its data in the same file; zlib-compressed when ``compress`` (its size is filled
    in afterwards: a fixed-width field in the header)."""
    k, j, i = array.shape[:3]
    color = array.ndim == 4
    size_field = "0" * 20
    lines = [
        "ObjectType = Image", "NDims = 3", "BinaryData = True", "BinaryDataByteOrderMSB = False",
        f"CompressedData = {'True' if compress else 'False'}",
    ]
    if compress:
        lines.append(f"CompressedDataSize = {size_field}")
    lines += [
        "TransformMatrix = " + " ".join(_num(v) for v in np.asarray(direction).T.reshape(-1)),
        "Offset = " + " ".join(_num(v) for v in origin), "CenterOfRotation = 0 0 0",
        "ElementSpacing = " + " ".join(_num(v) for v in spacing), f"DimSize = {i} {j} {k}",
    ]
    if color:
        lines.append(f"ElementNumberOfChannels = {array.shape[3]}")
    lines += [f"ElementType = {_MET_TYPES[dtype.name]}", "ElementDataFile = LOCAL"]
    header = ("\n".join(lines) + "\n").encode("ascii")
    with open(path, "wb") as f:
        f.write(header)
        if not compress:
            for chunk in _slices(array, dtype):
                f.write(chunk)
            return
        packer = zlib.compressobj(COMPRESS_LEVEL)
        written = 0
        for chunk in _slices(array, dtype):
            written += f.write(packer.compress(chunk))
        written += f.write(packer.flush())
        at = header.index(f"CompressedDataSize = {size_field}".encode()) + len("CompressedDataSize = ")
        f.seek(at)
        f.write(f"{written:020d}".encode("ascii"))


def write_nrrd(path: Path, array: np.ndarray, dtype: np.dtype, origin: np.ndarray, spacing: np.ndarray,
               direction: np.ndarray, compress: bool) -> None:
    """NRRD (attached data, LPS space), raw or gzip."""
    k, j, i = array.shape[:3]
    color = array.ndim == 4
    d = np.asarray(direction)
    axes = " ".join("(" + ",".join(_num(c) for c in d[:, a] * spacing[a]) + ")" for a in range(3))
    lines = [
        "NRRD0004", f"type: {_NRRD_TYPES[dtype.name]}", f"dimension: {4 if color else 3}",
        "space: left-posterior-superior", f"sizes: {f'{array.shape[3]} ' if color else ''}{i} {j} {k}",
        f"space directions: {'none ' if color else ''}{axes}",
        f"kinds: {'vector ' if color else ''}domain domain domain", "endian: little",
        f"encoding: {'gzip' if compress else 'raw'}",
        "space origin: (" + ",".join(_num(v) for v in origin) + ")", "",
    ]
    with open(path, "wb") as f:
        f.write(("\n".join(lines) + "\n").encode("ascii"))
        _write_data(f, array, dtype, compress)


def _write_data(f: BinaryIO, array: np.ndarray, dtype: np.dtype, compress: bool) -> None:
    if not compress:
        for chunk in _slices(array, dtype):
            f.write(chunk)
        return
    with gzip.GzipFile(fileobj=f, mode="wb", compresslevel=COMPRESS_LEVEL, mtime=0) as gz:
        for chunk in _slices(array, dtype):
            gz.write(chunk)


def _quatern(r: np.ndarray) -> tuple[float, float, float, float]:
    """(b, c, d, qfac) of an orthonormal rotation (NIfTI-1's nifti_mat44_to_quatern)."""
    r = np.array(r, dtype=np.float64)
    qfac = 1.0
    if np.linalg.det(r) < 0:
        qfac = -1.0
        r[:, 2] = -r[:, 2]
    a = r[0, 0] + r[1, 1] + r[2, 2] + 1.0
    if a > 0.5:
        a = 0.5 * math.sqrt(a)
        b, c, d = 0.25 * (r[2, 1] - r[1, 2]) / a, 0.25 * (r[0, 2] - r[2, 0]) / a, 0.25 * (r[1, 0] - r[0, 1]) / a
    else:
        xd, yd, zd = 1.0 + r[0, 0] - (r[1, 1] + r[2, 2]), 1.0 + r[1, 1] - (r[0, 0] + r[2, 2]), \
            1.0 + r[2, 2] - (r[0, 0] + r[1, 1])
        if xd > 1.0:
            b = 0.5 * math.sqrt(xd)
            c, d, a = 0.25 * (r[0, 1] + r[1, 0]) / b, 0.25 * (r[0, 2] + r[2, 0]) / b, 0.25 * (r[2, 1] - r[1, 2]) / b
        elif yd > 1.0:
            c = 0.5 * math.sqrt(yd)
            b, d, a = 0.25 * (r[0, 1] + r[1, 0]) / c, 0.25 * (r[1, 2] + r[2, 1]) / c, 0.25 * (r[0, 2] - r[2, 0]) / c
        else:
            d = 0.5 * math.sqrt(zd)
            b, c, a = 0.25 * (r[0, 2] + r[2, 0]) / d, 0.25 * (r[1, 2] + r[2, 1]) / d, 0.25 * (r[1, 0] - r[0, 1]) / d
        if a < 0:
            b, c, d = -b, -c, -d
    return float(b), float(c), float(d), qfac


_NIFTI_HEADER = np.dtype([
    ("sizeof_hdr", "<i4"), ("data_type", "S10"), ("db_name", "S18"), ("extents", "<i4"), ("session_error", "<i2"),
    ("regular", "S1"), ("dim_info", "u1"), ("dim", "<i2", 8), ("intent_p", "<f4", 3), ("intent_code", "<i2"),
    ("datatype", "<i2"), ("bitpix", "<i2"), ("slice_start", "<i2"), ("pixdim", "<f4", 8), ("vox_offset", "<f4"),
    ("scl_slope", "<f4"), ("scl_inter", "<f4"), ("slice_end", "<i2"), ("slice_code", "u1"), ("xyzt_units", "u1"),
    ("cal_max", "<f4"), ("cal_min", "<f4"), ("slice_duration", "<f4"), ("toffset", "<f4"), ("glmax", "<i4"),
    ("glmin", "<i4"), ("descrip", "S80"), ("aux_file", "S24"), ("qform_code", "<i2"), ("sform_code", "<i2"),
    ("quatern", "<f4", 3), ("qoffset", "<f4", 3), ("srow_x", "<f4", 4), ("srow_y", "<f4", 4), ("srow_z", "<f4", 4),
    ("intent_name", "S16"), ("magic", "S4"),
])
assert _NIFTI_HEADER.itemsize == 348


def write_nifti(path: Path, array: np.ndarray, dtype: np.dtype, origin: np.ndarray, spacing: np.ndarray,
                direction: np.ndarray, compress: bool) -> None:
    """NIfTI-1 single file (grey, orthonormal ``direction``): qform and sform both in scanner RAS."""
    if array.ndim != 3:
        raise ValueError("the NIfTI stream writer takes grey volumes only")
    k, j, i = array.shape
    flip = np.diag([-1.0, -1.0, 1.0])  # LPS -> RAS
    rot = flip @ np.asarray(direction, dtype=np.float64)
    offset = flip @ np.asarray(origin, dtype=np.float64)
    b, c, d, qfac = _quatern(rot)
    code, bitpix = _NIFTI_TYPES[dtype.name]
    h = np.zeros((), dtype=_NIFTI_HEADER)
    h["sizeof_hdr"], h["regular"], h["dim"] = 348, b"r", [3, i, j, k, 1, 1, 1, 1]
    h["datatype"], h["bitpix"] = code, bitpix
    h["pixdim"] = [qfac, spacing[0], spacing[1], spacing[2], 0, 0, 0, 0]
    h["vox_offset"], h["scl_slope"], h["xyzt_units"] = 352.0, 0.0, 2 | 8  # mm, s
    h["descrip"], h["qform_code"], h["sform_code"] = b"RadScope", 1, 1
    h["quatern"], h["qoffset"] = [b, c, d], offset
    affine = rot * np.asarray(spacing, dtype=np.float64)[None, :]
    h["srow_x"], h["srow_y"], h["srow_z"] = ([*affine[n], offset[n]] for n in range(3))
    h["magic"] = b"n+1"
    head = h.tobytes() + b"\0\0\0\0"  # no extensions
    with open(path, "wb") as f:
        if not compress:
            f.write(head)
            _write_data(f, array, dtype, False)
            return
        with gzip.GzipFile(fileobj=f, mode="wb", compresslevel=COMPRESS_LEVEL, mtime=0) as gz:
            gz.write(head)
            for chunk in _slices(array, dtype):
                gz.write(chunk)
