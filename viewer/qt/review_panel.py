"""The review panel: worklist with status and progress, verdict shortcuts, the study's flags, summary.

A dock widget over a :class:`~viewer.review.ReviewStore`: it renders a
:class:`~viewer.state.review.ReviewContextState` (image in view, worklist, the study's flags, status line,
reviewer, labels) and turns clicks and keys into calls of its Qt-free
:class:`~viewer.state.review_control.ReviewControl` (``panel.control``), which decides and changes the state.
The viewer calls :meth:`ReviewPanel.set_context` when the shown image changes; it listens to
``studyRequested`` (next/previous/worklist double-click) to open a study.

Shortcuts (active anywhere in the window): Ctrl+1..Ctrl+5 = correct, false positive, false negative
(missed), mislocalised, uncertain (plain digits are the viewer's window presets); Ctrl+] / Ctrl+[ =
next / previous study; Ctrl+D = mark the current study done. Delete deletes the selected flag while
the flag list has focus (elsewhere Delete stays the viewer's "delete measurement").
"""

from __future__ import annotations

import html
from typing import Any

from viewer.qt.bind import Bindings
from viewer.qt.flow import flow_row
from viewer.qt.qt import Qt, QtCore, QtGui, QtWidgets, Signal
from viewer.qt.review_live import StoreWatch
from viewer.qt.review_summary_plot import ErrorRatePlot
from viewer.review import Flag, ImageContext, Region, ReviewStore, ReviewStoreError, Verdict, default_reviewer
from viewer.review.store import STATUSES
from viewer.review.summary import format_summary
from viewer.state.review import ReviewContextState, WorklistView
from viewer.state.review_control import ReviewControl, image_number

VERDICT_KEYS = {v: f"Ctrl+{n}" for n, v in enumerate(Verdict, start=1)}
STATUS_TEXT = {s: s.replace("_", " ") for s in STATUSES}
FLAG_COLUMNS = ("Verdict", "Label", "Image", "Reviewer", "Time (UTC)", "Comment")
WORKLIST_COLUMNS = ("#", "Study", "Status", "Flags", "Open by", "Priority")
VERSION_ROLE = Qt.ItemDataRole.UserRole + 1
LIVE_DELAY_MS = 100  # changes arriving together refresh the panel once
__all__ = ["ReviewPanel", "image_number"]


def _button(text: str, tip: str) -> QtWidgets.QPushButton:
    button = QtWidgets.QPushButton(text)
    button.setToolTip(tip)
    return button


def _cell(table: QtWidgets.QTableWidget, row: int, col: int = 0) -> QtWidgets.QTableWidgetItem:
    """A filled table's item (every cell of a filled row has one)."""
    item = table.item(row, col)
    assert item is not None
    return item


class _TabsTakingTheRest(QtWidgets.QTabWidget):
    """The lists take the height the rows above leave (stretch), never ask for more: a dock's scroll area sizes a
    height-for-width body (wrapping rows) to its preferred height, which would push the lists past a laptop's
    dock and scroll the whole panel."""

    def sizeHint(self) -> QtCore.QSize:  # noqa: N802 (Qt name)
        return QtCore.QSize(super().sizeHint().width(), self.minimumSizeHint().height())

    def hasHeightForWidth(self) -> bool:  # noqa: N802 (the Flags page's wrapping row would ask for its full height)
        return False


