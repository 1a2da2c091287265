"""The PACS panel: pick a node, search, a study/series table, retrieve with progress and cancel, send the
review findings. Network work runs on worker threads (:class:`PacsJob`, a :class:`viewer.qt.jobs.Job`); results come back through
the job's signals, delivered queued to the panel's bound methods on the GUI thread. A retrieved series
opens in the viewer as soon as its first instance is stored, grows on screen while the rest arrives
(:mod:`viewer.qt.pacs_stream`), and opens whole, once, when the retrieval ends (the user's view kept)."""

from __future__ import annotations

import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from viewer.qt.jobs import Job
from viewer.qt.qt import Qt, QtWidgets, Signal

STUDY, SERIES = "study", "series"
UID_ROLE = Qt.ItemDataRole.UserRole


class PacsJob(Job):
    """One network task on a worker thread of its own (:class:`viewer.qt.jobs.Job`, background priority);
    ``cancel`` stops it (the retrieval aborts its association)."""

    thread_name = "radscope-pacs"

    finished = Signal(object)
    failed = Signal(str)
    progress = Signal(int, object)  # done, expected (None until the node listed its instances)
    firstStored = Signal(str)  # path of the first instance stored

    def __init__(self, task: Callable[[PacsJob], Any]) -> None:
        super().__init__()
        self.cancel = threading.Event()
        self._task = task
        self._first = threading.Event()

    def _run(self) -> None:
        from viewer.pacs.errors import PacsError

        try:
            result = self._task(self)
        except PacsError as exc:
            self.failed.emit(str(exc))
        except Exception as exc:  # never let a hostile answer take the viewer down
            self.failed.emit(f"{type(exc).__name__}: {exc}")
        else:
            self.finished.emit(result)

    def on_stored(self, stored: Any, done: int, expected: int | None) -> None:
        """The retrieval's progress callback (network threads)."""
        if not self._first.is_set():
            self._first.set()
            self.firstStored.emit(str(stored.path))
        self.progress.emit(done, expected)


