"""The one module that imports PySide6 and pyqtgraph; every other Qt module imports from here.

pyqtgraph is configured once: row-major images (array (rows, cols) as numpy stores them) and no
antialiasing (it slows image drawing and blurs measurement lines at 1 px).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from PySide6 import QtCore, QtGui, QtWidgets  # noqa: F401  (re-exported)
from PySide6.QtCore import QObject, QPointF, QRectF, Qt, QTimer, Signal, Slot  # noqa: F401
from PySide6.QtGui import QAction, QColor, QFont, QKeySequence, QPainter, QPen  # noqa: F401
from PySide6.QtWidgets import QApplication  # noqa: F401
from shiboken6 import isValid as is_alive  # noqa: F401  (is a Qt object's C++ side still there?)

import pyqtgraph as pg  # noqa: E402

pg.setConfigOptions(imageAxisOrder="row-major", antialias=False, background="k", foreground="w")

_FONT_CANDIDATES = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
)


def _ensure_font() -> None:
    """Offscreen Qt on a bare machine may find no fonts (text renders as boxes): load DejaVu Sans."""
    if QtGui.QFontDatabase.families():
        return
    candidates = list(_FONT_CANDIDATES)
    try:  # matplotlib ships DejaVu Sans when it is installed
        import matplotlib

        candidates.append(str(Path(matplotlib.__file__).parent / "mpl-data" / "fonts" / "ttf" / "DejaVuSans.ttf"))
    except ImportError:
        pass
    for path in candidates:
        if Path(path).exists() and QtGui.QFontDatabase.addApplicationFont(path) >= 0:
            QApplication.setFont(QFont("DejaVu Sans", 9))
            return


def needs_offscreen() -> bool:
    """True when there is no display to open a window on (then use the offscreen platform)."""
    if sys.platform.startswith("linux"):
        return not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return False


def apply_dark_theme(app: QApplication) -> None:
    """Fusion style with a dark palette: images are read on dark surroundings in reading rooms."""
    app.setStyle("Fusion")
    pal = QtGui.QPalette()
    role = QtGui.QPalette.ColorRole
    for r, c in ((role.Window, (40, 40, 42)), (role.WindowText, (220, 220, 220)), (role.Base, (26, 26, 28)),
                 (role.AlternateBase, (36, 36, 38)), (role.Text, (220, 220, 220)), (role.Button, (48, 48, 50)),
                 (role.ButtonText, (220, 220, 220)), (role.Highlight, (42, 110, 180)),
                 (role.HighlightedText, (255, 255, 255)), (role.ToolTipBase, (50, 50, 50)),
                 (role.ToolTipText, (230, 230, 230)), (role.PlaceholderText, (140, 140, 140))):
        pal.setColor(r, QColor(*c))
    app.setPalette(pal)


def ensure_app(argv: list[str] | None = None) -> QApplication:
    """The QApplication (created once, offscreen when headless)."""
    app = QApplication.instance()
    if app is None:
        if needs_offscreen():
            os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
        app = QApplication(argv or ["radscope"])
        app.setApplicationName("RadScope")
        _ensure_font()
        apply_dark_theme(app)
    return app  # type: ignore[return-value]
