"""Read review flags back from RadScope's TID 1500 SRs (``radscope review import SR.dcm|FOLDER``).

Each measurement group written by :func:`viewer.review.dicom_export.measurement_group` becomes a
flag again: the verdict from its qualitative evaluation, the label from the finding type, the
region from the SCOORD (pixel centres are SCOORD - 0.5), the image (and frame) it references,
the model from the algorithm identification, the comment, the reviewer from the observer
context, and the flag id from the tracking identifier. What TID 1500 has no place for (slice
index, times, the header attributes the summary splits by) comes from the group's RadScope flag
record. Every flag then goes through the JSON import's field checks (:func:`viewer.review.importing.check_flag`:
types, bounds, UIDs, times, slice index, sizes); one bad field refuses the whole import, naming the file and the
measurement group. The merge is the JSON import's: by flag id, a newer version wins, re-importing changes
nothing.
"""

from __future__ import annotations

import logging
import os
import stat
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError

from inference import jsonsafe
from viewer.review.dicom_export import (
    COMMENT_CONCEPT,
    RECORD_CONCEPT,
    RECORD_FORMAT,
    SCHEME,
    SCOPE_CONCEPT,
    VERDICT_CODES,
)
from viewer.review.importing import MAX_DEPTH, MAX_IMPORT_BYTES, FieldError, check_flag, check_study_header
from viewer.review.model import Flag, HeaderAttributes, StudyHeader, Verdict
from viewer.review.store import ReviewStore
from viewer.review.tables import ImportFileError

COMPREHENSIVE_3D_SR = "1.2.840.10008.5.1.4.1.1.88.34"
SR_CLASSES = {COMPREHENSIVE_3D_SR, "1.2.840.10008.5.1.4.1.1.88.33", "1.2.840.10008.5.1.4.1.1.88.22"}
_VERDICT_BY_CODE = {code.value: verdict for verdict, code in VERDICT_CODES.items()}
_FLAG_PREFIX = "RadScope flag "
UNDEFINED_LENGTH = 0xFFFFFFFF
MAX_CONTENT_DEPTH = 32
"""Deepest content tree read (RadScope writes 5 levels; pydicom itself reads far deeper)."""


def _code(item: Dataset, keyword: str = "ConceptNameCodeSequence") -> tuple[str, str]:
    seq = item.get(keyword)
    if not seq:
        return "", ""
    return str(seq[0].get("CodeValue", "")), str(seq[0].get("CodingSchemeDesignator", ""))


def _walk(items: Any) -> Iterator[Dataset]:
    """Every content item under ``items``, depth first (without recursion; a tree deeper than
    :data:`MAX_CONTENT_DEPTH` raises ValueError)."""
    stack: list[tuple[Iterator[Dataset], int]] = [(iter(items or ()), 1)]
    while stack:
        it, depth = stack[-1]
        item = next(it, None)
        if item is None:
            stack.pop()
            continue
        yield item
        children = item.get("ContentSequence")
        if children:
            if depth >= MAX_CONTENT_DEPTH:
                raise ValueError(f"content items nested deeper than {MAX_CONTENT_DEPTH} levels")
            stack.append((iter(children), depth + 1))


def _text(group: Dataset, code: tuple[str, str]) -> list[str]:
    return [str(i.TextValue) for i in group.get("ContentSequence") or ()
            if i.get("ValueType") == "TEXT" and _code(i) == code]


def _reviewer(sr: Dataset) -> str:
    """The person observer's name (the caret export adds to a one-part name dropped)."""
    for item in _walk(sr.get("ContentSequence")):
        if item.get("ValueType") == "PNAME" and _code(item) == ("121008", "DCM"):
            name = str(item.PersonName)
            return name[:-1] if name.endswith("^") and name.count("^") == 1 else name
    return ""


def _series_of_instances(sr: Dataset) -> dict[str, str]:
    """SOP Instance UID -> Series Instance UID from the SR's evidence sequences."""
    out: dict[str, str] = {}
    for keyword in ("CurrentRequestedProcedureEvidenceSequence", "PertinentOtherEvidenceSequence"):
        for study in sr.get(keyword) or ():
            for series in study.get("ReferencedSeriesSequence") or ():
                for ref in series.get("ReferencedSOPSequence") or ():
                    out[str(ref.ReferencedSOPInstanceUID)] = str(series.SeriesInstanceUID)
    return out


