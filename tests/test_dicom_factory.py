"""Writers of small DICOM series whose truth is known (used by the other test_dicom_* modules).

``write_series`` writes single-frame CT/MR slices at exact positions with shuffled file names and
instance numbers; ``write_enhanced`` writes an Enhanced MR multi-frame file with frames in any order
and per-frame rescale. The tests at the bottom check the writers themselves against pydicom.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from collections.abc import Sequence

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

CT_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
ENHANCED_MR_STORAGE = "1.2.840.10008.5.1.4.1.1.4.1"
AXIAL = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
SAGITTAL = (0.0, 1.0, 0.0, 0.0, 0.0, -1.0)
CORONAL = (1.0, 0.0, 0.0, 0.0, 0.0, -1.0)


@dataclass
class SeriesTruth:
    """What was written: stored values in slice order (sorted along the normal) and geometry."""

    folder: Path
    files: list[Path]
    stored: np.ndarray  # (k, j, i) int16 in sorted order
    values: np.ndarray  # float32 modality values (stored * slope + intercept)
    positions: np.ndarray  # (k, 3) LPS IPP in sorted order
    orientation: np.ndarray  # (6,)
    pixel_spacing: tuple[float, float]  # (row, col)
    series_uid: str
    study_uid: str
    sop_uids: list[str]  # in sorted order


def _base(modality: str, sop_class: str, study_uid: str, series_uid: str) -> Dataset:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = sop_class
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = sop_class
    ds.Modality = modality
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    ds.FrameOfReferenceUID = generate_uid()
    ds.PatientName = "Test^Phantom"
    ds.PatientID = "T1"
    ds.SeriesDescription = f"{modality} test series"
    ds.SeriesNumber = 3
    ds.StudyDate, ds.StudyTime, ds.StudyID, ds.AccessionNumber = "20260102", "101500", "1", "A1"
    return ds


def _pixels(ds: Dataset, arr: np.ndarray) -> None:
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = arr.shape[-2:]
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 1
    ds.PixelData = np.ascontiguousarray(arr, dtype="<i2").tobytes()


def pattern(k: int, rows: int, cols: int, seed: int = 0) -> np.ndarray:
    """A slice pattern that differs per slice, row and column (so any mix-up shows)."""
    rng = np.random.default_rng(seed + k)
    j, i = np.mgrid[0:rows, 0:cols]
    return (k * 100 + j * 7 - i * 3 + rng.integers(-5, 5, (rows, cols))).astype(np.int16)


def write_series(
    folder: Path,
    *,
    n: int = 6,
    rows: int = 12,
    cols: int = 10,
    pixel_spacing: tuple[float, float] = (0.7, 0.9),
    step: float = 2.5,
    orientation: Sequence[float] = AXIAL,
    origin: Sequence[float] = (-40.0, -30.0, 10.0),
    offsets: Sequence[float] | None = None,
    slope: float = 1.0,
    intercept: float = -1024.0,
    modality: str = "CT",
    series_uid: str | None = None,
    study_uid: str | None = None,
    seed: int = 0,
    shuffle: bool = True,
    image_type: str = "ORIGINAL\\PRIMARY\\AXIAL",
    tilt_shift: Sequence[float] = (0.0, 0.0, 0.0),
    extra: dict[str, object] | None = None,
    prefix: str = "img",
) -> SeriesTruth:
    """Write ``n`` slices at ``origin + normal * offsets[k] + tilt_shift * k``; shuffled names and numbers."""
    folder.mkdir(parents=True, exist_ok=True)
    study_uid = study_uid or generate_uid()
    series_uid = series_uid or generate_uid()
    o = np.asarray(orientation, dtype=float)
    normal = np.cross(o[:3], o[3:])
    offs = np.arange(n) * step if offsets is None else np.asarray(offsets, dtype=float)
    positions = np.asarray(origin) + offs[:, None] * normal + np.arange(len(offs))[:, None] * np.asarray(tilt_shift)
    rng = np.random.default_rng(seed)
    write_order = rng.permutation(len(offs)) if shuffle else np.arange(len(offs))
    stored = np.stack([pattern(k, rows, cols, seed) for k in range(len(offs))])
    files, sops = [], []
    for k in range(len(offs)):
        ds = _base(modality, CT_STORAGE, study_uid, series_uid)
        ds.SOPInstanceUID = generate_uid()
        ds.ImageType = image_type
        ds.InstanceNumber = int(write_order[k]) + 1 if shuffle else k + 1
        ds.ImagePositionPatient = [round(float(v), 6) for v in positions[k]]
        ds.ImageOrientationPatient = [float(v) for v in o]
        ds.PixelSpacing = list(pixel_spacing)
        ds.SliceThickness = abs(step)
        ds.RescaleSlope = slope
        ds.RescaleIntercept = intercept
        ds.WindowCenter = [40, -600]
        ds.WindowWidth = [400, 1500]
        ds.WindowCenterWidthExplanation = ["SOFT", "LUNG"]
        for keyword, value in (extra or {}).items():
            setattr(ds, keyword, value)
        _pixels(ds, stored[k])
        name = folder / f"{prefix}_{int(write_order[k]) if shuffle else k:04d}.dcm"
        ds.save_as(name, enforce_file_format=True)
        files.append(name)
        sops.append(ds.SOPInstanceUID)
    sign = np.argsort(positions @ normal, kind="stable")
    return SeriesTruth(
        folder, [files[s] for s in sign], stored[sign], (stored[sign] * np.float32(slope) + np.float32(intercept)),
        positions[sign], o, pixel_spacing, series_uid, study_uid, [sops[s] for s in sign],
    )


def write_enhanced(
    path: Path,
    *,
    n: int = 5,
    rows: int = 8,
    cols: int = 9,
    pixel_spacing: tuple[float, float] = (1.1, 0.8),
    step: float = 3.0,
    orientation: Sequence[float] = CORONAL,
    origin: Sequence[float] = (5.0, 20.0, -7.0),
    seed: int = 4,
) -> SeriesTruth:
    """An Enhanced MR file with frames stored in shuffled order and a different rescale per frame."""
    path.parent.mkdir(parents=True, exist_ok=True)
    o = np.asarray(orientation, dtype=float)
    normal = np.cross(o[:3], o[3:])
    positions = np.asarray(origin) + (np.arange(n) * step)[:, None] * normal
    stored = np.stack([pattern(k, rows, cols, seed) for k in range(n)])
    slopes = 0.5 + 0.25 * np.arange(n)
    intercepts = -10.0 * np.arange(n)
    order = np.random.default_rng(seed).permutation(n)  # frame f holds slice order[f]
    ds = _base("MR", ENHANCED_MR_STORAGE, generate_uid(), generate_uid())
    ds.SOPInstanceUID = generate_uid()
    ds.NumberOfFrames = n
    ds.ImageType = "ORIGINAL\\PRIMARY\\M\\NONE"
    shared = Dataset()
    po = Dataset()
    po.ImageOrientationPatient = [float(v) for v in o]
    pm = Dataset()
    pm.PixelSpacing = list(pixel_spacing)
    pm.SliceThickness = step
    shared.PlaneOrientationSequence = DicomSequence([po])
    shared.PixelMeasuresSequence = DicomSequence([pm])
    ds.SharedFunctionalGroupsSequence = DicomSequence([shared])
    frames = []
    for f in range(n):
        k = int(order[f])
        fg = Dataset()
        pp = Dataset()
        pp.ImagePositionPatient = [float(v) for v in positions[k]]
        pvt = Dataset()
        pvt.RescaleSlope = float(slopes[k])
        pvt.RescaleIntercept = float(intercepts[k])
        pvt.RescaleType = "US"
        fg.PlanePositionSequence = DicomSequence([pp])
        fg.PixelValueTransformationSequence = DicomSequence([pvt])
        frames.append(fg)
    ds.PerFrameFunctionalGroupsSequence = DicomSequence(frames)
    _pixels(ds, stored[order])
    ds.save_as(path, enforce_file_format=True)
    values = (stored * slopes[:, None, None] + intercepts[:, None, None]).astype(np.float32)
    return SeriesTruth(path.parent, [path] * n, stored, values, positions, o, pixel_spacing,
                       ds.SeriesInstanceUID, ds.StudyInstanceUID, [ds.SOPInstanceUID] * n)


# -- the writers themselves ------------------------------------------------------------------------


def test_write_series_round_trips_through_pydicom(tmp_path: Path) -> None:
    truth = write_series(tmp_path, n=4, slope=2.0, intercept=-3.0)
    for k, f in enumerate(truth.files):
        ds = pydicom.dcmread(f)
        assert np.allclose(ds.ImagePositionPatient, truth.positions[k])
        assert np.array_equal(ds.pixel_array, truth.stored[k])
    assert np.all(np.diff(truth.positions[:, 2]) > 0)


def test_write_enhanced_stores_frames_shuffled(tmp_path: Path) -> None:
    truth = write_enhanced(tmp_path / "e.dcm", n=5)
    ds = pydicom.dcmread(truth.files[0])
    stored = ds.pixel_array
    pos = [list(g.PlanePositionSequence[0].ImagePositionPatient) for g in ds.PerFrameFunctionalGroupsSequence]
    for f in range(5):
        k = int(np.argmin(np.linalg.norm(truth.positions - np.asarray(pos[f]), axis=1)))
        assert np.array_equal(stored[f], truth.stored[k])
    assert not np.array_equal(stored, truth.stored)  # really shuffled
