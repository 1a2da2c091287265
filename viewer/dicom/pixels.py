"""Decoding one slice into a preallocated output: float32 modality units, or uint8 RGB for colour.

Two paths:

* **fast path** (native little/big endian, one sample, 8/16/32-bit integers): ``np.fromfile`` reads
  the frame's bytes at their known offset, and slope/intercept are applied straight into the
  output slice; no pydicom involved, and numpy releases the GIL for the read and the arithmetic.
* **pydicom path** (everything else: JPEG, JPEG-LS, JPEG 2000, RLE, deflate, colour, palette,
  modality LUT sequences, float pixel data) through ``pydicom.pixels.pixel_array`` and its plugins.

Every failure becomes a :class:`~viewer.dicom.errors.DicomFileError` naming the file; a missing
decoder names the packages to install, and a compression no installed plugin handles reads
"unsupported compression: <transfer syntax name>".
"""

from __future__ import annotations

from typing import Any

import numpy as np

from viewer.dicom.errors import DicomFileError
from viewer.dicom.headers import PixelFormat, SliceHeader, transfer_syntax_of


def decode_into(s: SliceHeader, out: np.ndarray, dataset: Any = None) -> None:
    """Decode slice ``s`` into ``out`` ((rows, cols) float32, or (rows, cols, 3) uint8 for colour).

    ``dataset``: an already read full pydicom Dataset of the slice's file (multi-frame reuse).
    """
    fmt = s.file.fmt
    if fmt.fast_path and not fmt.is_color:
        _read_native(s, out)
    else:
        _decode_pydicom(s, out, dataset)


def _fix_bits(raw: np.ndarray, fmt: PixelFormat) -> np.ndarray:
    """Sign-extend / mask integers whose BitsStored is less than BitsAllocated."""
    unused = fmt.bits_allocated - fmt.bits_stored
    if unused <= 0 or raw.dtype.kind not in "iu":
        return raw
    native = raw.astype(raw.dtype.newbyteorder("="), copy=False)
    if fmt.signed:
        signed = native.view(native.dtype.str.replace("u", "i"))
        return (signed << unused) >> unused
    return native & np.array((1 << fmt.bits_stored) - 1, dtype=native.dtype)


def _read_native(s: SliceHeader, out: np.ndarray) -> None:
    fmt = s.file.fmt
    count = fmt.rows * fmt.columns
    assert fmt.offset is not None
    offset = fmt.offset + (s.frame or 0) * fmt.frame_bytes
    try:
        raw = np.fromfile(s.file.path, dtype=fmt.numpy_dtype, count=count, offset=offset)
    except (OSError, ValueError) as exc:
        raise DicomFileError(s.file.path, f"cannot read pixel data ({exc})") from exc
    if raw.size < count:
        raise DicomFileError(s.file.path, f"pixel data truncated: {raw.size} of {count} pixels in the file")
    raw = _fix_bits(raw.reshape(fmt.rows, fmt.columns), fmt)
    _rescale(raw, s.slope, s.intercept, out)


def _rescale(raw: np.ndarray, slope: float, intercept: float, out: np.ndarray) -> None:
    if slope == 1.0:
        np.copyto(out, raw, casting="unsafe")
    else:
        np.multiply(raw, np.float32(slope), out=out, casting="unsafe")
    if intercept != 0.0:
        out += np.float32(intercept)


def _read_full(path: str) -> Any:
    import pydicom

    try:
        ds = pydicom.dcmread(path, force=True)
    except Exception as exc:
        raise DicomFileError(path, f"unreadable DICOM file ({type(exc).__name__}: {exc})") from exc
    if "TransferSyntaxUID" not in ds.file_meta:  # raw datasets without a meta header
        ds.file_meta.TransferSyntaxUID = transfer_syntax_of(ds)
    return ds


def _decoder_problem(fmt: PixelFormat) -> str | None:
    """A missing-plugin message for the file's transfer syntax, or None when a decoder is available."""
    from pydicom.pixels import get_decoder

    try:
        decoder = get_decoder(fmt.transfer_syntax)
    except NotImplementedError:
        return f"unsupported compression: {fmt.ts_name} (pydicom has no decoder for it)"
    if decoder.is_available:
        return None
    missing = "; ".join(f"{k}: {v}" for k, v in decoder.missing_dependencies.items()) if hasattr(
        decoder, "missing_dependencies") else ""
    return f"no decoder installed for {fmt.ts_name}: install one of the plugins ({missing})"


def _decode_pydicom(s: SliceHeader, out: np.ndarray, dataset: Any) -> None:
    from pydicom.pixels import apply_color_lut, apply_modality_lut, pixel_array

    fmt = s.file.fmt
    path = s.file.path
    ds = dataset if dataset is not None else _read_full(path)
    problem = _decoder_problem(fmt) if fmt.encapsulated else None
    if problem:
        raise DicomFileError(path, problem)
    try:
        arr = pixel_array(ds, index=s.frame if fmt.n_frames > 1 else None)
    except Exception as exc:
        reason = str(exc).strip().splitlines()
        detail = "; ".join(line.strip() for line in reason[:3] if line.strip())
        if fmt.encapsulated:
            raise DicomFileError(path, f"unsupported compression: {fmt.ts_name} ({detail})") from exc
        raise DicomFileError(path, f"cannot decode pixel data ({type(exc).__name__}: {detail})") from exc
    if arr.ndim == 3 and fmt.n_frames > 1 and arr.shape[0] == fmt.n_frames and not fmt.is_color:
        arr = arr[s.frame or 0]
    try:
        if fmt.photometric == "PALETTE COLOR":
            rgb = apply_color_lut(arr, ds)
            _to_uint8_rgb(rgb, 16 if rgb.dtype.itemsize > 1 else 8, out)
        elif fmt.samples == 3:
            _to_uint8_rgb(arr, fmt.bits_stored, out)
        elif fmt.has_modality_lut:
            np.copyto(out, apply_modality_lut(arr, ds), casting="unsafe")
        else:
            _rescale(arr, s.slope, s.intercept, out)
    except DicomFileError:
        raise
    except Exception as exc:
        raise DicomFileError(path, f"cannot convert pixel values ({type(exc).__name__}: {exc})") from exc


def _to_uint8_rgb(arr: np.ndarray, bits: int, out: np.ndarray) -> None:
    if arr.shape != out.shape:
        raise ValueError(f"colour frame shape {arr.shape} does not match {out.shape}")
    if arr.dtype == np.uint8:
        np.copyto(out, arr)
        return
    shift = max(int(bits) - 8, 0)
    np.copyto(out, np.clip(arr.astype(np.int64) >> shift, 0, 255), casting="unsafe")
