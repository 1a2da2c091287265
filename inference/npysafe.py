"""Arrays from ``.npz`` archives a hostile file may have written: every ``.npy`` header is read and checked
(dtype, dimensions, memory order, and the bytes it claims against the member's size) before anything is
allocated, and arrays are read with ``allow_pickle=False``. Used by the results cache and the OOD statistics."""

from __future__ import annotations

import math
import zipfile

import numpy as np

MAX_NPY_HEADER = 10_000
"""Longest ``.npy`` header parsed (numpy's own guard against slow literal evaluation)."""


def npy_shape(zf: zipfile.ZipFile, name: str, dtype: np.dtype, ndim: int) -> tuple[int, ...]:
    """The shape in member ``name``.npy's header, checked (dtype, dimensions, and the bytes it claims
    against the member's size) before anything is allocated; ValueError or KeyError otherwise."""
    info = zf.getinfo(f"{name}.npy")
    with zf.open(info) as fh:
        version = np.lib.format.read_magic(fh)
        if version == (1, 0):
            shape, fortran, got = np.lib.format.read_array_header_1_0(fh, max_header_size=MAX_NPY_HEADER)
        elif version == (2, 0):
            shape, fortran, got = np.lib.format.read_array_header_2_0(fh, max_header_size=MAX_NPY_HEADER)
        else:
            raise ValueError(f"{name}: .npy format {version} is not one RadScope writes")
        header = fh.tell()
    if got != dtype or fortran or len(shape) != ndim or any(not isinstance(d, int) or d < 0 for d in shape):
        raise ValueError(f"{name} is {got} {shape}{' (Fortran order)' if fortran else ''}, expected {dtype} "
                         f"with {ndim} dimensions")
    claimed = math.prod(shape) * dtype.itemsize
    if header + claimed != info.file_size:
        raise ValueError(f"{name}'s header claims {shape} ({claimed} bytes) but the member holds "
                         f"{info.file_size - header} bytes; refused without reading it")
    return tuple(shape)


def npy_read(zf: zipfile.ZipFile, name: str) -> np.ndarray:
    """Member ``name``.npy (check it with :func:`npy_shape` first)."""
    with zf.open(f"{name}.npy") as fh:
        return np.lib.format.read_array(fh, allow_pickle=False, max_header_size=MAX_NPY_HEADER)
