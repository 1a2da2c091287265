"""DIMSE client (pynetdicom): C-ECHO, C-FIND (study, series, image level), C-GET, C-MOVE (to our own
storage SCP), C-STORE. Every timeout is set (see :mod:`dimse_common`), so a dead node fails in seconds."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from pydicom.dataset import Dataset
from pynetdicom import evt
from pynetdicom.sop_class import (  # type: ignore[attr-defined]
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelGet,
    StudyRootQueryRetrieveInformationModelMove,
    Verification,
)

from viewer.pacs.client import InstanceRef, SendProgress, SendReport, Want, dataset_to_send, files_under
from viewer.pacs.dimse_common import (
    MAX_CONTEXTS,
    capture_errors,
    new_ae,
    raise_for_status,
    scp_roles,
    status_text,
    storage_contexts,
    why_not_established,
)
from viewer.pacs.errors import PacsError
from viewer.pacs.listener import StorageSCP, store_handler
from viewer.pacs.nodes import DimseNode
from viewer.pacs.query import DEFAULT_INSTANCE_LIMIT, FindResult, Query, SeriesMatch, StudyMatch, as_int, is_uid, text
from viewer.pacs.store import Sink

PENDING = (0xFF00, 0xFF01)
UIDS_PER_REQUEST = 200
"""SOP instance UIDs per image-level C-GET/C-MOVE identifier (a resumed retrieval asks for the rest)."""
DEFAULT_LISTEN_HOST = os.environ.get("RADSCOPE_PACS_LISTEN_HOST", "0.0.0.0")


class DimseClient:
    """Talks to one :class:`DimseNode`."""

    def __init__(self, node: DimseNode, *, listen_host: str | None = None) -> None:
        self.node = node
        self.listen_host = listen_host or DEFAULT_LISTEN_HOST
        self._classes: set[str] = set()

    # ---- associations -------------------------------------------------------------------------------
    @contextmanager
    def _association(self, what: str, contexts: Sequence[Any] = (), roles: Sequence[Any] = (),
                     handlers: Sequence[Any] = ()) -> Iterator[Any]:
        ae = new_ae(self.node.our_aet)
        for cx in contexts:
            if isinstance(cx, str):
                ae.add_requested_context(cx)
            else:
                ae.add_requested_context(cx.abstract_syntax, cx.transfer_syntax)
        with capture_errors() as captured:
            assoc = ae.associate(self.node.host, self.node.port, ae_title=self.node.ae_title, max_pdu=0,
                                 ext_neg=list(roles) or None, evt_handlers=list(handlers) or None)
        if not assoc.is_established:
            raise PacsError(f"{self.node.describe()}: {what}: {why_not_established(assoc, captured.lines)}")
        try:
            yield assoc
        finally:
            if assoc.is_established:
                assoc.release()
            ae.shutdown()

    def _fail(self, what: str, detail: str) -> PacsError:
        return PacsError(f"{self.node.describe()}: {what}: {detail}")

    # ---- C-ECHO -------------------------------------------------------------------------------------
    def echo(self) -> float:
        t0 = time.perf_counter()
        with self._association("C-ECHO", [Verification]) as assoc:
            status = assoc.send_c_echo()
            code = raise_for_status(status, "C-ECHO", self.node.describe())
            if code != 0:
                raise self._fail("C-ECHO", status_text(status))
        return time.perf_counter() - t0

    # ---- C-FIND -------------------------------------------------------------------------------------
    def _find(self, assoc: Any, identifier: Dataset, limit: int, what: str) -> tuple[list[Dataset], bool]:
        """Matches of one C-FIND (at most ``limit``: past it the association is aborted; True = cut)."""
        found: list[Dataset] = []
        for status, ident in assoc.send_c_find(identifier, StudyRootQueryRetrieveInformationModelFind):
            code = raise_for_status(status, what, self.node.describe())
            if code in PENDING:
                if ident is not None:
                    found.append(ident)
                if len(found) >= limit:
                    assoc.abort()
                    return found, True
            elif code == 0:
                break
            else:
                raise self._fail(what, status_text(status))
        return found, False

    def find(self, query: Query) -> FindResult:
        ds = Dataset()
        ds.QueryRetrieveLevel = "STUDY"
        for keyword, value in (
            ("StudyInstanceUID", query.study_uid), ("PatientID", query.patient_id),
            ("PatientName", query.patient_name), ("StudyDate", query.study_date),
            ("AccessionNumber", query.accession), ("StudyDescription", query.description),
            ("ModalitiesInStudy", query.modality), ("PatientBirthDate", None), ("StudyTime", None),
            ("NumberOfStudyRelatedSeries", None),
        ):
            setattr(ds, keyword, value or "")
        result = FindResult()
        with self._association("C-FIND", [StudyRootQueryRetrieveInformationModelFind]) as assoc:
            idents, result.truncated = self._find(assoc, ds, query.limit, "C-FIND (studies)")
        for ident in idents:
            study = _study_from(ident)
            if study is None:
                result.warnings.append("a study match without a valid Study Instance UID was skipped")
            else:
                result.studies.append(study)
        if result.studies:
            self._add_series(result)
        return result

    def _add_series(self, result: FindResult) -> None:
        with self._association("C-FIND (series)", [StudyRootQueryRetrieveInformationModelFind]) as assoc:
            for study in result.studies:
                ds = Dataset()
                ds.QueryRetrieveLevel = "SERIES"
                ds.StudyInstanceUID = study.study_uid
                for keyword in ("SeriesInstanceUID", "Modality", "SeriesNumber", "SeriesDescription",
                                "NumberOfSeriesRelatedInstances"):
                    setattr(ds, keyword, "")
                idents, cut = self._find(assoc, ds, 10_000, "C-FIND (series)")
                for ident in idents:
                    series = _series_from(ident)
                    if series is None:
                        result.warnings.append(f"study {study.study_uid}: a series match without a valid UID was skipped")
                    else:
                        study.series.append(series)
                study.series.sort(key=lambda s: (s.number is None, s.number or 0, s.series_uid))
                if cut:
                    result.warnings.append(f"study {study.study_uid}: series list cut at 10000")
                    return

    def list_instances(self, study_uid: str, series_uid: str | None = None) -> list[InstanceRef]:
        refs: list[InstanceRef] = []
        with self._association("C-FIND (instances)", [StudyRootQueryRetrieveInformationModelFind]) as assoc:
            if series_uid is None:
                ds = Dataset()
                ds.QueryRetrieveLevel = "SERIES"
                ds.StudyInstanceUID = study_uid
                ds.SeriesInstanceUID = ""
                idents, _ = self._find(assoc, ds, 10_000, "C-FIND (series)")
                series_uids = [str(i.get("SeriesInstanceUID", "")) for i in idents]
                series_uids = [s for s in series_uids if is_uid(s)]
            else:
                series_uids = [series_uid]
            for s in series_uids:
                ds = Dataset()
                ds.QueryRetrieveLevel = "IMAGE"
                ds.StudyInstanceUID = study_uid
                ds.SeriesInstanceUID = s
                ds.SOPInstanceUID = ""
                ds.SOPClassUID = ""
                room = DEFAULT_INSTANCE_LIMIT - len(refs)
                idents, cut = self._find(assoc, ds, room, "C-FIND (instances)")
                for ident in idents:
                    sop, cls = str(ident.get("SOPInstanceUID", "")), str(ident.get("SOPClassUID", "") or "")
                    if is_uid(sop):
                        refs.append(InstanceRef(s, sop, cls if is_uid(cls) else ""))
                if cut:
                    raise self._fail("C-FIND (instances)", f"more than {DEFAULT_INSTANCE_LIMIT} instances")
        self._classes.update(r.sop_class for r in refs if r.sop_class)
        return refs

    # ---- C-GET / C-MOVE -----------------------------------------------------------------------------
    def _identifiers(self, study_uid: str, want: Want) -> Iterator[Dataset]:
        def base(level: str) -> Dataset:
            ds = Dataset()
            ds.QueryRetrieveLevel = level
            ds.StudyInstanceUID = study_uid
            return ds

        if want is None:
            yield base("STUDY")
            return
        for series_uid, sops in want.items():
            if sops is None:
                ds = base("SERIES")
                ds.SeriesInstanceUID = series_uid
                yield ds
                continue
            for i in range(0, len(sops), UIDS_PER_REQUEST):
                ds = base("IMAGE")
                ds.SeriesInstanceUID = series_uid
                ds.SOPInstanceUID = sops[i:i + UIDS_PER_REQUEST]
                yield ds

    def _run_retrieve(self, assoc: Any, what: str, requests: Iterator[Any], sink: Sink,
                      cancel: threading.Event | None) -> None:
        stop = threading.Event()

        def watch() -> None:  # abort the association as soon as the user cancels
            while not stop.wait(0.05):
                if cancel is not None and cancel.is_set():
                    assoc.abort()
                    return

        watcher = threading.Thread(target=watch, name="pacs-cancel", daemon=True)
        watcher.start()
        try:
            for responses in requests:
                for status, ident in responses:
                    if cancel is not None and cancel.is_set():
                        return
                    code = raise_for_status(status, what, self.node.describe())
                    if code in PENDING:
                        continue
                    if code in (0xB000,) or code >= 0xA000:
                        failed = ident.get("FailedSOPInstanceUIDList", "") if ident is not None else ""
                        detail = status_text(status)
                        if failed:
                            n = len(failed) if isinstance(failed, list) else 1
                            detail += f", {n} instance(s) failed on the node"
                        sink.error(f"{what}: {detail}")
                    if code == 0xFE00:
                        return
                    break
        finally:
            stop.set()
            watcher.join()

    def fetch(self, study_uid: str, want: Want, sink: Sink, cancel: threading.Event | None = None) -> None:
        if cancel is not None and cancel.is_set():
            return
        if self.node.retrieve == "move":
            self._fetch_move(study_uid, want, sink, cancel)
        else:
            self._fetch_get(study_uid, want, sink, cancel)

    def _fetch_get(self, study_uid: str, want: Want, sink: Sink, cancel: threading.Event | None) -> None:
        contexts = storage_contexts(sorted(self._classes), room=MAX_CONTEXTS - 1)
        handlers = [(evt.EVT_C_STORE, store_handler(sink.take_bytes))]
        model = StudyRootQueryRetrieveInformationModelGet
        with self._association("C-GET", [model, *contexts], scp_roles(contexts), handlers) as assoc:
            requests = (assoc.send_c_get(ds, model) for ds in self._identifiers(study_uid, want))
            self._run_retrieve(assoc, "C-GET", requests, sink, cancel)

    def _fetch_move(self, study_uid: str, want: Want, sink: Sink, cancel: threading.Event | None) -> None:
        model = StudyRootQueryRetrieveInformationModelMove
        scp = StorageSCP(self.node.our_aet, self.node.move_port, sink.take_bytes, host=self.listen_host,
                         allowed_callers=[self.node.ae_title])
        with scp, self._association("C-MOVE", [model]) as assoc:
            requests = (assoc.send_c_move(ds, self.node.our_aet, model) for ds in self._identifiers(study_uid, want))
            self._run_retrieve(assoc, "C-MOVE", requests, sink, cancel)

    # ---- C-STORE ------------------------------------------------------------------------------------
    def send(self, paths: Sequence[str | os.PathLike[str]], progress: SendProgress | None = None,
             cancel: threading.Event | None = None) -> SendReport:
        from viewer.dicom.headers import transfer_syntax_of

        report = SendReport()
        files: list[tuple[str, str, str]] = []  # path, SOP class, transfer syntax
        for path in files_under(paths, report.errors):
            ds = dataset_to_send(path, report.errors, ("SOPClassUID", "SOPInstanceUID"), "SOP Class/Instance",
                                 pixels=False)
            if ds is not None:
                files.append((str(path), str(ds.SOPClassUID), transfer_syntax_of(ds)))
        if not files:
            return report
        classes: dict[str, set[str]] = {}
        for _, cls, ts in files:
            classes.setdefault(cls, set()).add(ts)
        groups = sorted(classes)
        total = len(files)
        for start in range(0, len(groups), MAX_CONTEXTS):  # one association per 128 SOP classes
            chunk = set(groups[start:start + MAX_CONTEXTS])
            contexts = [_context(cls, classes[cls]) for cls in sorted(chunk)]
            with self._association("C-STORE", contexts) as assoc:
                for fname, cls, _ in files:
                    if cls not in chunk:
                        continue
                    if cancel is not None and cancel.is_set():
                        report.cancelled = True
                        return report
                    try:
                        status = assoc.send_c_store(fname)
                    except Exception as exc:  # no accepted context for its transfer syntax, unreadable file...
                        report.errors.append(f"{fname}: {exc}")
                        continue
                    if status is None or "Status" not in status:
                        report.errors.append(f"{fname}: no C-STORE response (timed out or aborted)")
                        if not assoc.is_established:
                            raise self._fail("C-STORE", "association lost")
                        continue
                    if int(status.Status) in (0x0000, 0xB000, 0xB007, 0xB006):
                        report.sent += 1
                    else:
                        report.errors.append(f"{fname}: refused, {status_text(status)}")
                    if progress is not None:
                        progress(report.sent + len(report.errors), total)
        return report


def _context(cls: str, syntaxes: set[str]) -> Any:
    from pynetdicom import build_context

    ordered = sorted(syntaxes)
    for fallback in ("1.2.840.10008.1.2.1", "1.2.840.10008.1.2"):
        if fallback not in ordered and any(ts in ("1.2.840.10008.1.2.1", "1.2.840.10008.1.2") for ts in ordered):
            ordered.append(fallback)
    return build_context(cls, ordered)


def _get_text(ds: Dataset, keyword: str) -> str:
    try:
        return text(ds.get(keyword, ""))
    except Exception:  # a malformed value in a response is dropped, not fatal
        return ""


def _study_from(ident: Dataset) -> StudyMatch | None:
    uid = _get_text(ident, "StudyInstanceUID")
    if not is_uid(uid):
        return None
    mods = _get_text(ident, "ModalitiesInStudy")
    return StudyMatch(
        study_uid=uid, patient_id=_get_text(ident, "PatientID"), patient_name=_get_text(ident, "PatientName"),
        birth_date=_get_text(ident, "PatientBirthDate"), study_date=_get_text(ident, "StudyDate"),
        study_time=_get_text(ident, "StudyTime"), accession=_get_text(ident, "AccessionNumber"),
        description=_get_text(ident, "StudyDescription"), modalities=[m for m in mods.split("\\") if m],
    )


def _series_from(ident: Dataset) -> SeriesMatch | None:
    uid = _get_text(ident, "SeriesInstanceUID")
    if not is_uid(uid):
        return None
    return SeriesMatch(
        series_uid=uid, modality=_get_text(ident, "Modality"), number=as_int(_get_text(ident, "SeriesNumber")),
        description=_get_text(ident, "SeriesDescription"),
        instances=as_int(_get_text(ident, "NumberOfSeriesRelatedInstances")),
    )
