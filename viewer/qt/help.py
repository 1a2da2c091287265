"""The F1 help: every keyboard and mouse shortcut (and the panel registry's), sized to the screen."""

from __future__ import annotations

from viewer.qt import panels as panel_registry
from viewer.qt.qt import Qt, QtGui, QtWidgets

SHORTCUTS: tuple[tuple[str, str], ...] = (
    ("Wheel, Up/Down, Left/Right", "previous / next slice"),
    ("Page Up / Page Down", "10 slices back / forward"),
    ("Home / End", "first / last slice"),
    ("Space", "cine play / stop"),
    ("Right-drag", "window (horizontal = width, vertical = level)"),
    ("Middle-drag, Ctrl+Right-drag, Ctrl+Wheel", "pan, zoom, zoom"),
    ("1 … 9", "window presets (header windows first, then CT presets)"),
    ("0", "automatic window from the histogram"),
    ("I", "invert"),
    ("F / =", "fit / 1:1 zoom"),
    ("M", "MPR layout (axial, coronal, sagittal) on/off"),
    ("P W X D A E R", "left-button tools: pan, window, crosshair, distance, angle, ellipse ROI, rectangle ROI"),
    ("Delete", "delete the selected (or last) measurement on this slice"),
    ("H", "hide / show identifying fields"),
    ("Tab", "annotations on / off"),
    ("Shift+O", "DICOM overlay (graphics stored in the file, e.g. a marked lesion) on / off"),
    ("Ctrl+O / Ctrl+Shift+O", "open files / open folder"),
    ("Ctrl+E / Ctrl+Shift+E", "export view as PNG with / without annotations"),
    ("Ctrl+T", "tag browser"),
    ("Ctrl+1 … Ctrl+5", "review verdict on this slice (its ROI is the region): correct, false positive, missed, "
                        "mislocalised, uncertain (review panel open)"),
    ("Ctrl+] / Ctrl+[ / Ctrl+D", "review: next / previous study, study done"),
    ("F1", "this help"),
)


class ShortcutsDialog(QtWidgets.QDialog):
    """Non-modal list of keyboard and mouse shortcuts."""

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("RadScope shortcuts")
        listed = {k for k, _ in SHORTCUTS}
        rows = list(SHORTCUTS) + [(spec.shortcut, f"{spec.title} panel on / off") for spec in panel_registry.PANELS
                                  if spec.shortcut and spec.shortcut not in listed]
        table = QtWidgets.QTableWidget(len(rows), 2, self)
        table.setHorizontalHeaderLabels(["Keys / mouse", "Action"])
        table.verticalHeader().setVisible(False)
        # wrapped action texts get the lines they need at the column widths in force (a resize pass of the
        # dialog's own ran before the stretched column had its width and left rows tall or cut)
        table.verticalHeader().setSectionResizeMode(QtWidgets.QHeaderView.ResizeMode.ResizeToContents)
        table.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        for r, (k, a) in enumerate(rows):
            table.setItem(r, 0, QtWidgets.QTableWidgetItem(k))
            table.setItem(r, 1, QtWidgets.QTableWidgetItem(a))
        table.setWordWrap(True)
        table.resizeColumnToContents(0)
        table.horizontalHeader().setStretchLastSection(True)
        table.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.table = table
        layout = QtWidgets.QVBoxLayout(self)
        layout.addWidget(table)
        em = self.fontMetrics().height()
        screen = (parent.screen() if parent is not None else None) or QtGui.QGuiApplication.primaryScreen()
        avail = screen.availableGeometry()
        # every shortcut at once where the screen allows (rows wrap, none cut off), never past the screen
        self.resize(min(52 * em, avail.width() * 9 // 10), min((len(rows) + 3) * em * 3 // 2,
                                                                avail.height() * 9 // 10))
