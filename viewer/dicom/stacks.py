"""Grouping slices into stacks, sorting them along the slice normal, and their geometry.

A *stack* is what becomes one :class:`~viewer.dicom.volume.Volume`: slices of one series that share
orientation, matrix size and pixel format, sorted by position along the slice normal (row direction x
column direction; never by instance number or file name). A series whose orientation or size changes,
or that holds a localizer, splits into several stacks; the largest keeps the series UID as its
``stack_id``, the others get ``UID.2``, ``UID.3``...

Geometry choices: the i and j direction columns are the row and column cosines. The slice positions
are fitted to a uniform grid (:mod:`viewer.dicom.grid`): the k column is the *true step direction*
(so with gantry tilt the direction matrix is not orthogonal and every voxel still lands at its DICOM
position), the slice spacing is the typical step, and a missing slice keeps its place as a missing
grid slice; variable pitch is resampled onto a uniform grid, too sparse a stack is refused. The
volume's slice ``k`` is grid slice ``k``: ``n_slices``, ``sop_instance_uids``, ``frame_numbers`` and
``read_header(k)`` follow the grid (``""`` / ``None`` at missing slices); ``slices`` holds the acquired
slices' headers only. Gaps, resampling, tilt and dropped duplicate positions are reported in ``warnings``.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any
from collections.abc import Iterable

import numpy as np

from viewer.dicom.grid import SliceGrid, fit_grid
from viewer.dicom.headers import SliceHeader, read_dataset, slice_normal
from viewer.dicom.projection import geometry_facts
from viewer.dicom.volume import SeriesInfo

POSITION_TOL_MM = 0.01
"""Two slices closer than this along the normal share a position."""
TILT_TOL_DEG = 0.01


@dataclass
class Stack:
    """A sorted set of slices that loads as one Volume (see module docstring for the geometry)."""

    info: SeriesInfo
    slices: list[SliceHeader]
    origin: np.ndarray
    spacing: np.ndarray
    """(x, y, z) = (column, row, slice) mm, SimpleITK order."""
    direction: np.ndarray
    """3x3, columns = unit vectors of i, j, k in LPS."""
    warnings: list[str] = field(default_factory=list)
    keep_alive: Any = field(default=None, repr=False, compare=False)
    """Whatever must outlive the stack (the temporary folder of an extracted zip)."""
    grid: SliceGrid | None = field(default=None, repr=False)
    """Where each acquired slice sits among the volume's slices (None: one volume slice per acquired slice)."""
    duplicates: dict[int, list[SliceHeader]] = field(default_factory=dict, repr=False)
    """Acquired slice index -> other slices at the same position (dropped; decoded instead when it fails)."""

    def __post_init__(self) -> None:
        if self.grid is None:
            self.grid = SliceGrid.identity(len(self.slices))

    @property
    def stack_id(self) -> str:
        return self.info.stack_id

    @property
    def slice_grid(self) -> SliceGrid:
        assert self.grid is not None
        return self.grid

    @property
    def n_slices(self) -> int:
        """Slices of the volume (grid slices, missing ones included)."""
        return self.slice_grid.n

    @property
    def missing(self) -> np.ndarray:
        """bool (n_slices,): volume slices no acquired slice fills."""
        return self.slice_grid.missing

    def header_at(self, k: int) -> SliceHeader | None:
        """The acquired slice at volume slice ``k`` (None where it is missing or interpolated)."""
        src = int(self.slice_grid.source_of[k])
        return None if src < 0 else self.slices[src]

    @property
    def rows(self) -> int:
        return self.slices[0].rows

    @property
    def columns(self) -> int:
        return self.slices[0].columns

    @property
    def is_color(self) -> bool:
        return self.slices[0].file.fmt.is_color

    @property
    def spacing_zyx(self) -> tuple[float, float, float]:
        """(slice, row, column) mm, the order of the array axes."""
        return float(self.spacing[2]), float(self.spacing[1]), float(self.spacing[0])

    def _per_slice(self) -> list[SliceHeader | None]:
        return [None if src < 0 else self.slices[src] for src in self.slice_grid.source_of]

    @property
    def sop_instance_uids(self) -> list[str]:
        """SOP Instance UID of each volume slice (``""`` where missing or interpolated)."""
        return [s.sop_uid if s is not None else "" for s in self._per_slice()]

    @property
    def files(self) -> list[str]:
        """Source file of each acquired slice (a multi-frame file repeats)."""
        return [s.file.path for s in self.slices]

    @property
    def slice_files(self) -> list[str]:
        """Source file of each volume slice (``""`` where missing or interpolated)."""
        return [s.file.path if s is not None else "" for s in self._per_slice()]

    @property
    def frame_numbers(self) -> list[int | None]:
        """1-based frame number of each volume slice within its file (None for single-frame files and
        missing slices)."""
        return [None if s is None or s.frame is None else s.frame + 1 for s in self._per_slice()]

    def read_header(self, k: int) -> Any:
        """The full pydicom ``Dataset`` of volume slice ``k`` (pixel data not loaded); ValueError for a
        missing or interpolated slice.

        For a frame of a multi-frame file this is the whole file's dataset; the frame's own
        functional groups are ``ds.PerFrameFunctionalGroupsSequence[stack.frame_numbers[k] - 1]``.
        """
        s = self.header_at(k)
        if s is None:
            raise ValueError(f"slice {k} of series {self.stack_id} was not acquired (missing or interpolated): "
                             "it has no header")
        return read_dataset(s.file.path, stop_before_pixels=True)

    def __repr__(self) -> str:
        return (f"Stack({self.stack_id!r}, {self.info.modality}, {self.n_slices}x{self.rows}x{self.columns}, "
                f"spacing_zyx={tuple(round(v, 4) for v in self.spacing_zyx)})")


