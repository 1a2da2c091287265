"""Hostile review import files: each builder writes a JSON export (area ``reviews``) or a RadScope SR (area
``review-sr``) that is valid except for one place (``extra["where"]``, the place the error must name) and returns
its path."""

from __future__ import annotations

import copy
import functools
import json
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.hostile import case


def flag_dict(n: int) -> dict[str, Any]:
    """A complete, valid flag as ``radscope review export --format json`` writes it."""
    return {
        "id": f"flag-{n:04d}", "study_uid": "1.2.3", "series_uid": "1.2.3.4", "stack_id": "1.2.3.4",
        "slice_index": n, "sop_instance_uids": [f"1.2.3.4.{n}"], "sop_class_uid": "1.2.840.10008.5.1.4.1.1.2",
        "frame_number": None, "verdict": "false_positive", "label": "nodule",
        "region": {"kind": "rectangle", "points_px": [[1.0, 2.0], [5.0, 6.0]], "points_lps": []},
        "comment": "vessel", "reviewer": "ann", "created": "2026-01-02T03:04:05.678Z",
        "updated": "2026-01-02T03:04:05.678Z", "model": {"name": "m", "version": "1", "sha256": "ab" * 32},
        "method": "gradcam", "threshold": 0.5,
        "headers": {"manufacturer": "GE", "scanner_model": "X", "kvp": "120", "patient_sex": "F",
                    "age_band": "40-49", "body_part": "CHEST", "modality": "CT"},
        "frame_of_reference_uid": "1.2.3.5", "deleted": False, "version": 1,
    }


def base_doc(n: int = 3) -> dict[str, Any]:
    return {"format": "radscope-review/1", "exported": "2026-01-02T03:04:05.678Z",
            "flags": [flag_dict(i) for i in range(n)], "studies": {"1.2.3": {"patient_id": "P1"}}}


def write(folder: Path, doc: Any, name: str = "export.json") -> Path:
    path = folder / name
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc), encoding="utf-8")
    return path


def _edit(name: str, where: str, change: Callable[[dict[str, Any]], Any], reason: str = "") -> None:
    @case(f"review-{name}", "reviews", outcome="refused", mentions=(where, reason) if reason else (where,),
          where=where)
    def build(folder: Path) -> Path:
        doc = copy.deepcopy(base_doc())
        result = change(doc)
        return write(folder, result if isinstance(result, str) else doc)


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    """Set ``flags.1.slice_index``-style dotted paths (list indices as numbers)."""
    def change(doc: dict[str, Any]) -> None:
        node: Any = doc
        parts = path.split(".")
        for p in parts[:-1]:
            node = node[int(p)] if isinstance(node, list) else node[p]
        last = parts[-1]
        node[int(last) if isinstance(node, list) else last] = value

    return change


