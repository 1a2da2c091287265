"""RadScope's storage SCP: receives C-STORE (the destination of our C-MOVEs, and `radscope pacs listen` so
a PACS or modality can push studies). Every received instance goes through a :class:`store.Sink`."""

from __future__ import annotations

import errno
from collections.abc import Callable, Sequence
from typing import Any

from pynetdicom import evt
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]

from viewer.pacs.dimse_common import new_ae, storage_contexts
from viewer.pacs.errors import PacsError
from viewer.pacs.nodes import check_aet, check_port

STORE_OK = 0x0000
STORE_CANNOT_UNDERSTAND = 0xC000


def store_handler(take: Callable[[bytes, str | None], bool]) -> Callable[[Any], int]:
    """A pynetdicom EVT_C_STORE handler that hands the encoded file (no decoding here) to ``take``."""

    def handle(event: Any) -> int:
        try:
            sop = str(event.request.AffectedSOPInstanceUID or "") or None
        except Exception:
            sop = None
        ok = take(event.encoded_dataset(), sop)
        return STORE_OK if ok else STORE_CANNOT_UNDERSTAND

    return handle


class StorageSCP:
    """A listening storage SCP on ``(host, port)`` as ``ae_title``; ``take(bytes, sop_uid) -> bool``.

    ``allowed_callers``: calling AE titles accepted (empty: any). Use as a context manager or
    ``start()``/``stop()``.
    """

    def __init__(self, ae_title: str, port: int, take: Callable[[bytes, str | None], bool], *,
                 host: str = "0.0.0.0", allowed_callers: Sequence[str] = ()) -> None:
        self.ae_title = check_aet(ae_title, "our AE title")
        self.port = check_port(port)
        self.host = host
        self._take = take
        self._allowed = [check_aet(a, "calling AE title") for a in allowed_callers]
        self._server: Any = None

    def start(self) -> StorageSCP:
        ae = new_ae(self.ae_title)
        ae.require_called_aet = True
        if self._allowed:
            ae.require_calling_aet = list(self._allowed)
        for cx in storage_contexts(room=127):
            ae.add_supported_context(str(cx.abstract_syntax), cx.transfer_syntax)
        ae.add_supported_context(Verification)
        try:
            self._server = ae.start_server((self.host, self.port), block=False,
                                           evt_handlers=[(evt.EVT_C_STORE, store_handler(self._take))])
        except OSError as exc:
            why = "in use" if exc.errno == errno.EADDRINUSE else (exc.strerror or str(exc))
            raise PacsError(f"cannot listen on {self.host}:{self.port} as {self.ae_title}: port {why}") from None
        return self

    @property
    def address(self) -> tuple[str, int]:
        return self._server.server_address if self._server is not None else (self.host, self.port)

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server = None

    def __enter__(self) -> StorageSCP:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
