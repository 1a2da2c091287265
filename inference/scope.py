"""Intended-use rules of a model card (``"scope"``): which series a model is built for.

In the spirit of MONAI Deploy's DICOM series selector: conditions on header attributes and geometry.
This module only parses and validates the card's ``scope`` object (pure Python, no pydicom, no
torch); ``viewer.ai.scope`` evaluates the rules against a series' header facts and geometry.

Schema (every key optional; a key that is absent does not restrict)::

    "scope": {
      "modalities": ["CT"],                         # Modality; default: input.modalities
      "body_parts": ["CHEST", "THORAX", "LUNG"],     # BodyPartExamined (upper case)
      "anatomic_regions": ["SCT:51185008"],          # AnatomicRegionSequence codes, SCHEME:VALUE
      "series_description": {"include": "REGEX", "exclude": "REGEX"},   # Python regex, re.search,
      "study_description": {"exclude": "(?i)head|brain"},               # case-insensitive
      "protocol_name": {"include": "..."},
      "planes": ["axial"],                           # acquisition plane from the direction cosines
      "plane_tolerance_deg": 20,                     # largest tilt from the plane (default 20)
      "reformat": true,                              # 2D models: run on reformats to the first plane
      "slice_thickness_mm": [0.5, 6.0],              # SliceThickness range (inclusive)
      "pixel_spacing_mm": [0.4, 2.0],                # in-plane spacing range (both row and column)
      "patient_age_years": [18, 120],                # PatientAge, else birth date -> study date
      "image_type": {"exclude": ["LOCALIZER", "DERIVED"], "require": ["ORIGINAL"]}
    }

A header that is silent about an attribute (no BodyPartExamined, no age) does not put a series out of
scope: the evaluator says what it could not check, and the out-of-distribution check covers it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from collections.abc import Callable, Mapping

PLANES = ("axial", "coronal", "sagittal")
DEFAULT_PLANE_TOLERANCE_DEG = 20.0

Fail = Callable[[str, str], Exception]
"""``fail(key, what)`` -> the exception to raise (the card reader names the file)."""


@dataclass(frozen=True)
class TextRule:
    """Regexes on one free-text attribute: it must match ``include`` and must not match ``exclude``."""

    include: re.Pattern[str] | None = None
    exclude: re.Pattern[str] | None = None


@dataclass(frozen=True)
class ScopeRules:
    """A card's intended-use rules, validated."""

    modalities: tuple[str, ...] = ()
    body_parts: tuple[str, ...] = ()
    anatomic_regions: tuple[str, ...] = ()
    """``SCHEME:VALUE`` codes, upper case scheme."""
    text: tuple[tuple[str, TextRule], ...] = ()
    """(attribute name: ``series_description``, ``study_description`` or ``protocol_name``, rule)."""
    planes: tuple[str, ...] = ()
    plane_tolerance_deg: float = DEFAULT_PLANE_TOLERANCE_DEG
    reformat: bool = False
    slice_thickness_mm: tuple[float, float] | None = None
    pixel_spacing_mm: tuple[float, float] | None = None
    patient_age_years: tuple[float, float] | None = None
    image_type_exclude: tuple[str, ...] = ()
    image_type_require: tuple[str, ...] = ()

    @property
    def reformat_plane(self) -> str | None:
        """The plane a 2D model's input is reformatted to, when the card allows reformats."""
        return self.planes[0] if self.reformat and self.planes else None


TEXT_ATTRIBUTES = {"series_description": "Series description", "study_description": "Study description",
                   "protocol_name": "Protocol name"}
_KEYS = {"modalities", "body_parts", "anatomic_regions", *TEXT_ATTRIBUTES, "planes", "plane_tolerance_deg",
         "reformat", "slice_thickness_mm", "pixel_spacing_mm", "patient_age_years", "image_type"}


def _strings(value: Any, key: str, fail: Fail) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(s, str) and s.strip() for s in value):
        raise fail(key, "must be a list of non-empty strings")
    return tuple(s.strip().upper() for s in value)


