"""Header parsing: one DICOM file -> a :class:`FileHeader` and one :class:`SliceHeader` per frame.

Only headers are read (pixel data is deferred: its file offset and length are kept so the
uncompressed fast path can read it straight with numpy). Every check that can reject a file
without decoding it happens here, so a bad file becomes a :class:`~viewer.dicom.errors.FileError`
at scan time: missing pixel data, absurd sizes, pixel data shorter than the header promises.
"""

from __future__ import annotations

import functools
import math
import os
import struct
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.pixels import get_decoder
from pydicom.uid import UID

from viewer.dicom.deflate import deflated_offset, read_deflated
from viewer.dicom.errors import DicomFileError, NotDicomError
from viewer.dicom.fastheader import FastHeader, count_fragments, read_fast
from viewer.dicom.mosaic import CSA_IMAGE_HEADER, CsaError, mosaic_layout
from viewer.dicom.overlays import has_overlay_data
from viewer.dicom.plausible import (
    MAX_MODALITY_VALUE,
    MAX_POSITION_MM,
    MAX_SPACING_MM,
    orientation_problem,
    position_problem,
    show,
    spacing_ok,
)
from viewer.dicom.volume import VoiLut, WindowPreset

PIXEL_DATA = 0x7FE00010
FLOAT_PIXEL_DATA = 0x7FE00008
DOUBLE_PIXEL_DATA = 0x7FE00009
DEFER_SIZE = 16 * 1024
"""Elements larger than this stay on disk until used (pixel data, big private blobs)."""
MAX_FRAME_PIXELS = 1 << 30
"""No single frame may claim more pixels than this (about a 32768^2 image)."""
MAX_COMPRESSION_RATIO = 1000
"""A compressed file may not promise more than this many times its own size in decoded bytes."""
DICOMDIR_SOP_CLASS = "1.2.840.10008.1.3.10"
LITTLE_ENDIAN_NATIVE = {"1.2.840.10008.1.2", "1.2.840.10008.1.2.1"}
BIG_ENDIAN_NATIVE = {"1.2.840.10008.1.2.2"}


@dataclass
class PixelFormat:
    """How a file's pixels are stored (shared by all its frames)."""

    rows: int
    columns: int
    samples: int
    bits_allocated: int
    bits_stored: int
    signed: bool
    photometric: str
    planar: int
    transfer_syntax: str
    n_frames: int
    offset: int | None
    """File offset of the native pixel data value (fast path), or None."""
    length: int | None
    """Byte length of the pixel data element (None when undefined / encapsulated)."""
    float_data: bool = False
    has_modality_lut: bool = False
    bits_stored_given: bool = True
    """False when the header has no BitsStored (``bits_stored`` then repeats BitsAllocated)."""

    @property
    def ts_name(self) -> str:
        return UID(self.transfer_syntax).name

    @property
    def encapsulated(self) -> bool:
        return self.transfer_syntax not in LITTLE_ENDIAN_NATIVE | BIG_ENDIAN_NATIVE | {
            "1.2.840.10008.1.2.1.99"
        }

    @property
    def frame_bytes(self) -> int:
        """Bytes of one native frame as stored (YBR_FULL_422 keeps 2 of every 3 samples)."""
        bits = self.rows * self.columns * self.samples * self.bits_allocated
        if self.photometric == "YBR_FULL_422" and self.samples == 3:
            bits = bits * 2 // 3
        return (bits + 7) // 8

    def stored_bytes(self, n_frames: int) -> int:
        """Bytes of ``n_frames`` native frames as stored: 1-bit frames follow each other bit by bit, not each
        padded to a whole byte."""
        if self.bits_allocated % 8 == 0:
            return self.frame_bytes * n_frames
        return (self.rows * self.columns * self.samples * self.bits_allocated * n_frames + 7) // 8

    @property
    def fast_path(self) -> bool:
        """Native, one sample, byte-aligned integers, directly readable at a known offset."""
        return (
            self.offset is not None
            and self.transfer_syntax in LITTLE_ENDIAN_NATIVE | BIG_ENDIAN_NATIVE
            and self.samples == 1
            and self.bits_allocated in (8, 16, 32)
            and not self.float_data
            and not self.has_modality_lut
            and self.photometric in ("MONOCHROME1", "MONOCHROME2")
        )

    @property
    def numpy_dtype(self) -> np.dtype:
        """The stored sample type (1-bit data, e.g. a binary segmentation, unpacks to one byte a pixel)."""
        order = ">" if self.transfer_syntax in BIG_ENDIAN_NATIVE else "<"
        kind = "i" if self.signed else "u"
        return np.dtype(f"{order}{kind}{max(self.bits_allocated // 8, 1)}")

    @property
    def is_color(self) -> bool:
        return self.samples > 1 or self.photometric == "PALETTE COLOR"


