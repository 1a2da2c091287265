"""Keep Python's garbage collector from stalling the GUI thread (Qt-free).

A full (generation 2) collection walks every tracked object while holding the GIL, in whichever thread
happened to allocate, and the GUI thread waits for the GIL all that time. Loading torch and a model
allocates about 220,000 long-lived objects; on the inference thread that set off several full passes of
50-135 ms of CPU each (measured while a series was opening), and once loaded every later full pass walks
some 400,000 objects. Nearly all of them live as long as the process (modules, the model, Qt wrappers), so:
collection is paused while a model loads, and what exists after the window is built or a model is loaded
is moved out of the collector's reach with ``gc.freeze()``. Later passes see only what was allocated since.
"""

from __future__ import annotations

import gc
import threading
from contextlib import contextmanager
from typing import Iterator

_pause_lock = threading.Lock()
_pauses = 0
_was_enabled = True


def freeze_long_lived() -> int:
    """Exempt every object alive now from future collections; returns how many are exempt in all.

    Cheap (no collection is run); objects freed later by reference counting are still freed.
    """
    gc.freeze()
    return gc.get_freeze_count()


@contextmanager
def collection_paused() -> Iterator[None]:
    """No automatic collection inside (process-wide; nests and works across threads); on leaving, what
    was allocated is frozen (see `freeze_long_lived`) and collection resumes if it was on before."""
    global _pauses, _was_enabled
    with _pause_lock:
        if _pauses == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _pauses += 1
    try:
        yield
    finally:
        with _pause_lock:
            _pauses -= 1
            if _pauses == 0:
                freeze_long_lived()
                if _was_enabled:
                    gc.enable()
