"""Write synthetic chest studies as DICOM, with the ground truth a reader must reproduce.

The phantom (:mod:`phantom`) lives in its own frame whose axes are LPS; here it is cut into slices
of any orientation (axial, coronal, sagittal, oblique), stored as CT Image Storage files (one per
slice) or one Enhanced CT multi-frame object, with deterministic UIDs, and every writer returns
what reading the files back must give: file order, geometry (ITK convention, as
:class:`viewer.dicom.volume.Volume`), HU values after storage quantisation, nodule masks and the
nodules' LPS centres, all in DESIGN slice order (increasing position along row x column).

``demo_study_dir()`` generates (once) the bundled demo study: a chest CT plus a radiograph.
"""

from __future__ import annotations

import datetime
import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from collections.abc import Callable, Sequence

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.sr.codedict import Code, codes
from pydicom.valuerep import DSfloat
from pydicom.uid import (
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGLSLossless,
    RLELossless,
    generate_uid,
)

from phantom import ChestParams, NoduleSpec, Phantom, make_chest_ct
from phantom.radiograph import Radiograph, make_chest_radiograph

if TYPE_CHECKING:
    from viewer.dicom.volume import Volume

CT_IMAGE_STORAGE = UID("1.2.840.10008.5.1.4.1.1.2")
ENHANCED_CT_IMAGE_STORAGE = UID("1.2.840.10008.5.1.4.1.1.2.1")
CR_IMAGE_STORAGE = UID("1.2.840.10008.5.1.4.1.1.1")
DX_IMAGE_STORAGE = UID("1.2.840.10008.5.1.4.1.1.1.1")  # For Presentation
CHEST_REGION: Code = codes.cid4031.Chest  # Anatomic Region Sequence of the radiographs
PA_VIEW: Code = codes.cid4010.PosteroAnterior  # View Code Sequence (View Position PA)
IEC_BODY_PHANTOM = Code("113691", "DCM", "IEC Body Dosimetry Phantom")  # CID 4052, for CTDIvol

Compression = Literal["rle", "jpeg-ls", "jpeg2000", "deflate", "implicit", "big-endian"] | None
TRANSFER_SYNTAXES: dict[str | None, UID] = {
    None: ExplicitVRLittleEndian,
    "explicit": ExplicitVRLittleEndian,
    "implicit": ImplicitVRLittleEndian,
    "big-endian": ExplicitVRBigEndian,
    "deflate": DeflatedExplicitVRLittleEndian,
    "rle": RLELossless,
    "jpeg-ls": JPEGLSLossless,
    "jpeg2000": JPEG2000Lossless,
}
ENCAPSULATED = {"rle", "jpeg-ls", "jpeg2000"}

# Slice axes (column direction i, row direction j) in the phantom frame (= LPS axes) per orientation.
ORIENTATIONS: dict[str, tuple[tuple[float, float, float], tuple[float, float, float]]] = {
    "axial": ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0)),
    "coronal": ((1.0, 0.0, 0.0), (0.0, 0.0, -1.0)),
    "sagittal": ((0.0, 1.0, 0.0), (0.0, 0.0, -1.0)),
}

DEMO_VERSION = "demo-study-v1"
DEMO_REVISION = 9
"""Bumped whenever the generator's output changes; a cached study of another revision is rebuilt."""
DEMO_SEED = 20260527


# -- truth types -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class NoduleTruth:
    """A nodule as a reader of the written series must find it."""

    kind: str
    center_lps: tuple[float, float, float]
    center_index: tuple[float, float, float]
    """Continuous (k, j, i) index in the written volume (DESIGN slice order)."""
    diameter_mm: float
    hu: float
    juxtapleural: bool

    @property
    def slice_index(self) -> int:
        return int(round(self.center_index[0]))


@dataclass
class SeriesTruth:
    """What reading a written CT series back must give (DESIGN slice order throughout)."""

    paths: list[Path]
    """One file per slice in slice order (a multi-frame object: one path)."""
    origin: np.ndarray
    spacing: np.ndarray
    """(x, y, z) = (column step, row step, slice step) mm."""
    direction: np.ndarray
    """3x3, columns = unit vectors of i, j, k in LPS."""
    hu: np.ndarray
    """float32 (k, j, i): the stored values through the modality LUT."""
    nodule_mask: np.ndarray
    nodules: list[NoduleTruth]
    study_uid: str
    series_uid: str
    frame_of_reference_uid: str
    sop_instance_uids: list[str]
    frame_numbers: list[int] = field(default_factory=list)
    """Multi-frame: the 1-based frame number holding each slice (slice order)."""
    missing: np.ndarray | None = None
    """bool (k,): slices left out of the written series (``write_ct_series(missing=...)``); their
    ``hu`` is what the phantom holds there, their SOP Instance UID is ``""``."""

    @property
    def shape(self) -> tuple[int, int, int]:
        k, j, i = self.hu.shape
        return int(k), int(j), int(i)

    @property
    def affine(self) -> np.ndarray:
        """4x4 from (i, j, k, 1) to LPS (x, y, z, 1)."""
        a = np.eye(4)
        a[:3, :3] = self.direction * self.spacing[None, :]
        a[:3, 3] = self.origin
        return a

    def index_to_lps(self, ijk: Sequence[float] | np.ndarray) -> np.ndarray:
        return self.origin + (np.asarray(ijk, dtype=np.float64) * self.spacing) @ self.direction.T

    def lps_to_index(self, xyz: Sequence[float] | np.ndarray) -> np.ndarray:
        """Continuous (i, j, k) of LPS points."""
        return ((np.asarray(xyz, dtype=np.float64) - self.origin) @ self.direction) / self.spacing

    def to_volume(self) -> Volume:
        """The :class:`~viewer.dicom.volume.Volume` a reader must produce (values, geometry, UIDs)."""
        from viewer.dicom.volume import SeriesInfo, Volume

        return Volume(array=self.hu.copy(), origin=self.origin.copy(), spacing=self.spacing.copy(),
                      direction=self.direction.copy(), sop_instance_uids=list(self.sop_instance_uids),
                      info=SeriesInfo(study_uid=self.study_uid, series_uid=self.series_uid, modality="CT",
                                      frame_of_reference_uid=self.frame_of_reference_uid),
                      source_files=[str(p) for p in self.paths] if len(self.paths) == self.shape[0] else [],
                      frame_numbers=list(self.frame_numbers) or [None] * self.shape[0], missing=self.missing)


