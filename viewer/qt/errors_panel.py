"""Errors dock: files that could not be used, with the reason (never a modal dialog). It renders the session's
problems (:meth:`ErrorsPanel.follow`); controllers report into the state (``SessionState.add_problems``)."""

from __future__ import annotations

from collections.abc import Iterable

from viewer.qt.bind import Bindings
from viewer.qt.qt import QtWidgets
from viewer.state.session import SessionState


class ErrorsPanel(QtWidgets.QTableWidget):
    """Two columns: file, reason. Rows accumulate until cleared (each open clears them)."""

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(0, 2, parent)
        self.setHorizontalHeaderLabels(["File", "Reason"])
        self.horizontalHeader().setStretchLastSection(True)
        self.verticalHeader().setVisible(False)
        self.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setSelectionBehavior(QtWidgets.QAbstractItemView.SelectionBehavior.SelectRows)
        self._bindings = Bindings()

    def follow(self, session: SessionState) -> None:
        """Show ``session``'s problems now and as they are added or cleared."""
        self._bindings.clear()
        self.clear_errors()
        self.add_errors(session.problems)
        self._bindings.connect(session.problemsAdded, self.add_errors)
        self._bindings.connect(session.problemsCleared, self.clear_errors)

    def add_errors(self, errors: Iterable[tuple[str, str]]) -> None:
        for path, reason in errors:
            row = self.rowCount()
            self.insertRow(row)
            for col, text in enumerate((path, reason)):
                item = QtWidgets.QTableWidgetItem(text)
                item.setToolTip(text)
                self.setItem(row, col, item)
        self.resizeColumnToContents(0)

    def clear_errors(self) -> None:
        self.setRowCount(0)

    def errors(self) -> list[tuple[str, str]]:
        return [(self.item(r, 0).text(), self.item(r, 1).text()) for r in range(self.rowCount())]
