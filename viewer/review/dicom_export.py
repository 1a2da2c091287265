"""DICOM export of review flags (highdicom): Key Object Selection, TID 1500 SR, Parametric Maps.

Per study the export writes

* one Key Object Selection document per document title (CID 7010) referencing the flagged images:
  "For Peer Review" (:data:`KOS_TITLE_BY_VERDICT`) for every image with a verdict
  saying the model erred or the reviewer was unsure, and "Of Interest" for images only ever judged
  correct. "Rejected for Quality Reasons" is deliberately never used: under IHE IOCM it makes an
  archive hide the images, and a model's mistake says nothing about image quality.
  Every reference is an IMAGE item (naming the flagged frames of a multi-frame image).
* one Comprehensive 3D SR (TID 1500 Measurement Report) per reviewer, each in the reviewer's own
  series (:func:`reviewer_series`) with a distinct instance number, carrying each flag as a
  measurement group: a planar ROI group (TID 1410) with the region as SCOORD on the flagged image,
  or an image-level group (TID 1501) when the flag has no region. Each group holds the verdict as a
  qualitative evaluation, the label as finding type, the model as algorithm identification
  (name, version; parameters: sha256, explanation method, threshold), the flag id as tracking
  identifier (UID ``2.25.<uuid as integer>``), the comment as text, and a RadScope flag record
  (JSON text: slice index, times, header attributes) so :mod:`viewer.review.sr_import` reads the
  flag back whole.

Every object passes dciodvfy (dicom3tools) without error (tests/test_review_dicom_valid.py).

Verdicts and labels use the private coding scheme ``99RADSCOPE`` (DICOM has no codes for them).
Study and patient attributes come from the study header saved in the store, so no source file is
needed. Heatmaps are written by :func:`heatmap_parametric_map` from the source series' headers.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import uuid
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from collections.abc import Iterable, Sequence

import highdicom as hd
import numpy as np
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes

from viewer.paths import inside, safe_component
from viewer.review.model import Flag, ModelInfo, StudyHeader, Verdict
from viewer.review.store import ReviewStore

SCHEME = "99RADSCOPE"
MANUFACTURER = "RadScope"
SOFTWARE_VERSION = "0.1.0"
VERDICT_CONCEPT = hd.sr.CodedConcept("RS-VERDICT", SCHEME, "Review verdict")
COMMENT_CONCEPT = hd.sr.CodedConcept("121106", "DCM", "Comment")
RECORD_CONCEPT = hd.sr.CodedConcept("RS-FLAG-RECORD", SCHEME, "RadScope flag record")
SCOPE_CONCEPT = hd.sr.CodedConcept("RS-SCOPE", SCHEME, "Outside intended use")
RECORD_FORMAT = "radscope-flag-record/1"
VERDICT_CODES = {v: hd.sr.CodedConcept(f"RS-{v.value.upper().replace('_', '-')}"[:16], SCHEME, v.title) for v in Verdict}
FOR_PEER_REVIEW = codes.cid7010.ForPeerReview
OF_INTEREST = codes.cid7010.OfInterest
#: Which KOS title an image gets from one flag's verdict; an image with any "For Peer Review"
#: verdict goes to that document only.
KOS_TITLE_BY_VERDICT = {
    Verdict.CORRECT: OF_INTEREST,
    Verdict.FALSE_POSITIVE: FOR_PEER_REVIEW,
    Verdict.FALSE_NEGATIVE: FOR_PEER_REVIEW,
    Verdict.MISLOCALISED: FOR_PEER_REVIEW,
    Verdict.UNCERTAIN: FOR_PEER_REVIEW,
}
_UID_NAMESPACE = uuid.UUID("5d3c1f0e-6b1a-5c4e-9f57-8a3e2d7c9b10")  # RadScope review exports
IMAGING_PROCEDURE = hd.sr.CodedConcept("363679005", "SCT", "Imaging procedure")


class DicomExportError(ValueError):
    """A flag or heatmap cannot be written as DICOM (the message says which and why)."""


def content_uid(*parts: str) -> str:
    """A ``2.25`` UID derived from ``parts``: re-exporting unchanged flags gives the same UIDs,
    so an archive sees the same objects again instead of duplicates; any change gives new ones."""
    return f"2.25.{uuid.uuid5(_UID_NAMESPACE, chr(31).join(parts)).int}"


def _versions(flags: Iterable[Flag]) -> list[str]:
    return sorted(f"{f.id}@{f.updated}" for f in flags)


def flag_uid(flag_id: str) -> str:
    """The DICOM UID of a flag id (``2.25.`` + the UUID as an integer; any other id is hashed)."""
    try:
        return f"2.25.{uuid.UUID(flag_id).int}"
    except ValueError:
        return f"2.25.{uuid.UUID(hashlib.sha256(flag_id.encode()).hexdigest()[:32]).int}"


def label_code(label: str) -> hd.sr.CodedConcept:
    """A private code for a model label (value: the label when short, else a hash of it)."""
    text = label or "unlabelled"
    value = text if len(text) <= 16 and re.fullmatch(r"[\w.\-]+", text) else hashlib.sha1(text.encode()).hexdigest()[:16]
    return hd.sr.CodedConcept(value, SCHEME, text[:64])


def person_name(reviewer: str) -> str:
    """A DICOM PN for a reviewer name (a single-component name gets the trailing caret PN wants)."""
    name = (reviewer or "unknown").strip()[:64]
    return name if "^" in name else name + "^"


def image_reference(flag: Flag, study: StudyHeader, sop_instance_uid: str) -> Dataset:
    """A dataset standing for a flagged image: the identifiers highdicom needs for evidence."""
    if not flag.sop_class_uid:
        raise DicomExportError(f"flag {flag.id} has no SOP Class UID for its image; re-flag from the DICOM series")
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 192"  # UTF-8: names and comments are free text; the documents inherit it
    ds.SOPClassUID = flag.sop_class_uid
    ds.SOPInstanceUID = sop_instance_uid
    ds.StudyInstanceUID = flag.study_uid
    ds.SeriesInstanceUID = flag.series_uid
    ds.PatientName = study.patient_name
    ds.PatientID = study.patient_id
    ds.PatientBirthDate = study.patient_birth_date
    ds.PatientSex = study.patient_sex if study.patient_sex in ("M", "F", "O") else ""
    ds.AccessionNumber = study.accession_number
    ds.StudyID = study.study_id
    ds.StudyDate = study.study_date
    ds.StudyTime = study.study_time
    ds.ReferringPhysicianName = study.referring_physician_name
    if study.patient_age:
        ds.PatientAge = study.patient_age
    if study.study_description:
        ds.StudyDescription = study.study_description
    return ds


def _references(flags: Iterable[Flag], study: StudyHeader) -> dict[str, Dataset]:
    """SOP Instance UID -> reference dataset of every image the flags name, in flag order."""
    out: dict[str, Dataset] = {}
    for f in flags:
        for uid in f.sop_instance_uids:
            out.setdefault(uid, image_reference(f, study, uid))
    return out


def _flagged_frames(flags: Iterable[Flag]) -> dict[str, list[int]]:
    """SOP Instance UID -> the frames flagged in it (empty for single-frame images)."""
    frames: dict[str, set[int]] = defaultdict(set)
    for f in flags:
        for uid in f.sop_instance_uids:
            frames[uid].update([f.frame_number] if f.frame_number else [])
    return {uid: sorted(v) for uid, v in frames.items()}


def _image_items(content: hd.ko.KeyObjectSelection, frames: dict[str, list[int]]) -> None:
    """Make every reference of a KOS an IMAGE item (TID 2010), naming the flagged frames.

    highdicom writes COMPOSITE for a reference dataset without Rows/Columns; the store keeps no
    image size, but every flagged object is an image (flags are made on displayed image slices).
    """
    items = content[0].ContentSequence
    for n, item in enumerate(items):
        if item.ValueType != "COMPOSITE":
            continue
        ref = item.ReferencedSOPSequence[0]
        uid = str(ref.ReferencedSOPInstanceUID)
        items[n:n + 1] = [hd.sr.ImageContentItem(
            name=hd.sr.CodedConcept.from_dataset(item.ConceptNameCodeSequence[0]),
            referenced_sop_class_uid=str(ref.ReferencedSOPClassUID),
            referenced_sop_instance_uid=uid,
            referenced_frame_numbers=frames.get(uid) or None,
            relationship_type=hd.sr.RelationshipTypeValues.CONTAINS,
        )]  # a slice: the sequence's item check would iterate a lone item's elements


# -- Key Object Selection -------------------------------------------------------------------------


def key_object_documents(flags: Sequence[Flag], study: StudyHeader) -> list[hd.ko.KeyObjectSelectionDocument]:
    """The KOS documents of one study's live flags (see the module docstring for the titles)."""
    live = [f for f in flags if not f.deleted]
    if len({f.study_uid for f in live}) > 1:
        raise DicomExportError("key object documents are per study; got flags of several studies")
    titles: dict[str, set[str]] = defaultdict(set)
    for f in live:
        for uid in f.sop_instance_uids:
            titles[uid].add(KOS_TITLE_BY_VERDICT[f.verdict].value)
    refs = _references(live, study)
    study_uid = live[0].study_uid if live else ""
    series_uid = content_uid(study_uid, "KO series")
    docs = []
    for number, title in enumerate((FOR_PEER_REVIEW, OF_INTEREST), start=1):
        peer = title == FOR_PEER_REVIEW
        chosen = {uid: ds for uid, ds in refs.items() if (FOR_PEER_REVIEW.value in titles[uid]) == peer}
        if not chosen:
            continue
        flagged = [f for f in live if set(f.sop_instance_uids) & set(chosen)]
        counts = ", ".join(f"{v}: {n}" for v, n in sorted(Counter(f.verdict.value for f in flagged).items()))
        content = hd.ko.KeyObjectSelection(
            document_title=title,
            referenced_objects=list(chosen.values()),
            description=f"RadScope review flags ({counts})"[:1024],
        )
        _image_items(content, _flagged_frames(flagged))
        docs.append(hd.ko.KeyObjectSelectionDocument(
            evidence=list(chosen.values()), content=content, series_instance_uid=series_uid, series_number=900,
            sop_instance_uid=content_uid(study_uid, title.value, *sorted(chosen), *_versions(flagged)),
            instance_number=number, manufacturer=MANUFACTURER,
        ))
    return docs