_edit("flags-not-a-list", "flags", _set("flags", {"0": flag_dict(0)}), "must be a list")
_edit("flag-not-an-object", "flags[1]", _set("flags.1", "flag"), "must be an object")
_edit("negative-slice", "flags[1].slice_index", _set("flags.1.slice_index", -1))
_edit("huge-slice", "flags[1].slice_index", _set("flags.1.slice_index", 10**30))
_edit("bool-slice", "flags[1].slice_index", _set("flags.1.slice_index", True))
_edit("frame-zero", "flags[0].frame_number", _set("flags.0.frame_number", 0))
_edit("threshold-out-of-range", "flags[0].threshold", _set("flags.0.threshold", 7))
_edit("threshold-string", "flags[0].threshold", _set("flags.0.threshold", "0.5"))
_edit("updated-invalid", "flags[2].updated", _set("flags.2.updated", "yesterday"))
_edit("updated-no-zone", "flags[2].updated", _set("flags.2.updated", "2026-01-02T03:04:05"), "time zone")
_edit("updated-number", "flags[2].updated", _set("flags.2.updated", 1735000000))
_edit("created-missing", "flags[0].created", _set("flags.0.created", None))
_edit("empty-study-uid", "flags[0].study_uid", _set("flags.0.study_uid", ""))
_edit("blank-series-uid", "flags[0].series_uid", _set("flags.0.series_uid", "   "))
_edit("empty-sop-uids", "flags[1].sop_instance_uids", _set("flags.1.sop_instance_uids", []))
_edit("sop-uids-not-strings", "flags[1].sop_instance_uids", _set("flags.1.sop_instance_uids", [1, 2]))
_edit("empty-id", "flags[0].id", _set("flags.0.id", ""))
_edit("duplicate-ids", "flags[2].id", _set("flags.2.id", "flag-0000"), "repeats flags[0]")
_edit("unknown-verdict", "flags[0].verdict", _set("flags.0.verdict", "maybe"))
_edit("region-bad-kind", "flags[0].region.kind", _set("flags.0.region.kind", "circle"))
_edit("region-three-coords", "flags[0].region.points_px[1]", _set("flags.0.region.points_px.1", [1, 2, 3]))
_edit("region-far-away", "flags[0].region.points_px[0]", _set("flags.0.region.points_px.0", [1e300, 0]))
_edit("region-too-few-points", "flags[0].region", _set("flags.0.region.points_px", [[1, 2]]), "needs 2 points")
_edit("model-unknown-key", "flags[0].model.evil", _set("flags.0.model.evil", "x"))
_edit("headers-not-an-object", "flags[0].headers", _set("flags.0.headers", ["GE"]))
_edit("header-not-a-string", "flags[0].headers.kvp", _set("flags.0.headers.kvp", {"a": 1}))
_edit("deleted-string", "flags[0].deleted", _set("flags.0.deleted", "yes"))
_edit("nul-in-label", "flags[0].label", _set("flags.0.label", "nod\x00ule"), "NUL")
_edit("studies-not-an-object", "studies", _set("studies", [1]))
_edit("study-not-an-object", "studies['1.2.3']", lambda d: d["studies"].__setitem__("1.2.3", "P1"))
_edit("infinite-threshold", "flags[0].threshold",
      lambda d: json.dumps(d).replace('"threshold": 0.5', '"threshold": 1e400', 1))
_edit("nan-literal", "NaN", lambda d: json.dumps(d).replace('"threshold": 0.5', '"threshold": NaN', 1))
_edit("not-the-format", "not a RadScope review export", _set("format", "other/1"))


@case("review-nested-100k", "reviews", outcome="refused", mentions=("nested",), where="nested")
def nested_100k(folder: Path) -> Path:
    text = json.dumps(base_doc())[:-1] + ', "x": ' + "[" * 100_000 + "]" * 100_000 + "}"
    return write(folder, text)


@case("review-nested-40", "reviews", outcome="refused", mentions=("nested 4",), where="nested")
def nested_40(folder: Path) -> Path:
    doc = base_doc()
    doc["flags"][0]["comment"] = json.loads("[" * 40 + "]" * 40)
    return write(folder, doc)


@case("review-huge-file", "reviews", outcome="refused", mentions=("larger than",), where="larger than")
def huge_file(folder: Path) -> Path:
    path = write(folder, base_doc())
    with open(path, "r+b") as fh:  # sparse: 4 GiB that would take far more memory to parse
        fh.truncate(4 * 2**30)
    return path


@case("review-not-utf8", "reviews", outcome="refused", mentions=("not valid json",), where="not valid JSON")
def not_utf8(folder: Path) -> Path:
    path = folder / "export.json"
    path.write_bytes(b'{"format": "radscope-review/1", "flags": [\xff\xfe]}')
    return path


# -- RadScope SRs (area "review-sr"): a real SR exported by viewer.review.dicom_export, edited with pydicom ----------

