"""What a flag records about an image, read from its DICOM header.

:func:`context_from_dataset` turns one image's header into an :class:`ImageContext`;
:func:`context_at` finds slice ``k`` (DESIGN.md slice order) of a series on disk through the DICOM
engine (:func:`viewer.dicom.scan`).
"""

from __future__ import annotations

import os
from dataclasses import replace
from typing import Any

from pydicom.dataset import Dataset

from viewer.review.model import HeaderAttributes, ImageContext, ModelInfo, SliceGeometry, StudyHeader, age_band


class SourceError(ValueError):
    """The image to flag could not be found or read (the message names the path and reason)."""


def _text(ds: Dataset, keyword: str) -> str:
    try:
        value = ds.get(keyword, "")
    except Exception:  # a malformed value reads as missing
        return ""
    if value is None:
        return ""
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        return "\\".join(str(v) for v in value)
    return str(value).strip()


def _floats(ds: Dataset | None, keyword: str) -> tuple[float, ...] | None:
    if ds is None or keyword not in ds:
        return None
    try:
        return tuple(float(v) for v in ds[keyword].value)
    except (TypeError, ValueError):
        return None


def _frame_item(ds: Dataset, sequence: str, frame: int | None) -> Dataset | None:
    """The functional-group item of an enhanced multi-frame object (per-frame first, then shared)."""
    for name, index in (("PerFrameFunctionalGroupsSequence", (frame or 1) - 1), ("SharedFunctionalGroupsSequence", 0)):
        groups = ds.get(name)
        if groups is not None and len(groups) > index:
            item = groups[index].get(sequence)
            if item is not None and len(item):
                return item[0]
    return None


def slice_geometry(ds: Dataset, frame: int | None = None) -> SliceGeometry | None:
    """IPP, IOP and Pixel Spacing of an image (or one frame of an enhanced object), if present."""
    position = _floats(ds, "ImagePositionPatient") or _floats(_frame_item(ds, "PlanePositionSequence", frame),
                                                             "ImagePositionPatient")
    orientation = _floats(ds, "ImageOrientationPatient") or _floats(
        _frame_item(ds, "PlaneOrientationSequence", frame), "ImageOrientationPatient")
    spacing = _floats(ds, "PixelSpacing") or _floats(_frame_item(ds, "PixelMeasuresSequence", frame), "PixelSpacing")
    if not position or not orientation or not spacing or len(position) != 3 or len(orientation) != 6 or len(spacing) != 2:
        return None
    return SliceGeometry(
        position=(position[0], position[1], position[2]),
        row_direction=(orientation[0], orientation[1], orientation[2]),
        column_direction=(orientation[3], orientation[4], orientation[5]),
        pixel_spacing=(spacing[0], spacing[1]),
        frame_of_reference_uid=_text(ds, "FrameOfReferenceUID"),
    )


def header_attributes(ds: Dataset) -> HeaderAttributes:
    """The acquisition and patient attributes the summary splits by."""
    kvp = _text(ds, "KVP")
    try:
        kvp = f"{float(kvp):g}" if kvp else ""
    except ValueError:
        pass
    return HeaderAttributes(
        manufacturer=_text(ds, "Manufacturer"),
        scanner_model=_text(ds, "ManufacturerModelName"),
        kvp=kvp,
        patient_sex=_text(ds, "PatientSex").upper(),
        age_band=age_band(_text(ds, "PatientAge")),
        body_part=_text(ds, "BodyPartExamined").upper(),
        modality=_text(ds, "Modality"),
    )


def study_header(ds: Dataset) -> StudyHeader:
    """Study-level facts DICOM export copies into the documents it writes."""
    return StudyHeader(
        patient_name=_text(ds, "PatientName"),
        patient_id=_text(ds, "PatientID"),
        patient_birth_date=_text(ds, "PatientBirthDate"),
        patient_sex=_text(ds, "PatientSex"),
        patient_age=_text(ds, "PatientAge"),
        study_id=_text(ds, "StudyID"),
        accession_number=_text(ds, "AccessionNumber"),
        study_date=_text(ds, "StudyDate"),
        study_time=_text(ds, "StudyTime"),
        study_description=_text(ds, "StudyDescription"),
        referring_physician_name=_text(ds, "ReferringPhysicianName"),
    )


