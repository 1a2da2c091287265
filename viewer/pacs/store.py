"""The local folder retrieved instances land in: ``ROOT/<study UID>/<series UID>/<SOP instance UID>.dcm``.

Every instance is written to a temporary file under ``ROOT/.incoming``, validated (readable header, valid
UIDs, of the study/series asked for, image headers the DICOM engine accepts), then renamed into place: a
file with its final name is always complete, so a retrieval resumes by skipping the instances whose file
exists. Folder and file names are UIDs checked to be digits and dots (anything else gets the shared safe name
of :func:`viewer.paths.safe_component`, tagged with a digest), and the final path is checked by
:func:`viewer.paths.inside` to lie inside the root: a hostile dataset or PACS can never write elsewhere.
"""

from __future__ import annotations

import os
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from viewer.pacs.query import is_uid
from viewer.paths import UnsafePathError, inside, safe_component

INCOMING = ".incoming"


def uid_component(uid: str) -> str:
    """A file-name component for a UID: the UID itself when it is one, else the shared safe name
    (:func:`viewer.paths.safe_component`, tagged with a digest so two hostile UIDs never share a folder)."""
    return uid if is_uid(uid) else safe_component(uid, tag_changes=True, fallback="x")


def default_root() -> Path:
    """``RADSCOPE_HOME/pacs``: where ``radscope pacs get`` and the viewer put retrieved studies."""
    from viewer import paths

    return paths.subdir("pacs")


@dataclass(frozen=True)
class Stored:
    """One instance now on disk."""

    path: Path
    study_uid: str
    series_uid: str
    sop_uid: str
    new: bool


class InstanceRejected(Exception):
    """A received instance that was not kept; the message says which and why."""


@dataclass(frozen=True)
class Expect:
    """What a retrieval asked for: received instances of another study/series are rejected."""

    study_uid: str | None = None
    series_uid: str | None = None


class LocalStore:
    """A root folder of retrieved studies; safe to use from several threads."""

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        self.root = Path(root) if root is not None else default_root()
        self.root.mkdir(parents=True, exist_ok=True)
        self.root = self.root.resolve()
        self._sweep_incoming()

    def _sweep_incoming(self, older_than_s: float = 6 * 3600) -> None:
        """Remove temporaries a killed process left in ``.incoming`` (old ones only: another process may be
        receiving right now)."""
        import time

        folder = self.root / INCOMING
        if not folder.is_dir():
            return
        limit = time.time() - older_than_s
        for part in folder.glob("*.part"):
            try:
                if part.stat().st_mtime < limit:
                    part.unlink()
            except OSError:
                pass

    def folder(self, study_uid: str, series_uid: str | None = None) -> Path:
        names = [uid_component(study_uid)] + ([uid_component(series_uid)] if series_uid is not None else [])
        return self._inside(*names)

    def path_for(self, study_uid: str, series_uid: str, sop_uid: str) -> Path:
        return self._inside(uid_component(study_uid), uid_component(series_uid), f"{uid_component(sop_uid)}.dcm")

    def _inside(self, *names: str) -> Path:
        try:
            return inside(self.root, *names)
        except UnsafePathError as exc:
            raise InstanceRejected(str(exc)) from None

    def present(self, study_uid: str, series_uid: str | None = None) -> set[str]:
        """SOP instance UIDs already stored for a study (or one series of it)."""
        base = self.folder(study_uid, series_uid)
        if not base.is_dir():
            return set()
        pattern = "*.dcm" if series_uid is not None else "*/*.dcm"
        return {p.stem for p in base.glob(pattern) if is_uid(p.stem)}

    def incoming_file(self) -> Path:
        """A new empty temporary file under ``ROOT/.incoming`` (same file system as the final place)."""
        folder = self.root / INCOMING
        folder.mkdir(exist_ok=True)
        fd, name = tempfile.mkstemp(suffix=".part", dir=folder)
        os.close(fd)
        return Path(name)

    def accept_bytes(self, data: bytes, expect: Expect, sop_uid: str | None = None) -> Stored:
        """Keep one encoded Part 10 file (as pynetdicom's ``encoded_dataset()`` gives it)."""
        tmp = self.incoming_file()
        try:
            tmp.write_bytes(data)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise InstanceRejected(f"instance {sop_uid or '?'}: cannot write ({exc.strerror})") from None
        return self.accept_file(tmp, expect, sop_uid)

    def accept_dataset(self, ds: Any, expect: Expect) -> Stored:
        """Keep one decoded dataset (as dicomweb-client gives it), written as a Part 10 file."""
        tmp = self.incoming_file()
        try:
            ds.save_as(tmp, enforce_file_format=True)
        except Exception as exc:  # a dataset that cannot be encoded is hostile or broken
            tmp.unlink(missing_ok=True)
            uid = getattr(ds, "SOPInstanceUID", "?")
            raise InstanceRejected(f"instance {uid}: cannot be written ({type(exc).__name__}: {exc})") from None
        return self.accept_file(tmp, expect, None)

    def accept_file(self, tmp: Path, expect: Expect, sop_uid: str | None) -> Stored:
        """Validate ``tmp`` and move it into place (or delete it and raise :class:`InstanceRejected`)."""
        try:
            study, series, sop = validate_instance(tmp, expect, sop_uid)
            final = self.path_for(study, series, sop)
            final.parent.mkdir(parents=True, exist_ok=True)
            if final.exists():
                return Stored(final, study, series, sop, new=False)
            os.replace(tmp, final)
            return Stored(final, study, series, sop, new=True)
        finally:
            tmp.unlink(missing_ok=True)