@functools.lru_cache(maxsize=1)
def _pristine_sr() -> bytes:
    """The SR of one reviewer's two flags (a rectangle on slice 0, an ellipse on slice 1) on a 2-slice CT."""
    from tests.support.review_series import context_of, make_ct_series
    from viewer.review.dicom_export import export_dicom
    from viewer.review.model import Region
    from viewer.review.store import ReviewStore

    with tempfile.TemporaryDirectory() as tmp:
        series = make_ct_series(Path(tmp) / "ct", 2)
        with ReviewStore(Path(tmp) / "r.sqlite3") as store:
            store.add_flag(context_of(series[0], 0), "false_positive", "nodule", reviewer="ann",
                           region=Region.make("rectangle", [(1, 2), (10, 12)]), comment="vessel")
            store.add_flag(context_of(series[1], 1), "correct", "nodule", reviewer="ann",
                           region=Region.make("ellipse", [(10, 20), (30, 26)]))
            [sr] = [f.path for f in export_dicom(store, Path(tmp) / "out") if f.path.name.startswith("SR_")]
        return sr.read_bytes()


def write_sr(folder: Path, name: str = "SR_ann.dcm") -> Path:
    """The pristine SR (two valid flags) written under ``folder``."""
    path = folder / name
    path.write_bytes(_pristine_sr())
    return path


def _groups(ds: Any) -> list[Any]:
    """The measurement groups of an SR dataset, in order."""
    out, stack = [], list(reversed(ds.ContentSequence))
    while stack:
        item = stack.pop()
        code = item.ConceptNameCodeSequence[0].CodeValue if "ConceptNameCodeSequence" in item else ""
        if item.get("ValueType") == "CONTAINER" and code == "125007":
            out.append(item)
        stack.extend(reversed(item.get("ContentSequence") or []))
    return out


def _items(group: Any, code: str, value_type: str | None = None) -> list[Any]:
    found, stack = [], list(group.ContentSequence)
    while stack:
        item = stack.pop()
        if "ConceptNameCodeSequence" in item and item.ConceptNameCodeSequence[0].CodeValue == code and \
                (value_type is None or item.ValueType == value_type):
            found.append(item)
        stack.extend(item.get("ContentSequence") or [])
    return found


def _sr_case(name: str, where: str, edit: Callable[[Any], None], reason: str = "") -> None:
    @case(f"review-sr-{name}", "review-sr", outcome="refused", mentions=(where, reason) if reason else (where,),
          where=where)
    def build(folder: Path) -> Path:
        import pydicom

        path = write_sr(folder)
        ds = pydicom.dcmread(path)
        edit(ds)
        ds.save_as(path)
        return path


def _record(n: int, change: Callable[[dict[str, Any]], Any]) -> Callable[[Any], None]:
    """Edit measurement group ``n``'s RadScope flag record (the JSON text item); a str result replaces the text."""
    def edit(ds: Any) -> None:
        [item] = _items(_groups(ds)[n - 1], "RS-FLAG-RECORD", "TEXT")
        record = json.loads(item.TextValue)
        result = change(record)
        item.TextValue = result if isinstance(result, str) else json.dumps(record)

    return edit


