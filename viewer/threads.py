"""Scheduling priority of background threads (Qt-free).

On a machine with few cores the GUI thread must win the CPU over decoding and inference, or the window
stalls while a series loads. Linux keeps a niceness per thread, and threads a thread creates inherit it
(a decode pool started by a loader thread, torch's CPU pool started by the inference thread), so one
call at the top of a background thread lowers everything it spawns. Elsewhere this is a no-op.
"""

from __future__ import annotations

import os
import sys
import threading

BACKGROUND_NICE = 10
"""Niceness of background threads: the GUI thread (niceness 0) then gets about 9 parts in 10 of a core
it shares with one of them, yet they use every cycle the GUI leaves idle."""


def lower_thread_priority(nice: int = BACKGROUND_NICE) -> None:
    """Lower the calling thread's priority to at least ``nice`` (Linux only; never raises)."""
    if not hasattr(os, "setpriority") or not sys.platform.startswith("linux"):
        return
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, max(os.getpriority(os.PRIO_PROCESS, tid), nice))
    except OSError:
        pass