ORIENTATION_TOL = 1e-3
"""Direction cosines closer than this (max abs difference) count as the same orientation."""


class _Orientations:
    """Clusters orientations by tolerance (rounding would split values straddling a rounding edge)."""

    def __init__(self) -> None:
        self.seen: list[np.ndarray] = []

    def key(self, s: SliceHeader) -> int | None:
        if s.orientation is None:
            return None
        for n, o in enumerate(self.seen):
            if float(np.max(np.abs(o - s.orientation))) < ORIENTATION_TOL:
                return n
        self.seen.append(s.orientation)
        return len(self.seen) - 1


def _geometry_key(s: SliceHeader, orientations: _Orientations) -> tuple[Any, ...]:
    f = s.file.fmt
    # frames without a position cannot be sorted against other files: keep each file on its own
    placed = s.position is not None and s.orientation is not None
    where = ("orientation", orientations.key(s)) if placed else ("file", s.file.path)
    return (where, s.rows, s.columns, f.samples, f.photometric == "PALETTE COLOR", s.file.is_localizer)


def _normal(s: SliceHeader) -> np.ndarray:
    assert s.orientation is not None
    return slice_normal(s.orientation)


def _has_duplicates(slices: list[SliceHeader]) -> bool:
    if slices[0].position is None or len(slices) < 2:
        return False
    d = np.sort([float(s.position @ _normal(s)) for s in slices])  # type: ignore[operator]
    return bool(np.any(np.diff(d) < POSITION_TOL_MM))


def _split_groups(slices: list[SliceHeader]) -> list[list[SliceHeader]]:
    """Split by geometry; split further by acquisition/echo/temporal keys only if that removes duplicates."""
    groups: dict[tuple[Any, ...], list[SliceHeader]] = defaultdict(list)
    orientations = _Orientations()
    for s in slices:
        groups[_geometry_key(s, orientations)].append(s)
    out: list[list[SliceHeader]] = []
    for group in groups.values():
        if _has_duplicates(group):
            sub: dict[tuple[Any, ...], list[SliceHeader]] = defaultdict(list)
            for s in group:
                sub[s.split_key].append(s)
            if len(sub) > 1 and not any(_has_duplicates(g) for g in sub.values()):
                out.extend(sub.values())
                continue
        out.append(group)
    return out


