"""DICOMweb client (dicomweb-client over requests): QIDO-RS search (paged, capped), WADO-RS retrieval
(streamed per series, per instance to resume), STOW-RS send; basic or bearer auth, https with the
system's or a given CA bundle. Credentials live in the requests session only: never in URLs, messages
or logs."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import requests
from dicomweb_client import DICOMwebClient
from requests.adapters import HTTPAdapter
from requests.auth import HTTPBasicAuth

from viewer.pacs.client import InstanceRef, SendProgress, SendReport, Want, dataset_to_send, files_under
from viewer.pacs.errors import PacsError
from viewer.pacs.nodes import WebNode
from viewer.pacs.query import DEFAULT_INSTANCE_LIMIT, FindResult, Query, SeriesMatch, StudyMatch, as_int, is_uid, text
from viewer.pacs.store import Sink

CONNECT_TIMEOUT_S = 3.0
READ_TIMEOUT_S = 30.0
PAGE = 100
INSTANCE_PAGE = 1000
STOW_BATCH_BYTES = 64 * 1024 * 1024
STOW_BATCH_FILES = 100

for _name in ("dicomweb_client",):  # logs request URLs (search filters: patient names) at INFO
    _logger = logging.getLogger(_name)
    if _logger.level == logging.NOTSET or _logger.level < logging.WARNING:
        _logger.setLevel(logging.WARNING)

T = TypeVar("T")

STUDY_FIELDS = ["StudyInstanceUID", "PatientID", "PatientName", "PatientBirthDate", "StudyDate", "StudyTime",
                "AccessionNumber", "StudyDescription", "ModalitiesInStudy"]
SERIES_FIELDS = ["SeriesInstanceUID", "Modality", "SeriesNumber", "SeriesDescription", "NumberOfSeriesRelatedInstances"]
TAGS = {
    "StudyInstanceUID": "0020000D", "SeriesInstanceUID": "0020000E", "SOPInstanceUID": "00080018",
    "SOPClassUID": "00080016", "PatientID": "00100020", "PatientName": "00100010", "PatientBirthDate": "00100030",
    "StudyDate": "00080020", "StudyTime": "00080030", "AccessionNumber": "00080050",
    "StudyDescription": "00081030", "ModalitiesInStudy": "00080061", "Modality": "00080060",
    "SeriesNumber": "00200011", "SeriesDescription": "0008103E", "NumberOfSeriesRelatedInstances": "00201209",
}


def _value(item: Any, keyword: str) -> str:
    """A DICOM JSON attribute as text; anything malformed reads as empty."""
    try:
        values = item[TAGS[keyword]].get("Value", [])
        return text(values if len(values) > 1 else values[0]) if values else ""
    except (KeyError, TypeError, AttributeError, IndexError):
        return ""


_LITERAL = {"%2A": "*", "%3F": "?", "%5E": "^", "+": "?", "%20": "?"}


class _WildcardAdapter(HTTPAdapter):
    """Orthanc 1.10's DICOMweb plugin does not percent-decode query values (``PatientName=Doe%2A`` and
    ``Doe%5EJane`` match nothing): send ``*``, ``?`` and ``^`` literally (legal in a query), and a space,
    which cannot be sent literally, as the single-character wildcard ``?`` (it still matches the space)."""

    def __init__(self, verify: bool | str) -> None:
        super().__init__()
        self._verify = verify

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        # a node's own CA bundle (or --insecure) wins over REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE, which requests
        # otherwise lets override the session's verify; with neither, the environment's bundle applies
        if self._verify is not True:
            kwargs["verify"] = self._verify
        url = request.url or ""
        if "?" in url:
            base, query = url.split("?", 1)
            for escaped, literal in _LITERAL.items():
                query = query.replace(escaped, literal)
            request.url = base + "?" + query
        return super().send(request, *args, **kwargs)


class WebClient:
    """Talks to one :class:`WebNode`."""

    def __init__(self, node: WebNode) -> None:
        self.node = node
        session = requests.Session()
        if node.username and node.password:
            session.auth = HTTPBasicAuth(node.username, node.password)
        elif node.token:
            session.headers["Authorization"] = f"Bearer {node.token}"
        session.verify = node.ca_bundle or node.verify
        session.mount("http://", _WildcardAdapter(session.verify))
        session.mount("https://", _WildcardAdapter(session.verify))
        self.session = session
        self.dw = DICOMwebClient(node.url, session=session, timeout=(CONNECT_TIMEOUT_S, READ_TIMEOUT_S))
        # one retry after 0.5 s on 429/503/504, not five with exponential waits: a busy node fails in seconds
        self.dw.set_http_retry_params(retry=True, max_attempts=2, wait_exponential_multiplier=250)

    def _call(self, what: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run one request, turning every failure into a PacsError naming the node (no credentials)."""
        try:
            return fn(*args, **kwargs)
        except requests.exceptions.SSLError:
            raise PacsError(f"{self.node.describe()}: {what}: TLS certificate not trusted (add the node with "
                            "--ca-cert FILE)") from None
        except requests.exceptions.ConnectTimeout:
            raise PacsError(f"{self.node.describe()}: {what}: no answer within {CONNECT_TIMEOUT_S:g} s") from None
        except requests.exceptions.ReadTimeout:
            raise PacsError(f"{self.node.describe()}: {what}: no data for {READ_TIMEOUT_S:g} s") from None
        except requests.exceptions.ConnectionError as exc:
            reason = "connection refused" if "refused" in str(exc).lower() else "cannot connect"
            raise PacsError(f"{self.node.describe()}: {what}: {reason}") from None
        except requests.exceptions.HTTPError as exc:
            code = exc.response.status_code if exc.response is not None else 0
            reason = {401: "authentication failed (401: check the user/password or token)",
                      403: "access denied (403)", 404: "not found (404: is the URL the DICOMweb root?)"}.get(
                code, f"HTTP {code}")
            raise PacsError(f"{self.node.describe()}: {what}: {reason}") from None
        except requests.exceptions.InvalidJSONError:
            raise PacsError(f"{self.node.describe()}: {what}: malformed response (not JSON)") from None
        except requests.exceptions.RequestException as exc:
            raise PacsError(f"{self.node.describe()}: {what}: {type(exc).__name__}") from None
        except Exception as exc:  # a body pydicom or the JSON reader cannot parse: hostile or broken
            raise PacsError(f"{self.node.describe()}: {what}: malformed response ({type(exc).__name__})") from None

    def _search(self, what: str, fn: Callable[..., list[Any]], limit: int, page: int, **kwargs: Any) -> tuple[list[Any], bool]:
        """QIDO results page by page (limit/offset), at most ``limit``; True when more may exist."""
        items: list[Any] = []
        while len(items) < limit:
            size = min(page, limit - len(items))
            got = self._call(what, fn, limit=size, offset=len(items), **kwargs)
            if not isinstance(got, list):
                raise PacsError(f"{self.node.describe()}: {what}: malformed response (not a list)")
            items.extend(got[:size])
            if len(got) < size:
                return items, False
        return items, True

    # ---- interface ----------------------------------------------------------------------------------
    def echo(self) -> float:
        t0 = time.perf_counter()
        got = self._call("QIDO-RS", self.dw.search_for_studies, limit=1, fields=["StudyInstanceUID"])
        if not isinstance(got, list):
            raise PacsError(f"{self.node.describe()}: QIDO-RS: malformed response (not a list)")
        return time.perf_counter() - t0

    def find(self, query: Query) -> FindResult:
        filters = {k: v for k, v in (
            ("StudyInstanceUID", query.study_uid), ("PatientID", query.patient_id),
            ("PatientName", query.patient_name), ("StudyDate", query.study_date),
            ("AccessionNumber", query.accession), ("StudyDescription", query.description),
            ("ModalitiesInStudy", query.modality),
        ) if v}
        result = FindResult()
        items, result.truncated = self._search("QIDO-RS (studies)", self.dw.search_for_studies, query.limit, PAGE,
                                               fields=STUDY_FIELDS, search_filters=filters)
        for item in items:
            uid = _value(item, "StudyInstanceUID")
            if not is_uid(uid):
                result.warnings.append("a study match without a valid Study Instance UID was skipped")
                continue
            result.studies.append(StudyMatch(
                study_uid=uid, patient_id=_value(item, "PatientID"), patient_name=_value(item, "PatientName"),
                birth_date=_value(item, "PatientBirthDate"), study_date=_value(item, "StudyDate"),
                study_time=_value(item, "StudyTime"), accession=_value(item, "AccessionNumber"),
                description=_value(item, "StudyDescription"),
                modalities=[m for m in _value(item, "ModalitiesInStudy").split("\\") if m],
            ))
        for study in result.studies:
            try:
                series, cut = self._search("QIDO-RS (series)", self.dw.search_for_series, 10_000, PAGE,
                                           study_instance_uid=study.study_uid, fields=SERIES_FIELDS)
            except PacsError as exc:
                result.warnings.append(f"study {study.study_uid}: {exc}")
                continue
            for item in series:
                uid = _value(item, "SeriesInstanceUID")
                if not is_uid(uid):
                    result.warnings.append(f"study {study.study_uid}: a series without a valid UID was skipped")
                    continue
                study.series.append(SeriesMatch(
                    series_uid=uid, modality=_value(item, "Modality"), number=as_int(_value(item, "SeriesNumber")),
                    description=_value(item, "SeriesDescription"),
                    instances=as_int(_value(item, "NumberOfSeriesRelatedInstances")),
                ))
            study.series.sort(key=lambda s: (s.number is None, s.number or 0, s.series_uid))
            if cut:
                result.warnings.append(f"study {study.study_uid}: series list cut at 10000")
        return result

    def list_instances(self, study_uid: str, series_uid: str | None = None) -> list[InstanceRef]:
        items, cut = self._search("QIDO-RS (instances)", self.dw.search_for_instances, DEFAULT_INSTANCE_LIMIT,
                                  INSTANCE_PAGE, study_instance_uid=study_uid, series_instance_uid=series_uid,
                                  fields=["SeriesInstanceUID", "SOPInstanceUID", "SOPClassUID"])
        if cut:
            raise PacsError(f"{self.node.describe()}: QIDO-RS (instances): more than {DEFAULT_INSTANCE_LIMIT} instances")
        refs = []
        for item in items:
            series, sop = _value(item, "SeriesInstanceUID") or (series_uid or ""), _value(item, "SOPInstanceUID")
            if is_uid(series) and is_uid(sop):
                refs.append(InstanceRef(series, sop, _value(item, "SOPClassUID")))
        return refs

    def fetch(self, study_uid: str, want: Want, sink: Sink, cancel: threading.Event | None = None) -> None:
        if want is None:
            want = {ref.series_uid: None for ref in self.list_instances(study_uid)}
        for series_uid, sops in want.items():
            if cancel is not None and cancel.is_set():
                return
            if sops is None and self._stream_series(study_uid, series_uid, sink, cancel):
                continue
            have = sink.store.present(study_uid, series_uid)
            if sops is None:
                sops = [r.sop_uid for r in self.list_instances(study_uid, series_uid)]
            for sop in sops:
                if cancel is not None and cancel.is_set():
                    return
                if sop in have:
                    continue
                try:
                    ds = self._call("WADO-RS", self.dw.retrieve_instance, study_uid, series_uid, sop)
                except PacsError as exc:
                    sink.error(f"instance {sop}: {exc}")
                    continue
                sink.take_dataset(ds)

    def _stream_series(self, study_uid: str, series_uid: str, sink: Sink, cancel: threading.Event | None) -> bool:
        """One multipart WADO-RS request for the whole series, instances stored as their parts arrive.
        False when the stream broke (the caller then fetches what is missing one instance at a time)."""
        try:
            parts = self._call("WADO-RS", self.dw.iter_series, study_uid, series_uid)
            while True:
                if cancel is not None and cancel.is_set():
                    return True
                ds = self._call("WADO-RS", next, parts, None)
                if ds is None:
                    return True
                sink.take_dataset(ds)
        except PacsError as exc:
            sink.error(f"series {series_uid}: streamed retrieval broke ({exc}); fetching the rest one by one")
            return False
        except Exception as exc:  # a part pydicom cannot parse: hostile or broken response
            sink.error(f"series {series_uid}: unreadable part in the response ({type(exc).__name__}); "
                       "fetching the rest one by one")
            return False

    def send(self, paths: Sequence[str | os.PathLike[str]], progress: SendProgress | None = None,
             cancel: threading.Event | None = None) -> SendReport:
        report = SendReport()
        files = list(files_under(paths, report.errors))
        batch: list[tuple[str, Any]] = []
        size = 0

        def flush() -> None:
            nonlocal size
            if not batch:
                return
            try:
                response = self._call("STOW-RS", self.dw.store_instances, [ds for _, ds in batch])
            except PacsError as exc:
                report.errors.extend(f"{path}: {exc}" for path, _ in batch)
            else:
                failed = {str(item.get("ReferencedSOPInstanceUID", "")) for item in response.get("FailedSOPSequence", [])}
                for path, ds in batch:
                    if str(ds.SOPInstanceUID) in failed:
                        report.errors.append(f"{path}: refused by the node")
                    else:
                        report.sent += 1
            batch.clear()
            size = 0
            if progress is not None:
                progress(report.sent + len(report.errors), len(files))

        for path in files:
            if cancel is not None and cancel.is_set():
                report.cancelled = True
                break
            ds = dataset_to_send(path, report.errors, ("SOPInstanceUID", "StudyInstanceUID"), "SOP Instance/Study",
                                 pixels=True)
            if ds is None:
                continue
            batch.append((str(path), ds))
            size += path.stat().st_size
            if len(batch) >= STOW_BATCH_FILES or size >= STOW_BATCH_BYTES:
                flush()
        flush()
        return report
