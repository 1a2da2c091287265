"""Is a series within a model's intended use? The card's rules (`inference.scope`) against header facts.

`evaluate_scope` checks one series (its `SeriesInfo` and geometry) and returns a `ScopeDecision`:
``in_scope``, the ``reasons`` against it in words ("Body part HEAD; this model is for CHEST"), the
``notes`` on what the header did not say (so could not be checked), the acquisition ``plane`` and,
for a 2D model whose card allows reformats, the plane its input is reformatted to. No Qt, no torch.
The image-based half (most slices out of distribution) is added by the caller after a run:
`ScopeDecision.with_ood`.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, replace
from datetime import date
from typing import TYPE_CHECKING
from collections.abc import Sequence

import numpy as np

from inference.scope import TEXT_ATTRIBUTES, ScopeRules
from viewer.ai.reformat import gap_reason, resolution_along

if TYPE_CHECKING:
    from inference.package import ModelCard
    from viewer.dicom.volume import SeriesInfo

PROJECTION_MODALITIES = frozenset({"CR", "DX", "MG", "XA", "RF", "IO", "PX", "RG", "DR", "US", "OP", "XC", "SC"})
"""Modalities whose images are projections or photographs: the acquisition-plane rule does not apply."""
MIN_REFORMAT_SLICES = 8
"""Fewest acquired slices an axial (or other) reformat is made from."""
_AXES = {0: "sagittal", 1: "coronal", 2: "axial"}


@dataclass(frozen=True)
class ScopeDecision:
    """Whether a series is within a model's intended use, and why not."""

    in_scope: bool
    reasons: tuple[str, ...] = ()
    """Why the series is outside intended use (empty when in scope)."""
    notes: tuple[str, ...] = ()
    """What could not be checked (the header was silent) and how the model will see the series."""
    plane: str = ""
    """Acquisition plane: axial, coronal, sagittal, oblique, or '' (projection images / no geometry)."""
    reformat_to: str | None = None
    """The plane a 2D model runs on when it is not the acquired one (reformat), else None."""
    ood_flagged: tuple[int, int] | None = field(default=None)
    """(flagged slices, slices) once the out-of-distribution check ran."""

    @property
    def reason_text(self) -> str:
        return "; ".join(self.reasons)

    def with_ood(self, flags: Sequence[bool] | np.ndarray) -> ScopeDecision:
        """The decision after the per-slice OOD flags are known (most slices flagged: out of scope)."""
        from inference.ood import series_verdict

        f = np.asarray(flags, dtype=bool)
        verdict = series_verdict(f)
        reasons = self.reasons + ((verdict,) if verdict else ())
        return replace(self, in_scope=not reasons, reasons=reasons, ood_flagged=(int(f.sum()), int(f.size)))


def acquisition_plane(direction: np.ndarray, tolerance_deg: float = 20.0) -> tuple[str, float]:
    """(plane, tilt in degrees from it) of a volume whose direction columns are i, j, k in LPS."""
    normal = np.asarray(direction, dtype=np.float64).reshape(3, 3)[:, 2]
    normal = normal / (np.linalg.norm(normal) or 1.0)
    axis = int(np.argmax(np.abs(normal)))
    tilt = math.degrees(math.acos(min(1.0, abs(float(normal[axis])))))
    return (_AXES[axis] if tilt <= tolerance_deg else "oblique"), tilt


def patient_age_years(info: SeriesInfo) -> float | None:
    """PatientAge (``045Y``, ``006M``, ``010W``, ``003D``), else birth date to study date; None if unknown."""
    m = re.fullmatch(r"\s*(\d{1,3})\s*([YMWD]?)\s*", info.patient_age or "")
    if m:
        n = int(m.group(1))
        return n / {"Y": 1.0, "": 1.0, "M": 12.0, "W": 52.1775, "D": 365.25}[m.group(2)]
    try:
        born = date(int(info.patient_birth_date[:4]), int(info.patient_birth_date[4:6]), int(info.patient_birth_date[6:8]))
        seen = date(int(info.study_date[:4]), int(info.study_date[4:6]), int(info.study_date[6:8]))
    except (ValueError, IndexError):
        return None
    years = (seen - born).days / 365.25
    return years if years >= 0 else None


def _fmt(v: float) -> str:
    return f"{v:.3g}"


def _range_text(r: tuple[float, float], unit: str) -> str:
    return f"{_fmt(r[0])}-{_fmt(r[1])} {unit}"