@dataclass
class FileHeader:
    """One DICOM file: where it is, its series-level facts, and how its pixels are stored."""

    path: str
    size: int
    fmt: PixelFormat
    study_uid: str
    series_uid: str
    sop_class_uid: str
    modality: str
    facts: dict[str, Any] = field(default_factory=dict)
    """Series-level header facts used to fill :class:`SeriesInfo` (patient, study, device...)."""
    image_type: tuple[str, ...] = ()
    enhanced: bool = False
    has_overlays: bool = False
    """The file holds Overlay Data (60xx,3000): graphics to draw over its image (viewer.dicom.overlays)."""

    @property
    def is_localizer(self) -> bool:
        return "LOCALIZER" in self.image_type

    @property
    def is_mosaic(self) -> bool:
        return "MOSAIC" in self.image_type


@dataclass
class SliceHeader:
    """One 2D image: a single-frame file or one frame of a multi-frame file."""

    file: FileHeader
    frame: int | None
    """0-based frame index within a multi-frame file, None for single-frame files."""
    sop_uid: str
    position: np.ndarray | None
    orientation: np.ndarray | None
    """(6,) row direction (i increasing) then column direction (j increasing), LPS."""
    pixel_spacing: tuple[float, float] | None
    """(row spacing, column spacing) mm, as DICOM orders PixelSpacing."""
    spacing_source: str
    slope: float
    intercept: float
    windows: tuple[WindowPreset, ...]
    instance_number: int | None
    thickness: float | None
    split_key: tuple[Any, ...] = ()
    """Attributes that separate stacks sharing positions (acquisition, echo, temporal, stack id)."""
    tile: tuple[int, int, int, int] | None = None
    """Siemens mosaic tile: (first row, first column, rows, columns) in the stored image."""
    notes: tuple[str, ...] = ()
    """Header values ignored as implausible, with the reason (the stack lists them in its warnings)."""

    @property
    def rows(self) -> int:
        return self.tile[2] if self.tile is not None else self.file.fmt.rows

    @property
    def columns(self) -> int:
        return self.tile[3] if self.tile is not None else self.file.fmt.columns

    @property
    def native(self) -> bool:
        """Decodable on its own by the uncompressed fast path (mosaic tiles go through their file)."""
        return self.file.fmt.fast_path and self.tile is None


# ------------------------------------------------------------------------------------------------
# small typed accessors (tolerant of wrong VRs and malformed values)


def _get(ds: Dataset, keyword: str, default: Any = None) -> Any:
    try:
        value = ds.get(keyword, default)
    except Exception:  # a malformed value (wrong VR, bad number) reads as missing
        return default
    return default if value is None or value == "" else value


_MULTI = (list, tuple, pydicom.multival.MultiValue)


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, _MULTI) else [value]


def _floats(ds: Dataset | None, keyword: str, n: int) -> np.ndarray | None:
    if ds is None:
        return None
    value = _get(ds, keyword)
    if value is None:
        return None
    try:
        arr = np.array([float(v) for v in _as_list(value)], dtype=np.float64)
    except (TypeError, ValueError):
        return None
    if arr.size != n or not np.all(np.isfinite(arr)):
        return None
    return arr


def _float(ds: Dataset | None, keyword: str) -> float | None:
    if ds is None:
        return None
    value = _get(ds, keyword)
    if isinstance(value, _MULTI):
        value = value[0] if len(value) else None
    try:
        f = float(value) if value is not None else None
    except (TypeError, ValueError):
        return None
    return f if f is not None and math.isfinite(f) else None


def _int(ds: Dataset | None, keyword: str) -> int | None:
    f = _float(ds, keyword)
    return int(f) if f is not None and abs(f) < 2**53 else None


def _str(ds: Dataset, keyword: str) -> str:
    value = _get(ds, keyword, "")
    if isinstance(value, _MULTI):
        return "\\".join(str(v) for v in value)
    return str(value).strip()


def _item(ds: Dataset | None, keyword: str) -> Dataset | None:
    """First item of a sequence attribute, or None."""
    if ds is None:
        return None
    seq = _get(ds, keyword)
    try:
        return seq[0] if seq is not None and len(seq) else None
    except (TypeError, IndexError):
        return None


VOI_FUNCTIONS = ("LINEAR", "LINEAR_EXACT", "SIGMOID")