def _image_refs(items: Any) -> list[tuple[str, str, int | None]]:
    """(SOP class, SOP instance, frame or None) of every IMAGE item under ``items``."""
    out = []
    for item in _walk(items):
        if item.get("ValueType") == "IMAGE":
            ref = item.ReferencedSOPSequence[0]
            frames = ref.get("ReferencedFrameNumber")
            frame = None if frames in (None, "") else int(frames[0] if isinstance(frames, list | tuple) or
                                                            type(frames).__name__ == "MultiValue" else frames)
            out.append((str(ref.ReferencedSOPClassUID), str(ref.ReferencedSOPInstanceUID), frame))
    return out


def _region(scoord: Dataset, kind: Any, lps: Any) -> dict[str, Any]:
    """A region in its export form from a SCOORD item (pixel centres = SCOORD - 0.5); checked with the flag."""
    graphic = str(scoord.GraphicType)
    pts = np.asarray(scoord.GraphicData, dtype=np.float64).reshape(-1, 2) - 0.5
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    corners = [[float(lo[0]), float(lo[1])], [float(hi[0]), float(hi[1])]]
    if graphic == "POINT":
        kind, px = "point", [[float(pts[0, 0]), float(pts[0, 1])]]
    elif graphic == "ELLIPSE":
        kind, px = "ellipse", corners
    elif graphic == "POLYLINE":
        closed = len(pts) > 1 and np.allclose(pts[0], pts[-1])
        vertices = pts[:-1] if closed else pts
        rectangle = len(vertices) == 4 and all(np.isclose(v, lo).any() and np.isclose(v, hi).any() for v in vertices)
        if kind == "rectangle" or (kind is None and rectangle):
            kind, px = "rectangle", corners
        else:
            kind, px = "polygon", [[float(x), float(y)] for x, y in vertices]
    else:
        raise ValueError(f"graphic type {graphic} is not a RadScope region")
    return {"kind": kind, "points_px": px, "points_lps": lps if isinstance(lps, list) and len(lps) == len(px) else []}


def _model(group: Dataset) -> tuple[dict[str, str], str, Any]:
    """(model, explanation method, threshold) from the algorithm identification items, in export form."""
    name = _text(group, ("111001", "DCM"))
    version = _text(group, ("111003", "DCM"))
    params = dict(p.partition("=")[::2] for p in _text(group, ("111002", "DCM")))
    model = {"name": name[0] if name else "", "version": version[0] if version and version[0] != "unknown" else "",
             "sha256": params.get("sha256", "")}
    threshold: Any = params.get("threshold") or None
    try:
        threshold = float(threshold) if threshold is not None else None
    except ValueError:
        pass  # the text itself: the field check names it
    return model, params.get("explanation", ""), threshold


