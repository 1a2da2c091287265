"""Mapping between :class:`Flag` objects and rows of the ``flag`` table (sqlite3 rows or the PostgreSQL
store's rows: both are read by column name)."""

from __future__ import annotations

import json
from typing import Any

from viewer.review.model import Flag, HeaderAttributes, ModelInfo, Region, Verdict

#: Columns written for a flag, in order (all exist from schema v5 on).
FLAG_COLUMNS = (
    "id", "study_uid", "series_uid", "stack_id", "slice_index", "sop_instance_uids", "sop_class_uid",
    "frame_number", "frame_of_reference_uid", "verdict", "label", "region", "comment", "reviewer",
    "created", "updated", "model_name", "model_version", "model_sha256", "method", "threshold",
    "manufacturer", "scanner_model", "kvp", "patient_sex", "age_band", "body_part", "modality", "deleted", "version",
    "scope_note",
)


def _get(row: Any, key: str, default: Any = "") -> Any:
    return row[key] if key in row.keys() else default


def flag_from_row(row: Any) -> Flag:
    """A flag from a ``flag`` row (v1 rows lack the later columns: they read as empty)."""
    region = row["region"]
    frame = _get(row, "frame_number", None)
    return Flag(
        id=row["id"],
        study_uid=row["study_uid"],
        series_uid=row["series_uid"],
        stack_id=_get(row, "stack_id"),
        slice_index=int(row["slice_index"]),
        sop_instance_uids=tuple(json.loads(row["sop_instance_uids"])),
        sop_class_uid=_get(row, "sop_class_uid"),
        frame_number=None if frame is None else int(frame),
        verdict=Verdict(row["verdict"]),
        label=row["label"],
        region=Region.from_dict(json.loads(region)) if region else None,
        comment=row["comment"],
        reviewer=row["reviewer"],
        created=row["created"],
        updated=row["updated"],
        model=ModelInfo(row["model_name"], row["model_version"], row["model_sha256"]),
        method=row["method"],
        threshold=row["threshold"],
        headers=HeaderAttributes(
            manufacturer=_get(row, "manufacturer"),
            scanner_model=_get(row, "scanner_model"),
            kvp=_get(row, "kvp"),
            patient_sex=_get(row, "patient_sex"),
            age_band=_get(row, "age_band"),
            body_part=_get(row, "body_part"),
            modality=_get(row, "modality"),
        ),
        frame_of_reference_uid=_get(row, "frame_of_reference_uid"),
        scope_note=_get(row, "scope_note"),
        deleted=bool(_get(row, "deleted", 0)),
        version=int(_get(row, "version", 1)),
    )


def flag_to_row(flag: Flag) -> tuple[Any, ...]:
    """Values for :data:`FLAG_COLUMNS`."""
    h = flag.headers
    return (
        flag.id, flag.study_uid, flag.series_uid, flag.stack_id, flag.slice_index,
        json.dumps(list(flag.sop_instance_uids)), flag.sop_class_uid, flag.frame_number,
        flag.frame_of_reference_uid, flag.verdict.value, flag.label,
        json.dumps(flag.region.to_dict()) if flag.region else None, flag.comment, flag.reviewer,
        flag.created, flag.updated, flag.model.name, flag.model.version, flag.model.sha256,
        flag.method, flag.threshold, h.manufacturer, h.scanner_model, h.kvp, h.patient_sex,
        h.age_band, h.body_part, h.modality, int(flag.deleted), flag.version, flag.scope_note,
    )
