"""Keep Python's garbage collector from stalling the GUI thread (Qt-free).

A full (generation 2) collection walks every tracked object while holding the GIL, in whichever thread
happened to allocate, and the GUI thread waits for the GIL all that time. Loading torch and a model
allocates about 220,000 long-lived objects; on the inference thread that set off several full passes of
50-135 ms of CPU each (measured while a series was opening), and once loaded every later full pass walks
some 400,000 objects. So collection is paused while a model loads, and the objects that live as long as
the process (imported modules, Qt and pyqtgraph wrappers) are moved out of the collector's reach with
``gc.freeze()`` the first time the window is built and the first time a model is loaded. Only the first
time: frozen objects are never collected, so a replaced model or a closed window must stay collectable
(at most the first model's and the first window's objects stay for good).
"""

from __future__ import annotations

import gc
import threading
from contextlib import contextmanager
from collections.abc import Iterator

_lock = threading.Lock()
_pauses = 0
_was_enabled = True
_frozen: set[str] = set()
_pending: set[str] = set()


def freeze_once(reason: str) -> bool:
    """``gc.freeze()`` the first time ``reason`` comes up in this process; True when it froze now.

    Cheap (no collection is run); frozen objects freed later by reference counting are still freed.
    """
    with _lock:
        if reason in _frozen:
            return False
        _frozen.add(reason)
    gc.freeze()
    return True


@contextmanager
def collection_paused(freeze: str | None = None) -> Iterator[None]:
    """No automatic collection inside (process-wide; nests and works across threads). On leaving the
    outermost pause collection resumes if it was on before, after ``freeze_once(freeze)`` (any key asked
    for by a nested pause too) has exempted what the pause allocated."""
    global _pauses, _was_enabled
    with _lock:
        if _pauses == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _pauses += 1
        if freeze is not None:
            _pending.add(freeze)
    try:
        yield
    finally:
        with _lock:
            _pauses -= 1
            last = _pauses == 0
            keys = sorted(_pending) if last else []
            if last:
                _pending.clear()
        for key in keys:
            freeze_once(key)
        if last and _was_enabled:
            gc.enable()
