"""Check a review JSON export completely before anything of it is merged (all or nothing).

:func:`parse_export` reads the file (size checked before reading, nesting depth bounded), checks every
field of every flag and study header and returns the flags with their study headers, or raises
:class:`ImportFileError` naming the file and the first bad place (``flags[12].updated``) with the reason.
Timestamps are normalised to RadScope's form (UTC, milliseconds, ``Z``) so that "newer wins" compares
like with like.
"""

from __future__ import annotations

import math
import os
from dataclasses import fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from inference import jsonsafe
from viewer.review.model import REGION_KINDS, Flag, HeaderAttributes, ModelInfo, Region, StudyHeader, Verdict

JSON_FORMAT = "radscope-review/1"
MAX_IMPORT_BYTES = 128 * 2**20
"""Largest import file read (about 80 000 flags); checked before reading."""
MAX_DEPTH = 16
MAX_TEXT = 1_000_000
"""Longest free-text field (comment); identifiers and names are held to :data:`MAX_NAME`."""
MAX_NAME = 1024
MAX_SLICE = 10_000_000
MAX_COORD = 1e7
"""Largest coordinate magnitude (pixels or mm) of a region point."""


class ImportFileError(ValueError):
    """An import file is unreadable or not a RadScope review export (message names file and reason)."""


class FieldError(ValueError):
    """One field of a flag (``flags[3].updated``, ``measurement group #2.slice_index``) is bad: where and why."""

    def __init__(self, where: str, reason: str) -> None:
        super().__init__(f"{where}: {reason}")


def _text(obj: dict[str, Any], key: str, where: str, *, required: bool = False, limit: int = MAX_NAME) -> str:
    v = obj.get(key)
    if v is None and not required:
        return ""
    if not isinstance(v, str) or (required and not v.strip()):
        raise FieldError(f"{where}.{key}", "must be a non-empty string" if required else "must be a string")
    if len(v) > limit:
        raise FieldError(f"{where}.{key}", f"is {len(v)} characters long (at most {limit})")
    if "\x00" in v:
        raise FieldError(f"{where}.{key}", "holds a NUL character")
    return v


def _integer(obj: dict[str, Any], key: str, where: str, lo: int, hi: int, *, optional: bool = False) -> int | None:
    v = obj.get(key)
    if v is None and optional:
        return None
    if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
        raise FieldError(f"{where}.{key}", f"must be an integer from {lo} to {hi}, got {_show(v)}")
    return v


def _show(v: Any) -> str:
    text = repr(v)
    return text if len(text) <= 40 else text[:37] + "..."


def _timestamp(obj: dict[str, Any], key: str, where: str, default: Any = None) -> str:
    v = obj.get(key)
    if v is None:
        v = default
    if not isinstance(v, str) or len(v) > 64:
        raise FieldError(f"{where}.{key}", f"must be an ISO 8601 time, got {_show(v)}")
    try:
        t = datetime.fromisoformat(v.replace("Z", "+00:00") if v.endswith("Z") else v)
    except ValueError:
        raise FieldError(f"{where}.{key}", f"is not an ISO 8601 time: {_show(v)}") from None
    if t.tzinfo is None:
        raise FieldError(f"{where}.{key}", f"has no time zone: {_show(v)}")
    if not 1970 <= t.year <= 9999:
        raise FieldError(f"{where}.{key}", f"is out of range: {_show(v)}")
    return t.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")  # as the store writes


def _points(v: Any, dims: int, where: str) -> tuple[tuple[float, ...], ...]:
    if not isinstance(v, list):
        raise FieldError(where, "must be a list of points")
    out = []
    for i, p in enumerate(v):
        ok = (isinstance(p, list) and len(p) == dims
              and all(isinstance(c, (int, float)) and not isinstance(c, bool) and math.isfinite(c)
                      and abs(c) <= MAX_COORD for c in p))
        if not ok:
            raise FieldError(f"{where}[{i}]", f"must be {dims} finite numbers within ±{MAX_COORD:g}, got {_show(p)}")
        out.append(tuple(float(c) for c in p))
    return tuple(out)


def _region(v: Any, where: str) -> Region | None:
    if v is None:
        return None
    if not isinstance(v, dict):
        raise FieldError(where, "must be an object or null")
    kind = v.get("kind")
    if kind not in REGION_KINDS:
        raise FieldError(f"{where}.kind", f"must be one of {', '.join(REGION_KINDS)}, got {_show(kind)}")
    px = _points(v.get("points_px"), 2, f"{where}.points_px")
    lps = _points(v.get("points_lps") or [], 3, f"{where}.points_lps")
    try:
        return Region(kind, px, lps)  # type: ignore[arg-type]
    except ValueError as exc:
        raise FieldError(where, str(exc)) from None


def _strings_object(v: Any, cls: type, where: str) -> dict[str, str]:
    if v is None:
        return {}
    if not isinstance(v, dict):
        raise FieldError(where, "must be an object")
    known = {f.name for f in fields(cls)}
    out = {}
    for key in v:
        if key not in known:
            raise FieldError(f"{where}.{key}", f"is not one of {', '.join(sorted(known))}")
        out[key] = _text(v, key, where)
    return out


