"""Review flag types: verdicts, regions, the image context a flag is made in, and the flag itself.

Pixel coordinates are continuous ``(column, row)`` indices of the image with integer values at
pixel *centres* (RadScope's volume convention); DICOM SCOORD adds 0.5 (its origin is the top-left
corner of the top-left pixel). Patient coordinates are LPS millimetres.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from enum import Enum
from typing import Any
from collections.abc import Sequence

import numpy as np


class Verdict(str, Enum):
    """What the reviewer says about the model's output on an image."""

    CORRECT = "correct"
    FALSE_POSITIVE = "false_positive"
    FALSE_NEGATIVE = "false_negative"
    MISLOCALISED = "mislocalised"
    UNCERTAIN = "uncertain"

    @property
    def title(self) -> str:
        return _TITLES[self]

    @classmethod
    def parse(cls, text: str) -> Verdict:
        """A verdict from its value or a common alias (``missed``, ``false-positive``, ``fp`` ...)."""
        key = text.strip().lower().replace("-", "_").replace(" ", "_")
        key = _ALIASES.get(key, key)
        try:
            return cls(key)
        except ValueError:
            allowed = ", ".join(v.value for v in cls)
            raise ValueError(f"unknown verdict {text!r}; allowed: {allowed} (or 'missed')") from None


_TITLES = {
    Verdict.CORRECT: "Correct",
    Verdict.FALSE_POSITIVE: "False positive",
    Verdict.FALSE_NEGATIVE: "False negative (missed)",
    Verdict.MISLOCALISED: "Mislocalised",
    Verdict.UNCERTAIN: "Uncertain",
}
_ALIASES = {
    "missed": "false_negative",
    "fn": "false_negative",
    "fp": "false_positive",
    "tp": "correct",
    "mislocalized": "mislocalised",
    "wrong_location": "mislocalised",
}

#: Verdicts that say the model was wrong (the "error rate" in the summary).
ERROR_VERDICTS = (Verdict.FALSE_POSITIVE, Verdict.FALSE_NEGATIVE, Verdict.MISLOCALISED)

REGION_KINDS = ("rectangle", "ellipse", "polygon", "point")
_REGION_POINTS = {"rectangle": (2, 2), "ellipse": (2, 2), "point": (1, 1), "polygon": (3, 10_000)}


@dataclass(frozen=True)
class SliceGeometry:
    """Where one image lies in the patient: DICOM IPP, IOP and Pixel Spacing, in LPS mm."""

    position: tuple[float, float, float]
    """Image Position (Patient): centre of the first (top-left) pixel."""
    row_direction: tuple[float, float, float]
    """Unit vector along a row (increasing column index), the first half of IOP."""
    column_direction: tuple[float, float, float]
    """Unit vector along a column (increasing row index), the second half of IOP."""
    pixel_spacing: tuple[float, float]
    """(row spacing, column spacing) mm, as DICOM Pixel Spacing."""
    frame_of_reference_uid: str = ""

    def to_lps(self, points_px: np.ndarray) -> np.ndarray:
        """LPS mm of ``(column, row)`` pixel-centre coordinates (n, 2) -> (n, 3)."""
        pts = np.asarray(points_px, dtype=np.float64).reshape(-1, 2)
        row_sp, col_sp = self.pixel_spacing
        return (
            np.asarray(self.position)
            + np.outer(pts[:, 0] * col_sp, self.row_direction)
            + np.outer(pts[:, 1] * row_sp, self.column_direction)
        )


@dataclass(frozen=True)
class Region:
    """A region drawn on one image.

    ``points_px``: rectangle and ellipse: two opposite corners of the (axis-aligned) bounding box;
    polygon: its vertices (closed implicitly); point: one point. ``points_lps`` holds the same
    points in patient space (empty when the image has no geometry).
    """

    kind: str
    points_px: tuple[tuple[float, float], ...]
    points_lps: tuple[tuple[float, float, float], ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in REGION_KINDS:
            raise ValueError(f"unknown region kind {self.kind!r}; allowed: {', '.join(REGION_KINDS)}")
        lo, hi = _REGION_POINTS[self.kind]
        n = len(self.points_px)
        if not lo <= n <= hi:
            need = str(lo) if lo == hi else f"{lo} to {hi}"
            raise ValueError(f"a {self.kind} region needs {need} points, got {n}")
        if self.points_lps and len(self.points_lps) != n:
            raise ValueError("points_lps must have one entry per pixel point")
        values = [v for p in self.points_px for v in p] + [v for p in self.points_lps for v in p]
        if not all(math.isfinite(v) for v in values):
            raise ValueError("region coordinates must be finite numbers")

    @classmethod
    def make(cls, kind: str, points_px: Sequence[Sequence[float]], geometry: SliceGeometry | None = None) -> Region:
        """A region from pixel points, with LPS points computed from ``geometry`` when given."""
        px = tuple((float(x), float(y)) for x, y in points_px)
        lps: tuple[tuple[float, float, float], ...] = ()
        if geometry is not None:
            lps = tuple(tuple(float(v) for v in p) for p in geometry.to_lps(np.array(px)))  # type: ignore[misc]
        return cls(kind, px, lps)

    def outline_px(self) -> np.ndarray:
        """Closed outline (first point repeated) in pixel coordinates; rectangles give 5 points."""
        pts = np.array(self.points_px, dtype=np.float64)
        if self.kind == "rectangle":
            (x0, y0), (x1, y1) = pts
            return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]])
        if self.kind == "polygon":
            return np.vstack([pts, pts[:1]])
        return pts

    def ellipse_axes_px(self) -> np.ndarray:
        """An ellipse's major-axis then minor-axis endpoints (4, 2), as DICOM ELLIPSE wants."""
        (x0, y0), (x1, y1) = self.points_px
        cx, cy, rx, ry = (x0 + x1) / 2, (y0 + y1) / 2, abs(x1 - x0) / 2, abs(y1 - y0) / 2
        horizontal = [[cx - rx, cy], [cx + rx, cy]]
        vertical = [[cx, cy - ry], [cx, cy + ry]]
        return np.array(horizontal + vertical if rx >= ry else vertical + horizontal)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "points_px": [list(p) for p in self.points_px],
                "points_lps": [list(p) for p in self.points_lps]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Region:
        return cls(
            str(data["kind"]),
            tuple((float(x), float(y)) for x, y in data["points_px"]),
            tuple((float(x), float(y), float(z)) for x, y, z in data.get("points_lps") or ()),
        )