def _windows(ds: Dataset | None) -> tuple[WindowPreset, ...]:
    """The header's VOI: VOI LUT Sequence tables first (pydicom's ``apply_voi_lut`` prefers them), then
    the windows with their VOI LUT Function (LINEAR when absent; an unknown function reads as LINEAR)."""
    if ds is None:
        return ()
    presets = list(_voi_luts(ds))
    centers, widths = _get(ds, "WindowCenter"), _get(ds, "WindowWidth")
    if centers is None or widths is None:
        return tuple(presets)
    function = str(_get(ds, "VOILUTFunction", "LINEAR")).strip().upper()
    function = function if function in VOI_FUNCTIONS else "LINEAR"
    names = _as_list(_get(ds, "WindowCenterWidthExplanation", []))
    for n, (c, w) in enumerate(zip(_as_list(centers), _as_list(widths))):
        try:
            c, w = float(c), float(w)
        except (TypeError, ValueError):
            continue
        if math.isfinite(c) and math.isfinite(w) and w > 0:
            name = str(names[n]).strip() if n < len(names) and str(names[n]).strip() else f"Header {n + 1}"
            presets.append(WindowPreset(name, c, w, function))
    return tuple(presets)


def _voi_luts(ds: Dataset) -> list[WindowPreset]:
    """VOI LUT Sequence items as presets (malformed items are skipped: the windows still apply)."""
    out = []
    try:
        items = list(ds.get("VOILUTSequence") or [])
    except Exception:
        return []
    signed = _int(ds, "PixelRepresentation") == 1
    for n, item in enumerate(items):
        try:
            entries, first, bits = (int(v) for v in item.LUTDescriptor)
            entries = entries or 65536
            if signed and first > 32767:  # US or SS: the first value mapped follows the pixel representation
                first -= 65536
            elem = item["LUTData"]
            if elem.VR == "OW" or isinstance(elem.value, bytes):
                little = getattr(ds, "original_encoding", (None, True))[1] is not False
                data = np.frombuffer(elem.value, dtype="<u2" if little else ">u2")[:entries]
            else:
                data = np.asarray(_as_list(elem.value), dtype=np.int64)[:entries]
        except Exception:
            continue
        if len(data) == 0 or not (8 <= bits <= 16):
            continue
        name = str(item.get("LUTExplanation", "") or "").strip() or f"VOI LUT {n + 1}"
        out.append(WindowPreset(name, first + (len(data) - 1) / 2.0, float(len(data)), "LUT",
                                VoiLut(first, tuple(int(v) for v in data), bits)))
    return out


# ------------------------------------------------------------------------------------------------


def looks_like_dicom(path: str) -> bool:
    """Cheap sniff: a Part 10 preamble, or a raw dataset starting with a group 0002/0008 tag."""
    try:
        return _sniff(path)
    except OSError:
        return False


def _sniff(path: str) -> bool:
    """:func:`looks_like_dicom`, raising OSError when the file cannot be read."""
    with open(path, "rb") as f:
        head = f.read(132)
    if len(head) >= 132 and head[128:132] == b"DICM":
        return True
    if len(head) < 8:
        return False
    group_le = int.from_bytes(head[:2], "little")
    group_be = int.from_bytes(head[:2], "big")
    return group_le in (0x0002, 0x0008) or group_be in (0x0002, 0x0008)


def read_dataset(path: str, *, stop_before_pixels: bool = False) -> Dataset:
    """``dcmread`` with the engine's settings; raises NotDicomError / DicomFileError."""
    if not looks_like_dicom(path):
        raise NotDicomError(path)
    offset = deflated_offset(path)
    if offset is not None:  # inflated with a bound, never pydicom's unbounded zlib.decompress
        return read_deflated(path, offset, stop_before_pixels=stop_before_pixels)  # type: ignore[no-any-return]
    try:
        return pydicom.dcmread(path, defer_size=DEFER_SIZE, force=True, stop_before_pixels=stop_before_pixels)
    except InvalidDicomError as exc:
        raise NotDicomError(path) from exc
    except Exception as exc:  # truncated / garbage headers raise many types inside pydicom
        raise DicomFileError(path, f"unreadable DICOM header ({type(exc).__name__}: {exc})") from exc


def transfer_syntax_of(ds: Dataset) -> str:
    """The meta header's transfer syntax, else the encoding the dataset was read with."""
    meta = getattr(ds, "file_meta", None)
    ts = str(_get(meta, "TransferSyntaxUID", "")) if meta is not None else ""
    if ts:
        return ts
    implicit, little = ds.original_encoding
    return "1.2.840.10008.1.2" if implicit else ("1.2.840.10008.1.2.1" if little else "1.2.840.10008.1.2.2")


@functools.lru_cache(maxsize=64)
def decoder_problem(transfer_syntax: str) -> str | None:
    """Why pixels in ``transfer_syntax`` cannot be decoded here (naming what to install), or None."""
    name = UID(transfer_syntax).name
    try:
        decoder = get_decoder(transfer_syntax)
    except NotImplementedError:
        return f"unsupported compression: {name} (pydicom has no decoder for it)"
    if decoder.is_available:
        return None
    missing = decoder.missing_dependencies
    detail = "; ".join(missing) if isinstance(missing, (list, tuple)) else str(missing)
    return f"no decoder installed for {name}: install one of its plugins ({detail})"