def _common_spacing(slices: list[SliceHeader], warnings: list[str]) -> tuple[tuple[float, float] | None, str]:
    """The pixel spacing most slices give (one slice with a missing or ignored value does not decide for the
    stack); a warning when the slices disagree."""
    counts = Counter((s.pixel_spacing, s.spacing_source) for s in slices)
    if len(counts) == 1:
        return slices[0].pixel_spacing, slices[0].spacing_source
    given = [(n, key) for key, n in counts.items() if key[0] is not None]
    if not given:
        return None, ""
    n, (spacing, source) = max(given, key=lambda g: g[0])
    assert spacing is not None
    warnings.append(f"pixel spacing differs between slices: {n} of {len(slices)} give {spacing[0]:g} x {spacing[1]:g} mm "
                    f"({source}), which the volume uses")
    return spacing, source


def _sort_and_geometry(
    slices: list[SliceHeader],
) -> tuple[list[SliceHeader], np.ndarray, np.ndarray, np.ndarray, list[str], SliceGrid]:
    """Sort along the normal, drop duplicate positions; origin, spacing (x, y, z), direction, warnings, grid."""
    notes: dict[str, int] = {}
    for s in slices:
        for note in s.notes:
            notes[note] = notes.get(note, 0) + 1
    warnings = [f"{note} ({count} slice(s))" for note, count in notes.items()]
    first = slices[0]
    spacing_rc, spacing_source = _common_spacing(slices, warnings)
    if spacing_rc is None:
        ratio = first.file.facts.get("pixel_aspect_ratio")
        if ratio:  # non-square pixels of unknown size: shown in their true proportions
            spacing_rc = (ratio, 1.0)
            warnings.append(f"no pixel spacing (PixelSpacing/ImagerPixelSpacing absent or 0): assumed {ratio:.4g} x "
                            "1.0 mm (rows x columns, from PixelAspectRatio)")
        else:
            spacing_rc = (1.0, 1.0)
            warnings.append("no pixel spacing (PixelSpacing/ImagerPixelSpacing absent or 0): assumed 1.0 mm")
    elif spacing_source == "ImagerPixelSpacing":
        warnings.append("pixel spacing from ImagerPixelSpacing (at the detector, not the patient)")
    elif spacing_source == "SequenceOfUltrasoundRegions":
        warnings.append("pixel spacing from the ultrasound region calibration (valid inside the calibrated region)")
    if "MOSAIC" in first.file.image_type and first.tile is None:
        warnings.append("Siemens mosaic that could not be unpacked (no usable CSA header): the tiles are "
                        "shown as stored and positions refer to the whole mosaic")
    if first.position is None or first.orientation is None:
        if len(slices) > 1:
            slices = sorted(slices, key=lambda s: (s.frame or 0, s.instance_number or 0, s.file.path))
            warnings.append("no patient position: frames kept in stored order, slice spacing 1.0 mm")
        thickness = 1.0
        spacing = np.array([spacing_rc[1], spacing_rc[0], thickness])
        return slices, np.zeros(3), spacing, np.eye(3), warnings, SliceGrid.identity(len(slices))

    row, col = first.orientation[:3], first.orientation[3:]
    normal = _normal(first)
    dist = np.array([float(s.position @ normal) for s in slices])  # type: ignore[operator]
    order = np.argsort(dist, kind="stable")
    slices = [slices[o] for o in order]
    dist = dist[order]
    keep = [0]
    for n in range(1, len(slices)):
        if dist[n] - dist[keep[-1]] < POSITION_TOL_MM:
            continue
        keep.append(n)
    if len(keep) < len(slices):
        warnings.append(
            f"duplicate slice positions: {len(slices) - len(keep)} slice(s) at an already used position dropped"
        )
        slices = [slices[n] for n in keep]
        dist = dist[keep]
    origin = np.asarray(slices[0].position, dtype=np.float64)
    direction = np.column_stack([row, col, normal])
    if len(slices) == 1:
        dz = first.thickness if first.thickness and first.thickness > 0 else 1.0
        return slices, origin, np.array([spacing_rc[1], spacing_rc[0], dz]), direction, warnings, SliceGrid.identity(1)

    fit = fit_grid(np.array([s.position for s in slices], dtype=np.float64), normal)
    step_len = float(np.linalg.norm(fit.step))
    k_dir = fit.step / step_len
    tilt = float(np.degrees(np.arccos(np.clip(k_dir @ normal, -1.0, 1.0))))
    if tilt > TILT_TOL_DEG:
        direction[:, 2] = k_dir
        warnings.append(
            f"gantry tilt / non-orthogonal slices: slice step is {tilt:.2f} deg off the slice normal "
            "(direction's k column is the true step direction)"
        )
    warnings += fit.grid.warnings
    if fit.grid.refusal:
        warnings.append(fit.grid.refusal)
    spacing = np.array([spacing_rc[1], spacing_rc[0], step_len])
    return slices, fit.origin, spacing, direction, warnings, fit.grid


