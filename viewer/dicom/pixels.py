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

import threading
from typing import Any
from collections.abc import Callable, Iterable, Sequence

import numpy as np
from pydicom.pixels import apply_color_lut, apply_modality_lut, iter_pixels, pixel_array

from viewer.dicom.deflate import deflated_offset, read_deflated
from viewer.dicom.errors import DicomFileError
from viewer.dicom.headers import PixelFormat, SliceHeader, decoder_problem, transfer_syntax_of


def decode_into(s: SliceHeader, out: np.ndarray) -> None:
    """Decode slice ``s`` into ``out`` ((rows, cols) float32 or the stack's :func:`integer_dtype`, or
    (rows, cols, 3) uint8 for colour)."""
    if s.native:
        _read_native(s, out)
    else:
        decode_file([s], [out])


def decode_slice(s: SliceHeader) -> np.ndarray:
    """Slice ``s`` decoded on its own (float32 modality units, or uint8 RGB): the safe decoder order, never
    pydicom's default plugin choice (which may reach python-gdcm and abort the process on a corrupt stream)."""
    shape = (s.rows, s.columns, 3) if s.file.fmt.is_color else (s.rows, s.columns)
    out = np.empty(shape, dtype=np.uint8 if s.file.fmt.is_color else np.float32)
    decode_into(s, out)
    return out


def decode_file(
    slices: Sequence[SliceHeader], outs: Sequence[np.ndarray], on_done: Callable[[int], None] | None = None
) -> None:
    """Decode several frames of ONE file (pydicom path) in a single pass over its pixel data.

    ``slices[n]`` lands in ``outs[n]``; ``on_done(n)`` runs as each one lands (after the file's
    decoder succeeded for it). Frames are decoded in stored order (``iter_pixels``), so a compressed
    multi-frame file is parsed once, not per frame. Compressed data is tried with each usable plugin
    in :func:`plugin_order` until one succeeds.
    """
    fmt = slices[0].file.fmt
    path = slices[0].file.path
    problem = decoder_problem(fmt.transfer_syntax) if fmt.encapsulated else None
    if problem:
        raise DicomFileError(path, problem)
    ds = _read_full(path)
    wanted: dict[int, list[int]] = {}
    for n, s in enumerate(slices):
        wanted.setdefault(s.frame or 0, []).append(n)
    failures: list[str] = []
    for plugin in plugin_order(fmt.transfer_syntax) if fmt.encapsulated else [""]:
        try:
            _decode_frames(ds, fmt, wanted, slices, outs, plugin, on_done)
            return
        except (DicomFileError, ValuesOutOfRange):
            raise
        except (KeyboardInterrupt, SystemExit, GeneratorExit):
            raise
        except BaseException as exc:  # decoders written in Rust panic with a BaseException (pyo3 PanicException)
            lines = [line.strip() for line in str(exc).strip().splitlines()
                     if line.strip() and not line.startswith("Unable to decode as exceptions")]
            text = "; ".join(lines[:2]) or type(exc).__name__
            failures.append(text if not plugin or text.startswith(plugin) else f"{plugin}: {text}")
    if fmt.encapsulated:
        raise DicomFileError(path, f"unsupported compression: {fmt.ts_name} (no installed decoder could decode it: "
                                   f"{' | '.join(failures)})")
    raise DicomFileError(path, f"cannot decode pixel data ({failures[0]})")


SAFE_PLUGINS = ("pylibjpeg", "pyjpegls", "pydicom", "pillow")
"""Preferred decoding plugins. python-gdcm comes last and only when nothing else handles the
transfer syntax: on corrupt JPEG data it aborts the whole process (an uncaught C++ exception)."""
FIRST_CHOICE = {"1.2.840.10008.1.2.4.50": "pillow"}
"""Per transfer syntax, a faster plugin to try first (Pillow's libjpeg-turbo for 8-bit baseline JPEG)."""


def plugin_order(transfer_syntax: str) -> list[str]:
    """The plugins to try for ``transfer_syntax``, safest first (gdcm only as the sole option)."""
    from pydicom.pixels import get_decoder

    available = list(get_decoder(transfer_syntax).available_plugins)
    safe = [p for p in SAFE_PLUGINS if p in available] + [p for p in available if p not in SAFE_PLUGINS + ("gdcm",)]
    first = FIRST_CHOICE.get(transfer_syntax)
    if first in safe:
        safe.remove(first)
        safe.insert(0, first)
    return safe or available