def _pixel_format(ds: Dataset, path: str, size: int) -> PixelFormat:
    ts = transfer_syntax_of(ds)
    tags = set(ds.keys())
    pixel_tag = next((t for t in (PIXEL_DATA, FLOAT_PIXEL_DATA, DOUBLE_PIXEL_DATA) if t in tags), None)
    if len(ds) == 0:
        raise DicomFileError(path, "no DICOM data elements could be read (truncated or not a dataset)")
    if pixel_tag is None:
        sop = _str(ds, "SOPClassUID")
        kind = UID(sop).name if sop else "unknown SOP class"
        raise DicomFileError(path, f"no image pixel data ({kind})")
    rows, cols = _int(ds, "Rows"), _int(ds, "Columns")
    bits = _int(ds, "BitsAllocated")
    if not rows or not cols or rows < 0 or cols < 0:
        raise DicomFileError(path, f"invalid image size Rows={rows} Columns={cols}")
    if bits not in (1, 8, 16, 32, 64):
        raise DicomFileError(path, f"unsupported BitsAllocated={bits}")
    samples = _int(ds, "SamplesPerPixel") or 1
    n_frames = _int(ds, "NumberOfFrames") or 1
    if samples not in (1, 3) or n_frames < 1:
        raise DicomFileError(path, f"invalid SamplesPerPixel={samples} or NumberOfFrames={n_frames}")
    if rows * cols > MAX_FRAME_PIXELS:
        raise DicomFileError(path, f"absurd image size {rows}x{cols}")
    raw = ds.get_item(pixel_tag, keep_deferred=True)  # never load the pixels to learn where they are
    offset = getattr(raw, "value_tell", None)
    length = getattr(raw, "length", None)
    if length is None and raw is not None and getattr(raw, "value", None) is not None:
        length = len(raw.value)
    undefined = length is None or length == 0xFFFFFFFF
    fmt = PixelFormat(
        rows=rows,
        columns=cols,
        samples=samples,
        bits_allocated=bits,
        bits_stored=_int(ds, "BitsStored") or bits,
        signed=(_int(ds, "PixelRepresentation") or 0) == 1,
        photometric=_str(ds, "PhotometricInterpretation").upper() or "MONOCHROME2",
        planar=_int(ds, "PlanarConfiguration") or 0,
        transfer_syntax=ts,
        n_frames=n_frames,
        offset=None if undefined else offset,
        length=None if undefined else length,
        float_data=pixel_tag != PIXEL_DATA,
        has_modality_lut="ModalityLUTSequence" in ds,
        bits_stored_given=_int(ds, "BitsStored") is not None,
    )
    expected = fmt.stored_bytes(n_frames)
    if pixel_tag != PIXEL_DATA:
        expected = rows * cols * n_frames * (4 if pixel_tag == FLOAT_PIXEL_DATA else 8)
    deflated = fmt.transfer_syntax == "1.2.840.10008.1.2.1.99"
    if (not fmt.encapsulated or fmt.float_data) and not deflated:
        if expected > size:
            raise DicomFileError(
                path, f"header promises {expected} bytes of pixels ({rows}x{cols}x{n_frames}) "
                f"but the file holds only {size} bytes",
            )
        if fmt.length is not None and fmt.length < expected:
            raise DicomFileError(
                path, f"pixel data is shorter ({fmt.length} bytes) than the header promises ({expected} bytes)"
            )
        if fmt.offset is not None and fmt.length is not None and fmt.offset + min(fmt.length, expected) > size:
            raise DicomFileError(path, f"file is truncated: pixel data ends past the end of the file ({size} bytes)")
    else:
        if n_frames > max(size // 2, 1) or expected > MAX_COMPRESSION_RATIO * max(size, 1):
            raise DicomFileError(
                path, f"header promises {expected} decoded bytes ({rows}x{cols}x{n_frames}) from a "
                f"{size}-byte compressed file",
            )
        problem = decoder_problem(fmt.transfer_syntax) if fmt.encapsulated else None
        if problem:
            raise DicomFileError(path, problem)
        tell = getattr(raw, "value_tell", None)
        if tell is not None and tell >= size:
            raise DicomFileError(path, "file is truncated: no pixel data after the header")
        if tell is not None and length == 0xFFFFFFFF and not deflated:
            try:
                fragments = count_fragments(path, tell, size)
            except (ValueError, OSError) as exc:
                raise DicomFileError(path, str(exc)) from exc
            if fragments < n_frames:
                raise DicomFileError(path, f"{n_frames} frames promised but only {fragments} compressed fragments")
    if deflated or (fmt.encapsulated and not fmt.float_data):
        fmt.offset = fmt.length = None  # offsets only serve the native fast path
    return fmt


def _facts(ds: Dataset) -> dict[str, Any]:
    return {
        "description": _str(ds, "SeriesDescription"),
        "patient_name": _str(ds, "PatientName"),
        "patient_id": _str(ds, "PatientID"),
        "patient_sex": _str(ds, "PatientSex"),
        "patient_age": _str(ds, "PatientAge"),
        "study_date": _str(ds, "StudyDate"),
        "study_description": _str(ds, "StudyDescription"),
        "series_number": _int(ds, "SeriesNumber"),
        "manufacturer": _str(ds, "Manufacturer"),
        "model_name": _str(ds, "ManufacturerModelName"),
        "body_part": _str(ds, "BodyPartExamined"),
        "kvp": _float(ds, "KVP"),
        "frame_of_reference_uid": _str(ds, "FrameOfReferenceUID"),
        "protocol_name": _str(ds, "ProtocolName"),
        "patient_birth_date": _str(ds, "PatientBirthDate"),
        "anatomic_regions": _codes(ds, "AnatomicRegionSequence"),
        "patient_orientation": tuple(str(v).strip() for v in _as_list(_get(ds, "PatientOrientation", [])) if str(v).strip()),
        "pixel_aspect_ratio": _aspect_ratio(ds),
        "dose_units": _str(ds, "DoseUnits").upper() if _str(ds, "Modality").upper() == "RTDOSE" else "",
        "frame_time_ms": _frame_time_ms(ds),
        "presentation_lut_shape": _str(ds, "PresentationLUTShape").upper(),
    }


def _frame_time_ms(ds: Dataset) -> float | None:
    """A cine's time between frames in ms: Frame Time, else Cine Rate or Recommended Display Frame Rate (frames
    per second); None when none is given or plausible (1 ms .. 10 s)."""
    ms = _float(ds, "FrameTime")
    if ms is None or ms <= 0:
        rate = _float(ds, "CineRate") or _float(ds, "RecommendedDisplayFrameRate")
        ms = 1000.0 / rate if rate is not None and rate > 0 else None
    return ms if ms is not None and 1.0 <= ms <= 10_000.0 else None


MAX_ASPECT = 10.0


def _aspect_ratio(ds: Dataset) -> float | None:
    """PixelAspectRatio as row (vertical) over column (horizontal) pixel size; None when absent, square or
    implausible (not two positive integers within 1:10)."""
    v = _floats(ds, "PixelAspectRatio", 2)
    if v is None or not np.all(v > 0):
        return None
    ratio = float(v[0] / v[1])
    return ratio if ratio != 1.0 and 1 / MAX_ASPECT <= ratio <= MAX_ASPECT else None


def _codes(ds: Dataset, keyword: str) -> tuple[tuple[str, str, str], ...]:
    """(scheme, value, meaning) of each item of a code sequence (empty when absent or unreadable)."""
    out = []
    for item in _get(ds, keyword, []) if not isinstance(ds, FastHeader) else []:
        value = _str(item, "CodeValue") or _str(item, "LongCodeValue") or _str(item, "URNCodeValue")
        if value:
            out.append((_str(item, "CodingSchemeDesignator"), value, _str(item, "CodeMeaning")))
    return tuple(out)


US_REGIONS = "SequenceOfUltrasoundRegions"


def _raw(ds: Any, keyword: str) -> Any:
    """``keyword``'s value as stored: None when absent or empty, a marker string when it cannot be read."""
    if ds is None:
        return None
    try:
        if keyword not in ds:
            return None
        value = ds.get(keyword)
    except Exception as exc:
        return f"<unreadable: {type(exc).__name__}>"
    if value is None or (isinstance(value, (str, bytes, *_MULTI)) and len(value) == 0):
        return None
    return value


def _spacing(ds: Dataset | None, notes: list[str] | None = None) -> tuple[tuple[float, float] | None, str]:
    """(row, column) spacing mm and the attribute it came from; ultrasound region calibration last.
    Implausible values (not two finite spacings in (0, 1 m]) are skipped, with a note saying so."""
    for keyword in ("PixelSpacing", "ImagerPixelSpacing", "NominalScannedPixelSpacing"):
        v = _floats(ds, keyword, 2)
        if v is not None and spacing_ok(v):
            return (float(v[0]), float(v[1])), keyword
        raw = _raw(ds, keyword)
        if raw is not None and notes is not None and not (v is not None and np.all(v == 0)):
            notes.append(f"{keyword} ({show(raw)}) ignored: not two positive spacings up to "
                         f"{MAX_SPACING_MM / 1000:g} m")
    deltas = set()
    for region in _get(ds, US_REGIONS, []) if ds is not None and not isinstance(ds, FastHeader) else []:
        if _int(region, "PhysicalUnitsXDirection") == 3 and _int(region, "PhysicalUnitsYDirection") == 3:  # cm
            dx, dy = _float(region, "PhysicalDeltaX"), _float(region, "PhysicalDeltaY")
            if dx and dy and dx > 0 and dy > 0:
                deltas.add((round(dy * 10.0, 9), round(dx * 10.0, 9)))
    if len(deltas) == 1:  # every calibrated region agrees
        return deltas.pop(), US_REGIONS
    return None, ""


def _orientation(ds: Dataset | None, path: str) -> np.ndarray | None:
    """Unit row and column directions; None when absent; DicomFileError when present but unusable
    (not six finite numbers, zero, parallel, non-unit or non-perpendicular direction cosines)."""
    raw = _raw(ds, "ImageOrientationPatient")
    if raw is None:
        return None
    o = _floats(ds, "ImageOrientationPatient", 6)
    problem = "not six finite numbers" if o is None else orientation_problem(o)
    if problem or o is None:
        raise DicomFileError(path, f"unusable ImageOrientationPatient ({show(raw)}): {problem}")
    nr, nc = math.hypot(*o[:3].tolist()), math.hypot(*o[3:].tolist())
    return np.array([*(v / nr for v in o[:3].tolist()), *(v / nc for v in o[3:].tolist())])


def _position(ds: Dataset | None, notes: list[str]) -> np.ndarray | None:
    """ImagePositionPatient; None when absent or when not three finite, plausible coordinates (noted: the
    image is then shown on its own, without a patient position)."""
    raw = _raw(ds, "ImagePositionPatient")
    if raw is None:
        return None
    p = _floats(ds, "ImagePositionPatient", 3)
    problem = "not three finite numbers" if p is None else position_problem(p)
    if problem or p is None:
        notes.append(f"ImagePositionPatient ({show(raw)}) ignored: {problem}; image shown without patient position")
        return None
    return p


def _rescale(ds: Dataset | None, path: str, fmt: PixelFormat, notes: list[str],
             default: tuple[float, float]) -> tuple[float, float]:
    """(slope, intercept): unusable values (not finite, slope 0) fall back to ``default`` with a note; a rescale
    that takes the stored range beyond +-MAX_MODALITY_VALUE (float32 would hold infinities) refuses the file."""
    out = list(default)
    for n, keyword in enumerate(("RescaleSlope", "RescaleIntercept")):
        raw = _raw(ds, keyword)
        if raw is None:
            continue
        value = _float(ds, keyword)
        if value is None or (n == 0 and value == 0):
            notes.append(f"{keyword} ({show(raw)}) ignored: {'not a finite number' if value is None else 'zero'}; "
                         f"{default[n]:g} used")
            continue
        out[n] = value
    slope, intercept = out
    reach = abs(slope) * 2.0 ** min(max(fmt.bits_stored, 1), 64) + abs(intercept)
    if reach > MAX_MODALITY_VALUE:
        raise DicomFileError(path, f"RescaleSlope {slope:g} / RescaleIntercept {intercept:g} take the stored values "
                                   f"to +-{reach:.3g}, beyond {MAX_MODALITY_VALUE:g}: refused")
    return slope, intercept


def _dose_scaling(ds: Dataset, fmt: PixelFormat, notes: list[str]) -> float:
    """An RT dose grid's Dose Grid Scaling (stored value x scaling = dose in its Dose Units), else 1 (also when
    it would take the stored values beyond +-MAX_MODALITY_VALUE: the grid is still shown, in stored values)."""
    raw = _raw(ds, "DoseGridScaling")
    if raw is None or _str(ds, "Modality").upper() != "RTDOSE":
        return 1.0
    value = _float(ds, "DoseGridScaling")
    if value is None or value <= 0:
        notes.append(f"DoseGridScaling ({show(raw)}) ignored: not a positive number; stored values shown")
        return 1.0
    reach = value * 2.0 ** min(max(fmt.bits_stored, 1), 64)
    if reach > MAX_MODALITY_VALUE:
        notes.append(f"DoseGridScaling ({show(raw)}) ignored: takes the stored values to {reach:.3g}, beyond "
                     f"{MAX_MODALITY_VALUE:g}; stored values shown")
        return 1.0
    return value


def _length(ds: Dataset | None, keyword: str, notes: list[str], signed: bool = False) -> float | None:
    """A thickness or step in mm (sign kept when ``signed``); None when absent, zero or implausible (noted)."""
    raw = _raw(ds, keyword)
    if raw is None:
        return None
    f = _float(ds, keyword)
    if f is None or abs(f) > MAX_SPACING_MM or (f < 0 and not signed):
        notes.append(f"{keyword} ({show(raw)}) ignored: not a length up to {MAX_SPACING_MM / 1000:g} m")
        return None
    return f or None


def cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """3-vector cross product (``np.cross`` costs ~20x more for single vectors)."""
    return np.array([a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]])


