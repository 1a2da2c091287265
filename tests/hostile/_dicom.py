"""Small DICOM writers the hostile cases build on (a good series whose truth is known, rewrites)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

CT_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
AXIAL = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)


def slice_dataset(
    k: int,
    *,
    rows: int = 16,
    cols: int = 16,
    series_uid: str,
    study_uid: str,
    frame_uid: str,
    step: float = 2.0,
    orientation: Sequence[float] = AXIAL,
) -> Dataset:
    """Slice ``k`` of an axial CT series (values ``k * 100 + j - i``)."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = CT_STORAGE
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = CT_STORAGE
    ds.SOPInstanceUID = generate_uid()
    ds.Modality = "CT"
    ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study_uid, series_uid, frame_uid
    ds.PatientName, ds.PatientID = "Hostile^Case", "H1"
    ds.SeriesNumber, ds.InstanceNumber = 1, k + 1
    ds.StudyDate, ds.StudyTime, ds.StudyID, ds.AccessionNumber = "20260101", "120000", "1", "H1"
    ds.ImageType = "ORIGINAL\\PRIMARY\\AXIAL"
    ds.ImagePositionPatient = [-10.0, -12.0, round(k * step, 6)]
    ds.ImageOrientationPatient = [float(v) for v in orientation]
    ds.PixelSpacing = [0.8, 0.8]
    ds.SliceThickness = step
    ds.RescaleSlope, ds.RescaleIntercept = 1, -1024
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.Rows, ds.Columns = rows, cols
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
    j, i = np.mgrid[0:rows, 0:cols]
    ds.PixelData = (k * 100 + j - i).astype("<i2").tobytes()
    return ds


def good_series(folder: Path, n: int = 4, prefix: str = "good", **kw: object) -> list[Path]:
    """Write an ``n``-slice axial CT series into ``folder``; returns the files in slice order."""
    folder.mkdir(parents=True, exist_ok=True)
    series_uid, study_uid, frame_uid = generate_uid(), generate_uid(), generate_uid()
    files = []
    for k in range(n):
        ds = slice_dataset(k, series_uid=series_uid, study_uid=study_uid, frame_uid=frame_uid, **kw)  # type: ignore[arg-type]
        path = folder / f"{prefix}_{k:03d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        files.append(path)
    return files


def rewrite(src: Path, dst: Path, **changes: object) -> Path:
    """Copy ``src`` to ``dst`` with some attributes replaced (new SOP Instance UID, own series)."""
    ds = pydicom.dcmread(src)
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    for keyword, value in changes.items():
        setattr(ds, keyword, value)
    ds.save_as(dst, enforce_file_format=True)
    return dst


def corrupt_j2k(dst: Path) -> Path:
    """pydicom's JPEG 2000 MR image with its codestream garbled: the SIZ segment claims three components.

    OpenJPEG then decodes three planes into a one-sample image (an error), and python-gdcm aborts the whole
    process (SIGABRT from a failed C++ assertion), which is what pydicom's default plugin choice reaches."""
    from pydicom.data import get_testdata_file
    from pydicom.encaps import encapsulate, get_frame

    src = get_testdata_file("MR_small_jp2klossless.dcm")
    if src is None:
        raise FileNotFoundError("MR_small_jp2klossless.dcm")
    ds = pydicom.dcmread(src)
    stream = bytearray(get_frame(ds.PixelData, 0, number_of_frames=1))
    assert stream[:4] == b"\xff\x4f\xff\x51", "expected a raw J2K codestream (SOC, SIZ)"
    lsiz = int.from_bytes(stream[4:6], "big")
    csiz_at = 4 + 2 + 2 + 32  # SOC, SIZ marker, Lsiz, Rsiz, then eight 4-byte sizes
    component = stream[csiz_at + 2:csiz_at + 5]
    stream[csiz_at:csiz_at + 2] = (3).to_bytes(2, "big")
    stream[4:6] = (lsiz + 6).to_bytes(2, "big")
    stream[csiz_at + 5:csiz_at + 5] = component + component
    ds.PixelData = encapsulate([bytes(stream)])
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.save_as(dst)
    return dst


def set_raw(path: Path, **values: bytes) -> Path:
    """Write DS attributes byte for byte (``Infinity``, ``NaN``, ``1e300``: values pydicom would refuse to write)."""
    from pydicom.dataelem import RawDataElement
    from pydicom.tag import Tag

    ds = pydicom.dcmread(path)
    for keyword, raw in values.items():
        raw = raw + b" " * (len(raw) % 2)
        tag = Tag(keyword)
        ds[tag] = RawDataElement(tag, "DS", len(raw), raw, 0, False, True)
    ds.save_as(path)
    return path


