"""A layout that wraps its widgets onto as many rows as the width needs (Qt's "Flow Layout" example).

Used where a row of buttons must fit a narrow dock on a laptop screen without scrolling sideways. superqt has
the same class (``QFlowLayout``), but importing superqt pulls in qtpy and its Qt modules (0.6 s, 26 MB on
this machine) for these few lines.
"""

from __future__ import annotations

from viewer.qt.qt import QtCore, QtWidgets


class FlowLayout(QtWidgets.QLayout):
    """Left to right, wrapping to a new row when the next item does not fit; height for width."""

    def __init__(self, parent: QtWidgets.QWidget | None = None, spacing: int = 4) -> None:
        super().__init__(parent)
        self._items: list[QtWidgets.QLayoutItem] = []
        self._spacing = spacing
        self.setContentsMargins(0, 0, 0, 0)

    def addItem(self, item: QtWidgets.QLayoutItem) -> None:  # noqa: N802 (Qt name)
        self._items.append(item)

    def count(self) -> int:
        return len(self._items)

    def itemAt(self, index: int) -> QtWidgets.QLayoutItem | None:  # noqa: N802
        return self._items[index] if 0 <= index < len(self._items) else None

    def takeAt(self, index: int) -> QtWidgets.QLayoutItem | None:  # type: ignore[override]  # noqa: N802 (None past the end, as Qt)
        return self._items.pop(index) if 0 <= index < len(self._items) else None

    def expandingDirections(self) -> QtCore.Qt.Orientation:  # noqa: N802
        return QtCore.Qt.Orientation(0)

    def hasHeightForWidth(self) -> bool:  # noqa: N802
        return True

    def heightForWidth(self, width: int) -> int:  # noqa: N802
        return self._place(QtCore.QRect(0, 0, width, 0), move=False)

    def setGeometry(self, rect: QtCore.QRect) -> None:  # noqa: N802
        super().setGeometry(rect)
        self._place(rect, move=True)

    def sizeHint(self) -> QtCore.QSize:  # noqa: N802
        """All items on one row."""
        visible = [i for i in self._items if not i.isEmpty()]
        w = sum(i.sizeHint().width() for i in visible) + self._spacing * max(0, len(visible) - 1)
        h = max((i.sizeHint().height() for i in visible), default=0)
        m = self.contentsMargins()
        return QtCore.QSize(w + m.left() + m.right(), h + m.top() + m.bottom())

    def minimumSize(self) -> QtCore.QSize:  # noqa: N802
        """The widest item: every item on its own row."""
        size = QtCore.QSize()
        for item in self._items:
            size = size.expandedTo(item.minimumSize())
        m = self.contentsMargins()
        return size + QtCore.QSize(m.left() + m.right(), m.top() + m.bottom())

    def _place(self, rect: QtCore.QRect, *, move: bool) -> int:
        """Lay the items out in ``rect`` (only measure unless ``move``); the height used."""
        m = self.contentsMargins()
        area = rect.adjusted(m.left(), m.top(), -m.right(), -m.bottom())
        x, y, row_h = area.x(), area.y(), 0
        for item in self._items:
            if item.isEmpty():
                continue
            hint = item.sizeHint()
            if x > area.x() and x + hint.width() > area.right() + 1:
                x, y, row_h = area.x(), y + row_h + self._spacing, 0
            if move:
                item.setGeometry(QtCore.QRect(QtCore.QPoint(x, y), hint.boundedTo(area.size().expandedTo(
                    QtCore.QSize(1, hint.height())))))
            x += hint.width() + self._spacing
            row_h = max(row_h, hint.height())
        return y + row_h - rect.y() + m.bottom()


def flow_row(*widgets: QtWidgets.QWidget, spacing: int = 4) -> QtWidgets.QWidget:
    """A widget holding ``widgets`` in a :class:`FlowLayout` (to add to a box layout)."""
    box = QtWidgets.QWidget()
    layout = FlowLayout(box, spacing)
    for w in widgets:
        layout.addWidget(w)
    policy = box.sizePolicy()
    policy.setHeightForWidth(True)
    box.setSizePolicy(policy)
    return box


class WrapLabel(QtWidgets.QLabel):
    """A caption that wraps to the width it is given and asks, as its minimum, only the height of its text at its
    current width (a plain word-wrapped QLabel's minimum is one word per line: in a dock's scroll area a few of
    them pushed the panel's plots below the screen)."""

    def __init__(self, text: str = "", parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(text, parent)
        self.setWordWrap(True)

    def minimumSizeHint(self) -> QtCore.QSize:  # noqa: N802 (Qt name)
        em = self.fontMetrics().height()
        width = min(super().sizeHint().width(), 6 * em)
        if not self.text():
            return QtCore.QSize(width, 0)
        return QtCore.QSize(width, self.heightForWidth(max(self.width(), width)))
