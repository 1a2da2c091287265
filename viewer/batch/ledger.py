"""What a rerun may skip, and what failed: the output folder is the ledger.

A series is done when ``<out>/<folder>/scores.json`` parses and names the same model sha256, method,
input rule and stack key (the stack id plus a digest of its SOP Instance UIDs in slice order) as the job at
hand; ``scores.json`` is written last and atomically, so a half-written folder never counts. Failures go to
``<out>/errors.json`` (rewritten atomically after each failure) with the reason and the attempts made.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from viewer.batch.series import SeriesOutcome, write_json_atomic

MAX_SCORES_BYTES = 64 * 1024 * 1024
"""A scores.json larger than this is not read (not ours, or corrupt): the series is redone."""
ERRORS_FILE = "errors.json"


def done_record(folder: Path, *, sha256: str, method: str, input_rule: str, stack_key: str) -> dict[str, Any] | None:
    """The folder's scores.json when it records exactly this job, else None (missing, other model or
    method, other input rule or slices, unreadable or not a JSON object)."""
    path = folder / "scores.json"
    try:
        if path.stat().st_size > MAX_SCORES_BYTES:
            return None
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return None
    if not isinstance(doc, dict) or not isinstance(doc.get("model"), dict):
        return None
    same = (doc["model"].get("sha256") == sha256 and doc.get("method") == method
            and doc.get("input_rule") == input_rule and doc.get("stack_key") == stack_key)
    return doc if same else None


class ErrorsLog:
    """``<out>/errors.json``: ``{"errors": [{stack_id, series_uid, reason, attempts, ...}]}``, this run's only."""

    def __init__(self, out_root: Path) -> None:
        self.path = out_root / ERRORS_FILE
        self.entries: list[dict[str, Any]] = []

    def add(self, outcome: SeriesOutcome) -> None:
        self.entries.append({k: v for k, v in asdict(outcome).items() if k not in ("seconds",)})
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(self.path, {"errors": self.entries})

    def finish(self) -> None:
        """A run without failures leaves no errors.json behind (an old one would mislead)."""
        if not self.entries:
            self.path.unlink(missing_ok=True)
