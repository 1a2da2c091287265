"""The data types of the chest phantom: parameters, nodules and the generated volume.

Phantom frame (mm): ``x`` increases towards the patient's left, ``y`` towards posterior and ``z``
towards superior, i.e. the LPS axes. ``x = 0`` is the midline, ``y = 0`` the centre of the body
outline, ``z = 0`` the top of the right diaphragm dome. The array is indexed ``(k, j, i)`` =
(z, y, x), so an axial slice ``hu[k]`` is displayed as in a CT viewer (patient right on the image
left, anterior at the top) and slices run from inferior to superior, the DESIGN slice order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

NoduleKind = Literal["solid", "part-solid", "ground-glass", "spiculated", "lobulated"]
NODULE_KINDS: tuple[NoduleKind, ...] = ("solid", "part-solid", "ground-glass", "spiculated", "lobulated")


@dataclass(frozen=True)
class NoduleSpec:
    """A nodule requested at a fixed place (the demo study); unspecified fields are drawn."""

    kind: NoduleKind
    diameter_mm: float
    side: Literal["left", "right"] = "right"
    height: float = 0.5
    """Position between the lung base (0) and apex (1) of the scanned lung."""
    juxtapleural: bool = False
    hu: float | None = None


@dataclass(frozen=True)
class ChestParams:
    """What to generate. Anatomy is drawn from ``seed``; sizes are in mm."""

    n_slices: int = 64
    matrix: tuple[int, int] = (256, 256)
    """(rows, columns)."""
    pixel_spacing: tuple[float, float] | None = None
    """(row, column) mm; None gives a 360 mm field of view."""
    slice_spacing: float = 5.0
    slice_thickness: float | None = None
    """Reconstructed slice thickness (mm); None means equal to the spacing."""
    z_center: float | None = None
    """Scan centre in the phantom frame (mm); None centres the scan on the lungs (with jitter)."""
    n_nodules: int | tuple[int, int] = (0, 3)
    """A count, or an inclusive (min, max) range drawn uniformly."""
    nodule_diameter_mm: tuple[float, float] = (4.0, 25.0)
    nodule_kinds: tuple[NoduleKind, ...] = NODULE_KINDS
    juxtapleural_fraction: float = 0.2
    vessel_attached_fraction: float = 0.25
    """Share of random (not juxtapleural) nodules centred on a small vessel."""
    nodules: tuple[NoduleSpec, ...] = ()
    """Nodules at requested places, added to the ``n_nodules`` random ones."""
    noise_hu: float | None = None
    """Noise standard deviation (HU) in water for an average body; None draws 8-30 HU."""
    contrast_hu: float | None = None
    """Iodine enhancement of blood (HU added to 40); None draws: none (60%) or 100-260 HU."""
    noise: bool = True
    """False skips blur and noise (a clean phantom, e.g. for projections)."""
    vessel_min_radius_mm: float = 0.5
    """Thinnest vessel branch drawn; larger is faster (fewer branches)."""
    table: bool = True
    seed: int = 0

    def __post_init__(self) -> None:
        if self.n_slices < 1 or min(self.matrix) < 16:
            raise ValueError(f"need n_slices >= 1 and a matrix of at least 16x16, got {self}")
        if self.slice_spacing <= 0 or (self.pixel_spacing is not None and min(self.pixel_spacing) <= 0):
            raise ValueError("spacings must be positive")
        lo, hi = self.nodule_diameter_mm
        if not 0 < lo <= hi:
            raise ValueError(f"nodule_diameter_mm must be 0 < min <= max, got {self.nodule_diameter_mm}")
        counts = (self.n_nodules,) * 2 if isinstance(self.n_nodules, int) else tuple(self.n_nodules)
        if len(counts) != 2 or not 0 <= counts[0] <= counts[1]:
            raise ValueError(f"n_nodules must be a count >= 0 or a (min, max) range, got {self.n_nodules}")
        if not self.nodule_kinds or set(self.nodule_kinds) - set(NODULE_KINDS):
            raise ValueError(f"nodule_kinds must be a non-empty subset of {NODULE_KINDS}, got {self.nodule_kinds}")
        for name in ("juxtapleural_fraction", "vessel_attached_fraction"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must lie in [0, 1], got {getattr(self, name)}")
        if self.vessel_min_radius_mm <= 0:
            raise ValueError("vessel_min_radius_mm must be positive")

    @property
    def spacing_rc(self) -> tuple[float, float]:
        """(row, column) pixel spacing in mm."""
        if self.pixel_spacing is not None:
            return float(self.pixel_spacing[0]), float(self.pixel_spacing[1])
        return 360.0 / self.matrix[0], 360.0 / self.matrix[1]

    @property
    def thickness(self) -> float:
        return float(self.slice_thickness or self.slice_spacing)

    def nodule_count(self, rng: np.random.Generator) -> int:
        if isinstance(self.n_nodules, int):
            return self.n_nodules
        lo, hi = self.n_nodules
        return int(rng.integers(lo, hi + 1))


@dataclass(frozen=True)
class Nodule:
    """One generated nodule (ground truth)."""

    kind: NoduleKind
    center_mm: tuple[float, float, float]
    """(x, y, z) in the phantom frame (LPS axes)."""
    center_voxel: tuple[float, float, float]
    """(k, j, i) continuous array index of the centre."""
    diameter_mm: float
    hu: float
    """Mean HU of the nodule's solid (or, for ground-glass, its only) component."""
    contrast_hu: float
    """``hu`` minus the local lung parenchyma."""
    juxtapleural: bool
    side: Literal["left", "right"]
    solid_fraction: float = 1.0
    """Diameter fraction of the solid core (part-solid); 0 for pure ground-glass."""
    vessel_attached: bool = False
    """Centred on a small vessel (a vessel runs into it)."""