def _flag(group: Dataset, sr: Dataset, reviewer: str, series_of: dict[str, str], created: str,
          where: str) -> Flag:
    """The flag of one measurement group. A group that is not RadScope's (no verdict, no flag record, no image)
    raises ValueError (skipped); a RadScope group with a bad field raises :class:`FieldError` (refused)."""
    items = group.get("ContentSequence") or ()
    verdicts = [_VERDICT_BY_CODE.get(_code(i, "ConceptCodeSequence")[0]) for i in items
                if i.get("ValueType") == "CODE" and _code(i) == ("RS-VERDICT", SCHEME)]
    if not verdicts or verdicts[0] is None:
        raise ValueError("no RadScope verdict")
    verdict: Verdict = verdicts[0]
    tracking = _text(group, ("112039", "DCM"))  # Tracking Identifier
    uids = [str(i.UID) for i in items if i.get("ValueType") == "UIDREF" and _code(i) == ("112040", "DCM")]
    flag_id = tracking[0][len(_FLAG_PREFIX):] if tracking and tracking[0].startswith(_FLAG_PREFIX) else \
        (uids[0] if uids else "")
    label = next((str(i.ConceptCodeSequence[0].CodeMeaning) for i in items
                  if i.get("ValueType") == "CODE" and _code(i) == ("121071", "DCM")), "")  # Finding
    texts = _text(group, (RECORD_CONCEPT.value, SCHEME))
    try:
        records = [jsonsafe.loads(t, "flag record", max_depth=MAX_DEPTH) for t in texts[:1]]
    except jsonsafe.JsonLimitError as exc:
        raise FieldError(f"{where}.record", str(exc)) from None
    record: dict[str, Any] = records[0] if records and isinstance(records[0], dict) else {}
    if record and record.get("format") != RECORD_FORMAT:
        raise ValueError(f"flag record of unknown format {record.get('format')!r}")
    if "slice_index" not in record:
        raise ValueError("no RadScope flag record (slice index unknown): written by another program?")
    comment = _text(group, (COMMENT_CONCEPT.value, COMMENT_CONCEPT.scheme_designator))
    scope = _text(group, (SCOPE_CONCEPT.value, SCOPE_CONCEPT.scheme_designator))
    scoords = [i for i in _walk(items) if i.get("ValueType") == "SCOORD"]
    region = _region(scoords[0], record.get("region_kind"), record.get("points_lps")) if scoords else None
    refs = _image_refs(scoords[0].get("ContentSequence") if scoords else
                       [i for i in items if i.get("ValueType") == "IMAGE"])
    if not refs:
        raise ValueError("references no image")
    model, method, threshold = _model(group)
    sop_uids = list(dict.fromkeys(r[1] for r in refs))
    headers = record.get("headers")
    if isinstance(headers, dict):  # a newer RadScope's extra attributes are left out; the known ones are checked
        headers = {k: v for k, v in headers.items() if k in HeaderAttributes.__dataclass_fields__}
    series_uid = series_of.get(sop_uids[0], "")
    item = {
        "id": flag_id, "study_uid": str(sr.get("StudyInstanceUID", "")), "series_uid": series_uid,
        "stack_id": record.get("stack_id") or series_uid, "slice_index": record["slice_index"],
        "sop_instance_uids": sop_uids, "sop_class_uid": refs[0][0], "frame_number": refs[0][2],
        "verdict": verdict.value, "label": record.get("label") or label, "region": region,
        "comment": record.get("comment") or (comment[0] if comment else ""), "reviewer": reviewer,
        "created": record.get("created") or created, "updated": record.get("updated") or record.get("created") or created,
        "model": model, "method": method, "threshold": threshold, "headers": headers,
        "frame_of_reference_uid": record.get("frame_of_reference_uid") or "",
        "scope_note": record.get("scope_note") or (scope[0] if scope else ""),
    }
    return check_flag(item, where)


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def _short_element(ds: Dataset) -> str:
    """The first top-level element whose value is shorter than its declared length (a cut file), or ""."""
    for tag in ds.keys():
        raw = ds.get_item(tag)
        if isinstance(raw, RawDataElement) and raw.length != UNDEFINED_LENGTH and raw.value is not None \
                and len(raw.value) < raw.length:
            return f"element {tag} holds {len(raw.value)} of its {raw.length} bytes"
    return ""


def _read_whole(path: Path) -> Dataset:
    """The dataset of ``path``, refusing a damaged or truncated file (pydicom reads those leniently,
    only logging that a sequence's end was missing: flags would vanish without a word)."""
    try:
        st = path.stat()
    except OSError as exc:
        raise ImportFileError(f"cannot read {path}: {exc.strerror or exc}") from None
    if not stat.S_ISREG(st.st_mode):
        raise ImportFileError(f"{path} is not a regular file; refused")
    if st.st_size > MAX_IMPORT_BYTES:
        raise ImportFileError(f"{path} is {st.st_size} bytes, larger than {MAX_IMPORT_BYTES} bytes; refused")
    collect = _Collect()
    logger = logging.getLogger("pydicom")
    logger.addHandler(collect)
    try:
        ds = pydicom.dcmread(path)
        short = _short_element(ds)
        if short:
            raise ImportFileError(f"{path} is truncated or damaged: {short}")
        for _ in ds.iterall():  # pydicom parses values lazily: parse all now, inside the guard
            pass
    except ImportFileError:
        raise
    except Exception as exc:  # hostile input: pydicom raises many kinds (struct.error, OSError, ...)
        raise ImportFileError(f"cannot read {path}: {exc}") from exc
    finally:
        logger.removeHandler(collect)
    damage = [m for m in collect.messages if "end of file" in m.lower() or "truncat" in m.lower()]
    if damage:
        raise ImportFileError(f"{path} is truncated or damaged: {damage[0]}")
    return ds