@dataclass
class RadiographTruth:
    """What reading a written radiograph back must give."""

    path: Path
    pixels: np.ndarray
    """uint16 (rows, cols): the stored values."""
    nodule_mask: np.ndarray
    nodules: list[dict[str, Any]]
    """Each: kind, row, col (pixels), diameter_mm."""
    pixel_spacing: tuple[float, float]
    photometric: str
    sop_instance_uid: str


# -- geometry ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Target:
    origin: np.ndarray  # LPS of voxel (0, 0, 0)
    spacing: np.ndarray  # (x, y, z)
    direction: np.ndarray  # columns
    shape: tuple[int, int, int]  # (k, j, i)


def _rotation(angles_deg: Sequence[float]) -> np.ndarray:
    """Rotation about x, then y, then z (degrees)."""
    ax, ay, az = np.radians(np.asarray(angles_deg, dtype=np.float64))
    rx = np.array([[1, 0, 0], [0, np.cos(ax), -np.sin(ax)], [0, np.sin(ax), np.cos(ax)]])
    ry = np.array([[np.cos(ay), 0, np.sin(ay)], [0, 1, 0], [-np.sin(ay), 0, np.cos(ay)]])
    rz = np.array([[np.cos(az), -np.sin(az), 0], [np.sin(az), np.cos(az), 0], [0, 0, 1]])
    return rz @ ry @ rx


def slice_axes(orientation: str | np.ndarray | Sequence[Sequence[float]], angles_deg: Sequence[float] | None = None) -> np.ndarray:
    """3x3 direction (columns i, j, k) for a named orientation or a given matrix (columns i, j used)."""
    if isinstance(orientation, str):
        if orientation == "oblique":
            base = _rotation(angles_deg if angles_deg is not None else (20.0, -15.0, 10.0))
            u, v = base[:, 0], base[:, 1]
        elif orientation in ORIENTATIONS:
            if angles_deg is not None:
                raise ValueError("angles_deg is only for orientation='oblique'")
            u, v = (np.asarray(a, dtype=np.float64) for a in ORIENTATIONS[orientation])
        else:
            raise ValueError(f"unknown orientation {orientation!r}: axial, coronal, sagittal, oblique or a 3x3 matrix")
    else:
        m = np.asarray(orientation, dtype=np.float64)
        if m.shape != (3, 3):
            raise ValueError(f"orientation matrix must be 3x3, got {m.shape}")
        u, v = m[:, 0], m[:, 1]
    u = u / np.linalg.norm(u)
    v = v - (v @ u) * u
    v = v / np.linalg.norm(v)
    return np.column_stack([u, v, np.cross(u, v)])


def _phantom_axis(vec: np.ndarray) -> int:
    """0, 1, 2 for the phantom-frame axis x, y, z that ``vec`` mostly points along."""
    return int(np.argmax(np.abs(vec)))


def _target(
    ph: Phantom,
    direction: np.ndarray,
    pixel_spacing: tuple[float, float] | None,
    slice_spacing: float | None,
    origin: Sequence[float] | None,
    shift: np.ndarray,
) -> _Target:
    sp_xyz = np.asarray(ph.spacing_zyx[::-1], dtype=np.float64)
    n_xyz = np.asarray(ph.shape[::-1])
    axes = [_phantom_axis(direction[:, a]) for a in range(3)]
    spacing = np.array([sp_xyz[axes[0]], sp_xyz[axes[1]], sp_xyz[axes[2]]])
    if pixel_spacing is not None:
        spacing[1], spacing[0] = float(pixel_spacing[0]), float(pixel_spacing[1])
    if slice_spacing is not None:
        spacing[2] = float(slice_spacing)
    extent = (n_xyz - 1) * sp_xyz
    n = [int(round(extent[axes[a]] / spacing[a])) + 1 for a in range(3)]
    centre = np.asarray(ph.origin_xyz) + extent / 2 + shift
    o = centre - direction @ (spacing * (np.asarray(n) - 1) / 2)
    if origin is not None:
        o = np.asarray(origin, dtype=np.float64)
    return _Target(origin=o, spacing=spacing, direction=direction, shape=(n[2], n[1], n[0]))


def _exact_slicing(ph: Phantom, t: _Target, shift: np.ndarray) -> tuple[tuple[slice, ...], tuple[int, ...]] | None:
    """Array slicing + transpose that gives the target grid exactly, when it lies on phantom voxels."""
    d = t.direction
    if not np.allclose(np.abs(d), np.round(np.abs(d)), atol=1e-9):
        return None
    sp_xyz = np.asarray(ph.spacing_zyx[::-1])
    start_xyz = (t.origin - shift - np.asarray(ph.origin_xyz)) / sp_xyz
    if not np.allclose(start_xyz, np.round(start_xyz), atol=1e-6):
        return None
    n_ijk = (t.shape[2], t.shape[1], t.shape[0])
    slices: list[slice] = [slice(None)] * 3
    order = []
    for a in range(3):  # target axis i, j, k
        p = _phantom_axis(d[:, a])
        sign = int(np.sign(d[p, a]))
        if not np.isclose(t.spacing[a], sp_xyz[p]):
            return None
        start = int(round(start_xyz[p]))
        stop = start + sign * n_ijk[a]
        size = ph.shape[2 - p]
        if min(start, stop - sign) < 0 or max(start, stop - sign) >= size:
            return None
        slices[2 - p] = slice(start, stop if stop >= 0 else None, sign)
        order.append(2 - p)
    return tuple(slices), (order[2], order[1], order[0])