def context_from_dataset(
    ds: Dataset,
    slice_index: int,
    *,
    frame_number: int | None = None,
    stack_id: str = "",
    model: ModelInfo | None = None,
    method: str = "",
    threshold: float | None = None,
) -> ImageContext:
    """The context of slice ``slice_index`` whose header is ``ds`` (``frame_number`` 1-based)."""
    sop_uid = _text(ds, "SOPInstanceUID")
    if not sop_uid:
        raise SourceError("the image has no SOP Instance UID")
    series_uid = _text(ds, "SeriesInstanceUID")
    return ImageContext(
        study_uid=_text(ds, "StudyInstanceUID"),
        series_uid=series_uid,
        stack_id=stack_id or series_uid,
        slice_index=slice_index,
        sop_instance_uids=(sop_uid,),
        sop_class_uid=_text(ds, "SOPClassUID"),
        frame_number=frame_number,
        geometry=slice_geometry(ds, frame_number),
        headers=header_attributes(ds),
        study=study_header(ds),
        model=model or ModelInfo(),
        method=method,
        threshold=threshold,
        rows=int(ds.get("Rows", 0) or 0),
        columns=int(ds.get("Columns", 0) or 0),
    )


def context_at(path: str | os.PathLike[str], slice_index: int, series_uid: str | None = None, **extra: Any) -> ImageContext:
    """The context of slice ``slice_index`` of the series (or stack) at ``path``.

    ``series_uid`` picks a series (or a stack id) when ``path`` holds several; otherwise the path
    must hold exactly one stack. ``extra`` goes to :func:`context_from_dataset` (model, method...).
    """
    from viewer.dicom import scan  # the DICOM engine: headers only, stacks in slice order

    path = os.fspath(path)
    if not os.path.exists(path):
        raise SourceError(f"{path}: no such file or folder")
    result = scan([path])
    stacks = list(result.stacks)
    if not stacks:
        reasons = "; ".join(str(e) for e in result.errors[:3])
        raise SourceError(f"{path}: no readable DICOM images" + (f" ({reasons})" if reasons else ""))
    if series_uid:
        stack = result.find(series_uid)
        if stack is None:
            known = ", ".join(sorted({s.info.series_uid for s in stacks}))
            raise SourceError(f"{path}: no series {series_uid}; found {known}")
    else:
        series = sorted({s.info.series_uid for s in stacks})
        if len(series) > 1:
            known = ", ".join(f"{s.stack_id} ({s.n_slices} slices)" for s in stacks)
            raise SourceError(f"{path} holds {len(series)} series; pick one with --series UID: {known}")
        stack = result.find(None)  # one series: its largest stack (a localizer split off is skipped)
    assert stack is not None  # stacks is not empty
    return context_from_stack(stack, slice_index, **extra)


def context_from_stack(stack: Any, slice_index: int, **extra: Any) -> ImageContext:
    """The context of slice ``slice_index`` of a :class:`viewer.dicom.Stack` (what the viewer shows).

    ``extra`` goes to :func:`context_from_dataset` (``model``, ``method``, ``threshold``).
    """
    n = len(stack.sop_instance_uids)
    if not 0 <= slice_index < n:
        raise SourceError(f"slice {slice_index} is out of range: series {stack.stack_id} has slices 0..{n - 1}")
    frame = stack.frame_numbers[slice_index]
    ds = stack.read_header(slice_index)
    context = context_from_dataset(ds, slice_index, frame_number=frame, stack_id=stack.stack_id, **extra)
    # The stack's UID list is authoritative (a frame of a multi-frame object shares the file's UID).
    return replace(context, sop_instance_uids=(stack.sop_instance_uids[slice_index],))


def studies_at(paths: list[str]) -> list[tuple[str, str, str, StudyHeader]]:
    """``(study_uid, description, folder, header)`` of every study found under ``paths`` (scan order)."""
    from viewer.dicom import scan

    missing = [p for p in paths if not os.path.exists(p)]
    if missing:
        raise SourceError(f"{missing[0]}: no such file or folder")
    result = scan(paths)
    if not result.stacks:
        raise SourceError(f"{', '.join(paths)}: no readable DICOM images")
    out: dict[str, tuple[str, str, str, StudyHeader]] = {}
    files: dict[str, list[str]] = {}
    for stack in result.stacks:
        uid = stack.info.study_uid
        files.setdefault(uid, []).extend(stack.files)
        if uid not in out:
            ds = stack.read_header(0)
            header = study_header(ds)
            # No patient name or ID here: the worklist is shown in screenshots and demos.
            description = " ".join(p for p in (header.study_date, stack.info.modality, header.study_description) if p)
            out[uid] = (uid, description, "", header)
    return [(uid, desc, os.path.commonpath([os.path.dirname(f) for f in files[uid]]) if files[uid] else "", header)
            for uid, (_, desc, _, header) in out.items()]