# -- Structured report ----------------------------------------------------------------------------


def _algorithm(flag: Flag) -> hd.sr.AlgorithmIdentification | None:
    if not flag.model.name:
        return None
    params = [f"sha256={flag.model.sha256}"] if flag.model.sha256 else []
    if flag.method:
        params.append(f"explanation={flag.method}")
    if flag.threshold is not None:
        params.append(f"threshold={flag.threshold:g}")
    return hd.sr.AlgorithmIdentification(name=flag.model.name, version=flag.model.version or "unknown",
                                         parameters=params or None)


def _region(flag: Flag) -> hd.sr.ImageRegion:
    assert flag.region is not None
    r = flag.region
    if r.kind == "ellipse":
        graphic_type, pts = hd.sr.GraphicTypeValues.ELLIPSE, r.ellipse_axes_px()
    elif r.kind == "point":
        graphic_type, pts = hd.sr.GraphicTypeValues.POINT, np.array(r.points_px)
    else:
        graphic_type, pts = hd.sr.GraphicTypeValues.POLYLINE, r.outline_px()
    frames = [flag.frame_number] if flag.frame_number else None
    source = hd.sr.SourceImageForRegion(flag.sop_class_uid, flag.sop_instance_uids[0], frames)
    # SCOORD's origin is the top-left corner of the top-left pixel: pixel centres are at +0.5.
    return hd.sr.ImageRegion(graphic_type, np.asarray(pts, dtype=np.float64) + 0.5, source)


