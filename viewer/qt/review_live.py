"""The review panel's link to a shared store: live changes, who is on which study, the local outbox.

:class:`StoreWatch` lives on the GUI thread. The store listener (:mod:`viewer.review.live`) runs on its own
thread and only emits this object's signals; Qt queues them to the panel's bound methods (an emit from another
thread to a receiver living on the GUI thread), never running panel code on the listener thread.

Flags the store cannot take because its server is gone go to the durable local outbox
(:mod:`viewer.review.outbox`) and are retried every few seconds and as soon as the listener is connected again.
"""

from __future__ import annotations

from viewer.qt.qt import QObject, QtCore, Signal
from viewer.review import ReviewStoreError
from viewer.review.live import Listener, listen
from viewer.review.model import Flag, StudyHeader
from viewer.review.outbox import DrainResult, Outbox, default_outbox_path
from viewer.review.store import ReviewStore

RETRY_MS = 3000
PRESENCE_MS = 60_000


class StoreWatch(QObject):
    """Signals: ``changed(dict)`` (a store event), ``connection(bool, str)``, ``outboxSent(list)`` (ids the store
    took from the outbox), ``outboxWaiting(int, str)`` (flags still kept locally, why)."""

    changed = Signal(object)
    connection = Signal(bool, str)
    outboxSent = Signal(list)
    outboxWaiting = Signal(int, str)

    def __init__(self, store: ReviewStore, parent: QObject | None = None, *, live: bool = True) -> None:
        super().__init__(parent)
        self.store = store
        self.online = not store.offline
        self.reviewer = ""
        self.study_uid: str | None = None
        self._outbox: Outbox | None = None
        self._retry = QtCore.QTimer(self, interval=RETRY_MS)
        self._retry.timeout.connect(self.drain)
        self._presence = QtCore.QTimer(self, interval=PRESENCE_MS)
        self._presence.timeout.connect(self._say_presence)
        self._presence.start()
        self.connection.connect(self._on_connection)
        self._listener: Listener | None = None
        if live and not (store.backend == "sqlite" and store.read_only):  # nobody writes a read-only file here
            # the callbacks run on the listener thread: they only emit (queued to the GUI thread)
            listener = listen(store, self.changed.emit, self.connection.emit)
            self._listener = listener
            self.destroyed.connect(lambda *_: listener.stop(1.0))
        if self.outbox_count():
            self._retry.start()

    # -- outbox --------------------------------------------------------------------------------
    def outbox(self) -> Outbox:
        if self._outbox is None:
            self._outbox = Outbox()
        return self._outbox

    def outbox_count(self) -> int:
        if self._outbox is None and not default_outbox_path().exists():
            return 0  # nothing was ever kept: no file is made for nothing
        try:
            return self.outbox().count(self.store)
        except ReviewStoreError:
            return 0

    def keep(self, flag: Flag, study: StudyHeader, error: str) -> int:
        """Put a flag the store could not take into the outbox (durable on return); flags now waiting."""
        self.outbox().put(self.store, flag, study, error)
        self._retry.start()
        return self.outbox().count(self.store)

    def drain(self) -> DrainResult | None:
        """Send what the outbox holds for this store; emits ``outboxSent`` / ``outboxWaiting``."""
        if self._outbox is None and not self.outbox_count():
            self._retry.stop()
            return None
        result = self.outbox().drain(self.store)
        if result.sent:
            self.outboxSent.emit(result.sent)
        if result.waiting:
            self.outboxWaiting.emit(result.waiting, result.error)
        else:
            self._retry.stop()
        return result

    # -- presence ------------------------------------------------------------------------------
    def set_presence(self, reviewer: str, study_uid: str | None) -> None:
        """Tell the others which study this reviewer has open (quietly skipped when the store cannot take it)."""
        if (reviewer, study_uid) != (self.reviewer, self.study_uid):
            if self.reviewer and reviewer != self.reviewer:  # renamed: the old name leaves its study
                self.study_uid = None
                self._say_presence()
            self.reviewer, self.study_uid = reviewer, study_uid
            self._say_presence()

    def _say_presence(self) -> None:
        if self.reviewer and self.online and not self.store.read_only:
            try:
                self.store.set_presence(self.reviewer, self.study_uid)
            except ReviewStoreError:
                pass

    # -- connection ----------------------------------------------------------------------------
    def _on_connection(self, connected: bool, _message: str) -> None:
        if self.store.backend != "postgresql":
            return  # a file cannot go away like a server: its errors show when it is used
        self.online = connected
        if connected:
            self._say_presence()
            self.drain()

    def stop(self) -> None:
        if self._listener is not None:
            self._listener.stop(1.0)
        if self._outbox is not None:
            self._outbox.close()
            self._outbox = None