def _range(value: Any, key: str, fail: Fail) -> tuple[float, float]:
    ok = (isinstance(value, list) and len(value) == 2
          and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
          and 0 <= value[0] <= value[1])
    if not ok:
        raise fail(key, "must be [low, high], two numbers with 0 <= low <= high")
    return float(value[0]), float(value[1])


def _regex(value: Any, key: str, fail: Fail) -> re.Pattern[str] | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise fail(key, "must be a non-empty regular expression string")
    if len(value) > 2000:
        raise fail(key, "is longer than 2000 characters")
    try:
        return re.compile(value, re.IGNORECASE)
    except re.error as exc:
        raise fail(key, f"is not a valid regular expression ({exc})") from exc


def parse_scope(data: Any, fail: Fail, key: str = "scope") -> ScopeRules | None:
    """The card's ``scope`` object as `ScopeRules` (None when absent); ``fail`` makes the errors."""
    if data is None:
        return None
    if not isinstance(data, Mapping):
        raise fail(key, "must be an object")
    unknown = sorted(set(data) - _KEYS)
    if unknown:
        raise fail(f"{key}.{unknown[0]}", f"is not a scope rule (known: {', '.join(sorted(_KEYS))})")
    out: dict[str, Any] = {}
    for name in ("modalities", "body_parts"):
        if name in data:
            out[name] = _strings(data[name], f"{key}.{name}", fail)
    if "anatomic_regions" in data:
        codes = _strings(data["anatomic_regions"], f"{key}.anatomic_regions", fail)
        if not all(":" in c and all(c.split(":", 1)) for c in codes):
            raise fail(f"{key}.anatomic_regions", "must hold SCHEME:VALUE codes such as SCT:51185008")
        out["anatomic_regions"] = codes
    text = []
    for name in TEXT_ATTRIBUTES:
        if name in data:
            rule = data[name]
            if not isinstance(rule, Mapping) or not rule or set(rule) - {"include", "exclude"}:
                raise fail(f"{key}.{name}", 'must be {"include": REGEX, "exclude": REGEX} (one or both)')
            text.append((name, TextRule(_regex(rule.get("include"), f"{key}.{name}.include", fail),
                                        _regex(rule.get("exclude"), f"{key}.{name}.exclude", fail))))
    out["text"] = tuple(text)
    if "planes" in data:
        planes = tuple(p.lower() for p in _strings(data["planes"], f"{key}.planes", fail))
        if not planes or any(p not in PLANES for p in planes):
            raise fail(f"{key}.planes", f"must list planes among {list(PLANES)}")
        out["planes"] = planes
    if "plane_tolerance_deg" in data:
        tol = data["plane_tolerance_deg"]
        if not isinstance(tol, (int, float)) or isinstance(tol, bool) or not 0 <= tol <= 45:
            raise fail(f"{key}.plane_tolerance_deg", "must be a number of degrees from 0 to 45")
        out["plane_tolerance_deg"] = float(tol)
    if "reformat" in data:
        if not isinstance(data["reformat"], bool):
            raise fail(f"{key}.reformat", "must be true or false")
        if data["reformat"] and "planes" not in out:
            raise fail(f"{key}.reformat", "needs planes (the plane to reformat to)")
        out["reformat"] = data["reformat"]
    for name in ("slice_thickness_mm", "pixel_spacing_mm", "patient_age_years"):
        if name in data:
            out[name] = _range(data[name], f"{key}.{name}", fail)
    if "image_type" in data:
        it = data["image_type"]
        if not isinstance(it, Mapping) or set(it) - {"exclude", "require"}:
            raise fail(f"{key}.image_type", 'must be {"exclude": [...], "require": [...]}')
        if "exclude" in it:
            out["image_type_exclude"] = _strings(it["exclude"], f"{key}.image_type.exclude", fail)
        if "require" in it:
            out["image_type_require"] = _strings(it["require"], f"{key}.image_type.require", fail)
    return ScopeRules(**out)
