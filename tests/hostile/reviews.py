"""Hostile review import files: each builder writes a JSON export that is valid except for one place
(``extra["where"]``, the place the error must name) and returns its path."""

from __future__ import annotations

import copy
import json
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