def measurement_group(
    flag: Flag,
) -> hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations | hd.sr.MeasurementsAndQualitativeEvaluations:
    """One flag as a TID 1500 measurement group (TID 1410 with a region, TID 1501 without)."""
    common = dict(
        tracking_identifier=hd.sr.TrackingIdentifier(uid=flag_uid(flag.id), identifier=f"RadScope flag {flag.id}"),
        finding_type=label_code(flag.label),
        algorithm_id=_algorithm(flag),
        qualitative_evaluations=[hd.sr.QualitativeEvaluation(VERDICT_CONCEPT, VERDICT_CODES[flag.verdict])],
    )
    if flag.region is not None:
        group = hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations(referenced_region=_region(flag), **common)
    else:
        frames = [flag.frame_number] if flag.frame_number else None
        sources = [hd.sr.SourceImageForMeasurementGroup(flag.sop_class_uid, uid, frames)
                   for uid in flag.sop_instance_uids]
        group = hd.sr.MeasurementsAndQualitativeEvaluations(source_images=sources, **common)
    if flag.comment:
        group[0].ContentSequence.append(hd.sr.TextContentItem(
            name=COMMENT_CONCEPT, value=flag.comment[:1024], relationship_type=hd.sr.RelationshipTypeValues.CONTAINS))
    if flag.scope_note:  # what the screen's banner said: the model ran outside its intended use
        group[0].ContentSequence.append(hd.sr.TextContentItem(
            name=SCOPE_CONCEPT, value=flag.scope_note[:1024], relationship_type=hd.sr.RelationshipTypeValues.CONTAINS))
    group[0].ContentSequence.append(hd.sr.TextContentItem(
        name=RECORD_CONCEPT, value=json.dumps(flag_record(flag), sort_keys=True, separators=(",", ":")),
        relationship_type=hd.sr.RelationshipTypeValues.CONTAINS))
    return group