def evaluate_scope(card: ModelCard, info: SeriesInfo, direction: np.ndarray | None, spacing: Sequence[float] | None,
                   n_slices: int) -> ScopeDecision:
    """Check one series against ``card``'s intended-use rules (modality from ``input.modalities`` too).

    ``direction``: 3x3, columns the i, j, k unit vectors (LPS); ``spacing``: (column, row, slice) mm.
    """
    rules = getattr(card, "scope", None) or ScopeRules()
    reasons: list[str] = []
    notes: list[str] = []
    modality = (info.modality or "").upper()
    wanted = rules.modalities or tuple(getattr(getattr(card, "input", None), "modalities", ()) or ())
    if wanted and modality not in wanted:
        reasons.append(f"Modality {modality or 'unknown'}; this model is for {', '.join(wanted)}")

    body = (info.body_part or "").strip().upper()
    if rules.body_parts and body and body not in rules.body_parts:
        reasons.append(f"Body part {body}; this model is for {', '.join(rules.body_parts)}")
    codes = [(f"{s.upper()}:{v.upper()}", m) for s, v, m in info.anatomic_regions]
    if rules.anatomic_regions and codes and not any(c in rules.anatomic_regions for c, _ in codes):
        shown = ", ".join(f"{m} ({c})" if m else c for c, m in codes)
        reasons.append(f"Anatomic region {shown}; this model is for {', '.join(rules.anatomic_regions)}")
    if (rules.body_parts or rules.anatomic_regions) and not body and not codes:
        notes.append("the header names no body part (BodyPartExamined, AnatomicRegionSequence): not checked")

    for name, rule in rules.text:
        label = TEXT_ATTRIBUTES[name]
        text = {"series_description": info.description, "study_description": info.study_description,
                "protocol_name": info.protocol_name}[name].strip()
        if not text:
            notes.append(f"no {label.lower()}: not checked")
            continue
        if rule.exclude is not None and rule.exclude.search(text):
            reasons.append(f"{label} '{text}' matches what this model excludes ({rule.exclude.pattern})")
        elif rule.include is not None and not rule.include.search(text):
            reasons.append(f"{label} '{text}' does not match what this model is for ({rule.include.pattern})")

    plane, reformat_to = "", None
    if modality not in PROJECTION_MODALITIES and direction is not None:
        plane, tilt = acquisition_plane(direction, rules.plane_tolerance_deg)
        if rules.planes and plane not in rules.planes:
            target = rules.reformat_plane
            shown = plane.upper() + (f" ({tilt:.0f} degrees from {_AXES[int(np.argmax(np.abs(np.asarray(direction)[:, 2])))]})"
                                     if plane == "oblique" else "")
            if target is not None and getattr(card, "dims", 2) == 2 and n_slices >= MIN_REFORMAT_SLICES:
                reformat_to = target
                notes.append(f"acquired {shown}: the model runs on {target} reformats")
            else:
                why = f" (too few slices to reformat: {n_slices})" if target is not None else ""
                reasons.append(f"Acquisition plane {shown}; this model is for {', '.join(p.upper() for p in rules.planes)}"
                               f" slices{why}")

    reformat_mm = resolution_along(direction, spacing, reformat_to) if reformat_to and spacing is not None else None
    reformatted = f"{(reformat_to or '').capitalize()} reformat"
    if rules.slice_thickness_mm is not None and reformat_mm is not None:
        if not rules.slice_thickness_mm[0] <= reformat_mm[2] <= rules.slice_thickness_mm[1]:
            reasons.append(f"{reformatted} slices {_fmt(reformat_mm[2])} mm apart in the acquired "
                           f"data; this model is for {_range_text(rules.slice_thickness_mm, 'mm')} slices")
    elif rules.slice_thickness_mm is not None:
        if info.slice_thickness is None:
            notes.append("no slice thickness in the header: not checked")
        elif not rules.slice_thickness_mm[0] <= info.slice_thickness <= rules.slice_thickness_mm[1]:
            reasons.append(f"Slice thickness {_fmt(info.slice_thickness)} mm; this model is for "
                           f"{_range_text(rules.slice_thickness_mm, 'mm')}")
    if rules.pixel_spacing_mm is not None and spacing is not None:
        sx, sy = (float(spacing[0]), float(spacing[1])) if reformat_mm is None else (reformat_mm[0], reformat_mm[1])
        lo, hi = rules.pixel_spacing_mm
        if not (lo <= sx <= hi and lo <= sy <= hi):
            reasons.append(f"{'Pixel' if reformat_mm is None else reformatted + ' pixel'} spacing "
                           f"{_fmt(sy)} x {_fmt(sx)} mm; this model is for "
                           f"{_range_text(rules.pixel_spacing_mm, 'mm')}")
    if rules.patient_age_years is not None:
        age = patient_age_years(info)
        if age is None:
            notes.append("no patient age in the header: not checked")
        elif not rules.patient_age_years[0] <= age <= rules.patient_age_years[1]:
            reasons.append(f"Patient age {_fmt(age)} years; this model is for "
                           f"{_range_text(rules.patient_age_years, 'years')}")
    image_type = {v.upper() for v in info.image_type}
    excluded = [v for v in rules.image_type_exclude if v in image_type]
    if excluded:
        reasons.append(f"Image type {'/'.join(excluded)}; this model excludes {', '.join(rules.image_type_exclude).lower()} images")
    missing = [v for v in rules.image_type_require if v not in image_type]
    if missing and image_type:
        reasons.append(f"Image type {'/'.join(info.image_type)} lacks {', '.join(missing)}, which this model requires")
    return ScopeDecision(not reasons, tuple(reasons), tuple(notes), plane, reformat_to)


def scope_of_stack(card: ModelCard, stack: object) -> ScopeDecision:
    """`evaluate_scope` for a `viewer.dicom.Stack` or `Volume` (anything with info, direction, spacing)."""
    info = stack.info  # type: ignore[attr-defined]
    direction = getattr(stack, "direction", None)
    spacing = getattr(stack, "spacing", None)
    n = stack.n_slices if hasattr(stack, "n_slices") else int(stack.shape[0])  # type: ignore[attr-defined]
    decision = evaluate_scope(card, info, direction, spacing, n)
    missing = getattr(stack, "missing", None)
    if decision.reformat_to is None or missing is None or not np.any(missing):
        return decision
    step = float(np.asarray(spacing, dtype=np.float64).reshape(3)[2]) if spacing is not None else 0.0
    reason = gap_reason(missing, step, decision.reformat_to)
    if reason:
        return replace(decision, in_scope=False, reasons=decision.reasons + (reason,))
    images = ", ".join(f"Im {int(k) + 1}" for k in np.flatnonzero(missing))
    return replace(decision, notes=decision.notes + (
        f"missing acquired slices ({images}) are interpolated across in the {decision.reformat_to} reformat; "
        "findings resting on them say so",))
