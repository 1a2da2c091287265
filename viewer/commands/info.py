"""``radscope info PATH ... [--json]``: list the series (stacks) found, with warnings and per-file errors."""

from __future__ import annotations

import argparse
import json
import math
import sys
from typing import Any


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+", help="DICOM files, folders, .zip archives or DICOMDIRs")
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON")


def _series_entry(stack: Any) -> dict[str, Any]:
    info = stack.info
    return {
        "study_uid": info.study_uid,
        "series_uid": info.series_uid,
        "stack_id": info.stack_id,
        "modality": info.modality,
        "description": info.description,
        "n_slices": stack.n_slices,
        "rows": stack.rows,
        "columns": stack.columns,
        "spacing_mm": [round(v, 6) if math.isfinite(v) else None for v in stack.spacing_zyx],
        "warnings": list(stack.warnings),
    }


def report(paths: list[str]) -> dict[str, Any]:
    """The ``info --json`` document for ``paths``."""
    from viewer.dicom import scan

    result = scan(paths)
    return {
        "series": [_series_entry(s) for s in result.stacks],
        "errors": [{"path": e.path, "error": e.error} for e in result.errors],
    }


def json_safe(value: Any) -> Any:
    """``value`` with every non-finite float replaced by None (JSON has no NaN or Infinity)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def _table(doc: dict[str, Any]) -> str:
    rows = [("#", "modality", "slices", "rows x cols", "spacing mm (slice,row,col)", "description", "stack id")]
    for n, s in enumerate(doc["series"], 1):
        rows.append((
            str(n), s["modality"], str(s["n_slices"]), f"{s['rows']} x {s['columns']}",
            ", ".join("?" if v is None else f"{v:g}" for v in s["spacing_mm"]), s["description"] or "-", s["stack_id"],
        ))
    widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in rows]
    for n, s in enumerate(doc["series"], 1):
        lines.extend(f"  warning (#{n}): {w}" for w in s["warnings"])
    if doc["errors"]:
        lines.append(f"{len(doc['errors'])} file(s) could not be used:")
        lines.extend(f"  {e['path']}: {e['error']}" for e in doc["errors"])
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    doc = report(args.paths)
    if args.json:
        print(json.dumps(json_safe(doc), indent=2, allow_nan=False))
    else:
        print(_table(doc) if doc["series"] else "no image series found")
        if not doc["series"] and doc["errors"]:
            print("\n".join(f"  {e['path']}: {e['error']}" for e in doc["errors"]))
    if not doc["series"]:
        print("radscope info: nothing could be read", file=sys.stderr)
        return 1
    return 0