def slice_normal(orientation: np.ndarray) -> np.ndarray:
    """Unit normal (row direction x column direction) of a (6,) orientation."""
    n = cross(orientation[:3], orientation[3:])
    return n / math.sqrt(float(n @ n))


def parse_header(
    path: str, ds: Dataset | None = None, series_facts: dict[tuple[str, str], dict[str, Any]] | None = None
) -> tuple[FileHeader, list[SliceHeader]]:
    """Read one file's header; raises NotDicomError (skip) or DicomFileError (report).

    ``series_facts``: a cache shared across one scan, so the descriptive series-level facts
    (patient, study, device) are decoded once per series rather than once per file.
    """
    path = str(path)
    try:
        size = os.path.getsize(path)
    except OSError as exc:
        raise DicomFileError(path, f"cannot read file ({exc.strerror})") from exc
    if size == 0:
        if os.path.splitext(path)[1].lower() in ("", ".dcm", ".dicom", ".ima", ".img"):
            raise DicomFileError(path, "empty file (0 bytes)")
        raise NotDicomError(path)
    if ds is None:
        try:
            dicom = _sniff(path)
        except OSError as exc:
            raise DicomFileError(path, f"cannot read file ({exc.strerror or type(exc).__name__})") from exc
        if not dicom:
            raise NotDicomError(path)
        ds = read_fast(path, size) or read_dataset(path)
        if isinstance(ds, FastHeader) and US_REGIONS in ds and _spacing(ds)[0] is None:
            ds = read_dataset(path)  # ultrasound calibration lives in a sequence the walker skips
        elif (isinstance(ds, FastHeader) and "AnatomicRegionSequence" in ds
              and (series_facts is None
                   or (_str(ds, "StudyInstanceUID"), _str(ds, "SeriesInstanceUID")) not in series_facts)):
            ds = read_dataset(path)  # the series' anatomic region codes: once per series
    try:
        return _parse(ds, path, size, series_facts if series_facts is not None else {})
    except (DicomFileError, NotDicomError):
        raise
    except Exception as exc:  # any malformed value not caught by the accessors
        raise DicomFileError(path, f"malformed header ({type(exc).__name__}: {exc})") from exc


