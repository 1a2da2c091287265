"""Deflated Explicit VR Little Endian files, inflated with a bound.

pydicom inflates the whole dataset in one ``zlib.decompress`` call, so a 1 MB file can become gigabytes of
memory. Here the stream is inflated in chunks: for a header read only up to the pixel data (at most
:data:`HEADER_SLACK` bytes); for a full read up to what the header can need (rows x columns x frames x
samples x bytes per sample, plus :data:`HEADER_SLACK`). More data than that is refused, naming the file.
"""

from __future__ import annotations

import struct
import zlib
from typing import Any, BinaryIO, cast

from viewer.dicom.errors import DicomFileError

DEFLATED = "1.2.840.10008.1.2.1.99"
HEADER_SLACK = 32 * 1024**2
"""Bytes allowed for everything but the pixel data (private blobs, overlays, icon images)."""
CHUNK = 1 << 20
_LONG_VRS = {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"UC", b"UN", b"UR", b"UT", b"SV", b"UV"}
_PIXEL_GROUP = 0x7FE0


def deflated_offset(path: str) -> int | None:
    """Where the deflated dataset of the Part 10 file at ``path`` starts, when its meta header names the
    deflated transfer syntax; else None. When the meta group cannot be walked, pydicom's own reading of it
    decides, and a deflated file whose dataset start is unknown is refused (never inflated unbounded)."""
    try:
        with open(path, "rb") as f:
            found = _meta_walk(f)
    except (OSError, struct.error):
        found = None
    if found is not None:
        ts, offset = found
        return offset if ts == DEFLATED else None
    try:
        from pydicom.filereader import read_file_meta_info

        ts = str(read_file_meta_info(path).get("TransferSyntaxUID", ""))
    except Exception:
        return None
    if ts == DEFLATED:
        raise DicomFileError(path, "deflated file with a malformed file meta header: refused")
    return None


def _meta_walk(f: BinaryIO) -> tuple[str, int] | None:
    """(transfer syntax, end of the file meta group), walking it element by element however long it is;
    None when the file has no preamble or the group is malformed."""
    head = f.read(132)
    if len(head) < 132 or head[128:132] != b"DICM":
        return None
    pos, ts = 132, None
    for _ in range(10_000):
        f.seek(pos)
        element = f.read(12)
        if len(element) < 8:
            break
        group, elem = struct.unpack_from("<HH", element)
        if group != 0x0002:
            break
        vr = element[4:6]
        if vr in _LONG_VRS:
            if len(element) < 12:
                return None
            length, start = struct.unpack_from("<I", element, 8)[0], pos + 12
        elif vr.isalpha() and vr.isupper():
            length, start = struct.unpack_from("<H", element, 6)[0], pos + 8
        else:
            return None  # not explicit VR: let pydicom say what it is
        if elem == 0x0010:
            if length > 128:
                return None
            f.seek(start)
            ts = f.read(length).decode("ascii", "replace").rstrip("\x00 ")
        pos = start + length
    else:
        return None
    return (ts, pos) if ts is not None else None


def _pixel_need(ds: Any) -> int:
    """Bytes of pixel data the header describes (0 when it describes none)."""
    def number(keyword: str, default: int) -> int:
        try:
            value = ds.get(keyword, default)
            return max(int(value if value not in (None, "") else default), 0)
        except (TypeError, ValueError):
            return default

    rows, cols = number("Rows", 0), number("Columns", 0)
    frames, samples, bits = number("NumberOfFrames", 1) or 1, number("SamplesPerPixel", 1) or 1, number("BitsAllocated", 8)
    return rows * cols * frames * samples * max((bits + 7) // 8, 1)


def read_deflated(path: str, offset: int, *, stop_before_pixels: bool) -> Any:
    """The dataset of a deflated file (pydicom ``FileDataset``), inflated within its bound; every failure is a
    :class:`DicomFileError` naming the file."""
    try:
        return _read_deflated(path, offset, stop_before_pixels)
    except DicomFileError:
        raise
    except Exception as exc:
        raise DicomFileError(path, f"unreadable deflated file ({type(exc).__name__}: {exc})") from exc


def _read_deflated(path: str, offset: int, stop_before_pixels: bool) -> Any:
    from pydicom.dataset import FileDataset
    from pydicom.filebase import DicomBytesIO
    from pydicom.filereader import read_dataset, read_file_meta_info

    meta = read_file_meta_info(path)
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    out = bytearray()
    limit = HEADER_SLACK
    header_seen = False

    def pixels_reached(tag: Any, vr: Any, length: int) -> bool:
        return int(tag) >> 16 >= _PIXEL_GROUP

    def header_complete() -> Any | None:
        """The dataset before the pixel data, once the inflated bytes reach it."""
        stopped = []

        def stop(tag: Any, vr: Any, length: int) -> bool:
            if pixels_reached(tag, vr, length):
                stopped.append(True)
                return True
            return False

        try:
            ds = read_dataset(cast(BinaryIO, DicomBytesIO(bytes(out))), False, True, stop_when=stop)
        except Exception:
            return None
        return ds if stopped else None

    next_probe = 64 * 1024
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            pending, at_end = b"", False
            while not inflater.eof:
                if not pending and not at_end:
                    pending = f.read(CHUNK)
                    at_end = not pending
                chunk = inflater.decompress(pending, CHUNK)  # at most CHUNK bytes out per call
                pending = inflater.unconsumed_tail
                out += chunk
                if len(out) > limit:
                    what = "its header" if not header_seen else "the pixel data its header describes"
                    raise DicomFileError(path, f"deflated data inflates beyond the {limit} bytes {what} can "
                                               "need: refused (deflate bomb)")
                if not header_seen and (len(out) >= next_probe or inflater.eof or (at_end and not chunk)):
                    next_probe = max(next_probe, len(out)) * 4
                    ds = header_complete()
                    if ds is not None:
                        if stop_before_pixels:
                            return FileDataset(path, ds, preamble=b"\0" * 128, file_meta=meta)
                        header_seen = True
                        limit = _pixel_need(ds) + HEADER_SLACK
                if at_end and not pending and not chunk:
                    break
    except zlib.error as exc:
        raise DicomFileError(path, f"corrupt deflated data ({exc})") from exc
    except OSError as exc:
        raise DicomFileError(path, f"cannot read file ({exc.strerror or exc})") from exc
    try:
        ds = read_dataset(cast(BinaryIO, DicomBytesIO(bytes(out))), False, True,
                          stop_when=pixels_reached if stop_before_pixels else None)
    except Exception as exc:
        raise DicomFileError(path, f"unreadable deflated dataset ({type(exc).__name__}: {exc})") from exc
    out.clear()
    return FileDataset(path, ds, preamble=b"\0" * 128, file_meta=meta)
