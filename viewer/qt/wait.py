"""The one way GUI code waits (screenshots, the demo, the self-test, tests): process events until a
condition holds."""

from __future__ import annotations

import time
from collections.abc import Callable

from viewer.qt.qt import QtCore, QtWidgets


def wait_until(condition: Callable[[], bool], timeout_s: float, *, step_ms: int = 20) -> bool:
    """Run the event loop until ``condition()`` is true (then once more, so what it queued is painted) or
    ``timeout_s`` passes; True when it held.

    Waits for events (``WaitForMoreEvents`` with a timer) instead of spinning on ``processEvents``: a spin
    holds the GIL on the GUI thread and slows background threads (inference ran ~14x slower that way)."""
    app = QtWidgets.QApplication.instance()
    if app is None:
        return bool(condition())
    deadline = time.monotonic() + timeout_s
    loop = QtCore.QEventLoop()
    timer = QtCore.QTimer()
    timer.setSingleShot(True)
    timer.timeout.connect(loop.quit)
    while True:
        app.processEvents()
        if condition():
            app.processEvents()
            return True
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        timer.start(max(1, min(step_ms, int(left * 1000))))
        loop.exec(QtCore.QEventLoop.ProcessEventsFlag.WaitForMoreEvents)
