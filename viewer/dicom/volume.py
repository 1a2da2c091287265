"""The `Volume`: a stack of slices in modality units with its physical geometry.

Conventions (used everywhere in RadScope):

* ``array`` is indexed ``(k, j, i)`` = (slice, row, column). Grey images are in modality units
  (HU for CT): float32, or int16/uint16 when every value is an integer that fits (``load_volume(...,
  integers=True)``). Colour images are uint8 ``(k, j, i, 3)`` RGB.
* Slice ``k`` sits at its true position on a uniform grid; grid slices no image was acquired for are
  flagged in ``missing`` (see :mod:`viewer.dicom.grid`).
* Geometry follows SimpleITK / ITK, in LPS patient coordinates (mm):
  ``origin`` is the centre of voxel (k=0, j=0, i=0); ``spacing`` is ``(x, y, z)`` =
  (column step, row step, slice step); ``direction`` is a 3x3 matrix whose *columns* are the
  unit vectors of the i (column), j (row) and k (slice) axes. A voxel's position is
  ``origin + direction @ (spacing * (i, j, k))``.
* Slices are ordered by increasing position along the slice normal (row dir x column dir).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from collections.abc import Sequence

import numpy as np

if TYPE_CHECKING:  # SimpleITK is imported lazily: it costs ~0.15 s.
    import SimpleITK as sitk


@dataclass(frozen=True)
class VoiLut:
    """A VOI LUT Sequence item: input value ``first + n`` shows as ``data[n]`` (of ``2**bits - 1``);
    values below ``first`` as ``data[0]``, above the table as ``data[-1]`` (PS3.3 C.11.2.1.1)."""

    first: int
    data: tuple[int, ...]
    bits: int


@dataclass(frozen=True)
class WindowPreset:
    """A display window (VOI) in modality units.

    ``function``: ``LINEAR_EXACT`` (the default: black at ``center - width/2``, white at ``center +
    width/2``; the built-in presets and dragged windows), or a header window's VOI LUT Function:
    ``LINEAR`` (DICOM's, with its half-unit offsets: what a header window means when it names no
    function), ``SIGMOID``; or ``LUT`` with ``lut`` a VOI LUT table (``center``/``width`` then span
    the table's input range). :func:`viewer.display.windowing.display_mapping` turns any of them into
    display levels plus an optional lookup table, following pydicom's ``apply_voi_lut``.
    """

    name: str
    center: float
    width: float
    function: str = "LINEAR_EXACT"
    lut: VoiLut | None = None


@dataclass
class SeriesInfo:
    """Header facts about a stack that the viewer, the CLI and the review store need."""

    study_uid: str = ""
    series_uid: str = ""
    modality: str = ""
    description: str = ""
    patient_name: str = ""
    patient_id: str = ""
    patient_sex: str = ""
    patient_age: str = ""
    study_date: str = ""
    study_description: str = ""
    series_number: int | None = None
    manufacturer: str = ""
    model_name: str = ""
    body_part: str = ""
    kvp: float | None = None
    frame_of_reference_uid: str = ""
    protocol_name: str = ""
    patient_birth_date: str = ""
    anatomic_regions: tuple[tuple[str, str, str], ...] = ()
    """AnatomicRegionSequence items as (coding scheme, code value, code meaning)."""
    image_type: tuple[str, ...] = ()
    """ImageType values, upper case (ORIGINAL/DERIVED, PRIMARY/SECONDARY, LOCALIZER ...)."""
    slice_thickness: float | None = None
    """SliceThickness (mm) of the middle slice, None when absent."""
    monochrome1: bool = False
    photometric: str = "MONOCHROME2"
    bits_stored: int | None = None
    """BitsStored as the header gives it (None when absent, or for float pixel data)."""
    pixel_signed: bool = False
    rescale: tuple[tuple[float, float], ...] = ()
    """(slope, intercept) of each slice in volume order; empty when a Modality LUT Sequence maps the values."""
    windows: list[WindowPreset] = field(default_factory=list)
    stack_id: str = ""
    """Unique id of this stack: the series UID, suffixed when one series splits into stacks."""
    orientation_source: str | None = None
    """Where the patient orientation comes from: ``"ImageOrientationPatient"`` (with Image Position
    (Patient)), ``"PatientOrientation"`` (a projection image: see ``display_direction``) or ``""`` (none: the
    direction is the engine's stand-in, no orientation letters). None: not said (a volume built elsewhere,
    taken at its word)."""
    pixel_spacing_source: str | None = None
    """The attribute the pixel spacing came from (``"PixelSpacing"``, ``"ImagerPixelSpacing"`` ...), ``""``
    when it was assumed (1 mm: no mm scale). None: not said (taken at its word)."""
    patient_orientation: tuple[str, ...] = ()
    """Patient Orientation (0020,0020) as given, e.g. ("L", "F") for a PA chest film."""
    frame_time_ms: float | None = None
    """A cine loop's time between frames (Frame Time, Cine Rate): the speed it was acquired at."""
    dose_units: str = ""
    """An RT dose grid's Dose Units (``GY`` or ``RELATIVE``; values already times Dose Grid Scaling)."""
    pixel_aspect_ratio: float | None = None
    """Pixel Aspect Ratio (0028,0034) as row over column pixel size when not square (e.g. 4/3); a stack without
    a pixel spacing takes its proportions from it (still no mm)."""
    display_direction: tuple[tuple[float, float, float], ...] | None = None
    """3x3 direction (rows of the matrix whose columns are i, j, k in LPS) to display a projection image with,
    from its Patient Orientation, when it has no Image Orientation (Patient); None: the volume's own."""
    presentation_lut_shape: str = ""
    """Presentation LUT Shape (2050,0020) as given (``IDENTITY``, ``INVERSE`` or "")."""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def shown_inverted(self) -> bool:
        """Is low shown white? MONOCHROME1, or a Presentation LUT Shape INVERSE (one inversion: a MONOCHROME1
        image's INVERSE, as DX requires it, says the same thing again)."""
        return self.monochrome1 or self.presentation_lut_shape == "INVERSE"


@dataclass
class Volume:
    """Pixel data of one stack plus the geometry that places every voxel in the patient."""

    array: np.ndarray
    origin: np.ndarray
    spacing: np.ndarray
    direction: np.ndarray
    sop_instance_uids: list[str]
    info: SeriesInfo = field(default_factory=SeriesInfo)
    warnings: list[str] = field(default_factory=list)
    source_files: list[str] = field(default_factory=list)
    frame_numbers: list[int | None] = field(default_factory=list)
    """1-based frame number within the source file for multi-frame objects, else None."""
    missing: np.ndarray | None = None
    """bool (k,): slices no image was acquired for (a gap in the series; filled with the volume's
    minimum). None (the default) becomes all False."""
    interpolated: np.ndarray | None = None
    """bool (k,): slices interpolated between acquired ones (a variable-pitch series resampled onto a
    uniform grid). None becomes all False."""
    overlay: np.ndarray | None = None
    """uint8 (k, j, i), 1 where a DICOM overlay plane (60xx, e.g. a lesion marked on the scanner) of slice k
    marks the pixel; None when the series has none (viewer.dicom.overlays)."""

    def __post_init__(self) -> None:
        self.origin = np.asarray(self.origin, dtype=np.float64).reshape(3)
        self.spacing = np.asarray(self.spacing, dtype=np.float64).reshape(3)
        self.direction = np.asarray(self.direction, dtype=np.float64).reshape(3, 3)
        if self.array.ndim not in (3, 4):
            raise ValueError(f"Volume array must be (k, j, i) or (k, j, i, 3), got {self.array.shape}")
        if len(self.sop_instance_uids) != self.array.shape[0]:
            raise ValueError("one SOP Instance UID per slice is required")
        n = self.array.shape[0]
        for name in ("missing", "interpolated"):
            mask = getattr(self, name)
            mask = np.zeros(n, dtype=bool) if mask is None else np.asarray(mask, dtype=bool).reshape(-1)
            if mask.shape != (n,):
                raise ValueError(f"{name} must have one flag per slice ({n}), got {mask.shape}")
            setattr(self, name, mask)

    @property
    def missing_mask(self) -> np.ndarray:
        """``missing`` as a bool array (never None after construction)."""
        assert self.missing is not None
        return self.missing

    # -- shape -------------------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, int, int]:
        """(slices, rows, columns)."""
        k, j, i = self.array.shape[:3]
        return int(k), int(j), int(i)

    @property
    def is_color(self) -> bool:
        return self.array.ndim == 4

    @property
    def spacing_zyx(self) -> tuple[float, float, float]:
        """Spacing as (slice, row, column) mm, the order of the array axes."""
        return float(self.spacing[2]), float(self.spacing[1]), float(self.spacing[0])

    # -- geometry ----------------------------------------------------------------------------
    @property
    def affine(self) -> np.ndarray:
        """4x4 matrix from (i, j, k, 1) voxel index to (x, y, z, 1) LPS mm."""
        a = np.eye(4)
        a[:3, :3] = self.direction * self.spacing[np.newaxis, :]
        a[:3, 3] = self.origin
        return a

    def index_to_lps(self, ijk: Sequence[float] | np.ndarray) -> np.ndarray:
        """LPS position (mm) of continuous voxel indices ``(i, j, k)`` (..., 3)."""
        ijk = np.asarray(ijk, dtype=np.float64)
        return self.origin + (ijk * self.spacing) @ self.direction.T

    def lps_to_index(self, xyz: Sequence[float] | np.ndarray) -> np.ndarray:
        """Continuous voxel indices ``(i, j, k)`` of LPS positions (..., 3)."""
        xyz = np.asarray(xyz, dtype=np.float64)
        return ((xyz - self.origin) @ np.linalg.inv(self.direction).T) / self.spacing

    @property
    def slice_normal(self) -> np.ndarray:
        """Unit vector of increasing slice index (LPS)."""
        return self.direction[:, 2].copy()

    def slice_position(self, k: int) -> np.ndarray:
        """LPS position of the first voxel of slice ``k`` (its Image Position (Patient))."""
        return self.index_to_lps((0.0, 0.0, float(k)))

    # -- interchange -------------------------------------------------------------------------
    def to_sitk(self) -> sitk.Image:
        """The same voxels and geometry as a SimpleITK image (vector pixels for colour)."""
        import SimpleITK as sitk

        img = sitk.GetImageFromArray(self.array, isVector=self.is_color)
        img.SetOrigin(tuple(float(v) for v in self.origin))
        img.SetSpacing(tuple(float(v) for v in self.spacing))
        img.SetDirection(tuple(float(v) for v in self.direction.reshape(-1)))
        return img

    @classmethod
    def from_sitk(cls, img: sitk.Image, sop_instance_uids: list[str] | None = None) -> Volume:
        import SimpleITK as sitk

        arr = sitk.GetArrayFromImage(img)
        if arr.ndim == 2:
            arr = arr[np.newaxis]
        if img.GetNumberOfComponentsPerPixel() == 1:
            arr = arr.astype(np.float32, copy=False)
        uids = sop_instance_uids if sop_instance_uids is not None else [""] * arr.shape[0]
        return cls(
            array=arr,
            origin=np.array(img.GetOrigin()),
            spacing=np.array(img.GetSpacing()),
            direction=np.array(img.GetDirection()).reshape(3, 3),
            sop_instance_uids=uids,
        )
