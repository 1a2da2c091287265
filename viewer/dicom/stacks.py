"""Grouping slices into stacks, sorting them along the slice normal, and their geometry.

A *stack* is what becomes one :class:`~viewer.dicom.volume.Volume`: slices of one series that share
orientation, matrix size and pixel format, sorted by position along the slice normal (row direction x
column direction; never by instance number or file name). A series whose orientation or size changes,
or that holds a localizer, splits into several stacks; the largest keeps the series UID as its
``stack_id``, the others get ``UID.2``, ``UID.3``...

Geometry choices: the origin is the first sorted slice's Image Position (Patient); the i and j
direction columns are the row and column cosines. The k column is the *true step direction* between
the first and last slice positions (so with gantry tilt the direction matrix is not orthogonal and
every voxel still lands at its DICOM position); the slice spacing is the mean step length. Gaps,
non-uniform steps, tilt and dropped duplicate positions are reported in ``warnings``.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any
from collections.abc import Iterable

import numpy as np

from viewer.dicom.headers import SliceHeader, read_dataset, slice_normal
from viewer.dicom.volume import SeriesInfo

POSITION_TOL_MM = 0.01
"""Two slices closer than this along the normal share a position."""
UNIFORM_TOL = 0.01
"""Relative step deviation above which spacing is reported non-uniform."""
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

    @property
    def stack_id(self) -> str:
        return self.info.stack_id

    @property
    def n_slices(self) -> int:
        return len(self.slices)

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

    @property
    def sop_instance_uids(self) -> list[str]:
        return [s.sop_uid for s in self.slices]

    @property
    def files(self) -> list[str]:
        """Source file of each slice (a multi-frame file repeats)."""
        return [s.file.path for s in self.slices]

    @property
    def frame_numbers(self) -> list[int | None]:
        """1-based frame number of each slice within its file (None for single-frame files)."""
        return [None if s.frame is None else s.frame + 1 for s in self.slices]

    def read_header(self, k: int) -> Any:
        """The full pydicom ``Dataset`` of slice ``k`` (pixel data not loaded).

        For a frame of a multi-frame file this is the whole file's dataset; the frame's own
        functional groups are ``ds.PerFrameFunctionalGroupsSequence[stack.frame_numbers[k] - 1]``.
        """
        return read_dataset(self.slices[k].file.path, stop_before_pixels=True)

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
    where = ("orientation", orientations.key(s)) if s.position is not None else ("file", s.file.path)
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


def _sort_and_geometry(slices: list[SliceHeader]) -> tuple[list[SliceHeader], np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """Sort along the normal, drop duplicate positions; origin, spacing (x, y, z), direction, warnings."""
    warnings: list[str] = []
    first = slices[0]
    spacing_rc = first.pixel_spacing
    if spacing_rc is None:
        spacing_rc = (1.0, 1.0)
        warnings.append("no PixelSpacing/ImagerPixelSpacing: pixel spacing assumed 1.0 mm")
    elif first.spacing_source == "ImagerPixelSpacing":
        warnings.append("pixel spacing from ImagerPixelSpacing (at the detector, not the patient)")
    elif first.spacing_source == "SequenceOfUltrasoundRegions":
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
        return slices, np.zeros(3), spacing, np.eye(3), warnings

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
        return slices, origin, np.array([spacing_rc[1], spacing_rc[0], dz]), direction, warnings

    positions = np.array([s.position for s in slices], dtype=np.float64)
    total = positions[-1] - positions[0]
    step_len = float(np.linalg.norm(total)) / (len(slices) - 1)
    k_dir = total / np.linalg.norm(total)
    tilt = float(np.degrees(np.arccos(np.clip(k_dir @ normal, -1.0, 1.0))))
    if tilt > TILT_TOL_DEG:
        direction[:, 2] = k_dir
        warnings.append(
            f"gantry tilt / non-orthogonal slices: slice step is {tilt:.2f} deg off the slice normal "
            "(direction's k column is the true step direction)"
        )
    steps = np.linalg.norm(np.diff(positions, axis=0), axis=1)
    med = float(np.median(steps))
    if np.any(steps > 1.5 * med):
        gaps = [int(n) for n in np.nonzero(steps > 1.5 * med)[0]]
        warnings.append(
            f"gap in slice positions after slice(s) {gaps[:10]} (step up to {steps.max():.3f} mm, "
            f"typical {med:.3f} mm): the volume places slices at uniform {step_len:.3f} mm"
        )
    elif np.any(np.abs(steps - step_len) > UNIFORM_TOL * step_len):
        warnings.append(
            f"non-uniform slice spacing: steps from {steps.min():.3f} to {steps.max():.3f} mm "
            f"(volume uses the mean {step_len:.3f} mm)"
        )
    return slices, origin, np.array([spacing_rc[1], spacing_rc[0], step_len]), direction, warnings


def _series_info(slices: list[SliceHeader], stack_id: str) -> SeriesInfo:
    h = slices[0].file
    facts = h.facts
    return SeriesInfo(
        study_uid=h.study_uid,
        series_uid=h.series_uid,
        modality=h.modality,
        monochrome1=h.fmt.photometric == "MONOCHROME1",
        photometric=h.fmt.photometric,
        bits_stored=h.fmt.bits_stored if h.fmt.bits_stored_given and not h.fmt.float_data else None,
        pixel_signed=h.fmt.signed,
        rescale=() if h.fmt.has_modality_lut else tuple((s.slope, s.intercept) for s in slices),
        windows=list(slices[len(slices) // 2].windows),
        stack_id=stack_id,
        image_type=h.image_type,
        slice_thickness=slices[len(slices) // 2].thickness,
        extra={"transfer_syntax": h.fmt.ts_name, "image_type": list(h.image_type), "sop_class_uid": h.sop_class_uid},
        **{k: v for k, v in facts.items()},
    )


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
        built = []
        for group in groups:
            sorted_slices, origin, spacing, direction, warnings = _sort_and_geometry(group)
            built.append((sorted_slices, origin, spacing, direction, warnings))
        built.sort(key=lambda b: (-len(b[0]), b[0][0].file.is_localizer, b[0][0].file.path))
        for n, (sorted_slices, origin, spacing, direction, warnings) in enumerate(built):
            stack_id = key[1] if n == 0 else f"{key[1]}.{n + 1}"
            stacks.append(Stack(_series_info(sorted_slices, stack_id), sorted_slices, origin, spacing, direction, warnings))
    return stacks
