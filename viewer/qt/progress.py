"""Progress bars that never paint synchronously."""

from __future__ import annotations

from viewer.qt.qt import QtWidgets


def set_progress(bar: QtWidgets.QProgressBar, done: int, total: int | None = None) -> None:
    """``bar.setValue(done)`` (and the range ``0..total`` when given) without a synchronous repaint.

    QProgressBar.setValue repaints at once, and that flushes the whole window's pending paint (the image
    views included) inside the caller's slot: tens of milliseconds on the GUI thread per loaded slice.
    With updates off it only marks itself dirty and paints with the next event-loop pass.
    """
    bar.setUpdatesEnabled(False)
    try:
        if total is not None:
            bar.setRange(0, max(int(total), 1))
        bar.setValue(int(done))
    finally:
        bar.setUpdatesEnabled(True)