def extend_series(files: list[Path], folder: Path, n: int, prefix: str = "bad", **changes: object) -> list[Path]:
    """``n`` more slices of the series of ``files`` (beyond its last position), with ``changes`` applied."""
    last = pydicom.dcmread(files[-1], stop_before_pixels=True)
    step = float(last.SliceThickness)
    out = []
    for k in range(n):
        position = [float(v) for v in last.ImagePositionPatient]
        position[2] += step * (k + 1)
        out.append(rewrite(files[-1], folder / f"{prefix}_{k}.dcm", ImagePositionPatient=position,
                           InstanceNumber=len(files) + k + 1, **changes))
    return out


WRITE_ONLY_SYSFS = ("/sys/bus/pci/rescan", "/sys/devices/pci*/*/rescan", "/sys/class/zram-control/hot_remove",
                    "/sys/kernel/mm/*/*/compact", "/sys/power/wakeup_count")


def unreadable_file(path: Path, like: Path) -> Path | None:
    """Put at ``path`` a regular file (size > 0) whose read fails: a mode-000 copy of ``like`` for a normal
    user; for root (who reads any mode) a symbolic link to a write-only sysfs attribute, which refuses
    reads even to root. None when neither is possible here."""
    import glob
    import os

    if os.geteuid() != 0:
        path.write_bytes(like.read_bytes())
        path.chmod(0)
        return path
    for pattern in WRITE_ONLY_SYSFS:
        for candidate in sorted(glob.glob(pattern)):
            try:
                with open(candidate, "rb") as f:
                    f.read(1)
            except PermissionError:
                if os.path.getsize(candidate) > 0:
                    path.symlink_to(candidate)
                    return path
            except OSError:
                continue
    return None


def deflate_bomb(path: Path, inflated: int = 1 << 30, where: str = "private", long_meta: bool = False) -> Path:
    """A Deflated Explicit VR Little Endian 16x16 CT slice whose dataset inflates to about ``inflated`` bytes
    (deflate reaches ~1000:1 on zeros, so 1 GiB fits in about 1 MB). ``where``: ``private`` puts the zeros in
    a private OB element before the pixel data (the header itself explodes); ``pixels`` makes the pixel data
    element that long (the header is small and honest about 16x16 pixels). ``long_meta``: a 64 KiB file meta
    header."""
    import struct
    import zlib

    from pydicom.filebase import DicomFileLike
    from pydicom.filewriter import write_file_meta_info
    from pydicom.uid import DeflatedExplicitVRLittleEndian

    ds = slice_dataset(0, series_uid=generate_uid(), study_uid=generate_uid(), frame_uid=generate_uid())
    plain = Path(str(path) + ".plain")
    ds.save_as(plain, enforce_file_format=True)
    raw = plain.read_bytes()
    meta = pydicom.filereader.read_file_meta_info(plain)
    plain.unlink()
    pixel_at = raw.rindex(b"\xe0\x7f\x10\x00OW")
    meta_end = 132 + 12 + struct.unpack_from("<I", raw, 132 + 8)[0]  # (0002,0000) group length
    header, pixels = raw[meta_end:pixel_at], raw[pixel_at:]
    squash = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)

    def zeros(n: int) -> bytes:
        """n zeros compressed: one 1 MiB block after a full flush (which resets the dictionary), repeated."""
        block = squash.compress(bytes(1 << 20)) + squash.flush(zlib.Z_FULL_FLUSH)
        return block * (n >> 20)

    with open(path, "wb") as out:
        out.write(b"\0" * 128 + b"DICM")
        meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
        if long_meta:  # the dataset starts 64 KiB in: past any fixed-size peek at the meta header
            meta.PrivateInformationCreatorUID = "1.2.826.0.1.3680043.10.1"
            meta.PrivateInformation = b"\0" * 65536
        write_file_meta_info(DicomFileLike(out), meta, enforce_standard=True)
        out.write(squash.compress(header))
        if where == "private":
            creator = b"RADSCOPE"
            out.write(squash.compress(struct.pack("<HH2sH", 0x7FDF, 0x0010, b"LO", len(creator)) + creator))
            out.write(squash.compress(struct.pack("<HH2sHI", 0x7FDF, 0x1010, b"OB", 0, inflated)))
            out.write(squash.flush(zlib.Z_FULL_FLUSH) + zeros(inflated))
            out.write(squash.compress(pixels))
        else:
            out.write(squash.compress(struct.pack("<HH2sHI", 0x7FE0, 0x0010, b"OW", 0, inflated)))
            out.write(squash.flush(zlib.Z_FULL_FLUSH) + zeros(inflated))
        out.write(squash.flush())
    return path