def check_flag(item: Any, where: str) -> Flag:
    """A flag from its export form (:meth:`Flag.to_dict`; what JSON and SR imports both read), every field
    checked: types, bounds, UIDs, times, slice index, sizes; raises :class:`FieldError` naming ``where``."""
    if not isinstance(item, dict):
        raise FieldError(where, "must be an object")
    verdict_text = _text(item, "verdict", where, required=True)
    try:
        verdict = Verdict.parse(verdict_text)
    except ValueError as exc:
        raise FieldError(f"{where}.verdict", str(exc)) from None
    uids = item.get("sop_instance_uids")
    if not isinstance(uids, list) or not uids or not all(isinstance(u, str) and u.strip() for u in uids):
        raise FieldError(f"{where}.sop_instance_uids", "must be a non-empty list of non-empty strings")
    if any(len(u) > MAX_NAME for u in uids) or len(uids) > 10_000:
        raise FieldError(f"{where}.sop_instance_uids", "holds too many or too long UIDs")
    threshold = item.get("threshold")
    if threshold is not None and (isinstance(threshold, bool) or not isinstance(threshold, (int, float))
                                  or not math.isfinite(threshold) or not 0.0 <= threshold <= 1.0):
        raise FieldError(f"{where}.threshold", f"must be a number from 0 to 1 or null, got {_show(threshold)}")
    deleted = item.get("deleted", False)
    if deleted not in (True, False, 0, 1) or isinstance(deleted, float):
        raise FieldError(f"{where}.deleted", f"must be true or false, got {_show(deleted)}")
    created = _timestamp(item, "created", where)
    updated = _timestamp(item, "updated", where, default=item.get("created"))
    return Flag(
        id=_text(item, "id", where, required=True, limit=128),
        study_uid=_text(item, "study_uid", where, required=True),
        series_uid=_text(item, "series_uid", where, required=True),
        stack_id=_text(item, "stack_id", where),
        slice_index=_integer(item, "slice_index", where, 0, MAX_SLICE) or 0,
        sop_instance_uids=tuple(uids),
        sop_class_uid=_text(item, "sop_class_uid", where),
        frame_number=_integer(item, "frame_number", where, 1, MAX_SLICE, optional=True),
        verdict=verdict,
        label=_text(item, "label", where),
        region=_region(item.get("region"), f"{where}.region"),
        comment=_text(item, "comment", where, limit=MAX_TEXT),
        reviewer=_text(item, "reviewer", where),
        created=created,
        updated=updated,
        model=ModelInfo(**_strings_object(item.get("model"), ModelInfo, f"{where}.model")),
        method=_text(item, "method", where),
        threshold=None if threshold is None else float(threshold),
        headers=HeaderAttributes(**_strings_object(item.get("headers"), HeaderAttributes, f"{where}.headers")),
        frame_of_reference_uid=_text(item, "frame_of_reference_uid", where),
        scope_note=_text(item, "scope_note", where, limit=MAX_TEXT),
        deleted=bool(deleted),
        version=_integer(item, "version", where, 1, 2**31, optional=True) or 1,
    )


def _studies(v: Any) -> dict[str, StudyHeader]:
    if v is None:
        return {}
    if not isinstance(v, dict):
        raise FieldError("studies", "must be an object of study headers by study UID")
    return {uid: check_study_header(header, f"studies[{_show(uid)}]") for uid, header in v.items()}


def check_study_header(header: Any, where: str) -> StudyHeader:
    """A study header from its export form (``asdict(StudyHeader)``), every known field a string of at most
    :data:`MAX_NAME` characters without NUL; raises :class:`FieldError` naming ``where``."""
    if not isinstance(header, dict):
        raise FieldError(where, "must be an object")
    known = {f.name for f in fields(StudyHeader)}
    return StudyHeader(**{k: _text(header, k, where) for k in header if k in known})


def parse_export(path: str | os.PathLike[str]) -> list[tuple[Flag, StudyHeader]]:
    """Every flag of the export at ``path`` with its study header, all checked; nothing is merged here."""
    path = Path(path)
    try:
        doc = jsonsafe.read_file(path, MAX_IMPORT_BYTES, str(path), max_depth=MAX_DEPTH)
    except jsonsafe.JsonLimitError as exc:
        raise ImportFileError(f"cannot import {exc}") from None
    if not isinstance(doc, dict) or doc.get("format") != JSON_FORMAT:
        raise ImportFileError(f"{path} is not a RadScope review export (expected format {JSON_FORMAT!r})")
    try:
        items = doc.get("flags")
        if not isinstance(items, list):
            raise FieldError("flags", f"must be a list, got {type(items).__name__}")
        studies = _studies(doc.get("studies"))
        seen: dict[str, int] = {}
        out = []
        for n, item in enumerate(items):
            flag = check_flag(item, f"flags[{n}]")
            if flag.id in seen:
                raise FieldError(f"flags[{n}].id", f"{_show(flag.id)} repeats flags[{seen[flag.id]}]")
            seen[flag.id] = n
            out.append((flag, studies.get(flag.study_uid) or StudyHeader()))
    except FieldError as exc:
        raise ImportFileError(f"{path}: {exc}; nothing was imported") from None
    return out


__all__ = ["FieldError", "ImportFileError", "JSON_FORMAT", "MAX_DEPTH", "MAX_IMPORT_BYTES", "check_flag", "check_study_header", "parse_export"]