def flag_record(flag: Flag) -> dict[str, Any]:
    """What a flag holds that the TID 1500 items do not (read back by :mod:`viewer.review.sr_import`):
    slice index, stack, times, the header attributes the summary splits by, the region's kind
    and patient-space points, and the full label and comment when the coded items had to cut them."""
    record: dict[str, Any] = {
        "format": RECORD_FORMAT, "slice_index": flag.slice_index, "stack_id": flag.stack_id,
        "created": flag.created, "updated": flag.updated, "frame_of_reference_uid": flag.frame_of_reference_uid,
        "headers": asdict(flag.headers),
    }
    if flag.region is not None:
        record["region_kind"] = flag.region.kind
        record["points_lps"] = [list(p) for p in flag.region.points_lps]
    if len(flag.label) > 64:
        record["label"] = flag.label
    if len(flag.comment) > 1024:
        record["comment"] = flag.comment
    if flag.scope_note:
        record["scope_note"] = flag.scope_note
    return record


def reviewer_series(study_uid: str, reviewer: str) -> tuple[str, int]:
    """(Series Instance UID, Series Number) of one reviewer's SR series in a study.

    Each reviewer's reports live in a series of their own (a PACS lists one series per reviewer);
    the UID derives from the study and the reviewer, and the number (901-999, after the KOS
    series 900) from the reviewer alone, so both stay the same on every export.
    """
    digest = int(hashlib.sha256((reviewer or "unknown").encode()).hexdigest()[:8], 16)
    return content_uid(study_uid, "SR series", reviewer), 901 + digest % 99


def review_report(
    flags: Sequence[Flag], study: StudyHeader, reviewer: str, *, instance_number: int = 1,
) -> hd.sr.Comprehensive3DSR:
    """The TID 1500 report of one reviewer's live flags on one study (in the reviewer's own series)."""
    live = [f for f in flags if not f.deleted]
    if not live:
        raise DicomExportError(f"reviewer {reviewer!r} has no flags to report")
    observer = hd.sr.ObserverContext(
        observer_type=codes.cid270.Person,
        observer_identifying_attributes=hd.sr.PersonObserverIdentifyingAttributes(name=person_name(reviewer)),
    )
    report = hd.sr.MeasurementReport(
        observation_context=hd.sr.ObservationContext(observer_person_context=observer),
        procedure_reported=IMAGING_PROCEDURE,
        imaging_measurements=[measurement_group(f) for f in live],
    )
    evidence = list(_references(live, study).values())
    series_uid, series_number = reviewer_series(live[0].study_uid, reviewer)
    sr = hd.sr.Comprehensive3DSR(
        evidence=evidence, content=report[0], series_instance_uid=series_uid,
        series_number=series_number, sop_instance_uid=content_uid(live[0].study_uid, reviewer, *_versions(live)),
        instance_number=instance_number, manufacturer=MANUFACTURER, is_complete=True,
    )
    sr.SeriesDescription = f"RadScope review by {reviewer}"[:64]
    scheme = Dataset()  # the private scheme of verdict and label codes, declared as PS3.3 C.12.1 asks
    scheme.CodingSchemeDesignator = SCHEME
    scheme.CodingSchemeName = "RadScope review verdicts and model labels"
    scheme.CodingSchemeResponsibleOrganization = MANUFACTURER
    sr.CodingSchemeIdentificationSequence = [scheme]
    return sr


