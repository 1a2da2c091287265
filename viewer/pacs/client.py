"""The interface both clients (DIMSE, DICOMweb) offer, and what sending reports."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from viewer.pacs.nodes import Node
from viewer.pacs.query import FindResult, Query, is_uid
from viewer.pacs.store import Sink

MAX_SEND_FILES = 200_000


@dataclass(frozen=True)
class InstanceRef:
    series_uid: str
    sop_uid: str
    sop_class: str = ""


Want = dict[str, list[str] | None] | None
"""What to fetch: None = the whole study; else series UID -> its SOP instance UIDs (None = whole series)."""


@dataclass
class SendReport:
    sent: int = 0
    errors: list[str] = field(default_factory=list)
    cancelled: bool = False

    def summary(self, node: str) -> str:
        text = f"sent {self.sent} instance(s) to {node}"
        if self.errors:
            text += f"; {len(self.errors)} failed"
        if self.cancelled:
            text += "; cancelled"
        return text


SendProgress = Callable[[int, int], None]
"""``progress(done, total)``."""


class PacsClient(Protocol):
    node: Node

    def echo(self) -> float:
        """Round trip in seconds; raises PacsError with the reason when the node cannot be reached."""
        ...

    def find(self, query: Query) -> FindResult: ...

    def list_instances(self, study_uid: str, series_uid: str | None = None) -> list[InstanceRef]: ...

    def fetch(self, study_uid: str, want: Want, sink: Sink, cancel: threading.Event | None = None) -> None: ...

    def send(self, paths: Sequence[str | os.PathLike[str]], progress: SendProgress | None = None,
             cancel: threading.Event | None = None) -> SendReport: ...


def files_under(paths: Sequence[str | os.PathLike[str]], errors: list[str]) -> Iterator[Path]:
    """Regular files under files/folders (recursive, sorted; symlinks to folders not followed)."""
    count = 0
    for raw in paths:
        path = Path(raw)
        if path.is_file():
            found: list[Path] = [path]
        elif path.is_dir():
            found = []
            for root, dirs, names in os.walk(path):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                found.extend(Path(root) / n for n in sorted(names) if not n.startswith("."))
        else:
            errors.append(f"{path}: no such file or folder")
            continue
        for f in found:
            count += 1
            if count > MAX_SEND_FILES:
                errors.append(f"more than {MAX_SEND_FILES} files: the rest were not sent")
                return
            yield f


def dataset_to_send(path: Path, errors: list[str], uids: Sequence[str], what: str, *, pixels: bool) -> Any | None:
    """``path``'s dataset for sending (its pixel data only with ``pixels``), or None with the reason in ``errors``:
    not DICOM, unreadable, or one of the ``uids`` (keywords, worded ``what``) missing or not a valid UID."""
    from viewer.dicom.errors import DicomFileError, NotDicomError
    from viewer.dicom.headers import read_dataset

    try:
        ds = read_dataset(str(path), stop_before_pixels=not pixels)
    except NotDicomError:
        errors.append(f"{path}: not DICOM, not sent")
        return None
    except DicomFileError as exc:
        errors.append(f"{path}: {exc.reason}")
        return None
    if not all(is_uid(str(ds.get(keyword, "") or "")) for keyword in uids):
        errors.append(f"{path}: no valid {what} UID, not sent")
        return None
    return ds
