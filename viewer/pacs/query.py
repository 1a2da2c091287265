"""What a search asks and what it finds, shared by the DIMSE and DICOMweb clients."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

from viewer.pacs.errors import PacsError

DEFAULT_STUDY_LIMIT = 500
"""At most this many studies per search (C-FIND is aborted past it, QIDO pages stop): a wide query on a big
archive must neither hang nor fill memory. The result says when it was cut."""
DEFAULT_INSTANCE_LIMIT = 100_000
"""Instances listed per retrieval (one series of a few thousand slices is common; this bounds a hostile one)."""

_UID = re.compile(r"^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*$")
_DATE = re.compile(r"^\d{8}$")


def is_uid(value: object) -> bool:
    """A syntactically valid DICOM UID (digits and dots, no leading zeros, at most 64 characters)."""
    return isinstance(value, str) and 0 < len(value) <= 64 and bool(_UID.match(value))


def check_uid(value: str, what: str) -> str:
    value = value.strip()
    if not is_uid(value):
        raise PacsError(f"invalid {what} {value!r}: a DICOM UID is digits and dots, at most 64 characters")
    return value


def date_range(text: str | None) -> str | None:
    """``YYYYMMDD``, ``YYYYMMDD-YYYYMMDD``, ``-YYYYMMDD`` or ``YYYYMMDD-`` (dashes inside dates allowed:
    ``2024-01-31``) -> the DICOM range form; anything else raises."""
    if text is None or not text.strip():
        return None
    raw = text.strip()
    iso = re.fullmatch(r"(\d{4}-\d{2}-\d{2})?(?:(\s*(?:-|\.\.|to)\s*)(\d{4}-\d{2}-\d{2})?)?", raw)
    if iso and (iso.group(1) or iso.group(3)):
        lo = (iso.group(1) or "").replace("-", "")
        hi = (iso.group(3) or "").replace("-", "")
        value = lo if iso.group(2) is None else f"{lo}-{hi}"
    else:
        value = raw
    parts = value.split("-")
    if len(parts) > 2 or not any(parts) or not all(p == "" or _DATE.match(p) for p in parts):
        raise PacsError(f"invalid study date {text!r}: YYYYMMDD, YYYYMMDD-YYYYMMDD, -YYYYMMDD or YYYYMMDD-")
    for p in parts:
        if p and not (1 <= int(p[4:6]) <= 12 and 1 <= int(p[6:]) <= 31):
            raise PacsError(f"invalid study date {text!r}: no such month/day in {p}")
    if len(parts) == 2 and all(parts) and parts[0] > parts[1]:
        raise PacsError(f"invalid study date {text!r}: the range ends before it starts")
    return value


@dataclass(frozen=True)
class Query:
    """Study-level filters (empty = any). ``patient_name`` may use DICOM wildcards (``*``, ``?``)."""

    patient_id: str | None = None
    patient_name: str | None = None
    study_date: str | None = None
    modality: str | None = None
    accession: str | None = None
    description: str | None = None
    study_uid: str | None = None
    limit: int = DEFAULT_STUDY_LIMIT

    def __post_init__(self) -> None:
        object.__setattr__(self, "study_date", date_range(self.study_date))
        for key in ("patient_id", "patient_name", "modality", "accession", "description"):
            value = getattr(self, key)
            if value is not None and ("\\" in value or len(value) > 64):
                raise PacsError(f"invalid {key.replace('_', ' ')} {value!r}: no backslash, at most 64 characters")
        if self.study_uid is not None:
            object.__setattr__(self, "study_uid", check_uid(self.study_uid, "study UID"))
        if self.limit < 1:
            raise PacsError("the study limit must be at least 1")


@dataclass
class SeriesMatch:
    series_uid: str
    modality: str = ""
    number: int | None = None
    description: str = ""
    instances: int | None = None


@dataclass
class StudyMatch:
    study_uid: str
    patient_id: str = ""
    patient_name: str = ""
    birth_date: str = ""
    study_date: str = ""
    study_time: str = ""
    accession: str = ""
    description: str = ""
    modalities: list[str] = field(default_factory=list)
    series: list[SeriesMatch] = field(default_factory=list)


@dataclass
class FindResult:
    """Studies found (each with its series); ``truncated`` when the limit cut the list; ``warnings`` name
    responses that could not be used (malformed identifiers) and series searches that failed."""

    studies: list[StudyMatch] = field(default_factory=list)
    truncated: bool = False
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"studies": [asdict(s) for s in self.studies], "truncated": self.truncated, "warnings": self.warnings}


def as_int(value: Any) -> int | None:
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return None


def text(value: Any) -> str:
    """A DICOM value as display text (multi-values joined by backslash, person names as stored)."""
    if value is None:
        return ""
    if isinstance(value, list | tuple):
        return "\\".join(text(v) for v in value)
    if isinstance(value, dict):  # DICOM JSON person name {"Alphabetic": ...}
        return str(value.get("Alphabetic", ""))
    return str(value).strip()
