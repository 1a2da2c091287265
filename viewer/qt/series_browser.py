"""Series browser dock: study -> series rows with thumbnail, modality, description and slice count."""

from __future__ import annotations

from typing import Any
from collections.abc import Sequence

import numpy as np

from viewer.qt.bind import Bindings
from viewer.qt.qt import QtCore, QtGui, QtWidgets, Signal

STACK_ROLE = QtCore.Qt.ItemDataRole.UserRole + 1


def numpy_to_pixmap(img: np.ndarray) -> QtGui.QPixmap:
    """A QPixmap of a uint8 grey (rows, cols) or RGB (rows, cols, 3) image (copied)."""
    img = np.ascontiguousarray(img)
    h, w = img.shape[:2]
    if img.ndim == 2:
        qimg = QtGui.QImage(img.data, w, h, img.strides[0], QtGui.QImage.Format.Format_Grayscale8)
    else:
        qimg = QtGui.QImage(img.data, w, h, img.strides[0], QtGui.QImage.Format.Format_RGB888)
    return QtGui.QPixmap.fromImage(qimg.copy())


class SeriesBrowser(QtWidgets.QTreeWidget):
    """Studies as top-level rows, their stacks below; activating a stack asks to show it."""

    stackActivated = Signal(str)

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.setHeaderLabels(["Series", "Mod", "Images"])
        self.setIconSize(QtCore.QSize(64, 64))
        self.setRootIsDecorated(True)
        self.setUniformRowHeights(False)
        self.header().setStretchLastSection(False)
        self.header().setSectionResizeMode(0, QtWidgets.QHeaderView.ResizeMode.Stretch)
        self.itemActivated.connect(self._on_activated)
        self.itemClicked.connect(self._on_activated)
        self._items: dict[str, QtWidgets.QTreeWidgetItem] = {}
        self._stacks: list[Any] = []
        self._icons: dict[str, QtGui.QIcon] = {}
        self.hide_identifying = False
        self._bindings = Bindings()
        self._session: Any = None

    def follow(self, session: Any) -> None:
        """Render ``session`` (a :class:`~viewer.state.session.SessionState`): its stacks, their thumbnails and the
        current one, now and on each change."""
        self._bindings.clear()
        self._session = session
        self._bindings.connect(session.stacksChanged, self._render_stacks)
        self._bindings.connect(session.thumbnailChanged, self.set_thumbnail)
        self._bindings.connect(session.currentChanged, self.select_stack)
        self._render_stacks(list(session.stacks.values()))

    def _render_stacks(self, stacks: list[Any]) -> None:
        session = self._session
        self.set_stacks(stacks)
        if session is not None:
            for stack_id, img in session.thumbnails.items():
                if stack_id not in self._icons:
                    self.set_thumbnail(stack_id, img)
            self.select_stack(session.stack_id)

    def set_hide_identifying(self, hide: bool) -> None:
        """Leave patient names and study dates out of the study rows (demos, screenshots)."""
        self.hide_identifying = hide
        current = self.currentItem().data(0, STACK_ROLE) if self.currentItem() is not None else None
        self.set_stacks(self._stacks)
        if current:
            self.select_stack(str(current))

    def set_stacks(self, stacks: Sequence[Any]) -> None:
        """Replace the contents with these stacks, grouped by study."""
        # the same stack objects keep their thumbnails; compared by identity, since a Stack's generated __eq__
        # compares its numpy fields (ValueError), and a re-scanned (e.g. growing) stack is a new object anyway
        if len(stacks) != len(self._stacks) or any(a is not b for a, b in zip(stacks, self._stacks, strict=False)):
            self._icons.clear()
        self._stacks = list(stacks)
        self.clear()
        self._items.clear()
        studies: dict[str, QtWidgets.QTreeWidgetItem] = {}
        for st in stacks:
            info = st.info
            study = studies.get(info.study_uid)
            if study is None:
                date = "" if self.hide_identifying else info.study_date
                title = " ".join(x for x in (date, info.study_description or "Study") if x)
                name = "" if self.hide_identifying else info.patient_name.replace("^", " ").strip()
                study = QtWidgets.QTreeWidgetItem([f"{name}  {title}".strip() if name else title, "", ""])
                study.setFirstColumnSpanned(False)
                self.addTopLevelItem(study)
                studies[info.study_uid] = study
            label = info.description or (f"Series {info.series_number}" if info.series_number is not None
                                         else "(no description)")
            item = QtWidgets.QTreeWidgetItem([label, info.modality, str(st.n_slices)])
            item.setData(0, STACK_ROLE, st.stack_id)
            number = f"Series {info.series_number}: " if info.series_number is not None else ""
            item.setToolTip(0, f"{number}{label}\n{st.n_slices} x {st.rows} x {st.columns}\n{st.stack_id}")
            if st.stack_id in self._icons:
                item.setIcon(0, self._icons[st.stack_id])
            study.addChild(item)
            self._items[st.stack_id] = item
        self.expandAll()
        for c in (1, 2):
            self.resizeColumnToContents(c)

    def set_thumbnail(self, stack_id: str, img: np.ndarray) -> None:
        self._icons[stack_id] = QtGui.QIcon(numpy_to_pixmap(img))
        item = self._items.get(stack_id)
        if item is not None:
            item.setIcon(0, self._icons[stack_id])

    def select_stack(self, stack_id: str) -> None:
        item = self._items.get(stack_id)
        if item is not None:
            self.setCurrentItem(item)

    def stack_ids(self) -> list[str]:
        return list(self._items)

    def _on_activated(self, item: QtWidgets.QTreeWidgetItem, column: int = 0) -> None:
        sid = item.data(0, STACK_ROLE)
        if sid:
            self.stackActivated.emit(str(sid))