def _parse(
    ds: Dataset, path: str, size: int, series_facts: dict[tuple[str, str], dict[str, Any]]
) -> tuple[FileHeader, list[SliceHeader]]:
    meta = getattr(ds, "file_meta", None)
    sop_class = _str(ds, "SOPClassUID") or (_str(meta, "MediaStorageSOPClassUID") if meta is not None else "")
    if sop_class == DICOMDIR_SOP_CLASS or "DirectoryRecordSequence" in ds:
        raise NotDicomError(path)  # a DICOMDIR index, not an image (scan() follows it separately)
    fmt = _pixel_format(ds, path, size)
    sop_uid = _str(ds, "SOPInstanceUID") or f"{os.path.abspath(path)}"
    series_uid = _str(ds, "SeriesInstanceUID") or f"no-series-uid:{os.path.abspath(path)}"
    study_uid = _str(ds, "StudyInstanceUID")
    facts = series_facts.get((study_uid, series_uid))
    if facts is None:
        facts = series_facts[(study_uid, series_uid)] = _facts(ds)
    header = FileHeader(
        path=path,
        size=size,
        fmt=fmt,
        study_uid=study_uid,
        series_uid=series_uid,
        sop_class_uid=sop_class,
        modality=_str(ds, "Modality"),
        facts=facts,
        image_type=tuple(s.strip().upper() for s in _str(ds, "ImageType").split("\\") if s.strip()),
        enhanced="PerFrameFunctionalGroupsSequence" in ds or "SharedFunctionalGroupsSequence" in ds,
        has_overlays=("OverlayData" in ds) if isinstance(ds, FastHeader) else has_overlay_data(ds.keys()),
    )
    notes: list[str] = []
    common: dict[str, Any] = dict(
        instance_number=_int(ds, "InstanceNumber"),
        thickness=_length(ds, "SliceThickness", notes),
    )
    slope, intercept = _rescale(ds, path, fmt, notes, (_dose_scaling(ds, fmt, notes), 0.0))
    intercept = 0.0 if intercept is None else intercept
    base_split = (_int(ds, "AcquisitionNumber"), _float(ds, "EchoNumbers"), _int(ds, "TemporalPositionIdentifier"))
    if header.enhanced:
        return header, _enhanced_frames(ds, header, sop_uid, slope, intercept, base_split)
    spacing, source = _spacing(ds, notes)
    position = _position(ds, notes)
    orientation = _orientation(ds, path)
    if orientation is None:
        position = None  # a position cannot be sorted along an unknown normal
    windows = _windows(ds)
    common["notes"] = tuple(notes)
    if header.is_mosaic and fmt.n_frames == 1 and fmt.samples == 1 and position is not None and orientation is not None:
        tiles = _mosaic_tiles(ds, header, sop_uid, position, orientation, spacing, source, slope, intercept, windows,
                              base_split, common)
        if tiles:
            return header, tiles
    if fmt.n_frames == 1:
        return header, [
            SliceHeader(header, None, sop_uid, position, orientation, spacing, source, slope, intercept,
                        windows, split_key=base_split, **common)
        ]
    # legacy multi-frame: positions from GridFrameOffsetVector (RT dose) or SpacingBetweenSlices
    positions: list[np.ndarray | None] = [None] * fmt.n_frames
    if position is not None and orientation is not None:
        normal = slice_normal(orientation)
        offsets = _floats(ds, "GridFrameOffsetVector", fmt.n_frames)
        if offsets is not None and float(np.max(np.abs(offsets))) > MAX_POSITION_MM:
            notes.append(f"GridFrameOffsetVector ignored: an offset lies beyond {MAX_POSITION_MM / 1000:g} m")
            offsets = None
        if offsets is None:
            step = _length(ds, "SpacingBetweenSlices", notes, signed=True) or common["thickness"]
            offsets = np.arange(fmt.n_frames) * step if step else None
        if offsets is not None:
            positions = [position + normal * float(o) for o in offsets]
        common["notes"] = tuple(notes)
    return header, [
        SliceHeader(header, f, sop_uid, positions[f], orientation if positions[f] is not None else None,
                    spacing, source, slope, intercept, windows, split_key=base_split, **common)
        for f in range(fmt.n_frames)
    ]