def _series_info(slices: list[SliceHeader], stack_id: str, grid: SliceGrid) -> SeriesInfo:
    h = slices[0].file
    nearest = grid.nearest_source
    facts = h.facts
    first = slices[0]
    geometry = geometry_facts(first.position is not None and first.orientation is not None,
                              first.pixel_spacing is not None, first.spacing_source or "", len(slices),
                              facts.get("patient_orientation", ()))
    return SeriesInfo(
        study_uid=h.study_uid,
        series_uid=h.series_uid,
        modality=h.modality,
        monochrome1=h.fmt.photometric == "MONOCHROME1",
        photometric=h.fmt.photometric,
        bits_stored=h.fmt.bits_stored if h.fmt.bits_stored_given and not h.fmt.float_data else None,
        pixel_signed=h.fmt.signed,
        rescale=() if h.fmt.has_modality_lut else tuple((slices[n].slope, slices[n].intercept) for n in nearest),
        windows=list(slices[len(slices) // 2].windows),
        stack_id=stack_id,
        image_type=h.image_type,
        slice_thickness=slices[len(slices) // 2].thickness,
        extra={"transfer_syntax": h.fmt.ts_name, "image_type": list(h.image_type), "sop_class_uid": h.sop_class_uid},
        **{k: v for k, v in facts.items()},
        **geometry,  # type: ignore[arg-type]
    )


def _duplicates_of(group: list[SliceHeader], kept: list[SliceHeader]) -> dict[int, list[SliceHeader]]:
    """The slices of ``group`` that sorting dropped as duplicate positions, by the kept slice they duplicate."""
    kept_ids = {id(s) for s in kept}
    dropped = [s for s in group if id(s) not in kept_ids and s.position is not None and s.orientation is not None]
    if not dropped or kept[0].position is None or kept[0].orientation is None:
        return {}
    normal = _normal(kept[0])
    at = np.array([float(s.position @ normal) for s in kept])  # type: ignore[operator]
    out: dict[int, list[SliceHeader]] = {}
    for s in dropped:
        k = int(np.argmin(np.abs(at - float(s.position @ normal))))  # type: ignore[operator]
        out.setdefault(k, []).append(s)
    return out


def build_stacks(slices: Iterable[SliceHeader]) -> list[Stack]:
    """Group slices by study and series, split into stacks, sort; deterministic order."""
    by_series: dict[tuple[str, str], list[SliceHeader]] = defaultdict(list)
    for s in slices:
        by_series[(s.file.study_uid, s.file.series_uid)].append(s)

    def series_order(key: tuple[str, str]) -> tuple[Any, ...]:
        facts = by_series[key][0].file.facts
        number = facts.get("series_number")
        return (facts.get("study_date") or "", key[0], number if number is not None else 1 << 40, key[1])

    stacks: list[Stack] = []
    for key in sorted(by_series, key=series_order):
        groups = _split_groups(by_series[key])
        built = [(_sort_and_geometry(group), group) for group in groups]
        built.sort(key=lambda b: (-len(b[0][0]), b[0][0][0].file.is_localizer, b[0][0][0].file.path))
        for n, ((sorted_slices, origin, spacing, direction, warnings, grid), group) in enumerate(built):
            stack_id = key[1] if n == 0 else f"{key[1]}.{n + 1}"
            stacks.append(Stack(_series_info(sorted_slices, stack_id, grid), sorted_slices, origin, spacing, direction,
                                warnings, grid=grid, duplicates=_duplicates_of(group, sorted_slices)))
    return stacks