def _decode_frames(
    ds: Any, fmt: PixelFormat, wanted: dict[int, list[int]], slices: Sequence[SliceHeader],
    outs: Sequence[np.ndarray], plugin: str, on_done: Callable[[int], None] | None,
) -> None:
    order = sorted(wanted)
    if fmt.n_frames == 1:
        frames: Iterable[tuple[int, np.ndarray]] = [(0, pixel_array(ds, decoding_plugin=plugin))]
    else:
        frames = zip(order, iter_pixels(ds, indices=order, decoding_plugin=plugin))
    for f, arr in frames:
        for n in wanted[f]:
            _convert(arr, slices[n], ds, outs[n])
            if on_done is not None:
                on_done(n)


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


_BUFFERS = threading.local()


def _thread_buffer(nbytes: int) -> np.ndarray:
    """A per-thread scratch buffer for raw pixel bytes (no allocation per slice)."""
    buf = getattr(_BUFFERS, "buf", None)
    if buf is None or buf.nbytes < nbytes:
        buf = _BUFFERS.buf = np.empty(nbytes, dtype=np.uint8)
    return buf[:nbytes]


def _read_native(s: SliceHeader, out: np.ndarray) -> None:
    fmt = s.file.fmt
    count = fmt.rows * fmt.columns
    nbytes = count * fmt.numpy_dtype.itemsize
    assert fmt.offset is not None
    offset = fmt.offset + (s.frame or 0) * fmt.frame_bytes
    buf = _thread_buffer(nbytes)
    try:
        with open(s.file.path, "rb", buffering=0) as f:
            f.seek(offset)
            got = f.readinto(memoryview(buf))  # releases the GIL while the kernel copies
            while got is not None and 0 < got < nbytes:
                more = f.readinto(memoryview(buf)[got:])
                if not more:
                    break
                got += more
    except OSError as exc:
        raise DicomFileError(s.file.path, f"cannot read pixel data ({exc})") from exc
    if not got or got < nbytes:
        raise DicomFileError(s.file.path, f"pixel data truncated: {got or 0} of {nbytes} bytes in the file")
    raw = _fix_bits(buf.view(fmt.numpy_dtype).reshape(fmt.rows, fmt.columns), fmt)
    _rescale(raw, s.slope, s.intercept, out)


def integer_dtype(slices: Sequence[SliceHeader]) -> np.dtype | None:
    """int16 or uint16 when every slice's modality values are integers that fit it: integral slope and
    intercept applied to the stored range (BitsStored, signedness); None otherwise (float32 then)."""
    if not slices:
        return None
    fmt = slices[0].file.fmt
    if fmt.is_color or fmt.float_data or fmt.has_modality_lut or fmt.samples != 1:
        return None
    bits = fmt.bits_stored
    lo_raw, hi_raw = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if fmt.signed else (0, (1 << bits) - 1)
    lo, hi = np.inf, -np.inf
    for s in slices:
        if s.file.fmt.numpy_dtype != fmt.numpy_dtype or s.file.fmt.bits_stored != bits:
            return None
        if not (float(s.slope).is_integer() and float(s.intercept).is_integer()):
            return None
        ends = (lo_raw * s.slope + s.intercept, hi_raw * s.slope + s.intercept)
        lo, hi = min(lo, *ends), max(hi, *ends)
    for dtype in (np.int16, np.uint16):
        info = np.iinfo(dtype)
        if info.min <= lo and hi <= info.max:
            return np.dtype(dtype)
    # e.g. 16-bit unsigned with intercept -1024: fits int16 unless a value exceeds 31743 HU; every
    # slice is checked as it decodes (ValuesOutOfRange, then the caller decodes as float32)
    return np.dtype(np.int16) if fmt.bits_allocated <= 16 else None


class ValuesOutOfRange(Exception):
    """A slice's modality values do not fit the integer output chosen by :func:`integer_dtype`."""


def _check_range(raw: np.ndarray, slope: float, intercept: float, out: np.ndarray) -> None:
    if raw.size == 0:
        return
    info = np.iinfo(out.dtype)
    ends = (float(raw.min()) * slope + intercept, float(raw.max()) * slope + intercept)
    if min(ends) < info.min or max(ends) > info.max:
        raise ValuesOutOfRange(f"values {min(ends):g}..{max(ends):g} do not fit {out.dtype}")