def _csa_bytes(ds: Any) -> bytes | None:
    if isinstance(ds, FastHeader):
        value = ds.get("CSAImageHeaderInfo")
    else:
        try:
            elem = ds.get(CSA_IMAGE_HEADER)
            value = elem.value if elem is not None else None
        except Exception:
            return None
    return bytes(value) if isinstance(value, (bytes, bytearray)) else None


def _mosaic_tiles(
    ds: Any, header: FileHeader, sop_uid: str, position: np.ndarray, orientation: np.ndarray,
    spacing: tuple[float, float] | None, source: str, slope: float, intercept: float,
    windows: tuple[WindowPreset, ...], split: tuple[Any, ...], common: dict[str, Any],
) -> list[SliceHeader]:
    """One slice per mosaic tile (see :mod:`viewer.dicom.mosaic`); [] when the mosaic cannot be unpacked."""
    csa = _csa_bytes(ds)
    if csa is None:
        return []
    try:
        layout = mosaic_layout(csa, header.fmt.rows, header.fmt.columns, orientation)
    except (CsaError, struct.error, UnicodeDecodeError):
        return []
    step = _length(ds, "SpacingBetweenSlices", [], signed=True) or common["thickness"] or 1.0
    positions = layout.tile_positions(position, orientation, spacing or (1.0, 1.0), abs(step))
    out = []
    for n, tile_position in enumerate(positions):
        r0, c0 = layout.tile_window(n)
        out.append(SliceHeader(header, None, sop_uid, tile_position, orientation, spacing, source, slope, intercept,
                               windows, split_key=split, tile=(r0, c0, layout.tile_rows, layout.tile_cols), **common))
    return out


