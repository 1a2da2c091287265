"""Live changes of a review store, delivered on a listener thread (GUI-free).

:func:`listen` returns a started listener that calls ``on_event(event)`` for each change other sessions commit
and ``on_state(connected, message)`` when the connection is lost or back:

- PostgreSQL: ``LISTEN radscope_review`` on a connection of its own; events are the JSON the schema's
  triggers send at commit (``{"table": "flag", "id", "study_uid", "version", "reviewer"}``, ``study``,
  ``presence``), within milliseconds. A lost connection is retried every second; on (re)connecting
  ``{"table": "*"}`` is sent, since changes made meanwhile were not announced.
- SQLite: ``PRAGMA data_version`` polled twice a second on a connection of its own; any commit by another
  connection gives ``{"table": "*"}``.

Callbacks run on the listener thread: a GUI hands them to its own thread (Qt: emit a signal connected to a
bound method of a QObject that lives on the GUI thread).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from viewer.review.pg_schema import CHANNEL

Event = dict[str, Any]
EventCallback = Callable[[Event], None]
StateCallback = Callable[[bool, str], None]
EVERYTHING: Event = {"table": "*"}


class Listener:
    """A daemon thread that watches one store until :meth:`stop`."""

    def __init__(self, on_event: EventCallback, on_state: StateCallback | None = None, *, retry_s: float = 1.0) -> None:
        self._on_event = on_event
        self._on_state = on_state or (lambda connected, message: None)
        self._retry_s = retry_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"radscope-{type(self).__name__}", daemon=True)
        self.connected = False

    def start(self) -> Listener:
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout_s)

    def _state(self, connected: bool, message: str) -> None:
        if connected != self.connected:
            self.connected = connected
            self._on_state(connected, message)

    def _run(self) -> None:
        raise NotImplementedError


class PostgresListener(Listener):
    """LISTEN/NOTIFY on a dedicated autocommit connection."""

    def __init__(self, url: str, on_event: EventCallback, on_state: StateCallback | None = None, **kw: Any) -> None:
        super().__init__(on_event, on_state, **kw)
        self.url = url

    def _run(self) -> None:
        import psycopg

        from viewer.review.pg_store import connect_options, redact

        while not self._stop.is_set():
            try:
                with psycopg.connect(self.url, autocommit=True, **connect_options(self.url, 3.0)) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    self._state(True, "")
                    self._on_event(dict(EVERYTHING))
                    while not self._stop.is_set():
                        for note in conn.notifies(timeout=0.25):
                            self._on_event(_parse(note.payload))
            except psycopg.Error as exc:
                self._state(False, f"lost the connection to review store {redact(self.url)}: "
                                   f"{str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__}")
                self._stop.wait(self._retry_s)


class SqlitePoller(Listener):
    """``PRAGMA data_version`` changes when another connection commits to the file."""

    def __init__(self, path: Path, on_event: EventCallback, on_state: StateCallback | None = None,
                 *, interval_s: float = 0.5, **kw: Any) -> None:
        super().__init__(on_event, on_state, **kw)
        self.path, self.interval_s = path, interval_s

    def _run(self) -> None:
        last: int | None = None
        conn: sqlite3.Connection | None = None
        while not self._stop.wait(0 if conn is None else self.interval_s):
            try:
                if conn is None:
                    conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=2.0)
                version = int(conn.execute("PRAGMA data_version").fetchone()[0])
                self._state(True, "")
                if last is not None and version != last:
                    self._on_event(dict(EVERYTHING))
                last = version
            except sqlite3.Error as exc:
                self._state(False, f"cannot watch review store {self.path}: {exc}")
                if conn is not None:
                    conn.close()
                conn, last = None, None
                self._stop.wait(self._retry_s)
        if conn is not None:
            conn.close()


def _parse(payload: str) -> Event:
    try:
        event = json.loads(payload)
    except ValueError:
        return dict(EVERYTHING)
    return event if isinstance(event, dict) else dict(EVERYTHING)


def listen(store: Any, on_event: EventCallback, on_state: StateCallback | None = None) -> Listener:
    """A started listener for ``store`` (a :class:`~viewer.review.store.ReviewStore`)."""
    if store.backend == "postgresql":
        return PostgresListener(store.url, on_event, on_state).start()
    return SqlitePoller(store.path, on_event, on_state).start()
