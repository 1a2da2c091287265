"""DICOM tag browser dock: the header of the current slice as a tree, with search by tag, keyword or value
(nested sequences included; matches keep their parents visible)."""

from __future__ import annotations

from typing import Any

from viewer.display.tags import TagNode, build_tag_tree, filter_tree
from viewer.qt.qt import QtWidgets, Signal


class TagBrowser(QtWidgets.QWidget):
    """Search box + tree (Tag, Keyword, VR, Value)."""

    searched = Signal(int)
    """Number of top-level rows after a search."""

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.search = QtWidgets.QLineEdit(self)
        self.search.setPlaceholderText("Search tag (0010,0010), keyword or value…")
        self.search.setClearButtonEnabled(True)
        self.title = QtWidgets.QLabel("No header", self)
        self.tree = QtWidgets.QTreeWidget(self)
        self.tree.setHeaderLabels(["Tag", "Keyword", "VR", "Value"])
        self.tree.setUniformRowHeights(True)
        self.tree.setAlternatingRowColors(True)
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.title)
        layout.addWidget(self.search)
        layout.addWidget(self.tree)
        self._nodes: list[TagNode] = []
        self.hide_identifying = False
        self._dataset: Any | None = None
        self.search.textChanged.connect(self._on_search)

    def set_dataset(self, dataset: Any | None, title: str = "") -> None:
        """Show a pydicom Dataset (or clear with None); the search text is kept and re-applied."""
        self._dataset = dataset
        self._nodes = build_tag_tree(dataset, self.hide_identifying) if dataset is not None else []
        self.title.setText(title or ("No header" if dataset is None else ""))
        self._on_search(self.search.text())

    def set_hide_identifying(self, hide: bool) -> None:
        """Mask names, IDs and dates (demos, screenshots); re-shows the current header."""
        self.hide_identifying = hide
        if self._dataset is not None:
            self.set_dataset(self._dataset, self.title.text())

    def set_error(self, message: str) -> None:
        self._nodes = []
        self.title.setText(message)
        self.tree.clear()

    def _on_search(self, text: str) -> None:
        nodes = filter_tree(self._nodes, text) if text.strip() else self._nodes
        self.tree.clear()
        self.tree.addTopLevelItems([self._item(n) for n in nodes])
        if text.strip():
            self.tree.expandAll()
        self._fit_columns()
        self.searched.emit(len(nodes))

    def _fit_columns(self) -> None:
        """Tag and VR as wide as their text, the keyword at most a third of the width: the value (what one
        reads) gets the rest; long keywords and values are elided, their tooltips whole."""
        width = max(self.tree.viewport().width(), 1)
        for c in (0, 2):
            self.tree.resizeColumnToContents(c)
        self.tree.resizeColumnToContents(1)
        self.tree.setColumnWidth(1, min(self.tree.columnWidth(1), width // 3))

    def resizeEvent(self, ev: Any) -> None:  # noqa: N802
        super().resizeEvent(ev)
        self._fit_columns()

    def _item(self, node: TagNode) -> QtWidgets.QTreeWidgetItem:
        item = QtWidgets.QTreeWidgetItem([node.tag_text, node.keyword, node.vr, node.value])
        item.setToolTip(1, node.keyword)
        item.setToolTip(3, node.value)
        item.addChildren([self._item(c) for c in node.children])
        return item

    def visible_keywords(self) -> list[str]:
        """Keywords of every row in the tree, depth first (for tests and copy)."""
        out: list[str] = []

        def walk(item: QtWidgets.QTreeWidgetItem) -> None:
            out.append(item.text(1))
            for i in range(item.childCount()):
                walk(item.child(i))

        for i in range(self.tree.topLevelItemCount()):
            walk(self.tree.topLevelItem(i))
        return out