def _enhanced_frames(
    ds: Dataset, header: FileHeader, sop_uid: str, slope: float, intercept: float, base_split: tuple[Any, ...]
) -> list[SliceHeader]:
    """Frames of an Enhanced CT/MR (per-frame functional groups, shared groups as fallback)."""
    shared = _item(ds, "SharedFunctionalGroupsSequence")
    per_frame = _get(ds, "PerFrameFunctionalGroupsSequence") or []
    n = header.fmt.n_frames
    if 0 < len(per_frame) < n:
        raise DicomFileError(header.path, f"{len(per_frame)} per-frame functional groups for {n} frames")

    def group(frame: Dataset | None, keyword: str) -> Dataset | None:
        return _item(frame, keyword) or _item(shared, keyword)

    slices = []
    for f in range(n):
        fg = per_frame[f] if per_frame else None  # extra groups beyond NumberOfFrames are ignored
        notes: list[str] = []
        pos = _position(group(fg, "PlanePositionSequence"), notes)
        ori = _orientation(group(fg, "PlaneOrientationSequence"), header.path)
        measures = group(fg, "PixelMeasuresSequence")
        spacing, source = _spacing(measures, notes)
        transform = group(fg, "PixelValueTransformationSequence")
        s, i = _rescale(transform, header.path, header.fmt, notes, (slope, intercept))
        content = group(fg, "FrameContentSequence")
        split = base_split + (
            _str(content, "StackID") if content is not None else "",
            _int(content, "TemporalPositionIndex"),
            _float(group(fg, "MREchoSequence"), "EffectiveEchoTime"),
        )
        slices.append(
            SliceHeader(
                header, f, sop_uid, pos, ori if pos is not None else None, spacing, source,
                s, i,
                _windows(group(fg, "FrameVOILUTSequence")) or _windows(ds),
                instance_number=_int(content, "InStackPositionNumber"),
                thickness=_length(measures, "SliceThickness", notes),
                split_key=split,
                notes=tuple(notes),
            )
        )
    return slices