def _rescale(raw: np.ndarray, slope: float, intercept: float, out: np.ndarray) -> None:
    """out = raw * slope + intercept (float32, or exact integers into an integer ``out``), in as few
    passes as possible."""
    if out.dtype.kind in "iu":
        # exact in int32/int64, after checking that the result fits ``out``
        _check_range(raw, slope, intercept, out)
        wide = np.int64 if raw.dtype.itemsize >= 4 else np.int32
        if slope == 1.0:
            if intercept == 0.0:
                np.copyto(out, raw, casting="unsafe")
            else:
                np.add(raw, wide(intercept), out=out, casting="unsafe")
            return
        np.add(np.multiply(raw, wide(slope), dtype=wide), wide(intercept), out=out, casting="unsafe")
        return
    if slope == 1.0:
        if intercept == 0.0:
            np.copyto(out, raw, casting="unsafe")
        else:
            np.add(raw, np.float32(intercept), out=out, casting="unsafe")
        return
    np.multiply(raw, np.float32(slope), out=out, casting="unsafe")
    if intercept != 0.0:
        out += np.float32(intercept)


def _read_full(path: str) -> Any:
    import pydicom

    offset = deflated_offset(path)
    if offset is not None:  # inflated with a bound (a deflate bomb names the file)
        return read_deflated(path, offset, stop_before_pixels=False)
    try:
        ds = pydicom.dcmread(path, force=True)
    except Exception as exc:
        raise DicomFileError(path, f"unreadable DICOM file ({type(exc).__name__}: {exc})") from exc
    if "TransferSyntaxUID" not in ds.file_meta:  # raw datasets without a meta header
        ds.file_meta.TransferSyntaxUID = transfer_syntax_of(ds)
    return ds


def _convert(arr: np.ndarray, s: SliceHeader, ds: Any, out: np.ndarray) -> None:
    """One decoded frame to the output: palette/RGB to uint8 RGB, grey through the modality LUT.
    A mosaic tile is cut out of the stored image first."""
    fmt = s.file.fmt
    if s.tile is not None:
        r0, c0, rows, cols = s.tile
        arr = arr[r0:r0 + rows, c0:c0 + cols]
    try:
        if fmt.photometric == "PALETTE COLOR":
            if "SegmentedRedPaletteColorLookupTableData" in ds:
                rgb = apply_color_lut(arr, ds)
                _to_uint8_rgb(rgb, 16 if rgb.dtype.itemsize > 1 else 8, out)
            else:
                _apply_palette(arr, ds, fmt, out)
        elif fmt.samples == 3:
            _to_uint8_rgb(arr, fmt.bits_stored, out)
        elif fmt.has_modality_lut:
            np.copyto(out, apply_modality_lut(arr, ds), casting="unsafe")
        else:
            _rescale(arr, s.slope, s.intercept, out)
    except (KeyboardInterrupt, SystemExit, GeneratorExit, ValuesOutOfRange):
        raise
    except BaseException as exc:
        raise DicomFileError(s.file.path, f"cannot convert pixel values ({type(exc).__name__}: {exc})") from exc


def _apply_palette(arr: np.ndarray, ds: Any, fmt: PixelFormat, out: np.ndarray) -> None:
    """Palette colour to uint8 RGB, honouring the file's byte order (pydicom 3.0 reads big endian LUTs wrong)."""
    order = ">" if fmt.transfer_syntax == "1.2.840.10008.1.2.2" else "<"
    index = arr.astype(np.int64)
    for c, name in enumerate(("Red", "Green", "Blue")):
        entries, first, bits = (int(v) for v in ds[f"{name}PaletteColorLookupTableDescriptor"].value)
        entries = entries or 65536
        data = ds[f"{name}PaletteColorLookupTableData"].value
        lut = np.frombuffer(data, dtype=np.uint8 if len(data) == entries else np.dtype(f"{order}u2"))[:entries]
        if lut.size == 0:
            raise ValueError(f"empty {name} palette lookup table")
        values = lut[np.clip(index - first, 0, lut.size - 1)]
        out[..., c] = values >> 8 if bits > 8 else np.minimum(values, 255)


def _to_uint8_rgb(arr: np.ndarray, bits: int, out: np.ndarray) -> None:
    if arr.shape != out.shape:
        raise ValueError(f"colour frame shape {arr.shape} does not match {out.shape}")
    if arr.dtype == np.uint8:
        np.copyto(out, arr)
        return
    shift = max(int(bits) - 8, 0)
    np.copyto(out, np.clip(arr.astype(np.int64) >> shift, 0, 255), casting="unsafe")