class ReviewPanel(QtWidgets.QDockWidget):
    """Dock widget for reviewing a model study by study (see the module docstring)."""

    studyRequested = Signal(str)  # study UID to open
    flagAdded = Signal(str)  # flag id, emitted once the flag is durable
    flagsChanged = Signal()

    def __init__(self, store: ReviewStore, context: ImageContext | None = None,
                 parent: QtWidgets.QWidget | None = None, *, live: bool = True) -> None:
        super().__init__("Review", parent)
        self.setObjectName("reviewPanel")
        self.state = ReviewContextState(default_reviewer())
        """What the panel shows (the control changes it; the panel renders it)."""
        self._build()
        self._live = live
        self._live_timer = QtCore.QTimer(self, singleShot=True, interval=LIVE_DELAY_MS)
        self._live_timer.timeout.connect(self.refresh)
        self.watch = self._watch(store)
        self.control = ReviewControl(store, self.state, self.watch)
        """The panel's Qt-free decisions (worklist, flags, status line, reviewer, store)."""
        b = self._bindings = Bindings()
        for event, slot in ((self.state.contextChanged, self._render_context),
                            (self.state.worklistChanged, self._render_worklist),
                            (self.state.studyFlagsChanged, self._render_flags),
                            (self.state.statusChanged, self._render_status),
                            (self.state.labelsChanged, self._render_labels),
                            (self.state.reviewerChanged, self._render_reviewer),
                            (self.state.storeChanged, self._render_store)):
            b.connect(event, slot)
        self._render_title()
        self.control.set_context(context)
        self.control.say_store()

    # -- the store -----------------------------------------------------------------------------
    @property
    def store(self) -> ReviewStore:
        return self.control.store

    @property
    def context(self) -> ImageContext | None:
        return self.state.context

    @property
    def current_study(self) -> str | None:
        return self.control.current_study

    @current_study.setter
    def current_study(self, study_uid: str | None) -> None:
        self.control.set_current_study(study_uid)

    def _watch(self, store: ReviewStore) -> StoreWatch:
        watch = StoreWatch(store, self, live=self._live)
        self._was_offline = bool(store.offline)
        watch.changed.connect(self._on_store_changed)
        watch.connection.connect(self._on_connection)
        watch.outboxSent.connect(self._on_outbox_sent)
        watch.outboxWaiting.connect(self._on_outbox_waiting)
        return watch

    def set_store(self, store: ReviewStore) -> None:
        """Show another store (the caller closes the previous one after this returns)."""
        self.control.set_store(store)

    def _render_store(self, store: ReviewStore) -> None:
        self.watch.stop()
        self.watch.deleteLater()
        self.watch = self._watch(store)
        self.control.link = self.watch
        self._render_title()

    def _render_title(self) -> None:
        store = self.store
        self.setWindowTitle("Review" if store.backend == "sqlite" else f"Review · team store {store.name}")
        self.setToolTip(f"Review store: {store.location}")

    # -- construction ------------------------------------------------------------------------
    def _build(self) -> None:
        body = QtWidgets.QWidget(self)
        layout = QtWidgets.QVBoxLayout(body)
        layout.setContentsMargins(4, 4, 4, 4)

        # rows of buttons wrap (FlowLayout) rather than widen the dock: it must fit a laptop screen's third
        self.prev_button = _button("◀ Previous", "Previous study (Ctrl+[)")
        self.next_button = _button("Next ▶", "Next study (Ctrl+])")
        self.progress_label = QtWidgets.QLabel()
        self.done_button = _button("Mark done", "Mark the current study done (Ctrl+D)")
        layout.addWidget(flow_row(self.prev_button, self.next_button, self.done_button, self.progress_label))

        self.context_label = QtWidgets.QLabel(wordWrap=True)
        self.context_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.context_label)

        form = QtWidgets.QFormLayout()
        self.label_edit = QtWidgets.QComboBox(editable=True)
        self.comment_edit = QtWidgets.QLineEdit(placeholderText="optional comment")
        self.reviewer_edit = QtWidgets.QLineEdit(self.state.reviewer)
        form.addRow("Label", self.label_edit)
        form.addRow("Comment", self.comment_edit)
        form.addRow("Reviewer", self.reviewer_edit)
        layout.addLayout(form)

        self.verdict_buttons: dict[Verdict, QtWidgets.QPushButton] = {}
        for verdict in Verdict:
            key = VERDICT_KEYS[verdict]
            button = _button(verdict.title, f"Flag this image: {verdict.title} ({key})")
            button.clicked.connect(lambda _=False, v=verdict: self.add_flag(v))
            self.verdict_buttons[verdict] = button
        self.verdict_row = flow_row(*self.verdict_buttons.values())  # as many per row as fit; keys in the hint
        layout.addWidget(self.verdict_row)
        keys = QtWidgets.QLabel("Keys: " + ", ".join(f"{k} {v.title.lower()}" for v, k in VERDICT_KEYS.items()),
                                wordWrap=True)
        keys.setStyleSheet("color: #999;")
        layout.addWidget(keys)
        self.status_label = QtWidgets.QLabel(wordWrap=True)
        layout.addWidget(self.status_label)

        self.tabs = _TabsTakingTheRest()
        self.flag_table = self._table(FLAG_COLUMNS)
        self.worklist_table = self._table(WORKLIST_COLUMNS)
        header = self.worklist_table.horizontalHeader()  # the description gives way (elided)
        header.setStretchLastSection(False)
        for col in range(len(WORKLIST_COLUMNS)):
            mode = {"Study": "Stretch", "Priority": "Interactive"}.get(WORKLIST_COLUMNS[col], "ResizeToContents")
            header.setSectionResizeMode(col, getattr(QtWidgets.QHeaderView.ResizeMode, mode))
        self.summary_text = QtWidgets.QPlainTextEdit(readOnly=True)
        self.summary_text.setFont(QtGui.QFontDatabase.systemFont(QtGui.QFontDatabase.SystemFont.FixedFont))
        self.summary_text.setLineWrapMode(QtWidgets.QPlainTextEdit.LineWrapMode.NoWrap)
        flags_page = QtWidgets.QWidget()
        flags_layout = QtWidgets.QVBoxLayout(flags_page)
        flags_layout.setContentsMargins(0, 0, 0, 0)
        flags_layout.addWidget(self.flag_table)
        self.edit_button = _button("Apply label/comment", "Set the selected flag's label and comment")
        self.edit_verdict = QtWidgets.QComboBox()
        for v in Verdict:
            self.edit_verdict.addItem(v.title, v)
        self.delete_button = _button("Delete", "Delete the selected flag (Delete in the list); history is kept")
        flags_layout.addWidget(flow_row(QtWidgets.QLabel("Selected flag:"), self.edit_verdict, self.delete_button,
                                        self.edit_button))
        self.tabs.addTab(flags_page, "Flags")
        self.tabs.addTab(self.worklist_table, "Worklist")
        self.tabs.addTab(self.summary_text, "Summary")
        self.error_plot = ErrorRatePlot()
        self.tabs.addTab(self.error_plot, "Error by group")
        layout.addWidget(self.tabs, 1)
        self.setWidget(body)

        self.reviewer_edit.textChanged.connect(lambda text: self.control.set_reviewer(text))
        self.prev_button.clicked.connect(self.previous_study)
        self.next_button.clicked.connect(self.next_study)
        self.done_button.clicked.connect(self.mark_done)
        self.edit_verdict.activated.connect(self._edit_verdict)
        self.edit_button.clicked.connect(self._edit_text)
        self.delete_button.clicked.connect(self.delete_selected)
        self.worklist_table.itemDoubleClicked.connect(self._worklist_activated)
        self.tabs.currentChanged.connect(lambda _: self.refresh())

        self._shortcuts: list[QtGui.QShortcut] = []
        for verdict, key in VERDICT_KEYS.items():
            self._shortcut(key, lambda v=verdict: self.add_flag(v))
        self.flag_table.installEventFilter(self)
        self._shortcut("Ctrl+]", self.next_study)
        self._shortcut("Ctrl+[", self.previous_study)
        self._shortcut("Ctrl+D", self.mark_done)

    def eventFilter(self, watched: QtCore.QObject, event: QtCore.QEvent) -> bool:  # noqa: N802 (Qt name)
        """Delete in the flag list deletes the selected flag, ahead of any window-wide Delete shortcut."""
        if watched is self.flag_table and isinstance(event, QtGui.QKeyEvent) and event.key() == Qt.Key.Key_Delete \
                and event.modifiers() == Qt.KeyboardModifier.NoModifier:
            if event.type() == QtCore.QEvent.Type.ShortcutOverride:
                event.accept()  # claim the key from the shortcut map
                return True
            if event.type() == QtCore.QEvent.Type.KeyPress:
                self.delete_selected()
                return True
        return super().eventFilter(watched, event)

    def _shortcut(self, key: Any, slot: Any) -> None:
        sc = QtGui.QShortcut(QtGui.QKeySequence(key), self)
        sc.setContext(Qt.ShortcutContext.WindowShortcut)
        sc.activated.connect(slot)
        self._shortcuts.append(sc)

    @staticmethod
    def _table(columns: tuple[str, ...]) -> QtWidgets.QTableWidget:
        table = QtWidgets.QTableWidget(0, len(columns))
        table.setHorizontalHeaderLabels(list(columns))
        table.setSelectionBehavior(QtWidgets.QAbstractItemView.SelectionBehavior.SelectRows)
        table.setSelectionMode(QtWidgets.QAbstractItemView.SelectionMode.SingleSelection)
        table.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        table.verticalHeader().setVisible(False)
        table.horizontalHeader().setStretchLastSection(True)
        table.setWordWrap(False)
        return table

    # -- public API --------------------------------------------------------------------------
    def set_context(self, context: ImageContext | None) -> None:
        """The image now shown (None when nothing is open); cheap when only the slice changed."""
        self.control.set_context(context)

    def set_labels(self, labels: list[str]) -> None:
        """The model's labels offered in the label box (the first is preselected)."""
        self.control.set_labels(labels)

    def add_flag(self, verdict: Verdict | str, region: Region | None = None) -> str | None:
        """Flag the current image (optionally a region of it); returns the id once durable, else None."""
        flag_id = self.control.add_flag(verdict, self.label_edit.currentText(), self.comment_edit.text(), region)
        if flag_id is not None or self.control.kept_id is not None:
            self.comment_edit.clear()
        if flag_id is not None:
            self.flagAdded.emit(flag_id)
            self.flagsChanged.emit()
        return flag_id

    def selected_flag_id(self) -> str | None:
        rows = self.flag_table.selectionModel().selectedRows()
        if not rows:
            return None
        return _cell(self.flag_table, rows[0].row()).data(Qt.ItemDataRole.UserRole)

    def selected_version(self) -> int | None:
        """The version of the selected flag as the panel shows it (edits are checked against it)."""
        rows = self.flag_table.selectionModel().selectedRows()
        return _cell(self.flag_table, rows[0].row()).data(VERSION_ROLE) if rows else None

    def delete_selected(self) -> None:
        flag_id = self.selected_flag_id()
        if flag_id is not None and self.control.delete_flag(flag_id, self.selected_version()):
            self.flagsChanged.emit()

    def next_study(self) -> None:
        self._go(1)

    def previous_study(self) -> None:
        self._go(-1)

    def mark_done(self) -> None:
        if self.control.mark_done():
            self.flagsChanged.emit()

    def refresh(self) -> None:
        """Reload the worklist, the current study's flags, the progress counter and the summary."""
        self.control.refresh()

    # -- rendering the state -------------------------------------------------------------------
    def _render_context(self, context: ImageContext | None) -> None:
        """The panel shows no patient name or ID (the viewer may be hiding identifying fields)."""
        if context is not None:
            st = context.study
            study = " · ".join(p for p in (st.study_date, st.study_description) if p) or context.study_uid
            # the image a verdict goes to first (kept on one line), then its study
            text = (f"<b>{html.escape(context.headers.modality or 'image')} {image_number(context.slice_index)}"
                    + (f" (frame {context.frame_number})" if context.frame_number else "")
                    + f"</b> · {html.escape(study)}")
            if context.model.name:
                model = f"{context.model.name} {context.model.version}"
                model += f" · {context.method}" if context.method else ""
                model += f" · threshold {context.threshold:g}" if context.threshold is not None else ""
                text += f"<br>Model {html.escape(model)}"
            tip = (f"Study {context.study_uid}\nSeries {context.series_uid}\n"
                   f"SOP Instance {', '.join(context.sop_instance_uids)}")
        else:
            text, tip = "No image open", ""
        self.context_label.setText(text)
        self.context_label.setToolTip(tip)
        for button in self.verdict_buttons.values():
            button.setEnabled(context is not None)

    def _render_worklist(self, view: WorklistView) -> None:
        study = self.current_study
        self.progress_label.setText(view.progress_text(study))
        self.prev_button.setEnabled(view.previous is not None)
        self.next_button.setEnabled(view.next is not None)
        self.done_button.setEnabled(study is not None)
        entries = view.entries
        self._fill(self.worklist_table, [
            ((str(n), e.description or e.study_uid, STATUS_TEXT[e.status], str(e.n_flags), ", ".join(e.reviewers),
              "" if e.priority is None else f"{e.priority:.2f} {e.priority_reason}"), e.study_uid)
            for n, e in enumerate(entries, start=1)
        ])
        for row, e in enumerate(entries):  # why a ranked study comes first, in full on hover
            for col in range(self.worklist_table.columnCount()):
                _cell(self.worklist_table, row, col).setToolTip(e.priority_reason)
        priority = WORKLIST_COLUMNS.index("Priority")  # its reason at most ~10 characters wide (in full on hover)
        self.worklist_table.resizeColumnToContents(priority)
        limit = 10 * self.fontMetrics().horizontalAdvance("m")
        if self.worklist_table.columnWidth(priority) > limit:
            self.worklist_table.setColumnWidth(priority, limit)
        page = self.tabs.currentWidget()
        if page is self.summary_text or page is self.error_plot:
            try:
                summary = self.control.summary()
            except ReviewStoreError as exc:
                self.control.state.set_status(f"Cannot read the review store: {exc}", True)
                return
            if page is self.summary_text:
                self.summary_text.setPlainText(format_summary(summary))
            else:
                self.error_plot.set_summary(summary)

    def _render_flags(self, flags: list[Flag]) -> None:
        self._fill(self.flag_table, [
            ((f.verdict.title, f.label, image_number(f.slice_index), f.reviewer, f.created[:19].replace("T", " "),
              f.comment), f.id, f.version)
            for f in flags
        ])

    def _render_status(self, text: str, error: bool) -> None:
        self.status_label.setStyleSheet("color: #e06060;" if error else "")
        self.status_label.setText(text)

    def _render_labels(self, labels: list[str]) -> None:
        current = self.label_edit.currentText()
        self.label_edit.clear()
        self.label_edit.addItems(labels)
        if current and current not in labels:
            self.label_edit.setEditText(current)

    def _render_reviewer(self, name: str) -> None:
        if self.reviewer_edit.text().strip() != name:  # never rewrite what is being typed ("Dr. " + "Ada")
            self.reviewer_edit.setText(name)

    # -- clicks --------------------------------------------------------------------------------
    def _go(self, step: int) -> None:
        target = self.control.step(step)  # None: the button is off, or the shortcut's status line says why
        if target is not None:
            self.studyRequested.emit(target)

    def _worklist_activated(self, item: QtWidgets.QTableWidgetItem) -> None:
        study_uid = _cell(self.worklist_table, item.row()).data(Qt.ItemDataRole.UserRole)
        self.control.open_study(study_uid)
        self.studyRequested.emit(study_uid)

    def _edit_verdict(self, index: int) -> None:
        flag_id = self.selected_flag_id()
        if flag_id is not None and self.control.edit_flag(flag_id, self.selected_version(),
                                                          verdict=self.edit_verdict.itemData(index)):
            self.flagsChanged.emit()

    def _edit_text(self) -> None:
        flag_id = self.selected_flag_id()
        if flag_id is not None and self.control.edit_flag(flag_id, self.selected_version(),
                                                          label=self.label_edit.currentText().strip(),
                                                          comment=self.comment_edit.text().strip()):
            self.flagsChanged.emit()

    # -- live changes, connection, outbox ------------------------------------------------------
    def _on_store_changed(self, event: object) -> None:
        """Another session committed a change (a flag, a study, who is on which study): show it (coalesced)."""
        self._live_timer.start()

    def _on_connection(self, connected: bool, message: str) -> None:
        if self.store.backend != "postgresql":
            return
        self.control.connection_changed(connected, message, self._was_offline)
        self._was_offline = not connected
        if connected:
            self._live_timer.start()

    def _on_outbox_sent(self, ids: list[str]) -> None:
        self.control.outbox_sent(ids)
        for flag_id in ids:
            self.flagAdded.emit(flag_id)
        self.flagsChanged.emit()

    def _on_outbox_waiting(self, waiting: int, error: str) -> None:
        self.control.outbox_waiting(waiting, error)

    def _status(self, text: str, *, error: bool = False) -> None:
        """Put ``text`` on the status line (red when ``error``)."""
        self.state.set_status(text, error)

    @staticmethod
    def _fill(table: QtWidgets.QTableWidget, rows: list[Any]) -> None:
        """Rows of (cells, key) or (cells, key, version)."""
        selected = None
        if table.selectionModel().selectedRows():
            selected = _cell(table, table.selectionModel().selectedRows()[0].row()).data(Qt.ItemDataRole.UserRole)
        table.setRowCount(len(rows))
        for r, (cells, key, *version) in enumerate(rows):
            for c, text in enumerate(cells):
                item = QtWidgets.QTableWidgetItem(text)
                item.setData(Qt.ItemDataRole.UserRole, key)
                if version:
                    item.setData(VERSION_ROLE, version[0])
                table.setItem(r, c, item)
            if key == selected:
                table.selectRow(r)
        if table.horizontalHeader().stretchLastSection():  # (the worklist's sections size themselves: a pass
            table.resizeColumnsToContents()               # here would widen its stretched column for good)