def corrupt_duplicate(src: Path, dst: Path) -> Path:
    """A second copy of slice ``src`` (same series and position, new SOP Instance UID) whose pixel data is
    RLE that cannot decode: the header is fine, so only decoding finds out."""
    from pydicom.encaps import encapsulate
    from pydicom.uid import RLELossless

    ds = pydicom.dcmread(src)
    ds.file_meta.TransferSyntaxUID = RLELossless
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.PixelData = encapsulate([b"\x01\x00\x00\x00" + b"\x40\x00\x00\x00" + b"\x00" * 56 + b"\x05" + b"\x11" * 6])
    ds["PixelData"].VR = "OB"
    ds.save_as(dst)
    return dst


def enhanced_ct(path: Path, n: int = 4, rows: int = 16, cols: int = 16,
                orientation: Sequence[float] = AXIAL, positions: Sequence[Sequence[float]] | None = None) -> Path:
    """A small Enhanced CT Image Storage file: shared orientation and pixel measures, a position per frame."""
    from pydicom.sequence import Sequence as DicomSequence

    ds = slice_dataset(0, rows=rows, cols=cols, series_uid=generate_uid(), study_uid=generate_uid(),
                       frame_uid=generate_uid())
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.2.1"
    for keyword in ("ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing", "SliceThickness",
                    "RescaleSlope", "RescaleIntercept"):
        delattr(ds, keyword)
    ds.NumberOfFrames = n
    shared = Dataset()
    orient, measures, transform = Dataset(), Dataset(), Dataset()
    orient.ImageOrientationPatient = [float(v) for v in orientation]
    measures.PixelSpacing, measures.SliceThickness = [0.8, 0.8], 2.0
    transform.RescaleSlope, transform.RescaleIntercept, transform.RescaleType = 1, -1024, "HU"
    shared.PlaneOrientationSequence = DicomSequence([orient])
    shared.PixelMeasuresSequence = DicomSequence([measures])
    shared.PixelValueTransformationSequence = DicomSequence([transform])
    ds.SharedFunctionalGroupsSequence = DicomSequence([shared])
    frames = []
    for k in range(n):
        item, plane = Dataset(), Dataset()
        plane.ImagePositionPatient = list(positions[k]) if positions is not None else [-10.0, -12.0, 2.0 * k]
        item.PlanePositionSequence = DicomSequence([plane])
        frames.append(item)
    ds.PerFrameFunctionalGroupsSequence = DicomSequence(frames)
    j, i = np.mgrid[0:rows, 0:cols]
    ds.PixelData = np.stack([(k * 100 + j - i) for k in range(n)]).astype("<i2").tobytes()
    ds.save_as(path, enforce_file_format=True)
    return path


def unreadable_folder(path: Path) -> Path | None:
    """A folder at ``path`` that cannot be listed: mode 000 for a normal user; for root a symbolic link to a
    /proc folder the kernel refuses to list even to root (without CAP_SYS_ADMIN). None when neither works."""
    import os

    if os.geteuid() != 0:
        path.mkdir()
        path.chmod(0)
        return path
    for candidate in ("/proc/1/map_files", "/proc/1/root"):
        try:
            os.listdir(candidate)
        except PermissionError:
            path.symlink_to(candidate, target_is_directory=True)
            return path
        except OSError:
            continue
    return None


def deeply_nested(src: Path, dst: Path, depth: int = 5000) -> Path:
    """``src`` with a private sequence nested ``depth`` levels deep (undefined lengths) before the patient
    module, written byte for byte (new SOP Instance UID first)."""
    import struct

    rewrite(src, dst)
    raw = dst.read_bytes()
    at = raw.index(b"\x10\x00\x10\x00PN")  # (0010,0010) Patient's Name: private group 0009 goes before it
    creator = struct.pack("<HH2sH", 0x0009, 0x0010, b"LO", 8) + b"RADSCOPE"
    opening = struct.pack("<HH2sHI", 0x0009, 0x1010, b"SQ", 0, 0xFFFFFFFF) + struct.pack("<HHI", 0xFFFE, 0xE000, 0xFFFFFFFF)
    closing = struct.pack("<HHI", 0xFFFE, 0xE00D, 0) + struct.pack("<HHI", 0xFFFE, 0xE0DD, 0)
    dst.write_bytes(raw[:at] + creator + opening * depth + closing * depth + raw[at:])
    return dst