@dataclass
class Phantom:
    """A chest CT phantom in HU with its nodules' ground truth."""

    hu: np.ndarray
    """float32 (k, j, i) HU."""
    nodule_mask: np.ndarray
    """bool (k, j, i), true inside any nodule."""
    nodules: list[Nodule]
    spacing_zyx: tuple[float, float, float]
    origin_xyz: tuple[float, float, float]
    """Phantom-frame position (mm) of voxel (k=0, j=0, i=0)."""
    params: ChestParams
    lung_mask: np.ndarray = field(repr=False, default_factory=lambda: np.zeros((0, 0, 0), bool))
    """bool (k, j, i): lung parenchyma (vessels and nodules inside it included)."""
    body_mask: np.ndarray = field(repr=False, default_factory=lambda: np.zeros((0, 0, 0), bool))
    labels: dict[str, np.ndarray] = field(repr=False, default_factory=dict)
    """Extra masks by tissue name (``bone``, ``vessels``, ``airways``, ``heart``) for tests/training."""
    landmarks: dict[str, np.ndarray] = field(repr=False, default_factory=dict)
    """Phantom-frame points (n, 3) mm of nodule look-alikes: ``branch_points``, ``rib_ends``."""
    noise_hu: float = 0.0
    """The noise standard deviation used (HU, before the per-slice size gain)."""
    blood_hu: float = 40.0
    """Blood HU used (40 without contrast)."""
    psf_mm: float = 0.0
    """Gaussian sigma (mm) of the in-plane blur (the reconstruction kernel); 0 without noise."""

    @property
    def shape(self) -> tuple[int, int, int]:
        k, j, i = self.hu.shape
        return int(k), int(j), int(i)

    def voxel_to_mm(self, kji: np.ndarray | tuple[float, float, float]) -> np.ndarray:
        """Phantom-frame (x, y, z) mm of continuous (k, j, i) indices (..., 3)."""
        kji = np.asarray(kji, dtype=np.float64)
        xyz = kji[..., ::-1] * np.asarray(self.spacing_zyx[::-1])
        return xyz + np.asarray(self.origin_xyz)

    def mm_to_voxel(self, xyz: np.ndarray | tuple[float, float, float]) -> np.ndarray:
        """Continuous (k, j, i) indices of phantom-frame (x, y, z) mm (..., 3)."""
        xyz = np.asarray(xyz, dtype=np.float64)
        ijk = (xyz - np.asarray(self.origin_xyz)) / np.asarray(self.spacing_zyx[::-1])
        return ijk[..., ::-1]

    def slices_with_nodules(self) -> np.ndarray:
        """bool (k,): slices that contain any nodule voxel."""
        return self.nodule_mask.any(axis=(1, 2))