# -- Writing --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExportedFile:
    path: Path
    kind: str  # "KO", "SR" or "PM"
    study_uid: str


def safe_name(text: str, *, tag_changes: bool = False) -> str:
    """A file-name-safe form of a UID, label or name (:func:`viewer.paths.safe_component`)."""
    return safe_component(text, tag_changes=tag_changes, fallback="unknown")


def export_dicom(store: ReviewStore, out_dir: str | os.PathLike[str]) -> list[ExportedFile]:
    """Write each study's KOS documents and per-reviewer SRs under ``out_dir/<study_uid>/``."""
    out = Path(out_dir)
    by_study: dict[str, list[Flag]] = defaultdict(list)
    for f in store.flags():
        by_study[f.study_uid].append(f)
    written: list[ExportedFile] = []
    for study_uid, flags in sorted(by_study.items()):
        header = store.study_header(study_uid)
        folder = inside(out, safe_name(study_uid, tag_changes=True))
        folder.mkdir(parents=True, exist_ok=True)
        for doc in key_object_documents(flags, header):
            path = inside(folder, f"KO_{safe_name(doc.ConceptNameCodeSequence[0].CodeMeaning)}.dcm")
            doc.save_as(path, enforce_file_format=True)
            written.append(ExportedFile(path, "KO", study_uid))
        by_reviewer: dict[str, list[Flag]] = defaultdict(list)
        for f in flags:
            by_reviewer[f.reviewer].append(f)
        reports = [(reviewer, own) for reviewer, own in sorted(by_reviewer.items()) if any(not f.deleted for f in own)]
        names: set[str] = set()
        for number, (reviewer, own) in enumerate(reports, start=1):  # distinct instance numbers in the study
            name = safe_name(reviewer)
            if name in names:  # "a b" and "a_b" share a safe name: keep both files
                name += "_" + hashlib.sha256(reviewer.encode()).hexdigest()[:8]
            names.add(name)
            path = inside(folder, f"SR_{name}.dcm")
            review_report(own, header, reviewer, instance_number=number).save_as(path, enforce_file_format=True)
            written.append(ExportedFile(path, "SR", study_uid))
    return written


# -- Parametric map -------------------------------------------------------------------------------


def heatmap_parametric_map(
    source_images: Sequence[Dataset],
    heatmap: np.ndarray,
    *,
    label: str,
    model: ModelInfo,
    method: str = "",
    series_number: int = 902,
) -> hd.pm.ParametricMap:
    """A float Parametric Map of a heatmap (values in [0, 1]) on the source series' own grid.

    ``source_images`` are the series' headers in RadScope slice order and ``heatmap`` is
    ``(k, j, i)`` with one plane per source image (frame ``n`` lies on ``source_images[n]``).
    """
    data = np.asarray(heatmap, dtype=np.float32)
    if data.ndim == 2:
        data = data[np.newaxis]
    if data.ndim != 3 or data.shape[0] != len(source_images):
        raise DicomExportError(f"heatmap shape {heatmap.shape} does not match {len(source_images)} source images")
    source_images = pm_sources(source_images)
    rows, cols = int(source_images[0].Rows), int(source_images[0].Columns)
    if data.shape[1:] != (rows, cols):
        raise DicomExportError(f"heatmap planes {data.shape[1:]} differ from the images' {rows}x{cols}")
    if not np.all(np.isfinite(data)):
        raise DicomExportError("heatmap holds NaN or infinite values")
    mapping = hd.pm.RealWorldValueMapping(
        lut_label=label[:16] or "heatmap",
        lut_explanation=f"{method or 'model'} relevance of {label}"[:64],
        unit=codes.UCUM.NoUnits,
        value_range=(0.0, 1.0),
        slope=1.0,
        intercept=0.0,
    )
    pm = hd.pm.ParametricMap(
        source_images=list(source_images),
        pixel_array=data,
        series_instance_uid=content_uid(str(source_images[0].SeriesInstanceUID), "PM series", model.sha256),
        series_number=series_number,
        sop_instance_uid=content_uid(str(source_images[0].SeriesInstanceUID), label, model.sha256, method,
                                     hashlib.sha256(data.tobytes()).hexdigest()),
        instance_number=1,
        manufacturer=MANUFACTURER,
        manufacturer_model_name=f"{model.name} {model.version}".strip()[:64] or "RadScope",
        software_versions=SOFTWARE_VERSION,
        device_serial_number=(model.sha256[:16] or "none"),
        contains_recognizable_visual_features=False,
        real_world_value_mappings=[mapping],
        voi_lut_transformations=[hd.VOILUTTransformation(window_center=0.5, window_width=1.0)],
        content_label=re.sub(r"[^A-Z0-9_ ]", "_", label.upper()).lstrip("_ 0123456789")[:16] or "HEATMAP",  # a CS code
        content_description=f"RadScope {method} heatmap for {label}"[:64],
    )
    _set_anatomy(pm, source_images[0])
    return pm


