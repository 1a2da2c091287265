"""What every DIMSE association of RadScope shares: timeouts, transfer syntaxes, storage contexts,
quiet logging, and the clear reason when an association cannot be made."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from pynetdicom import AE, StoragePresentationContexts, build_context, build_role
from pynetdicom.presentation import PresentationContext

from viewer.pacs.errors import PacsError

CONNECT_TIMEOUT_S = 3.0
"""TCP connect: an unreachable host or a dropped SYN fails within this."""
ACSE_TIMEOUT_S = 5.0
"""Waiting for the association answer: a port that accepts but speaks no DICOM fails within this."""
DIMSE_TIMEOUT_S = 30.0
"""Waiting for one DIMSE response (a C-GET's next pending status comes after each sub-operation)."""
NETWORK_TIMEOUT_S = 60.0
"""No traffic at all for this long closes the association."""

ACCEPTED_TRANSFER_SYNTAXES = [
    "1.2.840.10008.1.2.1",  # Explicit VR Little Endian (preferred: the engine reads it without a decoder)
    "1.2.840.10008.1.2",  # Implicit VR Little Endian
    "1.2.840.10008.1.2.1.99",  # Deflated Explicit VR Little Endian
    "1.2.840.10008.1.2.2",  # Explicit VR Big Endian
    "1.2.840.10008.1.2.4.50",  # JPEG Baseline
    "1.2.840.10008.1.2.4.51",  # JPEG Extended
    "1.2.840.10008.1.2.4.57",  # JPEG Lossless
    "1.2.840.10008.1.2.4.70",  # JPEG Lossless SV1
    "1.2.840.10008.1.2.4.80",  # JPEG-LS Lossless
    "1.2.840.10008.1.2.4.81",  # JPEG-LS Near-Lossless
    "1.2.840.10008.1.2.4.90",  # JPEG 2000 Lossless
    "1.2.840.10008.1.2.4.91",  # JPEG 2000
    "1.2.840.10008.1.2.5",  # RLE Lossless
]
"""Transfer syntaxes RadScope accepts when it receives: those its decoders read."""

EXTRA_STORAGE_CLASSES = [
    "1.2.840.10008.5.1.4.1.1.30",  # Parametric Map (RadScope's heatmap export)
]
MAX_CONTEXTS = 128

PYNETDICOM_LOGGER = "pynetdicom"


def quiet_pynetdicom() -> None:
    """pynetdicom logs identifiers and user identities at DEBUG and association chatter at INFO: keep it
    at WARNING unless someone set its level on purpose (patient data and credentials stay out of logs)."""
    logger = logging.getLogger(PYNETDICOM_LOGGER)
    if logger.level == logging.NOTSET or logger.level < logging.WARNING:
        logger.setLevel(logging.WARNING)


quiet_pynetdicom()


def new_ae(ae_title: str) -> AE:
    """An AE with every timeout set."""
    ae = AE(ae_title=ae_title)
    ae.connection_timeout = CONNECT_TIMEOUT_S
    ae.acse_timeout = ACSE_TIMEOUT_S
    ae.dimse_timeout = DIMSE_TIMEOUT_S
    ae.network_timeout = NETWORK_TIMEOUT_S
    ae.maximum_pdu_size = 0  # no limit on what we receive: fewer, larger PDUs
    return ae


def storage_contexts(preferred: Iterable[str] = (), room: int = MAX_CONTEXTS) -> list[PresentationContext]:
    """Storage SOP classes with the accepted transfer syntaxes: ``preferred`` first (classes seen on the
    PACS), then RadScope's own exports, then pynetdicom's common list, at most ``room``."""
    uids: list[str] = []
    for uid in [*preferred, *EXTRA_STORAGE_CLASSES, *(str(c.abstract_syntax) for c in StoragePresentationContexts)]:
        if uid not in uids:
            uids.append(uid)
    return [build_context(uid, ACCEPTED_TRANSFER_SYNTAXES) for uid in uids[:room]]


def scp_roles(contexts: Iterable[PresentationContext]) -> list[Any]:
    """SCP/SCU role selection items: we act as the storage SCP on a C-GET association."""
    return [build_role(str(cx.abstract_syntax), scp_role=True) for cx in contexts]


class _Capture(logging.Handler):
    """Collects pynetdicom's error lines during one association attempt (the only place it says why)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.lines.append(record.getMessage())
        except Exception:  # never let logging break an association
            pass


_capture_lock = threading.Lock()


@contextmanager
def capture_errors() -> Iterator[_Capture]:
    handler = _Capture()
    logger = logging.getLogger(PYNETDICOM_LOGGER)
    with _capture_lock:
        logger.addHandler(handler)
    try:
        yield handler
    finally:
        with _capture_lock:
            logger.removeHandler(handler)


def why_not_established(assoc: Any, lines: list[str]) -> str:
    """A clear reason from a failed association and pynetdicom's error lines."""
    joined = " ".join(lines)
    if "TCP Initialisation Error" in joined or "unable to connect" in joined:
        detail = next((ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("TCP Initialisation Error")), "")
        if "timed out" in detail:
            return f"no answer within {CONNECT_TIMEOUT_S:g} s (host unreachable or port filtered)"
        return f"cannot connect ({detail or 'connection failed'})"
    if getattr(assoc, "is_rejected", False):
        reason = next((ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("Reason:")), "")
        result = next((ln for ln in lines if ln.startswith("Result:")), "")
        return "association rejected" + (f": {reason}" if reason else "") + (f" ({result})" if result else "")
    if "ACSE timeout" in joined:
        return f"no DICOM answer to the association request within {ACSE_TIMEOUT_S:g} s (is this a DICOM port?)"
    if "No accepted presentation contexts" in joined:
        return "the node accepted none of the requested services/SOP classes"
    if "invalid A-ASSOCIATE response" in joined or "Association Aborted" in joined or getattr(assoc, "is_aborted", False):
        return "the peer aborted or did not answer as a DICOM node"
    return "association failed" + (f" ({lines[-1]})" if lines else "")


def raise_for_status(status: Any, what: str, node: str) -> int:
    """The status code of a DIMSE response; an empty status (timeout, abort) raises."""
    if status is None or "Status" not in status:
        raise PacsError(f"{node}: {what}: no response (timed out after {DIMSE_TIMEOUT_S:g} s or the association was aborted)")
    return int(status.Status)


def status_text(status: Any) -> str:
    code = int(status.Status)
    comment = str(status.get("ErrorComment", "") or "")
    return f"status 0x{code:04X}" + (f" ({comment[:200]})" if comment else "")