def _set_key(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    return lambda record: record.__setitem__(key, value)


def _tracking(n: int, text: str, uid: str | None = None) -> Callable[[Any], None]:
    """Set group ``n``'s Tracking Identifier (and Tracking UID, read when the identifier is not RadScope's)."""
    def edit(ds: Any) -> None:
        [item] = _items(_groups(ds)[n - 1], "112039", "TEXT")
        item.TextValue = text
        if uid is not None:
            [ref] = _items(_groups(ds)[n - 1], "112040", "UIDREF")
            ref.UID = uid

    return edit


def _image_ref(n: int, **attrs: Any) -> Callable[[Any], None]:
    """Set attributes of the image reference(s) of measurement group ``n``."""
    def edit(ds: Any) -> None:
        stack = list(_groups(ds)[n - 1].ContentSequence)
        while stack:
            item = stack.pop()
            if item.ValueType == "IMAGE":
                for key, value in attrs.items():
                    setattr(item.ReferencedSOPSequence[0], key, value)
            stack.extend(item.get("ContentSequence") or [])

    return edit


def _threshold(text: str) -> Callable[[Any], None]:
    def edit(ds: Any) -> None:
        for item in _items(_groups(ds)[0], "111002", "TEXT"):  # Algorithm Parameters
            if item.TextValue.startswith("threshold="):
                item.TextValue = text

    return edit


def _deep_content(ds: Any) -> None:
    from pydicom.dataset import Dataset

    inner = _groups(ds)[0]
    for _ in range(40):  # containers in containers, far deeper than any report
        outer = Dataset()
        outer.RelationshipType, outer.ValueType, outer.ContinuityOfContent = "CONTAINS", "CONTAINER", "SEPARATE"
        outer.ContentSequence = [inner]
        inner = outer
    ds.ContentSequence[-1].ContentSequence.append(inner)


def _duplicate_id(ds: Any) -> None:
    first, second = _groups(ds)
    [a] = _items(first, "112039", "TEXT")
    [b] = _items(second, "112039", "TEXT")
    b.TextValue = a.TextValue


_sr_case("negative-slice", "measurement group #2.slice_index", _record(2, _set_key("slice_index", -1)))
_sr_case("slice-as-text", "measurement group #1.slice_index", _record(1, _set_key("slice_index", "4")))
_sr_case("huge-slice", "measurement group #1.slice_index", _record(1, _set_key("slice_index", 10**30)))
_sr_case("empty-tracking-id", "measurement group #1.id", _tracking(1, "", uid=""), "non-empty")
_sr_case("duplicate-ids", "measurement group #2.id", _duplicate_id, "repeats measurement group #1")
_sr_case("empty-image-uid", "measurement group #1.sop_instance_uids", _image_ref(1, ReferencedSOPInstanceUID=""))
_sr_case("frame-zero", "measurement group #1.frame_number", _image_ref(1, ReferencedFrameNumber="0"))
_sr_case("updated-year-99999", "measurement group #2.updated",
         _record(2, _set_key("updated", "99999-01-01T00:00:00Z")))
_sr_case("created-year-1", "measurement group #1.created", _record(1, _set_key("created", "0001-01-01T00:00:00Z")),
         "out of range")
_sr_case("updated-no-zone", "measurement group #1.updated", _record(1, _set_key("updated", "2026-01-02T03:04:05")),
         "time zone")
_sr_case("huge-comment", "measurement group #1.comment", _record(1, _set_key("comment", "x" * 2_000_000)),
         "characters long")
_sr_case("nul-in-label", "measurement group #1.label", _record(1, _set_key("label", "nod\x00ule")), "NUL")
_sr_case("header-not-a-string", "measurement group #1.headers.kvp",
         _record(1, lambda r: r["headers"].__setitem__("kvp", {"a": 1})))
_sr_case("points-far-away", "measurement group #1.region.points_lps[0]",
         _record(1, _set_key("points_lps", [[1e300, 0, 0], [0, 0, 0]])))
_sr_case("threshold-nan", "measurement group #1.threshold", _threshold("threshold=nan"))
_sr_case("threshold-text", "measurement group #1.threshold", _threshold("threshold=high"))
_sr_case("record-nested", "measurement group #1.record", _record(1, lambda r: json.dumps(
    {**r, "x": json.loads("[" * 100 + "]" * 100)})), "nested")
_sr_case("record-nan", "measurement group #1.record", _record(1, lambda r: json.dumps(r).replace(
    '"slice_index":0', '"slice_index":NaN').replace('"slice_index": 0', '"slice_index": NaN')), "NaN")
_sr_case("content-nested-40", "nested deeper than", _deep_content)
_sr_case("patient-name-5000", "study header.patient_name", lambda ds: setattr(ds, "PatientName", "A" * 5000),
         "characters long")


@case("review-sr-huge-file", "review-sr", outcome="refused", mentions=("larger than",), where="larger than")
def sr_huge_file(folder: Path) -> Path:
    path = write_sr(folder)
    with open(path, "r+b") as fh:  # sparse: pydicom would read 4 GiB of zeros into memory
        fh.truncate(4 * 2**30)
    return path
