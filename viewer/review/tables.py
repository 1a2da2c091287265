"""CSV and JSON export of review flags, and the JSON import that round-trips (idempotent by id)."""

from __future__ import annotations

import csv
import io
import json
import os
from collections import Counter
from dataclasses import asdict
from pathlib import Path
from typing import Any
from collections.abc import Iterable

from viewer.review.importing import JSON_FORMAT, ImportFileError, parse_export
from viewer.review.model import Flag
from viewer.review.store import ReviewStore, utc_now

CSV_COLUMNS = (
    "id", "study_uid", "series_uid", "stack_id", "slice_index", "sop_instance_uids", "sop_class_uid",
    "frame_number", "verdict", "label", "region_kind", "region_px", "region_lps", "comment", "reviewer",
    "created", "updated", "model_name", "model_version", "model_sha256", "method", "threshold",
    "manufacturer", "scanner_model", "kvp", "patient_sex", "age_band", "body_part", "modality",
    "frame_of_reference_uid", "deleted", "scope_note",
)


def write_atomically(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` to a temporary file, fsync it, and rename it over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8", newline="") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return path


FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n", "＝", "＋", "－", "＠")


def spreadsheet_safe(text: str) -> str:
    """Text a spreadsheet will not run as a formula (OWASP CSV injection: prefix a quote; full-width
    forms too, which some spreadsheets normalise)."""
    return "'" + text if text.startswith(FORMULA_START) else text


def csv_row(flag: Flag) -> dict[str, Any]:
    """One CSV row (UIDs space-separated; region points as JSON arrays; free text formula-safe)."""
    r, h = flag.region, flag.headers
    return {
        "id": flag.id, "study_uid": flag.study_uid, "series_uid": flag.series_uid, "stack_id": flag.stack_id,
        "slice_index": flag.slice_index, "sop_instance_uids": " ".join(flag.sop_instance_uids),
        "sop_class_uid": flag.sop_class_uid, "frame_number": "" if flag.frame_number is None else flag.frame_number,
        "verdict": flag.verdict.value, "label": spreadsheet_safe(flag.label), "region_kind": r.kind if r else "",
        "region_px": json.dumps([list(p) for p in r.points_px]) if r else "",
        "region_lps": json.dumps([list(p) for p in r.points_lps]) if r else "",
        "comment": spreadsheet_safe(flag.comment), "reviewer": spreadsheet_safe(flag.reviewer), "created": flag.created, "updated": flag.updated,
        "model_name": flag.model.name, "model_version": flag.model.version, "model_sha256": flag.model.sha256,
        "method": flag.method, "threshold": "" if flag.threshold is None else flag.threshold,
        "manufacturer": h.manufacturer, "scanner_model": h.scanner_model, "kvp": h.kvp,
        "patient_sex": h.patient_sex, "age_band": h.age_band, "body_part": h.body_part, "modality": h.modality,
        "frame_of_reference_uid": flag.frame_of_reference_uid, "deleted": int(flag.deleted),
        "scope_note": spreadsheet_safe(flag.scope_note),
    }


def flags_csv(flags: Iterable[Flag]) -> str:
    """The flags as CSV text with a header row (:data:`CSV_COLUMNS`).

    RFC 4180 rows (``\r\n``): a field holding ``\r`` or ``\n`` is quoted, so a bare carriage return in a
    comment never starts a row in Excel or the csv module. Every text cell (free text and anything
    copied from a DICOM header or a model card) is :func:`spreadsheet_safe`.
    """
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    writer.writeheader()
    for flag in flags:
        writer.writerow({k: spreadsheet_safe(v) if isinstance(v, str) else v for k, v in csv_row(flag).items()})
    return buf.getvalue()


def export_csv(store: ReviewStore, path: str | os.PathLike[str], *, include_deleted: bool = False) -> int:
    """Write the store's flags as CSV; returns the number of flags written."""
    flags = store.flags(include_deleted=include_deleted)
    write_atomically(path, flags_csv(flags))
    return len(flags)


def export_document(store: ReviewStore) -> dict[str, Any]:
    """The JSON export: every flag (tombstones too, so deletions round-trip) and study headers."""
    flags = store.flags(include_deleted=True)
    studies = {uid: asdict(store.study_header(uid)) for uid in sorted({f.study_uid for f in flags})}
    return {"format": JSON_FORMAT, "exported": utc_now(), "flags": [f.to_dict() for f in flags], "studies": studies}


def export_json(store: ReviewStore, path: str | os.PathLike[str]) -> int:
    """Write :func:`export_document` to ``path``; returns the number of flags written."""
    doc = export_document(store)
    write_atomically(path, json.dumps(doc, indent=2, sort_keys=True) + "\n")
    return len(doc["flags"])


def import_json(store: ReviewStore, path: str | os.PathLike[str]) -> Counter[str]:
    """Merge a JSON export into the store by flag id (one transaction: all or nothing); returns
    counts of added/updated/unchanged.

    The whole file is checked first (:func:`viewer.review.importing.parse_export`): one bad field
    anywhere is an :class:`ImportFileError` naming the file and the place, and nothing is imported.
    A flag already in the store is replaced only by a newer version (later ``updated``); importing
    the same file twice changes nothing the second time.
    """
    return Counter(store.merge_flags(parse_export(path)))


__all__ = ["CSV_COLUMNS", "ImportFileError", "export_csv", "export_document", "export_json", "flags_csv",
           "import_json", "spreadsheet_safe", "write_atomically"]