def validate_instance(path: Path, expect: Expect, sop_uid: str | None = None) -> tuple[str, str, str]:
    """(study, series, SOP instance UID) of a received file, or :class:`InstanceRejected` saying why."""
    from viewer.dicom.errors import DicomFileError, NotDicomError
    from viewer.dicom.headers import parse_header, read_dataset

    label = f"instance {sop_uid}" if sop_uid else "instance"
    try:
        ds = read_dataset(str(path), stop_before_pixels=True)
    except NotDicomError:
        raise InstanceRejected(f"{label}: not DICOM") from None
    except DicomFileError as exc:
        raise InstanceRejected(f"{label}: {exc.reason}") from None
    uids = {}
    for key in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "SOPClassUID"):
        try:
            value = str(ds.get(key, "") or "").strip()
        except Exception:  # a malformed element raises on access
            value = ""
        if not is_uid(value):
            raise InstanceRejected(f"{label}: missing or invalid {key} {value[:80]!r}")
        uids[key] = value
    sop = uids["SOPInstanceUID"]
    label = f"instance {sop}"
    if sop_uid and sop != sop_uid:
        raise InstanceRejected(f"{label}: announced as {sop_uid}")
    if expect.study_uid and uids["StudyInstanceUID"] != expect.study_uid:
        raise InstanceRejected(f"{label}: belongs to study {uids['StudyInstanceUID']}, not the one asked for")
    if expect.series_uid and uids["SeriesInstanceUID"] != expect.series_uid:
        raise InstanceRejected(f"{label}: belongs to series {uids['SeriesInstanceUID']}, not the one asked for")
    if "Rows" in ds or "PixelData" in ds:  # an image: the engine's own checks (sizes, pixel data, decoders)
        try:
            parse_header(str(path))
        except DicomFileError as exc:
            raise InstanceRejected(f"{label}: {exc.reason}") from None
        except NotDicomError:
            raise InstanceRejected(f"{label}: not DICOM") from None
    return uids["StudyInstanceUID"], uids["SeriesInstanceUID"], sop


@dataclass
class RetrieveReport:
    """The outcome of one retrieval: where, how many, what is still missing and why."""

    folder: Path
    expected: int | None = None
    stored: int = 0
    already: int = 0
    errors: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    cancelled: bool = False
    first_instance_s: float | None = None

    @property
    def complete(self) -> bool:
        return not self.cancelled and not self.missing and not self.errors

    def summary(self, where: str | None = None, resume: str = "run the same command again to resume") -> str:
        """``n/total instances <where>`` (default: ``in <folder>``), then what was there already, cancelled,
        missing (with ``resume``, how to get the rest) and errors."""
        total = "?" if self.expected is None else str(self.expected)
        text = f"{self.stored + self.already}/{total} instances {where or f'in {self.folder}'}"
        if self.already:
            text += f" ({self.already} already there)"
        if self.cancelled:
            text += "; cancelled"
        if self.missing:
            text += f"; {len(self.missing)} missing ({resume})"
        if self.errors:
            text += f"; {len(self.errors)} error(s)"
        return text


ProgressCallback = Callable[[Stored, int, "int | None"], None]
"""``progress(stored, done, expected)``: called from network threads as each instance lands."""


class Sink:
    """Where one retrieval's instances go: validates, stores, counts, reports progress; thread-safe."""

    def __init__(self, store: LocalStore, expect: Expect, report: RetrieveReport,
                 progress: ProgressCallback | None = None, t0: float | None = None) -> None:
        self.store, self.expect, self.report, self.progress = store, expect, report, progress
        self._lock = threading.Lock()
        self._t0 = t0
        self.rejected: set[str] = set()
        """SOP instance UIDs received but refused (asking again would bring the same bytes)."""

    def _done(self, stored: Stored) -> None:
        import time

        with self._lock:
            if stored.new:
                self.report.stored += 1
            if self.report.first_instance_s is None and self._t0 is not None:
                self.report.first_instance_s = time.perf_counter() - self._t0
            done = self.report.stored + self.report.already
        if self.progress is not None:
            self.progress(stored, done, self.report.expected)

    def error(self, message: str) -> None:
        with self._lock:
            if len(self.report.errors) < 1000:
                self.report.errors.append(message)

    def _rejected(self, sop_uid: Any, exc: InstanceRejected) -> None:
        with self._lock:
            if sop_uid:
                self.rejected.add(str(sop_uid))
        self.error(str(exc))

    def take_bytes(self, data: bytes, sop_uid: str | None) -> bool:
        try:
            stored = self.store.accept_bytes(data, self.expect, sop_uid)
        except InstanceRejected as exc:
            self._rejected(sop_uid, exc)
            return False
        self._done(stored)
        return True

    def take_dataset(self, ds: Any) -> bool:
        try:
            stored = self.store.accept_dataset(ds, self.expect)
        except InstanceRejected as exc:
            self._rejected(getattr(ds, "SOPInstanceUID", None), exc)
            return False
        self._done(stored)
        return True