class PacsPanel(QtWidgets.QDockWidget):
    """The dock. ``window``: the viewer (retrieved series open there); ``review``: the review controller
    whose findings "Send findings" exports (None hides the button)."""

    def __init__(self, window: Any = None, review: Any = None) -> None:
        super().__init__("PACS", window)
        self.viewer: Any = window
        self.review = review
        self.job: PacsJob | None = None
        self.last_result: Any = None
        self._opened_first = False
        self.stream: Any = None
        """The :class:`~viewer.qt.pacs_stream.SeriesStream` of the retrieval running (or last run)."""
        self._build()
        self.reload_nodes()

    # ---- widgets ------------------------------------------------------------------------------------
    def _build(self) -> None:
        body = QtWidgets.QWidget(self)
        layout = QtWidgets.QVBoxLayout(body)
        row = QtWidgets.QHBoxLayout()
        self.node_combo = QtWidgets.QComboBox(body)
        self.node_combo.setEditable(True)
        self.node_combo.setToolTip("A saved node (radscope pacs add) or dimse://AET@host:port or https://host/dicom-web")
        line = self.node_combo.lineEdit()
        if line is not None:
            line.setPlaceholderText("node or dimse://AET@host:port")
        self.node_combo.setSizePolicy(QtWidgets.QSizePolicy.Policy.Expanding, QtWidgets.QSizePolicy.Policy.Fixed)
        # a long inline spec must not widen the dock
        self.node_combo.setSizeAdjustPolicy(QtWidgets.QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.node_combo.setMinimumContentsLength(12)
        self.echo_button = QtWidgets.QPushButton("Echo", body)
        self.echo_button.clicked.connect(self.echo)
        row.addWidget(self.node_combo, 1)
        row.addWidget(self.echo_button)
        layout.addLayout(row)
        form = QtWidgets.QFormLayout()
        self.fields: dict[str, QtWidgets.QLineEdit] = {}
        for key, label, hint in (("patient_name", "Patient name", "DOE*"), ("patient_id", "Patient ID", ""),
                                 ("study_date", "Study date", "20240101-20241231"), ("modality", "Modality", "CT"),
                                 ("accession", "Accession", "")):
            edit = QtWidgets.QLineEdit(body)
            edit.setPlaceholderText(hint)
            edit.returnPressed.connect(self.search)
            form.addRow(label, edit)
            self.fields[key] = edit
        layout.addLayout(form)
        self.search_button = QtWidgets.QPushButton("Search", body)
        self.search_button.clicked.connect(self.search)
        layout.addWidget(self.search_button)
        self.tree = QtWidgets.QTreeWidget(body)
        self.tree.setHeaderLabels(["Patient / series", "Date", "Mod.", "Images", "Description", "Patient ID"])
        self.tree.setAlternatingRowColors(True)
        self.tree.setSelectionMode(QtWidgets.QAbstractItemView.SelectionMode.SingleSelection)
        self.tree.itemDoubleClicked.connect(lambda *_: self.retrieve_selected())
        self.tree.itemSelectionChanged.connect(self._update_buttons)
        self.tree.setMinimumWidth(60)
        self.tree.setSizeAdjustPolicy(QtWidgets.QAbstractScrollArea.SizeAdjustPolicy.AdjustIgnored)
        layout.addWidget(self.tree, 1)
        row = QtWidgets.QHBoxLayout()
        self.retrieve_button = QtWidgets.QPushButton("Retrieve", body)
        self.retrieve_button.setToolTip("Retrieve the selected study or series and open it (double-click too)")
        self.retrieve_button.clicked.connect(self.retrieve_selected)
        self.cancel_button = QtWidgets.QPushButton("Cancel", body)
        self.cancel_button.clicked.connect(self.cancel)
        self.send_button = QtWidgets.QPushButton("Send findings", body)
        self.send_button.setToolTip("Export the review flags of the shown study (KOS + SR) and send them to the node")
        self.send_button.clicked.connect(self.send_findings)
        self.send_button.setVisible(self.review is not None)
        for b in (self.retrieve_button, self.cancel_button, self.send_button):
            row.addWidget(b)
        layout.addLayout(row)
        self.progress = QtWidgets.QProgressBar(body)
        self.progress.setTextVisible(True)
        self.progress.hide()
        layout.addWidget(self.progress)
        self.status = QtWidgets.QLabel(body)
        self.status.setWordWrap(True)
        self.status.setSizePolicy(QtWidgets.QSizePolicy.Policy.Ignored, QtWidgets.QSizePolicy.Policy.Preferred)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.status)
        self.setWidget(body)
        self._update_buttons()

    def reload_nodes(self) -> None:
        from viewer.pacs.errors import PacsError
        from viewer.pacs.nodes import NodeBook

        current = self.node_combo.currentText()
        self.node_combo.clear()
        try:
            names = list(NodeBook().nodes())
        except PacsError as exc:
            names = []
            self._say(str(exc), error=True)
        self.node_combo.addItems(names)
        if current:
            self.node_combo.setEditText(current)

    def _update_buttons(self) -> None:
        busy = self.job is not None
        for b in (self.echo_button, self.search_button, self.send_button):
            b.setEnabled(not busy)
        self.retrieve_button.setEnabled(not busy and bool(self.tree.selectedItems()))
        self.cancel_button.setEnabled(busy)

    def _say(self, text: str, *, error: bool = False) -> None:
        self.status.setText(text)
        self.status.setStyleSheet("color: #c0392b;" if error else "")

    # ---- actions ------------------------------------------------------------------------------------
    def _client(self) -> Any:
        from viewer.pacs import client_for
        from viewer.pacs.nodes import resolve_with_env

        spec = self.node_combo.currentText().strip()
        if not spec:
            raise ValueError("choose a node (or type dimse://AET@host:port or https://host/dicom-web)")
        return client_for(resolve_with_env(spec))

    def _start(self, task: Callable[[Any, PacsJob], Any], done: Callable[[Any], None], message: str) -> PacsJob | None:
        from viewer.pacs.errors import PacsError

        if self.job is not None:
            return None
        try:
            client = self._client()
        except (PacsError, ValueError) as exc:
            self._say(str(exc), error=True)
            return None
        job = PacsJob(lambda j: task(client, j))
        job.finished.connect(self._on_finished)
        job.failed.connect(self._on_failed)
        job.progress.connect(self._on_progress)
        job.firstStored.connect(self._on_first_stored)
        self._done = done
        self.job = job
        self._say(message)
        self._update_buttons()
        job.start()
        return job

    def echo(self) -> None:
        self._start(lambda client, job: client.echo(),
                    lambda seconds: self._say(f"{self.node_combo.currentText()}: OK ({seconds * 1000:.0f} ms)"),
                    "Echo…")

    def search(self) -> None:
        from viewer.pacs import Query
        from viewer.pacs.errors import PacsError

        try:
            value = {k: (e.text().strip() or None) for k, e in self.fields.items()}
            query = Query(patient_name=value["patient_name"], patient_id=value["patient_id"],
                          study_date=value["study_date"], modality=value["modality"], accession=value["accession"])
        except PacsError as exc:
            self._say(str(exc), error=True)
            return
        self._start(lambda client, job: client.find(query), self._show_studies, "Searching…")

    def _show_studies(self, result: Any) -> None:
        self.tree.clear()
        for s in result.studies:
            date = f"{s.study_date[:4]}-{s.study_date[4:6]}-{s.study_date[6:]}" if len(s.study_date) == 8 else s.study_date
            n = sum(se.instances or 0 for se in s.series)
            item = QtWidgets.QTreeWidgetItem([s.patient_name.replace("^", " ").strip(), date, "/".join(s.modalities),
                                              str(n or ""), s.description, s.patient_id])
            item.setData(0, UID_ROLE, (STUDY, s.study_uid, None))
            item.setToolTip(0, f"Study {s.study_uid}\nAccession {s.accession or '-'}")
            for se in s.series:
                number = f"#{se.number}" if se.number is not None else "series"
                child = QtWidgets.QTreeWidgetItem([f"{number} {se.description}".strip(), "", se.modality,
                                                   "" if se.instances is None else str(se.instances), "", ""])
                child.setData(0, UID_ROLE, (SERIES, s.study_uid, se.series_uid))
                child.setToolTip(0, f"Series {se.series_uid}")
                item.addChild(child)
            self.tree.addTopLevelItem(item)
            item.setExpanded(len(result.studies) <= 5)
        for col in range(self.tree.columnCount()):
            self.tree.resizeColumnToContents(col)
            self.tree.setColumnWidth(col, min(self.tree.columnWidth(col), 160))
        text = f"{len(result.studies)} stud{'y' if len(result.studies) == 1 else 'ies'}"
        if result.truncated:
            text += " (list cut at the limit: narrow the search)"
        if result.warnings:
            text += f"; {len(result.warnings)} malformed answer(s) skipped"
        self._say(text)

    def select(self, study_uid: str, series_uid: str | None = None) -> bool:
        """Select a row of the table (tests, scripts)."""
        for i in range(self.tree.topLevelItemCount()):
            item = self.tree.topLevelItem(i)
            if item is None or item.data(0, UID_ROLE)[1] != study_uid:
                continue
            if series_uid is None:
                self.tree.setCurrentItem(item)
                return True
            for j in range(item.childCount()):
                child = item.child(j)
                if child is not None and child.data(0, UID_ROLE)[2] == series_uid:
                    self.tree.setCurrentItem(child)
                    return True
        return False

    def retrieve_selected(self) -> None:
        items = self.tree.selectedItems()
        if not items:
            return
        _, study, series = items[0].data(0, UID_ROLE)
        self.retrieve(study, series)

    def retrieve(self, study_uid: str, series_uid: str | None = None) -> None:
        from viewer.pacs.retrieve import retrieve

        def task(client: Any, job: PacsJob) -> Any:
            return retrieve(client, study_uid, series_uid, progress=job.on_stored, cancel=job.cancel)

        self._opened_first = False
        if self.stream is not None:
            self.stream.stop()
        self.stream = None
        self._t0 = time.perf_counter()
        self.first_shown_s: float | None = None
        if self._start(task, self._show_retrieved, "Retrieving…") is not None:
            self.progress.setRange(0, 0)
            self.progress.show()

    def send_findings(self) -> None:
        """Export the review store's findings for the shown study (on this thread, which owns the store)
        and send them in the background."""
        from viewer.pacs.review_send import export_findings, send_findings

        if self.review is None:
            return
        study = None
        model = getattr(self.viewer, "model", None)
        info = getattr(getattr(model, "volume", None), "info", None)
        study = getattr(info, "study_uid", None) or None
        out = Path(tempfile.mkdtemp(prefix="review-send-", dir=_cache_dir()))
        try:
            files = export_findings(self.review.store, out, study)
        except Exception as exc:  # the export names what is wrong
            self._say(f"cannot export the findings: {exc}", error=True)
            return
        self._start(lambda client, job: send_findings(client, files, cancel=job.cancel),
                    lambda report: self._say(report.summary(self.node_combo.currentText())
                                             + "".join(f"\n{e}" for e in report.errors[:5]),
                                             error=bool(report.errors)),
                    f"Sending {len(files)} finding document(s)…")

    def send_findings_from_menu(self) -> None:
        self.open()
        if not self.node_combo.currentText().strip():
            self._say("choose the node to send the findings to, then press Send findings", error=True)
            return
        self.send_findings()

    def cancel(self) -> None:
        if self.job is not None:
            self.job.cancel.set()
            self._say("Cancelling…")

    # ---- job results (GUI thread) -------------------------------------------------------------------
    def _on_progress(self, done: int, expected: object) -> None:
        if self.stream is not None and self.job is not None:
            self.stream.poke(done, expected if isinstance(expected, int) else None)
        if isinstance(expected, int) and expected > 0:
            if self.progress.maximum() != expected:
                self.progress.setRange(0, expected)
            self.progress.setValue(min(done, expected))
            self.progress.setFormat(f"{done}/{expected}")

    def _on_first_stored(self, path: str) -> None:
        """Open the first instance at once: the viewer shows a slice while the rest arrives."""
        if self.viewer is not None and not self._opened_first and self.job is not None:
            self._opened_first = True
            self.first_shown_s = time.perf_counter() - self._t0
            self.viewer.open_paths([path])
            if hasattr(self.viewer, "session"):
                from viewer.qt.pacs_stream import SeriesStream

                self.stream = SeriesStream(self.viewer, Path(path).parent, self)
                self.stream.shown = 1

    def _on_finished(self, result: Any) -> None:
        self.job = None
        self.last_result = result
        self.progress.hide()
        self._update_buttons()
        self._done(result)

    def _on_failed(self, message: str) -> None:
        if self.stream is not None:
            self.stream.stop()  # what arrived stays on screen
        self.job = None
        self.last_result = None
        self.progress.hide()
        self._update_buttons()
        self._say(message, error=True)

    def _show_retrieved(self, report: Any) -> None:
        text = report.summary("retrieved", resume="Retrieve again to resume")
        self.status.setToolTip(str(report.folder))
        if report.errors:
            text += "".join(f"\n{e}" for e in report.errors[:5])
        self._say(text, error=not report.complete)
        snap = self.stream.stop() if self.stream is not None else None
        if self.viewer is not None and (report.stored or report.already):
            self.viewer.open_paths([str(report.folder)])
            if snap is not None:
                from viewer.qt.pacs_stream import keep_view_on_next_series

                keep_view_on_next_series(self.viewer, snap)

    # ---- panel handle ---------------------------------------------------------------------------------
    @property
    def dock(self) -> PacsPanel:
        return self

    def open(self) -> None:
        self.reload_nodes()
        if self.viewer is not None:
            self.viewer.open_panel("pacs")  # placed by the window from the registry (install_panel)
        else:
            self.show()
            self.raise_()

    def is_idle(self) -> bool:
        return self.job is None

    def wait_done(self, timeout_s: float = 60.0) -> bool:
        from viewer.qt.wait import wait_until

        return wait_until(self.is_idle, timeout_s)

    def shutdown(self) -> None:
        job = self.job
        if self.stream is not None:
            self.stream.stop()
        if job is not None:
            job.cancel.set()
            job.join(10)


def _cache_dir() -> Path:
    from viewer import paths

    return paths.subdir("cache")


def pacs_panel(app: Any) -> PacsPanel:
    """The registry's factory (:mod:`viewer.qt.panels`); with the review panel built, the Panels menu also
    gets "Send review findings to PACS…" (opens this panel and sends to its node)."""
    panel = PacsPanel(app.window, app.panels.get("review"))
    menu = getattr(app.window, "panels_menu", None)
    if panel.review is not None and menu is not None:
        action = menu.addAction("Send review findings to PACS…")
        action.triggered.connect(panel.send_findings_from_menu)
    return panel
