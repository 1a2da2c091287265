"""A searchable tree of a DICOM header, built from any pydicom-like Dataset without importing pydicom.

An element needs ``tag`` (int), ``keyword``, ``VR`` and ``value``; a Dataset iterates over its elements;
a sequence (VR ``SQ``) holds Datasets. The file meta group is included first when present.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from collections.abc import Iterable

MAX_VALUE_CHARS = 160
HIDDEN = "(hidden)"
IDENTIFYING_KEYWORDS = frozenset({
    "PatientName", "PatientID", "PatientBirthDate", "PatientBirthTime", "OtherPatientIDs",
    "OtherPatientIDsSequence", "OtherPatientNames", "PatientAddress", "PatientTelephoneNumbers",
    "PatientMotherBirthName", "MilitaryRank", "MedicalRecordLocator", "IssuerOfPatientID",
    "AccessionNumber", "InstitutionName", "InstitutionAddress", "InstitutionalDepartmentName",
    "ReferringPhysicianName", "PerformingPhysicianName", "OperatorsName", "PhysiciansOfRecord",
    "NameOfPhysiciansReadingStudy", "RequestingPhysician", "StationName", "DeviceSerialNumber",
    "StudyDate", "SeriesDate", "AcquisitionDate", "ContentDate", "InstanceCreationDate", "StudyID",
    "PatientAge", "PatientSex", "PatientWeight", "PatientSize", "EthnicGroup",
})
"""Keywords whose values the hide-identifying switch masks in the tag browser (names, IDs, dates, places)."""
_BINARY_VRS = {"OB", "OW", "OF", "OD", "OL", "OV", "UN"}


@dataclass
class TagNode:
    """One row of the tag tree: an element, or an item of a sequence (``tag`` is None)."""

    tag: int | None
    keyword: str
    vr: str
    value: str
    children: list[TagNode] = field(default_factory=list)

    @property
    def tag_text(self) -> str:
        return "" if self.tag is None else f"({self.tag >> 16:04X},{self.tag & 0xFFFF:04X})"


def _value_text(vr: str, value: Any) -> str:
    if value is None:
        return ""
    if vr in _BINARY_VRS or isinstance(value, (bytes, bytearray)):
        n = len(value) if hasattr(value, "__len__") else 0
        return f"<{n} bytes>"
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        text = "\\".join(str(v) for v in value)
    else:
        text = str(value)
    return text if len(text) <= MAX_VALUE_CHARS else text[: MAX_VALUE_CHARS - 1] + "…"


def _nodes(dataset: Iterable[Any], hide: bool = False) -> list[TagNode]:
    out: list[TagNode] = []
    for elem in dataset:
        vr = str(getattr(elem, "VR", ""))
        tag = int(elem.tag)
        keyword = str(getattr(elem, "keyword", "") or getattr(elem, "name", ""))
        if hide and keyword in IDENTIFYING_KEYWORDS:
            out.append(TagNode(tag, keyword, vr, HIDDEN))
            continue
        if vr == "SQ":
            items = list(elem.value or [])
            node = TagNode(tag, keyword, vr, f"{len(items)} item(s)")
            node.children = [TagNode(None, f"Item {n + 1}", "", "", _nodes(item, hide)) for n, item in enumerate(items)]
        else:
            try:
                value = elem.value
            except Exception as exc:  # a malformed element must not hide the rest of the header
                value = f"<unreadable: {exc}>"
            node = TagNode(tag, keyword, vr, _value_text(vr, value))
        out.append(node)
    return out


def build_tag_tree(dataset: Any, hide_identifying: bool = False) -> list[TagNode]:
    """Top-level nodes of a dataset (file meta first), with sequences expanded into items; with
    ``hide_identifying`` the values of :data:`IDENTIFYING_KEYWORDS` read ``(hidden)`` (at any depth)."""
    nodes: list[TagNode] = []
    meta = getattr(dataset, "file_meta", None)
    if meta is not None and len(meta):
        nodes += _nodes(meta)
    return nodes + _nodes(dataset, hide_identifying)


_HEX_TAG = re.compile(r"^\(?\s*([0-9a-fA-F]{4})\s*[, ]?\s*([0-9a-fA-F]{4})\s*\)?$")


def node_matches(node: TagNode, query: str) -> bool:
    """Does the node itself match: by tag (``0010,0010``, ``(0010,0010)``, ``00100010``), keyword or value?"""
    q = query.strip()
    if not q:
        return True
    m = _HEX_TAG.match(q)
    if m and node.tag is not None and node.tag == int(m.group(1) + m.group(2), 16):
        return True
    ql = q.lower()
    return ql in node.keyword.lower() or ql in node.value.lower() or (node.tag is not None and ql in node.tag_text.lower())


def filter_tree(nodes: list[TagNode], query: str) -> list[TagNode]:
    """The sub-tree of nodes that match or have matching descendants (a matching sequence keeps its items)."""
    out: list[TagNode] = []
    for node in nodes:
        if node_matches(node, query):
            out.append(node)
            continue
        kids = filter_tree(node.children, query)
        if kids:
            out.append(TagNode(node.tag, node.keyword, node.vr, node.value, kids))
    return out
