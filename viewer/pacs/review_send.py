"""Send the review store's DICOM exports (Key Object Selection documents, one SR per reviewer) to a node."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from viewer.pacs.client import PacsClient, SendProgress, SendReport


def export_findings(store: Any, out_dir: Path, study_uid: str | None = None) -> list[Path]:
    """Write the store's DICOM exports under ``out_dir`` (:func:`viewer.review.dicom_export.export_dicom`);
    the files of ``study_uid`` only when given. Call it on the thread that owns ``store``."""
    from viewer.review.dicom_export import export_dicom

    return [f.path for f in export_dicom(store, out_dir) if study_uid is None or f.study_uid == study_uid]


def send_findings(client: PacsClient, files: list[Path], progress: SendProgress | None = None,
                  cancel: threading.Event | None = None) -> SendReport:
    """C-STORE / STOW-RS the exported files (any thread)."""
    if not files:
        report = SendReport()
        report.errors.append("no review findings to send (flag something first)")
        return report
    return client.send(files, progress, cancel)