def study_header_of(ds: Dataset) -> StudyHeader:
    """The patient and study attributes an SR carries (copied from the flagged images at export)."""
    from viewer.review.source import study_header

    return study_header(ds)


def _created(sr: Dataset) -> str:
    date, time = str(sr.get("ContentDate", "") or ""), str(sr.get("ContentTime", "") or "")
    if len(date) != 8:
        return ""
    t = (time.split(".")[0] + "000000")[:6]
    return f"{date[:4]}-{date[4:6]}-{date[6:]}T{t[:2]}:{t[2:4]}:{t[4:6]}Z"


def read_review_sr(path: str | os.PathLike[str]) -> tuple[list[Flag], StudyHeader, list[str]]:
    """(flags, study header, reasons for groups that were skipped) of one RadScope SR file."""
    path = Path(path)
    sr = _read_whole(path)
    if str(sr.get("SOPClassUID", "")) not in SR_CLASSES:
        raise ImportFileError(f"{path} is not a structured report (SOP class {sr.get('SOPClassUID', 'missing')})")
    if _code(sr) != ("126000", "DCM"):
        raise ImportFileError(f"{path} is not a TID 1500 measurement report")
    try:
        reviewer, series_of, created = _reviewer(sr), _series_of_instances(sr), _created(sr)
        groups = [i for i in _walk(sr.get("ContentSequence"))
                  if i.get("ValueType") == "CONTAINER" and _code(i) == ("125007", "DCM")]  # Measurement Group
    except (ValueError, KeyError, TypeError, AttributeError, IndexError) as exc:
        raise ImportFileError(f"{path}: {exc}; nothing was imported") from None
    flags: list[Flag] = []
    skipped: list[str] = []
    seen: dict[str, int] = {}
    for n, group in enumerate(groups, start=1):
        where = f"measurement group #{n}"
        try:
            flag = _flag(group, sr, reviewer, series_of, created, where)
        except FieldError as exc:
            raise ImportFileError(f"{path}: {exc}; nothing was imported") from None
        except (ValueError, KeyError, TypeError, AttributeError, IndexError) as exc:
            skipped.append(f"{path}: {where} skipped: {exc}")
            continue
        if flag.id in seen:
            raise ImportFileError(f"{path}: {where}.id: {flag.id[:40]!r} repeats measurement group #{seen[flag.id]}; "
                                  "nothing was imported")
        seen[flag.id] = n
        flags.append(flag)
    try:
        header = check_study_header(asdict(study_header_of(sr)), "study header")
    except FieldError as exc:
        raise ImportFileError(f"{path}: {exc}; nothing was imported") from None
    return flags, header, skipped


def sr_files(path: str | os.PathLike[str]) -> list[Path]:
    """``path`` itself, or every DICOM file under a folder whose SOP class is an SR (KOS, maps skipped)."""
    path = Path(path)
    if not path.is_dir():
        return [path]
    out = []
    for f in sorted(p for p in path.rglob("*") if p.is_file()):
        try:
            ds = pydicom.dcmread(f, stop_before_pixels=True, specific_tags=["SOPClassUID"])
        except (OSError, InvalidDicomError, ValueError, EOFError):
            continue
        if str(ds.get("SOPClassUID", "")) in SR_CLASSES:
            out.append(f)
    if not out:
        raise ImportFileError(f"{path} holds no DICOM structured report")
    return out


def import_sr(store: ReviewStore, path: str | os.PathLike[str]) -> tuple[Counter[str], list[str]]:
    """Merge the flags of an SR file (or of every SR under a folder) into the store, all files in one
    transaction; returns (added/updated/unchanged counts, messages about skipped groups)."""
    items: list[tuple[Flag, StudyHeader]] = []
    skipped: list[str] = []
    for f in sr_files(path):
        flags, header, why = read_review_sr(f)
        items += [(flag, header) for flag in flags]
        skipped += why
    return Counter(store.merge_flags(items)), skipped


def is_dicom_file(path: str | os.PathLike[str]) -> bool:
    """True for a folder or a file with the DICOM preamble (``DICM`` at byte 128)."""
    path = Path(path)
    if path.is_dir():
        return True
    try:
        with open(path, "rb") as f:
            head = f.read(132)
    except OSError:
        return False
    return head[128:132] == b"DICM"