#: Type 2 patient and study attributes highdicom reads from the first source image; anonymised
#: or minimal files often lack them (an absent Patient's Birth Date raised AttributeError).
PM_TYPE2_ATTRIBUTES = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "AccessionNumber",
                       "StudyID", "StudyDate", "StudyTime", "ReferringPhysicianName")


def pm_sources(source_images: Sequence[Dataset]) -> list[Dataset]:
    """Copies of the source headers with what a Parametric Map needs (the originals are untouched).

    Absent type 2 attributes are added empty (the IOD allows empty values); a series without
    a Frame of Reference UID cannot carry a map in patient space and is refused, naming it.
    """
    out = []
    for ds in source_images:
        missing = [k for k in ("SOPInstanceUID", "SeriesInstanceUID", "StudyInstanceUID", "Rows", "Columns")
                   if not ds.get(k)]
        if missing:
            raise DicomExportError(f"source image {ds.get('SOPInstanceUID', '?')} lacks {', '.join(missing)}")
        if not ds.get("FrameOfReferenceUID"):
            raise DicomExportError(f"series {ds.SeriesInstanceUID} has no Frame of Reference UID: a Parametric Map "
                                   "lies in the source's patient frame and cannot be written without one")
        copy = Dataset()
        copy.update(ds)
        for keyword in PM_TYPE2_ATTRIBUTES:
            if keyword not in copy:
                setattr(copy, keyword, None)
        out.append(copy)
    return out


def anatomic_region(body_part: str) -> hd.sr.CodedConcept | None:
    """The CID 4031 code of a Body Part Examined term (``CHEST`` -> SCT Chest), or None."""
    term = "".join(w.capitalize() for w in re.split(r"[\s_]+", body_part.strip()) if w)
    code = getattr(codes.cid4031, term, None) if term else None
    return None if code is None else hd.sr.CodedConcept(code.value, code.scheme_designator, code.meaning)


def _set_anatomy(pm: Dataset, source: Dataset) -> None:
    """Laterality of the map (General Series, type 2C) from the source, or Frame Anatomy from its body part.

    A map of an unpaired region (chest) gets a shared Frame Anatomy with Frame Laterality ``U``;
    one whose region is unknown gets an empty Laterality (unknown), never a guessed side.
    """
    laterality = str(source.get("Laterality") or source.get("ImageLaterality") or "").strip().upper()
    region = anatomic_region(str(source.get("BodyPartExamined") or ""))
    if laterality in ("R", "L"):
        pm.Laterality = laterality
    if region is not None:
        anatomy = Dataset()
        anatomy.AnatomicRegionSequence = [region]
        anatomy.FrameLaterality = laterality if laterality in ("R", "L", "B") else "U"
        pm.SharedFunctionalGroupsSequence[0].FrameAnatomySequence = [anatomy]
    elif "Laterality" not in pm:
        pm.Laterality = None