@dataclass(frozen=True)
class ModelInfo:
    """The model whose output is being reviewed."""

    name: str = ""
    version: str = ""
    sha256: str = ""


@dataclass(frozen=True)
class HeaderAttributes:
    """Acquisition and patient attributes the summary splits rates by."""

    manufacturer: str = ""
    scanner_model: str = ""
    kvp: str = ""
    patient_sex: str = ""
    age_band: str = ""
    body_part: str = ""
    modality: str = ""


@dataclass(frozen=True)
class StudyHeader:
    """Study-level header facts kept with the flags so DICOM export needs no source files."""

    patient_name: str = ""
    patient_id: str = ""
    patient_birth_date: str = ""
    patient_sex: str = ""
    patient_age: str = ""
    study_id: str = ""
    accession_number: str = ""
    study_date: str = ""
    study_time: str = ""
    study_description: str = ""
    referring_physician_name: str = ""


@dataclass(frozen=True)
class ImageContext:
    """The image a reviewer is looking at when flagging, with everything a flag records about it."""

    study_uid: str
    series_uid: str
    slice_index: int
    sop_instance_uids: tuple[str, ...]
    sop_class_uid: str = ""
    stack_id: str = ""
    frame_number: int | None = None
    geometry: SliceGeometry | None = None
    headers: HeaderAttributes = field(default_factory=HeaderAttributes)
    study: StudyHeader = field(default_factory=StudyHeader)
    model: ModelInfo = field(default_factory=ModelInfo)
    method: str = ""
    threshold: float | None = None
    rows: int = 0
    columns: int = 0
    scope_note: str = ""
    """Non-empty when the model's results were made outside its intended use (a run forced by hand):
    ``outside intended use: <reason>``, recorded with every flag made on them."""


@dataclass(frozen=True)
class Flag:
    """One reviewer verdict on one image (and optionally a region of it)."""

    id: str
    study_uid: str
    series_uid: str
    stack_id: str
    slice_index: int
    sop_instance_uids: tuple[str, ...]
    sop_class_uid: str
    frame_number: int | None
    verdict: Verdict
    label: str
    region: Region | None
    comment: str
    reviewer: str
    created: str
    updated: str
    model: ModelInfo
    method: str
    threshold: float | None
    headers: HeaderAttributes
    frame_of_reference_uid: str = ""
    scope_note: str = ""
    """``outside intended use: <reason>`` when the flagged results came from a run outside the model's
    intended use; empty otherwise."""
    deleted: bool = False
    version: int = 1
    """Bumped by every change the store records (optimistic concurrency: an edit names the version it saw)."""

    def with_changes(self, **changes: Any) -> Flag:
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (the export/import format of one flag)."""
        d = asdict(self)
        d["verdict"] = self.verdict.value
        d["sop_instance_uids"] = list(self.sop_instance_uids)
        d["region"] = self.region.to_dict() if self.region else None
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Flag:
        region = data.get("region")
        return cls(
            id=str(data["id"]),
            study_uid=str(data["study_uid"]),
            series_uid=str(data["series_uid"]),
            stack_id=str(data.get("stack_id") or ""),
            slice_index=int(data["slice_index"]),
            sop_instance_uids=tuple(str(u) for u in data.get("sop_instance_uids") or ()),
            sop_class_uid=str(data.get("sop_class_uid") or ""),
            frame_number=None if data.get("frame_number") is None else int(data["frame_number"]),
            verdict=Verdict.parse(str(data["verdict"])),
            label=str(data.get("label") or ""),
            region=Region.from_dict(region) if region else None,
            comment=str(data.get("comment") or ""),
            reviewer=str(data.get("reviewer") or ""),
            created=str(data["created"]),
            updated=str(data.get("updated") or data["created"]),
            model=ModelInfo(**(data.get("model") or {})),
            method=str(data.get("method") or ""),
            threshold=None if data.get("threshold") is None else float(data["threshold"]),
            headers=HeaderAttributes(**(data.get("headers") or {})),
            frame_of_reference_uid=str(data.get("frame_of_reference_uid") or ""),
            deleted=bool(data.get("deleted", False)),
            version=int(data.get("version") or 1),
        )


def age_band(patient_age: str) -> str:
    """A decade band ("40-49", "90+") from a DICOM Age String ("045Y", "006M"), else ""."""
    text = (patient_age or "").strip().upper()
    if len(text) < 2 or not text[:-1].isdigit() or text[-1] not in "DWMY":
        return ""
    years = int(text[:-1]) / {"D": 365.25, "W": 52.18, "M": 12.0, "Y": 1.0}[text[-1]]
    if years >= 90:
        return "90+"
    low = int(years // 10) * 10
    return f"{low}-{low + 9}"