def _resample(ph: Phantom, t: _Target, shift: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(hu, nodule mask) of the phantom on the target grid: linear / nearest, air outside."""
    from scipy import ndimage

    nk, nj, ni = t.shape
    jj, ii = np.meshgrid(np.arange(nj), np.arange(ni), indexing="ij")
    hu = np.empty(t.shape, dtype=np.float32)
    mask = np.empty(t.shape, dtype=bool)
    sp = np.asarray(ph.spacing_zyx[::-1])
    for k in range(nk):
        ijk = np.stack([ii.ravel(), jj.ravel(), np.full(ii.size, k)], axis=1).astype(np.float64)
        xyz = t.origin + (ijk * t.spacing) @ t.direction.T - shift
        pidx = ((xyz - np.asarray(ph.origin_xyz)) / sp)[:, ::-1].T  # (k, j, i) of the phantom
        hu[k] = ndimage.map_coordinates(ph.hu, pidx, order=1, cval=-1000.0).reshape(nj, ni)
        mask[k] = ndimage.map_coordinates(ph.nodule_mask.view(np.uint8), pidx, order=0, cval=0).reshape(nj, ni) > 0
    return hu, mask


def _geometry_key(phantom: Phantom, t: _Target, *options: object) -> str:
    """What distinguishes one written series from another of the same patient (for its UIDs)."""
    geo = np.concatenate([t.origin, t.spacing, t.direction.ravel()]).round(4).tolist()
    return repr((phantom.params, t.shape, geo, options))


def _ds(value: float) -> DSfloat:
    """A Decimal String value that fits the VR's 16 characters (as precise as that allows)."""
    return DSfloat(float(value), auto_format=True)


def _uid(seed: int, *parts: object) -> str:
    return str(generate_uid(entropy_srcs=[f"radscope-synthetic:{seed}", *(str(p) for p in parts)]))


# -- datasets ------------------------------------------------------------------------------------------
def _base_dataset(sop_class: UID, sop_uid: str, transfer_syntax: UID) -> Dataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = transfer_syntax
    meta.ImplementationClassUID = UID("1.2.826.0.1.3680043.8.498.1")
    meta.ImplementationVersionName = "RADSCOPE_SYN"
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = sop_uid
    ds.SpecificCharacterSet = "ISO_IR 100"
    return ds


def _patient_study(ds: Dataset, patient: dict[str, str], study_uid: str, series_uid: str, modality: str,
                   series_number: int, description: str) -> None:
    ds.PatientName = patient.get("name", "PHANTOM^CHEST")
    ds.PatientID = patient.get("id", "RS-PHANTOM")
    ds.PatientSex = patient.get("sex", "O")
    ds.PatientAge = patient.get("age", "055Y")
    ds.PatientBirthDate = patient.get("birth_date", "")
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    ds.StudyDate = patient.get("study_date", "20260101")
    ds.StudyTime = "090000"
    ds.SeriesDate = ds.StudyDate
    ds.ContentDate = ds.StudyDate
    ds.ContentTime = "090100"
    ds.AccessionNumber = patient.get("accession", "RS0001")
    ds.StudyID = "1"
    ds.StudyDescription = patient.get("study_description", "CHEST (synthetic phantom)")
    ds.SeriesDescription = description
    ds.SeriesNumber = series_number
    ds.Modality = modality
    ds.Manufacturer = "RadScope"
    ds.ManufacturerModelName = "Synthetic chest phantom"
    ds.InstitutionName = "RadScope test data (not for diagnostic use)"
    ds.BodyPartExamined = "CHEST"
    ds.ReferringPhysicianName = ""


def _pixel_module(ds: Dataset, rows: int, cols: int, signed: bool, bits_stored: int = 16) -> None:
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = rows
    ds.Columns = cols
    ds.BitsAllocated = 16
    ds.BitsStored = bits_stored
    ds.HighBit = bits_stored - 1
    ds.PixelRepresentation = 1 if signed else 0


def _quantise(hu: np.ndarray, slope: float, intercept: float, signed: bool) -> tuple[np.ndarray, np.ndarray]:
    """(stored int array, float32 values it stands for) for HU through slope/intercept."""
    dtype = np.int16 if signed else np.uint16
    info = np.iinfo(dtype)
    stored = np.empty(hu.shape, dtype=dtype)
    values = np.empty(hu.shape, dtype=np.float32)
    for k in range(hu.shape[0]) if hu.ndim == 3 else [...]:  # float64 per slice: exact, little memory
        raw = np.clip(np.rint((hu[k].astype(np.float64) - intercept) / slope), info.min, info.max)
        stored[k] = raw
        values[k] = raw * slope + intercept
    return stored, values


def _save(ds: Dataset, path: Path, compression: str | None, pixels: np.ndarray) -> None:
    if compression == "jpeg2000" and min(pixels.shape[-2:]) < 32:
        raise ValueError(f"{path}: jpeg2000 (OpenJPEG, 6 wavelet levels) needs at least 32 rows and columns, "
                         f"got {pixels.shape[-2:]}")
    if compression in ENCAPSULATED:
        ds.compress(TRANSFER_SYNTAXES[compression], pixels, generate_instance_uid=False)
    else:
        ds.file_meta.TransferSyntaxUID = TRANSFER_SYNTAXES[compression]
        big = compression == "big-endian"
        data = pixels.astype(pixels.dtype.newbyteorder(">")) if big else pixels
        ds.PixelData = data.tobytes()
        ds["PixelData"].VR = "OW"
    ts = ds.file_meta.TransferSyntaxUID
    ds.save_as(path, implicit_vr=ts.is_implicit_VR, little_endian=ts.is_little_endian, enforce_file_format=True)


def _check_compression(compression: str | None) -> None:
    if compression not in TRANSFER_SYNTAXES:
        raise ValueError(f"unknown compression {compression!r}; one of {sorted(k for k in TRANSFER_SYNTAXES if k)} or None")


@dataclass(frozen=True)
class _Cut:
    target: _Target
    hu: np.ndarray
    mask: np.ndarray
    shift: np.ndarray


def _cut(
    phantom: Phantom,
    orientation: str | np.ndarray | Sequence[Sequence[float]],
    angles_deg: Sequence[float] | None,
    pixel_spacing: tuple[float, float] | None,
    slice_spacing: float | None,
    origin: Sequence[float] | None,
    shift: Sequence[float],
) -> _Cut:
    direction = slice_axes(orientation, angles_deg)
    sh = np.asarray(shift, dtype=np.float64)
    t = _target(phantom, direction, pixel_spacing, slice_spacing, origin, sh)
    exact = _exact_slicing(phantom, t, sh)
    if exact is not None:
        slices, order = exact
        hu = np.ascontiguousarray(phantom.hu[slices].transpose(order))
        mask = np.ascontiguousarray(phantom.nodule_mask[slices].transpose(order))
    else:
        hu, mask = _resample(phantom, t, sh)
    return _Cut(t, hu, mask, sh)


def _nodules_in(phantom: Phantom, cut: _Cut) -> list[NoduleTruth]:
    out = []
    t = cut.target
    for nod in phantom.nodules:
        lps = np.asarray(nod.center_mm) + cut.shift
        ijk = ((lps - t.origin) @ t.direction) / t.spacing
        if np.all(ijk >= -0.5) and np.all(ijk <= np.asarray(t.shape[::-1]) - 0.5):
            out.append(NoduleTruth(nod.kind, tuple(float(v) for v in lps), (float(ijk[2]), float(ijk[1]), float(ijk[0])),  # type: ignore[arg-type]
                                   nod.diameter_mm, nod.hu, nod.juxtapleural))
    return out


def _ct_common(ds: Dataset, phantom: Phantom, t: _Target, frame_uid: str, kvp: float) -> None:
    ds.FrameOfReferenceUID = frame_uid
    ds.PositionReferenceIndicator = ""
    ds.PatientPosition = "HFS"
    ds.KVP = kvp
    ds.SliceThickness = _ds(phantom.params.thickness if np.isclose(t.spacing[2], phantom.spacing_zyx[0]) else t.spacing[2])
    ds.ConvolutionKernel = "STANDARD"
    ds.RescaleType = "HU"
    ds.WindowCenter = [40, -600]
    ds.WindowWidth = [400, 1500]
    ds.WindowCenterWidthExplanation = ["MEDIASTINUM", "LUNG"]


def write_ct_series(
    phantom: Phantom,
    out_dir: str | Path,
    *,
    orientation: str | np.ndarray | Sequence[Sequence[float]] = "axial",
    angles_deg: Sequence[float] | None = None,
    pixel_spacing: tuple[float, float] | None = None,
    slice_spacing: float | None = None,
    origin: Sequence[float] | None = None,
    shift: Sequence[float] = (0.0, 0.0, 0.0),
    compression: Compression | str = None,
    signed: bool = False,
    rescale_slope: float = 1.0,
    rescale_intercept: float | None = None,
    shuffle_names: bool = False,
    shuffle_instance_numbers: bool = False,
    patient: dict[str, str] | None = None,
    study_uid: str | None = None,
    series_number: int = 2,
    description: str | None = None,
    kvp: float = 120.0,
    seed: int | None = None,
    missing: Sequence[int] = (),
) -> SeriesTruth:
    """Write the phantom as a CT series (one CT Image Storage file per slice) and return its truth.

    ``orientation``: ``axial`` / ``coronal`` / ``sagittal`` (exact copies of the phantom's voxels),
    ``oblique`` (rotated by ``angles_deg`` about x, y, z) or a 3x3 matrix whose columns 0 and 1 are
    the row and column directions; non-axis-aligned or re-spaced grids are resampled (linear, air
    outside). ``shift`` moves the patient in LPS (the phantom frame is LPS with the origin at the
    right diaphragm dome); ``origin`` instead pins the first voxel's position. Values are stored as
    uint16 with intercept -1024 (or int16 with intercept 0 when ``signed``) through ``rescale_slope``.
    ``compression``: None (explicit VR little endian), ``implicit``, ``big-endian``, ``deflate``,
    ``rle``, ``jpeg-ls`` or ``jpeg2000`` (all lossless). ``patient`` may set ``name``, ``id``,
    ``sex``, ``age``, ``birth_date``, ``study_date``, ``accession``, ``study_description``.
    UIDs derive from ``seed`` (default: the phantom's seed) and the options, so re-running gives the
    same files, and another cut of the same patient is another series of the same study.
    ``missing`` lists slices not written (a series with gaps; ``SeriesTruth.missing`` flags them).
    """
    _check_compression(compression)
    if rescale_slope <= 0:
        raise ValueError("rescale_slope must be positive")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    seed = phantom.params.seed if seed is None else int(seed)
    cut = _cut(phantom, orientation, angles_deg, pixel_spacing, slice_spacing, origin, shift)
    t = cut.target
    intercept = rescale_intercept if rescale_intercept is not None else (0.0 if signed else -1024.0)
    stored, values = _quantise(cut.hu, rescale_slope, intercept, signed)
    name = orientation if isinstance(orientation, str) else "oblique"
    study_uid = study_uid or _uid(seed, "study")
    series_uid = _uid(seed, "series", series_number, _geometry_key(phantom, t, compression, signed, rescale_slope, intercept))
    frame_uid = _uid(seed, "frame-of-reference", tuple(np.round(cut.shift, 4)))
    nk = t.shape[0]
    rng = np.random.default_rng([seed, 0xD1C0])
    numbers = rng.permutation(nk) + 1 if shuffle_instance_numbers else np.arange(1, nk + 1)
    names = [f"{_uid(seed, 'name', series_uid, k).split('.')[-1][:12]}.dcm" for k in range(nk)] if shuffle_names \
        else [f"IM{k + 1:04d}.dcm" for k in range(nk)]
    if shuffle_names:
        names = [names[i] for i in rng.permutation(nk)]
    skipped = np.zeros(nk, dtype=bool)
    skipped[list(missing)] = True
    sop_uids = ["" if skipped[k] else _uid(seed, "sop", series_uid, k) for k in range(nk)]
    u, v = t.direction[:, 0], t.direction[:, 1]
    paths = []
    for k in range(nk):
        if skipped[k]:
            continue
        ds = _base_dataset(CT_IMAGE_STORAGE, sop_uids[k], TRANSFER_SYNTAXES[compression])
        _patient_study(ds, patient or {}, study_uid, series_uid, "CT", series_number,
                       description or f"Chest phantom {name}")
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL" if name == "axial" else "REFORMATTED"]
        _ct_common(ds, phantom, t, frame_uid, kvp)
        ds.InstanceNumber = int(numbers[k])
        ds.AcquisitionNumber = 1
        pos = t.origin + t.direction[:, 2] * (t.spacing[2] * k)
        ds.ImagePositionPatient = [_ds(c) for c in pos]
        ds.ImageOrientationPatient = [_ds(c) for c in (*u, *v)]
        ds.SliceLocation = _ds(pos @ t.direction[:, 2])
        ds.PixelSpacing = [_ds(t.spacing[1]), _ds(t.spacing[0])]
        ds.SpacingBetweenSlices = _ds(t.spacing[2])
        _pixel_module(ds, t.shape[1], t.shape[2], signed)
        ds.RescaleIntercept = _ds(intercept)
        ds.RescaleSlope = _ds(rescale_slope)
        path = out / names[k]
        _save(ds, path, compression, stored[k])
        paths.append(path)
    return SeriesTruth(
        paths=paths, origin=t.origin.copy(), spacing=t.spacing.copy(), direction=t.direction.copy(), hu=values,
        nodule_mask=cut.mask, nodules=_nodules_in(phantom, cut), study_uid=study_uid, series_uid=series_uid,
        frame_of_reference_uid=frame_uid, sop_instance_uids=sop_uids, missing=skipped if skipped.any() else None,
    )


def _code_item(code: Code) -> DicomSequence:
    """A one-item code sequence (Code Value, Coding Scheme Designator, Code Meaning)."""
    return _item_of(CodeValue=code.value, CodingSchemeDesignator=code.scheme_designator, CodeMeaning=code.meaning)


def _item_of(**values: Any) -> DicomSequence:
    item = Dataset()
    for key, value in values.items():
        setattr(item, key, value)
    return DicomSequence([item])


FRAME_SECONDS = 0.05
"""Nominal acquisition time per frame of the synthetic Enhanced CT (a spiral at pitch 1)."""


def _ct_acquisition(shared: Dataset, t: _Target, kvp: float, irradiation_uid: str) -> None:
    """The Enhanced CT acquisition functional groups (shared by all frames) with nominal values of a
    chest spiral: the phantom was never scanned, but the IOD requires them and readers may show them."""
    fov = float(max(t.shape[1] * t.spacing[1], t.shape[2] * t.spacing[0]))
    centre = [_ds(c) for c in t.origin + t.direction[:, :2] @ (np.array([t.shape[2], t.shape[1]]) * t.spacing[:2] / 2)]
    shared.FrameAnatomySequence = _item_of(AnatomicRegionSequence=_code_item(CHEST_REGION), FrameLaterality="U")
    shared.IrradiationEventIdentificationSequence = _item_of(IrradiationEventUID=irradiation_uid)
    shared.CTAcquisitionTypeSequence = _item_of(AcquisitionType="SPIRAL", ConstantVolumeFlag="NO", FluoroscopyFlag="NO")
    shared.CTAcquisitionDetailsSequence = _item_of(
        DataCollectionDiameter=_ds(500.0), RotationDirection="CW", RevolutionTime=0.5,
        SingleCollimationWidth=0.625, TotalCollimationWidth=40.0, TableHeight=_ds(150.0),
        GantryDetectorTilt=_ds(0.0))
    shared.CTTableDynamicsSequence = _item_of(TableSpeed=80.0, TableFeedPerRotation=40.0, SpiralPitchFactor=1.0)
    shared.CTPositionSequence = _item_of(TablePosition=0.0, ReconstructionTargetCenterPatient=centre,
                                         DataCollectionCenterPatient=centre)
    shared.CTGeometrySequence = _item_of(DistanceSourceToDetector=1040.0, DistanceSourceToDataCollectionCenter=570.0)
    shared.CTReconstructionSequence = _item_of(
        ReconstructionAlgorithm="FILTER_BACK_PROJ", ConvolutionKernel="STANDARD", ConvolutionKernelGroup="SOFT_TISSUE",
        ReconstructionFieldOfView=[fov, fov], ReconstructionPixelSpacing=[float(t.spacing[1]), float(t.spacing[0])],
        ReconstructionAngle=360.0, ImageFilter="NONE")
    shared.CTExposureSequence = _item_of(ExposureTimeInms=500.0, XRayTubeCurrentInmA=200.0, ExposureInmAs=100.0,
                                         ExposureModulationType="NONE", CTDIvol=8.0,
                                         CTDIPhantomTypeCodeSequence=_code_item(IEC_BODY_PHANTOM))
    shared.CTXRayDetailsSequence = _item_of(KVP=_ds(kvp), FocalSpots=[1.2], FilterType="WEDGE",
                                            FilterMaterial=["ALUMINUM"])


def write_enhanced_ct(
    phantom: Phantom,
    path: str | Path,
    *,
    orientation: str | np.ndarray | Sequence[Sequence[float]] = "axial",
    angles_deg: Sequence[float] | None = None,
    pixel_spacing: tuple[float, float] | None = None,
    slice_spacing: float | None = None,
    origin: Sequence[float] | None = None,
    shift: Sequence[float] = (0.0, 0.0, 0.0),
    compression: Compression | str = None,
    shuffle_frames: bool = False,
    per_frame_rescale: bool = False,
    patient: dict[str, str] | None = None,
    study_uid: str | None = None,
    series_number: int = 3,
    kvp: float = 120.0,
    seed: int | None = None,
) -> SeriesTruth:
    """Write the phantom as one Enhanced CT Image Storage object (multi-frame, functional groups).

    Geometry lives in the per-frame Plane Position and shared Plane Orientation / Pixel Measures
    groups. ``shuffle_frames`` stores the frames in a random order (readers must sort by position);
    ``per_frame_rescale`` gives frames different slope/intercept in per-frame Pixel Value
    Transformation groups. ``SeriesTruth.frame_numbers[k]`` is the frame holding slice ``k``.
    """
    _check_compression(compression)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    seed = phantom.params.seed if seed is None else int(seed)
    cut = _cut(phantom, orientation, angles_deg, pixel_spacing, slice_spacing, origin, shift)
    t = cut.target
    nk = t.shape[0]
    rng = np.random.default_rng([seed, 0xE4C7])
    frame_of_slice = rng.permutation(nk) if shuffle_frames else np.arange(nk)  # 0-based frame per slice
    rescale = [(1.0, -1024.0)] * nk
    if per_frame_rescale:
        choices = [(1.0, -1024.0), (0.5, -1100.0), (2.0, -1024.0), (1.0, -2048.0)]
        rescale = [choices[int(c)] for c in rng.integers(0, len(choices), nk)]
    stored = np.empty(t.shape, dtype=np.uint16)
    values = np.empty(t.shape, dtype=np.float32)
    for k in range(nk):
        slope, intercept = rescale[k]
        stored[frame_of_slice[k]], values[k] = _quantise(cut.hu[k], slope, intercept, signed=False)
    name = orientation if isinstance(orientation, str) else "oblique"
    study_uid = study_uid or _uid(seed, "study")
    series_uid = _uid(seed, "enhanced-series", series_number,
                      _geometry_key(phantom, t, compression, shuffle_frames, per_frame_rescale))
    frame_uid = _uid(seed, "frame-of-reference", tuple(np.round(cut.shift, 4)))
    sop_uid = _uid(seed, "enhanced-sop", series_uid)
    ds = _base_dataset(ENHANCED_CT_IMAGE_STORAGE, sop_uid, TRANSFER_SYNTAXES[compression])
    _patient_study(ds, patient or {}, study_uid, series_uid, "CT", series_number, f"Chest phantom enhanced {name}")
    ds.ImageType = ["ORIGINAL", "PRIMARY", "VOLUME", "NONE"]  # Enhanced CT's image flavour: no AXIAL term
    ds.FrameOfReferenceUID = frame_uid
    ds.PositionReferenceIndicator = ""
    ds.PatientPosition = "HFS"
    ds.KVP = kvp
    ds.InstanceNumber = 1
    ds.AcquisitionNumber = 1
    ds.ContentQualification = "RESEARCH"
    ds.BurnedInAnnotation = "NO"
    ds.PresentationLUTShape = "IDENTITY"
    ds.NumberOfFrames = nk
    ds.DeviceSerialNumber = "PHANTOM-0001"
    ds.SoftwareVersions = "radscope synthetic"
    ds.AcquisitionDateTime = f"{ds.StudyDate}{ds.StudyTime}"
    ds.AcquisitionDuration = _ds(nk * FRAME_SECONDS)
    ds.LossyImageCompression = "00"  # every transfer syntax offered here is lossless
    ds.PixelPresentation = "MONOCHROME"
    ds.VolumetricProperties = "VOLUME"
    ds.VolumeBasedCalculationTechnique = "NONE"
    ds.AcquisitionContextSequence = DicomSequence([])  # type 2: known to be empty
    _pixel_module(ds, t.shape[1], t.shape[2], signed=False)
    u, v = t.direction[:, 0], t.direction[:, 1]
    dim_org = _uid(seed, "dimension-organization", series_uid)
    ds.DimensionOrganizationSequence = _item_of(DimensionOrganizationUID=dim_org)
    dims = []
    for pointer, group in (("StackID", "FrameContentSequence"), ("InStackPositionNumber", "FrameContentSequence")):
        item = Dataset()
        item.DimensionOrganizationUID = dim_org
        item.DimensionIndexPointer = pydicom.datadict.tag_for_keyword(pointer)
        item.FunctionalGroupPointer = pydicom.datadict.tag_for_keyword(group)
        dims.append(item)
    ds.DimensionIndexSequence = DicomSequence(dims)
    shared = Dataset()
    shared.PixelMeasuresSequence = _item_of(
        PixelSpacing=[_ds(t.spacing[1]), _ds(t.spacing[0])], SliceThickness=_ds(t.spacing[2]),
        SpacingBetweenSlices=_ds(t.spacing[2]),
    )
    shared.PlaneOrientationSequence = _item_of(ImageOrientationPatient=[_ds(c) for c in (*u, *v)])
    shared.CTImageFrameTypeSequence = _item_of(FrameType=list(ds.ImageType), PixelPresentation="MONOCHROME",
                                               VolumetricProperties="VOLUME", VolumeBasedCalculationTechnique="NONE")
    shared.FrameVOILUTSequence = _item_of(WindowCenter=[40, -600], WindowWidth=[400, 1500],
                                          WindowCenterWidthExplanation=["MEDIASTINUM", "LUNG"])
    if not per_frame_rescale:
        shared.PixelValueTransformationSequence = _item_of(RescaleIntercept=-1024.0, RescaleSlope=1.0, RescaleType="HU")
    _ct_acquisition(shared, t, kvp, _uid(seed, "irradiation", series_uid))
    ds.SharedFunctionalGroupsSequence = DicomSequence([shared])
    slice_of_frame = np.argsort(frame_of_slice)
    per_frame = []
    start = datetime.datetime.strptime(f"{ds.StudyDate}{ds.StudyTime}", "%Y%m%d%H%M%S")
    for f in range(nk):
        k = int(slice_of_frame[f])
        pos = t.origin + t.direction[:, 2] * (t.spacing[2] * k)
        fg = Dataset()
        when = (start + datetime.timedelta(seconds=k * FRAME_SECONDS)).strftime("%Y%m%d%H%M%S.%f")
        fg.FrameContentSequence = _item_of(StackID="1", InStackPositionNumber=k + 1, DimensionIndexValues=[1, k + 1],
                                           FrameAcquisitionNumber=1, FrameReferenceDateTime=when,
                                           FrameAcquisitionDateTime=when, FrameAcquisitionDuration=FRAME_SECONDS * 1000)
        fg.PlanePositionSequence = _item_of(ImagePositionPatient=[_ds(c) for c in pos])
        if per_frame_rescale:
            slope, intercept = rescale[k]
            fg.PixelValueTransformationSequence = _item_of(RescaleIntercept=intercept, RescaleSlope=slope, RescaleType="HU")
        per_frame.append(fg)
    ds.PerFrameFunctionalGroupsSequence = DicomSequence(per_frame)
    _save(ds, path, compression, stored)
    return SeriesTruth(
        paths=[path], origin=t.origin.copy(), spacing=t.spacing.copy(), direction=t.direction.copy(), hu=values,
        nodule_mask=cut.mask, nodules=_nodules_in(phantom, cut), study_uid=study_uid, series_uid=series_uid,
        frame_of_reference_uid=frame_uid, sop_instance_uids=[sop_uid] * nk,
        frame_numbers=[int(f) + 1 for f in frame_of_slice],
    )


def write_radiograph(
    radiograph: Radiograph,
    path: str | Path,
    *,
    modality: Literal["CR", "DX"] = "DX",
    photometric: Literal["MONOCHROME1", "MONOCHROME2"] = "MONOCHROME2",
    bits: int = 12,
    compression: Compression | str = None,
    patient: dict[str, str] | None = None,
    study_uid: str | None = None,
    series_number: int = 1,
    seed: int = 0,
) -> RadiographTruth:
    """Write a radiograph as CR or DX (For Presentation), PA view, with its truth.

    Stored values are ``image`` scaled to ``bits``; MONOCHROME1 stores them inverted (white = low),
    so a reader that honours the photometric interpretation shows the same picture.
    """
    _check_compression(compression)
    if photometric not in ("MONOCHROME1", "MONOCHROME2") or modality not in ("CR", "DX"):
        raise ValueError(f"modality must be CR or DX and photometric MONOCHROME1/2, got {modality}, {photometric}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    top = (1 << bits) - 1
    stored = np.rint(np.clip(radiograph.image, 0.0, 1.0) * top).astype(np.uint16)
    if photometric == "MONOCHROME1":
        stored = (top - stored).astype(np.uint16)
    sop_class = CR_IMAGE_STORAGE if modality == "CR" else DX_IMAGE_STORAGE
    study_uid = study_uid or _uid(seed, "study")
    series_uid = _uid(seed, "radiograph-series", modality, photometric, series_number, bits, compression,
                      stored.shape, radiograph.pixel_spacing, float(radiograph.image.sum()))
    sop_uid = _uid(seed, "radiograph-sop", series_uid)
    ds = _base_dataset(sop_class, sop_uid, TRANSFER_SYNTAXES[compression])
    _patient_study(ds, patient or {}, study_uid, series_uid, modality, series_number, "Chest PA (synthetic DRR)")
    ds.ImageType = ["DERIVED", "PRIMARY"] if modality == "CR" else ["ORIGINAL", "PRIMARY"]
    ds.InstanceNumber = 1
    ds.ViewPosition = "PA"
    ds.PatientOrientation = ["L", "F"]
    ds.KVP = 120.0
    ds.ImagerPixelSpacing = [_ds(radiograph.pixel_spacing[0]), _ds(radiograph.pixel_spacing[1])]
    ds.PixelSpacing = ds.ImagerPixelSpacing
    ds.LossyImageCompression = "00"  # every transfer syntax offered here is lossless
    ds.AnatomicRegionSequence = _code_item(CHEST_REGION)
    if modality == "DX":
        ds.ViewCodeSequence = _code_item(PA_VIEW)  # the CR IOD has no View Code Sequence
        ds.PresentationIntentType = "FOR PRESENTATION"
        ds.BurnedInAnnotation = "NO"
        ds.PixelIntensityRelationship = "LOG"
        ds.PixelIntensityRelationshipSign = 1 if photometric == "MONOCHROME2" else -1
        ds.DetectorType = "SCINTILLATOR"
        ds.ImageLaterality = "U"  # the chest is unpaired
        ds.PositionerType = "NONE"  # a chest stand, no C-arm or column geometry recorded
        ds.AcquisitionContextSequence = DicomSequence([])  # type 2: known to be empty
    ds.RescaleIntercept = 0.0
    ds.RescaleSlope = 1.0
    ds.RescaleType = "US"
    ds.WindowCenter = (top + 1) // 2
    ds.WindowWidth = top + 1
    ds.PresentationLUTShape = "IDENTITY" if photometric == "MONOCHROME2" else "INVERSE"
    rows, cols = stored.shape
    _pixel_module(ds, rows, cols, signed=False, bits_stored=bits)
    ds.PhotometricInterpretation = photometric
    _save(ds, path, compression, stored)
    nodules = [{"kind": n.kind, "row": n.row, "col": n.col, "diameter_mm": n.diameter_mm} for n in radiograph.nodules]
    return RadiographTruth(path=path, pixels=stored, nodule_mask=radiograph.nodule_mask.copy(), nodules=nodules,
                           pixel_spacing=radiograph.pixel_spacing, photometric=photometric, sop_instance_uid=sop_uid)


# -- the demo study ------------------------------------------------------------------------------------
DEMO_NODULES = (
    NoduleSpec(kind="solid", diameter_mm=14.0, side="right", height=0.62),
    NoduleSpec(kind="part-solid", diameter_mm=20.0, side="left", height=0.4),
    NoduleSpec(kind="spiculated", diameter_mm=11.0, side="left", height=0.78, juxtapleural=False),
)
DEMO_PATIENT = {"name": "DEMO^CHEST^PHANTOM", "id": "RS-DEMO-0001", "sex": "F", "age": "061Y",
                "study_description": "CT CHEST (RadScope synthetic demo)", "accession": "RSDEMO1"}


def demo_params() -> ChestParams:
    """The demo CT: ~120 slices of 512x512, 0.7 mm pixels, 2.5 mm slices, three known nodules."""
    return ChestParams(n_slices=120, matrix=(512, 512), pixel_spacing=(0.7, 0.7), slice_spacing=2.5,
                       n_nodules=0, nodules=DEMO_NODULES, noise_hu=14.0, contrast_hu=0.0, seed=DEMO_SEED)


def _json_nodules(truth: SeriesTruth) -> list[dict[str, Any]]:
    return [{"kind": n.kind, "slice": n.slice_index, "center_lps": [round(c, 3) for c in n.center_lps],
             "center_index_kji": [round(c, 3) for c in n.center_index], "diameter_mm": round(n.diameter_mm, 2),
             "hu": round(n.hu, 1), "juxtapleural": n.juxtapleural} for n in truth.nodules]


def generate_demo_study(out: Path) -> dict[str, Any]:
    """Write the demo study into ``out`` (``ct/``, ``xr/``, ``truth.json``); returns the truth."""
    t0 = time.perf_counter()
    params = demo_params()
    ph = make_chest_ct(params)
    ct = write_ct_series(ph, out / "ct", patient=DEMO_PATIENT, description="Chest CT 2.5 mm (synthetic)")
    rg = make_chest_radiograph(ph)  # the same patient, projected front to back
    xr = write_radiograph(rg, out / "xr" / "chest_pa.dcm", modality="DX", patient=DEMO_PATIENT,
                          study_uid=ct.study_uid, series_number=1, seed=DEMO_SEED)
    truth = {
        "version": DEMO_VERSION,
        "revision": DEMO_REVISION,
        "generator": "viewer.dicom.synthetic.generate_demo_study",
        "seed": DEMO_SEED,
        "ct": {"series_uid": ct.series_uid, "folder": "ct", "n_slices": ct.shape[0],
               "spacing_mm": [float(ct.spacing[2]), float(ct.spacing[1]), float(ct.spacing[0])],
               "origin_lps": [float(c) for c in ct.origin], "direction": ct.direction.tolist()},
        "nodules": _json_nodules(ct),
        "radiograph": {"file": "xr/chest_pa.dcm", "sop_instance_uid": xr.sop_instance_uid,
                       "pixel_spacing_mm": list(xr.pixel_spacing), "nodules": xr.nodules},
        "seconds": round(time.perf_counter() - t0, 2),
    }
    np.savez_compressed(out / "truth_masks.npz", ct_nodule_mask=ct.nodule_mask, xr_nodule_mask=xr.nodule_mask)
    truth["masks"] = {"file": "truth_masks.npz", "ct": "ct_nodule_mask (k, j, i) in slice order",
                      "xr": "xr_nodule_mask (rows, cols)"}
    (out / "truth.json").write_text(json.dumps(truth, indent=1))
    return truth


def _valid_demo(folder: Path, revision: int | None = DEMO_REVISION) -> bool:
    try:
        truth = json.loads((folder / "truth.json").read_text())
    except (OSError, ValueError):
        return False
    if revision is not None and truth.get("revision") != revision:
        return False
    return truth.get("version") == DEMO_VERSION and (folder / "ct").is_dir()


def demo_study_dir(on_generate: Callable[[], None] | None = None) -> Path:
    """The demo study folder: ``resources/demo-study`` when bundled, else generated once into the cache
    (``on_generate`` is called first, only when it must be generated).

    The cache copy (``<RADSCOPE_HOME>/cache/demo-study-v1``) is regenerated when missing, incomplete
    or of another version; generation writes to a temporary folder and renames it, so a crash never
    leaves a half study behind.
    """
    from viewer import paths

    bundled = paths.resources_dir() / "demo-study"
    if _valid_demo(bundled, revision=None):  # shipped data: any revision of this version
        return bundled
    target = paths.subdir("cache") / DEMO_VERSION
    if _valid_demo(target):
        return target
    if on_generate is not None:
        on_generate()
    tmp = target.with_name(f"{target.name}.tmp{os.getpid()}-{time.time_ns()}")
    try:
        generate_demo_study(tmp)
        if target.exists():
            shutil.rmtree(target, ignore_errors=True)
        try:
            tmp.rename(target)
        except OSError:
            if not _valid_demo(target):  # not another process finishing first: a real failure
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target
