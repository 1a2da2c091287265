"""A fast reader for the header of an ordinary Part 10 image file (the common case of a big series).

It walks the top-level elements of little-endian datasets (explicit or implicit VR) in one buffer,
skipping sequences (defined or undefined length, nested), keeps only the attributes the engine uses,
and stops at the pixel data, noting its offset and length. It returns ``None`` for anything it does
not handle (no preamble, big endian, deflate, enhanced multi-frame with functional groups, unusual
character sets, any irregularity); the caller then uses pydicom. :class:`FastHeader` answers the
small part of pydicom's ``Dataset`` interface that :mod:`viewer.dicom.headers` uses, with the same
value types (strings, lists of strings for multi-valued text, ints for US/UL).
"""

from __future__ import annotations

import struct
from typing import Any

from pydicom.datadict import dictionary_VR, tag_for_keyword

KEYWORDS = (
    "SpecificCharacterSet", "ImageType", "SOPClassUID", "SOPInstanceUID", "StudyDate", "Modality", "Manufacturer",
    "StudyDescription", "SeriesDescription", "ManufacturerModelName", "PatientName", "PatientID", "PatientSex",
    "PatientAge", "BodyPartExamined", "SliceThickness", "KVP", "SpacingBetweenSlices", "StudyInstanceUID",
    "SeriesInstanceUID", "SeriesNumber", "AcquisitionNumber", "InstanceNumber", "ImagePositionPatient",
    "ImageOrientationPatient", "FrameOfReferenceUID", "TemporalPositionIdentifier", "EchoNumbers",
    "SamplesPerPixel", "PhotometricInterpretation", "PlanarConfiguration", "NumberOfFrames", "Rows", "Columns",
    "PixelSpacing", "ImagerPixelSpacing", "NominalScannedPixelSpacing", "BitsAllocated", "BitsStored",
    "PixelRepresentation", "WindowCenter", "WindowWidth", "RescaleIntercept", "RescaleSlope",
    "WindowCenterWidthExplanation", "GridFrameOffsetVector", "ProtocolName", "PatientBirthDate", "VOILUTFunction",
    "PatientOrientation", "PixelAspectRatio", "DoseGridScaling", "DoseUnits", "FrameTime", "CineRate",
    "RecommendedDisplayFrameRate", "PresentationLUTShape",
)
_TAGS: dict[int, tuple[str, str]] = {int(tag_for_keyword(k)): (k, dictionary_VR(k)) for k in KEYWORDS}  # type: ignore[arg-type]
_TAGS[0x00291010] = ("CSAImageHeaderInfo", "OB")  # Siemens CSA image header (mosaic layout)
_BY_KEYWORD = {k: t for t, (k, _) in _TAGS.items()}
_PRESENCE = {  # attributes whose presence matters but whose value the fast path never reads
    0x00283000: "ModalityLUTSequence", 0x00041220: "DirectoryRecordSequence",
    0x00186011: "SequenceOfUltrasoundRegions", 0x00082218: "AnatomicRegionSequence",
}
_BAIL = {0x52009229, 0x52009230, 0x00283010}  # functional groups (enhanced objects), VOI LUT Sequence: pydicom
PIXEL_TAGS = (0x7FE00010, 0x7FE00008, 0x7FE00009)
_LONG_VRS = {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"UC", b"UN", b"UR", b"UT", b"SV", b"UV"}
_TEXT_VRS = {"AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "PN", "SH", "TM", "UI", "UC"}
_SINGLE_TEXT_VRS = {"LT", "ST", "UT", "UR"}
_NUMERIC = {"US": "<H", "UL": "<I", "SS": "<h", "SL": "<i", "FL": "<f", "FD": "<d"}
_CHARSETS = {"": "latin-1", "ISO_IR 6": "latin-1", "ISO_IR 100": "latin-1", "ISO_IR 192": "utf-8"}
EXPLICIT_LE, IMPLICIT_LE = "1.2.840.10008.1.2.1", "1.2.840.10008.1.2"
_UNDEFINED = 0xFFFFFFFF
_EXPLICIT = struct.Struct("<HH2sH")
_U32 = struct.Struct("<I")
_VR_NAMES = {vr.encode(): vr for vr in (
    "AE AS AT CS DA DS DT FL FD IS LO LT OB OD OF OL OV OW PN SH SL SQ SS ST SV TM UC UI UL UN UR US UT UV".split()
)}
CHUNK = 16384


class _Unsupported(Exception):
    """Something the fast path leaves to pydicom."""


class PixelElement:
    """Where the pixel data value lies in the file (what pydicom's RawDataElement tells)."""

    def __init__(self, value_tell: int, length: int) -> None:
        self.value_tell = value_tell
        self.length = length
        self.value = None


class _Meta:
    def __init__(self, transfer_syntax: str) -> None:
        self.TransferSyntaxUID = transfer_syntax

    def get(self, keyword: str, default: Any = None) -> Any:
        return self.TransferSyntaxUID if keyword == "TransferSyntaxUID" else default

    def __contains__(self, keyword: str) -> bool:
        return keyword == "TransferSyntaxUID"


class FastHeader:
    """The attributes the engine needs from one file, duck-typed like a pydicom Dataset."""

    def __init__(self, transfer_syntax: str, raw: dict[int, tuple[str, bytes]], present: set[str],
                 pixel: tuple[int, int, int] | None) -> None:
        self.file_meta = _Meta(transfer_syntax)
        self.original_encoding = (transfer_syntax == IMPLICIT_LE, True)
        charset = _decode_text(raw[0x00080005][1], "latin-1").strip() if 0x00080005 in raw else ""
        if charset not in _CHARSETS:
            raise _Unsupported(f"character set {charset}")
        self._encoding = _CHARSETS[charset]
        self._raw = raw
        self._present = present
        self._pixel = pixel
        self._cache: dict[str, Any] = {}

    def __len__(self) -> int:
        return len(self._raw) + len(self._present) + (self._pixel is not None)

    def keys(self) -> set[int]:
        tags = set(self._raw)
        if self._pixel is not None:
            tags.add(self._pixel[0])
        return tags

    def __contains__(self, keyword: str) -> bool:
        return keyword in self._present or _BY_KEYWORD.get(keyword, -1) in self._raw

    def get_item(self, tag: int, *, keep_deferred: bool = True) -> PixelElement | None:
        if self._pixel is not None and tag == self._pixel[0]:
            return PixelElement(self._pixel[1], self._pixel[2])
        return None

    def get(self, keyword: str, default: Any = None) -> Any:
        if keyword in self._cache:
            return self._cache[keyword]
        tag = _BY_KEYWORD.get(keyword)
        if tag is None or tag not in self._raw:
            return default
        vr, data = self._raw[tag]
        value = _decode(vr, data, self._encoding)
        self._cache[keyword] = value
        return default if value is None else value


def _decode_text(data: bytes, encoding: str) -> str:
    return data.decode(encoding, errors="replace")


def _decode(vr: str, data: bytes, encoding: str) -> Any:
    if vr in _TEXT_VRS:
        text = _decode_text(data, encoding).rstrip("\x00 ")
        parts = [p.strip() for p in text.split("\\")]
        return parts[0] if len(parts) == 1 else parts
    if vr in _SINGLE_TEXT_VRS:
        return _decode_text(data, encoding).rstrip("\x00 ")
    fmt = _NUMERIC.get(vr)
    if fmt is not None:
        size = struct.calcsize(fmt)
        n = len(data) // size
        if n == 0:
            return None
        values = struct.unpack(f"<{n}{fmt[1]}", data[: n * size])
        return values[0] if n == 1 else list(values)
    return data


class _Reader:
    """Walks elements in a growing buffer read from the file on demand."""

    def __init__(self, f: Any, head: bytes) -> None:
        self.f = f
        self.buf = head
        self.eof = len(head) < CHUNK

    def need(self, end: int) -> None:
        while end > len(self.buf):
            if self.eof:
                raise _Unsupported("truncated")
            more = self.f.read(max(CHUNK, end - len(self.buf)))
            if not more:
                self.eof = True
                raise _Unsupported("truncated")
            self.buf += more

    def header(self, pos: int, implicit: bool) -> tuple[int, str, int, int]:
        """(tag, VR, value length, value offset) of the element at ``pos``."""
        if pos + 12 > len(self.buf):
            self.need(pos + 8)
        buf = self.buf
        group, elem, vr_bytes, short = _EXPLICIT.unpack_from(buf, pos)
        tag = group << 16 | elem
        if group == 0xFFFE or implicit:  # items / delimiters never carry a VR
            vr = "" if group == 0xFFFE else _TAGS[tag][1] if tag in _TAGS else ""
            return tag, vr, _U32.unpack_from(buf, pos + 4)[0], pos + 8
        if vr_bytes in _LONG_VRS:
            self.need(pos + 12)
            return tag, _VR_NAMES[vr_bytes], _U32.unpack_from(buf, pos + 8)[0], pos + 12
        vr = _VR_NAMES.get(vr_bytes)
        if vr is None:
            raise _Unsupported("invalid VR")
        return tag, vr, short, pos + 8

    def skip_undefined(self, pos: int, implicit: bool, depth: int = 0) -> int:
        """Position after an undefined-length sequence (or item) starting its content at ``pos``."""
        if depth > 16:
            raise _Unsupported("sequences nested too deep")
        while True:
            tag, vr, length, start = self.header(pos, implicit)
            if tag in (0xFFFEE0DD, 0xFFFEE00D):  # sequence / item delimiter
                return start
            if length == _UNDEFINED:
                pos = self.skip_undefined(start, implicit or vr == "UN", depth + 1)
            else:
                pos = start + length


def count_fragments(path: str, offset: int, size: int) -> int:
    """Fragments of encapsulated pixel data whose items start at ``offset`` (Basic Offset Table not
    counted); ValueError when the items run past the end of the file or are malformed."""
    pos, items = offset, 0
    with open(path, "rb") as f:
        while True:
            if pos + 8 > size:
                raise ValueError("encapsulated pixel data ends before its sequence delimiter (file truncated)")
            f.seek(pos)
            group, elem, length = struct.unpack("<HHI", f.read(8))
            tag = group << 16 | elem
            if tag == 0xFFFEE0DD:
                return max(items - 1, 0)
            if tag != 0xFFFEE000 or length == _UNDEFINED:
                raise ValueError(f"malformed encapsulated pixel data (tag {tag:08X} at byte {pos})")
            pos += 8 + length
            items += 1


def read_fast(path: str, size: int) -> FastHeader | None:
    """The header of ``path`` via the fast walker, or None when pydicom should read it."""
    try:
        with open(path, "rb") as f:
            head = f.read(CHUNK)
            if len(head) < 144 or head[128:132] != b"DICM":
                return None
            return _walk(_Reader(f, head), size)
    except (_Unsupported, struct.error, KeyError, UnicodeDecodeError, OSError, IndexError):
        return None


def _walk(r: _Reader, size: int) -> FastHeader | None:
    pos = 132
    ts = ""
    while True:  # file meta group: always explicit VR little endian
        r.need(pos + 8)
        if struct.unpack_from("<H", r.buf, pos)[0] != 0x0002:
            break
        tag, vr, length, start = r.header(pos, implicit=False)
        if length == _UNDEFINED:
            raise _Unsupported("undefined length in meta")
        if tag == 0x00020010:
            r.need(start + length)
            ts = r.buf[start:start + length].decode("ascii", "replace").rstrip("\x00 ")
        pos = start + length
    if ts not in (EXPLICIT_LE, IMPLICIT_LE) and not ts.startswith("1.2.840.10008.1.2.4.") and ts != "1.2.840.10008.1.2.5":
        return None  # big endian, deflate, private syntaxes: pydicom
    implicit = ts == IMPLICIT_LE
    raw: dict[int, tuple[str, bytes]] = {}
    present: set[str] = set()
    pixel = None
    while pos + 8 <= size:
        tag, vr, length, start = r.header(pos, implicit)
        if tag in PIXEL_TAGS:
            pixel = (tag, start, length)
            break
        if tag in _BAIL or tag >> 16 == 0xFFFE:
            return None
        if tag in _PRESENCE:
            present.add(_PRESENCE[tag])
        elif tag & 0xFFE1FFFF == 0x60003000:  # Overlay Data of any overlay group 6000-601E
            present.add("OverlayData")
        if length == _UNDEFINED:
            if vr not in ("SQ", "UN", "") and not implicit:
                raise _Unsupported("undefined length on a non-sequence")
            pos = r.skip_undefined(start, implicit or vr == "UN")  # UN sequences hold implicit VR items
            continue
        if tag in _TAGS:
            r.need(start + length)
            raw[tag] = (_TAGS[tag][1] if vr in ("", "UN") else vr, bytes(r.buf[start:start + length]))
        pos = start + length
    return FastHeader(ts, raw, present, pixel)
